import NIOCore

/// A FIFO of byte buffers that keeps its first element inline, so a stream that never holds
/// more than one buffer at a time (every small call) allocates nothing for its queue.
/// Further elements go to an array that is compacted as it drains.
struct ByteBufferQueue {
    private var head: ByteBuffer?
    private var rest: [ByteBuffer] = []
    private var restStart = 0

    var isEmpty: Bool { head == nil }

    /// The number of buffers queued.
    var count: Int { head == nil ? 0 : 1 + rest.count - restStart }

    mutating func append(_ buffer: ByteBuffer) {
        if head == nil {
            head = buffer
        } else {
            rest.append(buffer)
        }
    }

    /// The readable bytes of the first buffer (0 when empty), without copying it out.
    var firstReadableBytes: Int { head?.readableBytes ?? 0 }

    /// Runs `body` on the first buffer in place (no copy-on-write). The queue must not be empty.
    mutating func withFirst<T>(_ body: (inout ByteBuffer) throws -> T) rethrows -> T {
        precondition(head != nil, "withFirst on an empty ByteBufferQueue")
        return try body(&head!)
    }

    /// The size of the storage behind the buffer at `index` (0 is the first), which a slice
    /// keeps alive whatever its own length.
    func storageCapacity(at index: Int) -> Int {
        index == 0 ? head?.storageCapacity ?? 0 : rest[restStart + index - 1].storageCapacity
    }

    /// Drops the first buffer.
    @discardableResult
    mutating func removeFirst() -> ByteBuffer? {
        let removed = head
        if restStart < rest.count {
            head = rest[restStart]
            restStart += 1
            if restStart == rest.count {
                rest.removeAll(keepingCapacity: true)
                restStart = 0
            } else if restStart >= 32 && restStart * 2 >= rest.count {
                rest.removeFirst(restStart)
                restStart = 0
            }
        } else {
            head = nil
        }
        return removed
    }

    mutating func removeAll() {
        head = nil
        rest.removeAll()
        restStart = 0
    }
}
