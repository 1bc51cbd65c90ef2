import H2Transport
import NIOCore

/// The recorder of one event loop, shared by the connections that loop runs.
///
/// Confined to `eventLoop`: the driver reaches it only through `eventLoop.submit`.
final class LoopRecorder: @unchecked Sendable {
    let eventLoop: EventLoop
    /// What the loop's calls recorded in the current level.
    var recorder = LatencyRecorder()
    /// Calls that ended while not measuring (the warm-up).
    var unmeasuredCalls: UInt64 = 0
    /// Whether calls that end are measured.
    var measuring = false
    /// Monotonic nanoseconds when the last call ended: the end of a level's work, for its
    /// throughput (the driver notices the end of a `--requests` level only when it polls).
    var lastCallEnded: UInt64 = 0

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    @inline(__always)
    func record(nanoseconds: UInt64, statusCode: Int, now: UInt64) {
        lastCallEnded = now
        if measuring {
            recorder.record(nanoseconds: nanoseconds, statusCode: statusCode)
        } else {
            unmeasuredCalls &+= 1
        }
    }
}

/// What one connection does during one phase (the warm-up or one load level).
struct ConnectionPlan: Sendable {
    /// Closed loop: calls kept in flight on this connection. Zero in an open loop.
    var concurrency = 0
    /// Open loop: this connection's arrival schedule, first call at `startTime`.
    var schedule: ArrivalSchedule?
    /// Monotonic nanoseconds: when the open loop's first call is due.
    var startTime: UInt64 = 0
    /// Monotonic nanoseconds: no open-loop call is due at or after this time.
    var endTime: UInt64 = .max
    /// Calls to start in this phase; nil: until stopped.
    var budget: Int?
    /// Open loop's in-flight limit.
    var maxInFlight = 10_000
}

/// Drives the calls of one HTTP/2 connection on that connection's event loop.
///
/// Closed loop: keeps `concurrency` calls in flight, starting the next one when one ends.
/// Open loop: starts calls when its `OpenLoopPacer` says they are due (a timer for the next one)
/// and measures each from its intended start. With `streaming`, each call is one request and its
/// response on a ModelStreamInfer stream that carries one call at a time and is reused.
///
/// Every stored property is confined to `eventLoop`; the driver calls in only through
/// `eventLoop.execute`/`submit`, hence `@unchecked Sendable`. Per call the runner itself takes
/// no lock and starts no task; the request body is a shared, pre-encoded `ByteBuffer`.
final class ConnectionRunner: @unchecked Sendable {
    /// A ModelStreamInfer stream and the call it carries.
    final class StreamSlot {
        var call: GRPCClientLoopCall?
        var intendedStart: UInt64 = 0
        /// The phase of the call it carries.
        var phase: UInt64 = 0
        var outstanding = false
        /// Half-closed at the end of a phase: carries no new calls.
        var retired = false
    }

    let connection: GRPCClientConnection
    let eventLoop: EventLoop
    private let loop: LoopRecorder
    private let path: String
    private let metadata: GRPCMetadata
    private let bodies: [ByteBuffer]
    private let streaming: Bool
    /// Plain HTTP/2 GETs of `path` instead of gRPC calls.
    private let rawHTTP2: Bool
    private let callTimeout: Duration?

    private var nextBody = 0
    /// Counts phases; a call that ends in a later phase than it started in (abandoned by a drain
    /// that timed out) is not recorded.
    private var phase: UInt64 = 0
    private var running = false
    private var plan = ConnectionPlan()
    private var pacer: OpenLoopPacer?
    private var budget: Int?
    private(set) var inFlight = 0
    private var timer: Scheduled<Void>?
    private var timerDeadline: UInt64 = .max
    private var idleStreams: [StreamSlot] = []
    private var openStreams: [ObjectIdentifier: StreamSlot] = [:]
    private var drained: EventLoopPromise<Void>?
    /// `issue` is on the stack: a call that ends now ended before it left.
    private var issuing = false
    private var endedWhileIssuing = false
    private var finished: EventLoopPromise<Void>?

