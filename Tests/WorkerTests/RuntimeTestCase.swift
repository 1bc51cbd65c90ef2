import Logging
import NIOCore
import NIOPosix
import Worker
import XCTest

/// A test case that runs runtimes on a real one-loop event loop group and a started two-thread
/// pool, both made before and shut down after each test.
class RuntimeTestCase: XCTestCase {
    var group: MultiThreadedEventLoopGroup!
    var threadPool: NIOThreadPool!

    override func setUp() {
        super.setUp()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
    }

    override func tearDown() {
        try? threadPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
        super.tearDown()
    }

    /// A runtime serving `models` on the group's loop, logging nothing.
    func makeRuntime(_ models: [ServedModel], workerID: String) -> WorkerRuntime {
        WorkerRuntime(
            workerID: workerID, models: models, eventLoop: group.next(), threadPool: threadPool,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}
