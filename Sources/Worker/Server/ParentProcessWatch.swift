import Dispatch
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes the worker exit when its parent process (the gateway) dies, however it dies.
///
/// Two mechanisms, because each misses a case:
/// - On Linux the kernel signals the worker the moment its parent dies
///   (`prctl(PR_SET_PDEATHSIG)`), which catches even a SIGKILLed gateway. The kernel sends that
///   signal when the parent *thread* that started the worker ends, too, and gateways commonly
///   start workers from pool threads that come and go (a Dispatch worker thread ends after a few
///   idle seconds). So the signal is SIGHUP, not SIGKILL, and on receipt the worker exits only if
///   its parent pid has changed: a dead parent process re-parents its children, a dead thread
///   of a live process does not.
/// - Everywhere, the parent pid is checked every interval.
final class ParentProcessWatch: Sendable {
    /// The signal the kernel sends when the parent dies.
    static let deathSignal = SIGHUP

    /// A dispatch source is safe to use from any thread (libdispatch's objects are thread-safe),
    /// but the Linux overlay does not declare it `Sendable`.
    private struct SignalSource: @unchecked Sendable {
        let source: any DispatchSourceSignal
    }

    private let check: RepeatedTask
    private let signalSource: SignalSource?

    private init(check: RepeatedTask, signalSource: SignalSource?) {
        self.check = check
        self.signalSource = signalSource
    }

    /// Starts watching the parent from `eventLoop`; when it is gone, logs a line and exits with
    /// status 1.
    ///
    /// - Parameter expectedParent: the parent's pid as the parent told it; when the current
    ///   parent is another process, the parent died before the watch started and the worker
    ///   exits at once. Nil watches whatever parent the worker has now.
    static func start(on eventLoop: any EventLoop, interval: TimeAmount, expectedParent: pid_t? = nil, logger: Logger) -> ParentProcessWatch {
        let parent = expectedParent ?? getppid()
        var signalSource: SignalSource?
        var armed = false
        #if os(Linux)
        let source = DispatchSource.makeSignalSource(signal: deathSignal, queue: .global())
        source.setEventHandler {
            if getppid() != parent {
                exitBecauseParentExited(parent, logger: logger)
            }
            logger.debug("the thread that started this worker ended; parent process \(parent) is still running")
        }
        source.resume()
        signalSource = SignalSource(source: source)
        armed = armDeathSignal()
        #endif
        logger.info("watching parent process \(parent) (parent-death signal \(armed ? "armed" : "unavailable"))")
        if getppid() != parent { exitBecauseParentExited(parent, logger: logger) }
        let check = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            if getppid() != parent { exitBecauseParentExited(parent, logger: logger) }
        }
        return ParentProcessWatch(check: check, signalSource: signalSource)
    }

    /// Stops watching.
    func cancel() {
        check.cancel()
        signalSource?.source.cancel()
    }

    #if os(Linux)
    /// Asks the kernel to send `deathSignal` when the parent dies; false when it refuses.
    private static func armDeathSignal() -> Bool {
        // prctl(2) is variadic in C, so Swift does not import it; call it through a pointer
        // with the fixed signature the kernel interface has (option plus four unsigned longs).
        typealias Prctl = @convention(c) (CInt, CUnsignedLong, CUnsignedLong, CUnsignedLong, CUnsignedLong) -> CInt
        let setParentDeathSignal: CInt = 1  // PR_SET_PDEATHSIG in <linux/prctl.h>
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "prctl") else { return false }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        return prctl(setParentDeathSignal, CUnsignedLong(deathSignal), 0, 0, 0) == 0
    }
    #endif

    private static func exitBecauseParentExited(_ parent: pid_t, logger: Logger) -> Never {
        logger.critical("parent process \(parent) has exited; worker exiting")
        exit(1)
    }
}
