/// The open-loop state of one connection: which call starts next and when it was *meant* to
/// start.
///
/// Calls are due at the times its `ArrivalSchedule` says, whatever happens to earlier calls.
/// When the connection already has `maxInFlight` calls outstanding (or the driver's event loop
/// was late), a due call waits, but it keeps its intended time: the driver measures latency from
/// that time, so a stall shows up as the queueing it causes for every call scheduled during it
/// instead of as one slow call (coordinated omission, Gil Tene's term). The pending calls need no
/// queue: they are the schedule's times not yet handed out.
///
/// A value type on the connection's event loop; times are monotonic nanoseconds
/// (`NIODeadline.uptimeNanoseconds`). No allocation.
public struct OpenLoopPacer: Sendable {
    private var schedule: ArrivalSchedule
    /// The intended start of the next call not yet handed out.
    public private(set) var nextIntendedTime: UInt64
    /// Calls are not handed out for times at or after this one.
    public let endTime: UInt64
    /// Most calls outstanding at once.
    public let maxInFlight: Int
    /// Calls handed out and not yet ended.
    public private(set) var inFlight = 0

    /// A pacer whose first call is due at `startTime`, handing out calls due before `endTime`.
    public init(schedule: ArrivalSchedule, startTime: UInt64, endTime: UInt64, maxInFlight: Int) {
        precondition(maxInFlight > 0)
        self.schedule = schedule
        self.nextIntendedTime = startTime
        self.endTime = endTime
        self.maxInFlight = maxInFlight
    }

    /// The intended start time of a call that should start now, or nil when none is due at `now`,
    /// the in-flight limit is reached, or the schedule has passed its end. Call it until nil.
    public mutating func startNext(now: UInt64) -> UInt64? {
        guard inFlight < maxInFlight, nextIntendedTime <= now, nextIntendedTime < endTime else { return nil }
        let intended = nextIntendedTime
        nextIntendedTime &+= schedule.nextGap()
        inFlight += 1
        return intended
    }

    /// One handed-out call has ended.
    public mutating func callEnded() {
        inFlight -= 1
    }

    /// Whether calls remain to be handed out (the schedule has not reached its end).
    public var hasMoreCalls: Bool { nextIntendedTime < endTime }

    /// Whether a call was due by `now` but waits for the in-flight limit.
    public func isWaitingForInFlightLimit(now: UInt64) -> Bool { inFlight >= maxInFlight && nextIntendedTime <= now }
}
