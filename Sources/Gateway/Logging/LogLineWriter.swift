import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Writes log lines to a file descriptor (stderr by default) from a thread of its own, so that a
/// thread that logs — an event loop serving calls — never waits for the terminal, a pipe or a
/// disk.
///
/// Bounded: at most `capacity` lines wait; when the writer falls behind, new lines are dropped
/// and counted (`droppedLines`) instead of queued without bound. Thread-safe.
public final class LogLineWriter: Sendable {
    private struct State {
        /// Entries of one line, or of several lines joined by newlines (`write(batch:lines:)`).
        var lines = CircularBuffer<String>()
        /// Lines in `lines`.
        var waiting = 0
        var dropped = 0
        var stopping = false
    }

    /// Lines waiting at most; more are dropped.
    public let capacity: Int
    private let descriptor: CInt
    // Condition value 1: there is something to do (lines, or stopping); 0: nothing.
    private let state: NIOLockedValueBox<State>
    private let wakeUp = ConditionLock(value: 0)
    private let finished = ConditionLock(value: 0)

    /// Starts the writing thread. `descriptor` stays open (the writer does not own it).
    public init(descriptor: CInt = 2, capacity: Int = 8192) {
        self.descriptor = descriptor
        self.capacity = max(1, capacity)
        self.state = NIOLockedValueBox(State())
        let thread = WriterThread(writer: self)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        var handle = pthread_t()
        let box = Unmanaged.passRetained(thread).toOpaque()
        pthread_create(&handle, &attributes, { argument in
            let thread = Unmanaged<WriterThread>.fromOpaque(argument!).takeRetainedValue()
            thread.writer.run()
            return nil
        }, box)
        pthread_detach(handle)
        pthread_attr_destroy(&attributes)
    }

    /// Hands `line` (without its newline) to the writer; never blocks on I/O. Drops it when
    /// `capacity` lines already wait.
    public func write(_ line: String) {
        write(batch: line, lines: 1)
    }

    /// Hands `lines` lines joined by newlines (without the last newline) to the writer, all or
    /// none: dropped (and counted) when they do not fit under `capacity`. One lock for all.
    public func write(batch: String, lines: Int) {
        let accepted = state.withLockedValue { state -> Bool in
            guard !state.stopping else { return false }
            guard state.waiting + lines <= capacity else {
                state.dropped += lines
                return false
            }
            state.lines.append(batch)
            state.waiting += lines
            return true
        }
        if accepted {
            wakeUp.lock()
            wakeUp.unlock(withValue: 1)
        }
    }

    /// Lines dropped so far because the writer had fallen behind.
    public var droppedLines: Int { state.withLockedValue { $0.dropped } }

    /// Writes what waits, then stops the thread; later lines are dropped. Returns once written.
    public func shutdown() {
        state.withLockedValue { $0.stopping = true }
        wakeUp.lock()
        wakeUp.unlock(withValue: 1)
        finished.lock(whenValue: 1)
        finished.unlock()
    }

    private func run() {
        var batch: [String] = []
        while true {
            wakeUp.lock(whenValue: 1)
            wakeUp.unlock(withValue: 0)
            let stopping = state.withLockedValue { state -> Bool in
                batch.append(contentsOf: state.lines)
                state.lines.removeAll(keepingCapacity: true)
                state.waiting = 0
                return state.stopping
            }
            if !batch.isEmpty {
                var text = batch.joined(separator: "\n")
                text.append("\n")
                writeAll(text)
                batch.removeAll(keepingCapacity: true)
            }
            if stopping && state.withLockedValue({ $0.lines.isEmpty }) { break }
        }
        finished.lock()
        finished.unlock(withValue: 1)
    }

    private func writeAll(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // nowhere to report it: the log itself is what failed
                }
                offset += written
            }
        }
    }
}

/// Carries the writer into its thread.
private final class WriterThread {
    let writer: LogLineWriter
    init(writer: LogLineWriter) { self.writer = writer }
}
