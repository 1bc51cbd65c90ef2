#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WorkerProtocol {
    /// Nanoseconds since the Unix epoch, now: the clock of the protocol's Unix-time fields
    /// (`InferRequest.deadline_unix_nanos`, `Ping.sent_unix_nanos`), which both the gateway and
    /// the worker read.
    public static func unixTimeNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