    init(
        connection: GRPCClientConnection, loop: LoopRecorder, path: String, metadata: GRPCMetadata,
        bodies: [ByteBuffer], streaming: Bool, rawHTTP2: Bool = false, callTimeout: Duration?
    ) {
        precondition(!bodies.isEmpty)
        self.connection = connection
        self.eventLoop = connection.eventLoop
        self.loop = loop
        self.path = path
        self.metadata = metadata
        self.bodies = bodies
        self.streaming = streaming
        self.rawHTTP2 = rawHTTP2
        self.callTimeout = callTimeout
    }

    // MARK: Phases (on the event loop)

    /// Starts a phase. `finished` completes when a phase with a budget has started and ended
    /// all its calls (or the phase was stopped).
    func begin(_ plan: ConnectionPlan, finished: EventLoopPromise<Void>) {
        eventLoop.assertInEventLoop()
        self.plan = plan
        self.phase &+= 1
        self.inFlight = 0
        self.budget = plan.budget
        self.finished = finished
        self.running = true
        if let schedule = plan.schedule {
            pacer = OpenLoopPacer(schedule: schedule, startTime: plan.startTime, endTime: plan.endTime, maxInFlight: plan.maxInFlight)
        } else {
            pacer = nil
        }
        issue(now: NIODeadline.now().uptimeNanoseconds)
    }

    /// Stops starting calls; the future completes when the calls in flight have ended. Streams
    /// are half-closed, so the server ends them after its last answer.
    func stop() -> EventLoopFuture<Void> {
        eventLoop.assertInEventLoop()
        running = false
        timer?.cancel()
        timer = nil
        timerDeadline = .max
        finished?.succeed(())
        finished = nil
        for slot in openStreams.values where !slot.retired {
            slot.retired = true
            slot.call?.finish()
        }
        idleStreams.removeAll()
        if inFlight == 0 { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        drained = promise
        return promise.futureResult
    }

    /// Gives up on the calls still in flight (a drain that timed out): streams are cancelled,
    /// unary calls are left to end on their own and are not recorded, and the drain completes.
    func abandon() {
        eventLoop.assertInEventLoop()
        phase &+= 1
        inFlight = 0
        for slot in openStreams.values { slot.call?.cancel() }
        if let drained {
            self.drained = nil
            drained.succeed(())
        }
    }

    // MARK: Issuing calls

    private func issue(now: UInt64) {
        guard running, !issuing else { return }
        issuing = true
        endedWhileIssuing = false
        if pacer != nil {
            while budget != 0, !endedWhileIssuing, let intended = pacer!.startNext(now: now) {
                start(intendedStart: intended)
            }
        } else {
            while inFlight < plan.concurrency, budget != 0, !endedWhileIssuing {
                start(intendedStart: now)
            }
        }
        issuing = false
        if endedWhileIssuing {
            // A call failed before it left (the connection is closed or going away): try again
            // shortly instead of spinning; each try is counted with its status.
            retryLater()
        } else if let pacer {
            scheduleTimer(pacer)
        }
        checkBudgetSpent()
    }

    private func retryLater() {
        guard running, timer == nil else { return }
        timerDeadline = 0
        timer = eventLoop.scheduleTask(in: .milliseconds(10)) { [self] in
            timer = nil
            timerDeadline = .max
            issue(now: NIODeadline.now().uptimeNanoseconds)
        }
    }

    private func scheduleTimer(_ pacer: OpenLoopPacer) {
        guard running, budget != 0, pacer.hasMoreCalls, pacer.inFlight < pacer.maxInFlight else { return }
        let due = pacer.nextIntendedTime
        guard due < timerDeadline else { return }
        timer?.cancel()
        timerDeadline = due
        timer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(due)) { [self] in
            timer = nil
            timerDeadline = .max
            issue(now: NIODeadline.now().uptimeNanoseconds)
        }
    }

