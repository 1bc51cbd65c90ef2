#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reuses the Strings of header names and values a connection receives again and again.
///
/// A client sends the same `:path`, `content-type`, `user-agent` and `grpc-accept-encoding` on
/// every call; HPACK already shrinks them on the wire, but each would become a new heap String
/// per call here (Swift keeps only strings of up to 15 UTF-8 bytes inline). The cache keeps the
/// last few such strings of one connection and hands out the same storage when the bytes match,
/// as grpc-core interns metadata.
///
/// Bounded work per header whatever a peer sends: at most `capacity` length checks and a
/// memcmp only for entries of the same length; strings above `maximumLength` are not cached.
struct HTTP2HeaderStringCache {
    static let capacity = 8
    static let maximumLength = 256

    private var entries: [String] = []
    private var next = 0

    /// The string for `bytes` (decoded as UTF-8, invalid sequences repaired).
    mutating func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        // Small strings are stored inline; caching gains nothing.
        guard bytes.count > 15, bytes.count <= Self.maximumLength, let base = bytes.baseAddress else {
            return String(decoding: bytes, as: UTF8.self)
        }
        for index in entries.indices where entries[index].utf8.count == bytes.count {
            let same = entries[index].utf8.withContiguousStorageIfAvailable { stored in
                memcmp(stored.baseAddress!, base, bytes.count) == 0
            }
            if same == true { return entries[index] }
        }
        let string = String(decoding: bytes, as: UTF8.self)
        if entries.count < Self.capacity {
            if entries.isEmpty { entries.reserveCapacity(Self.capacity) }
            entries.append(string)
        } else {
            entries[next] = string
            next = (next + 1) % Self.capacity
        }
        return string
    }
}