    private func start(intendedStart: UInt64) {
        if let remaining = budget { budget = remaining - 1 }
        inFlight += 1
        let body = bodies[nextBody]
        nextBody = nextBody + 1 == bodies.count ? 0 : nextBody + 1
        if streaming {
            let slot = idleStreams.popLast() ?? openStream()
            slot.outstanding = true
            slot.intendedStart = intendedStart
            slot.phase = phase
            if slot.call?.send(body) != true {
                slot.outstanding = false
                callEnded(intendedStart: intendedStart, phase: phase, statusCode: GRPCStatus.Code.unavailable.rawValue)
            }
        } else if rawHTTP2 {
            let phase = self.phase
            connection.startRequestOnEventLoop(path: path) { [self] status in
                // 200 is OK; another status is UNKNOWN, a reset or refused stream UNAVAILABLE.
                let code = status == 200 ? 0 : (status == nil ? GRPCStatus.Code.unavailable.rawValue : GRPCStatus.Code.unknown.rawValue)
                callEnded(intendedStart: intendedStart, phase: phase, statusCode: code)
            }
        } else {
            let phase = self.phase
            let call = connection.startCallOnEventLoop(
                path: path, metadata: metadata, timeout: callTimeout,
                onMessage: { _ in },
                onEnd: { [self] status in
                    callEnded(intendedStart: intendedStart, phase: phase, statusCode: status.code.rawValue)
                })
            call.send(body)
            call.finish()
        }
    }

    private func callEnded(intendedStart: UInt64, phase: UInt64, statusCode: Int) {
        guard phase == self.phase else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        loop.record(nanoseconds: now &- intendedStart, statusCode: statusCode, now: now)
        inFlight -= 1
        pacer?.callEnded()
        if issuing {
            endedWhileIssuing = true
        } else if running {
            issue(now: now)
        } else if inFlight == 0, let drained {
            self.drained = nil
            drained.succeed(())
        }
    }

    private func checkBudgetSpent() {
        if budget == 0, inFlight == 0, running {
            running = false
            finished?.succeed(())
            finished = nil
        }
    }

    // MARK: Streams

    private func openStream() -> StreamSlot {
        let slot = StreamSlot()
        let id = ObjectIdentifier(slot)
        openStreams[id] = slot
        slot.call = connection.startCallOnEventLoop(
            path: path, metadata: metadata, timeout: callTimeout,
            onMessage: { [self, unowned slot] message in streamAnswered(slot, message) },
            onEnd: { [self, unowned slot] status in streamEnded(slot, id: id, status: status) })
        return slot
    }

    private func streamAnswered(_ slot: StreamSlot, _ message: ByteBuffer) {
        // A decoupled model's further responses to the same request are not calls.
        guard slot.outstanding else { return }
        slot.outstanding = false
        if !slot.retired { idleStreams.append(slot) }
        callEnded(intendedStart: slot.intendedStart, phase: slot.phase, statusCode: Self.streamResponseStatus(message))
    }

    private func streamEnded(_ slot: StreamSlot, id: ObjectIdentifier, status: GRPCStatus) {
        openStreams[id] = nil
        slot.call = nil
        if let index = idleStreams.firstIndex(where: { $0 === slot }) { idleStreams.remove(at: index) }
        if slot.outstanding {
            slot.outstanding = false
            // A stream that ended OK without answering failed the call all the same.
            callEnded(intendedStart: slot.intendedStart, phase: slot.phase, statusCode: status.code == .ok ? GRPCStatus.Code.unknown.rawValue : status.code.rawValue)
        }
    }

    /// OK (0) for a ModelStreamInferResponse with an empty `error_message` (field 1), UNKNOWN (2)
    /// for one that carries an error: the stream's per-request failures, which the status of the
    /// stream does not show. Reads only the first field's tag and length.
    static func streamResponseStatus(_ message: ByteBuffer) -> Int {
        guard message.readableBytes >= 2, message.getInteger(at: message.readerIndex, as: UInt8.self) == 0x0A,
              let length = message.getInteger(at: message.readerIndex + 1, as: UInt8.self)
        else { return 0 }
        return length == 0 ? 0 : GRPCStatus.Code.unknown.rawValue
    }
}
