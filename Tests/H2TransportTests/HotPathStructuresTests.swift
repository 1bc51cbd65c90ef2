import NIOCore
import XCTest

@testable import H2Transport

/// The small structures that keep a call's hot path free of allocations.
final class HotPathStructuresTests: XCTestCase {
    func testByteBufferQueueIsFIFOAcrossGrowthAndCompaction() {
        var queue = ByteBufferQueue()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertNil(queue.removeFirst())
        var expected: [UInt8] = []
        var next: UInt8 = 0
        // Interleave appends and removals so the overflow array is drained, compacted and reused.
        for round in 0..<200 {
            for _ in 0..<(round % 7) {
                queue.append(ByteBuffer(bytes: [next]))
                expected.append(next)
                next &+= 1
            }
            for _ in 0..<(round % 5) where !expected.isEmpty {
                XCTAssertEqual(queue.count, expected.count)
                XCTAssertEqual(queue.firstReadableBytes, 1)
                XCTAssertEqual(queue.removeFirst()?.getInteger(at: 0, as: UInt8.self), expected.removeFirst())
            }
        }
        while let value = expected.first {
            XCTAssertEqual(queue.removeFirst()?.getInteger(at: 0, as: UInt8.self), value)
            expected.removeFirst()
        }
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.count, 0)
    }

    func testByteBufferQueueMutatesTheFirstBufferInPlace() {
        var queue = ByteBufferQueue()
        queue.append(ByteBuffer(bytes: [1, 2, 3]))
        queue.append(ByteBuffer(bytes: [4]))
        XCTAssertEqual(queue.withFirst { $0.readInteger(as: UInt8.self) }, 1)
        XCTAssertEqual(queue.firstReadableBytes, 2)
        queue.removeAll()
        XCTAssertTrue(queue.isEmpty)
    }

    func testHeaderStringCacheHandsOutTheSameStorageForRepeatedValues() {
        var cache = HTTP2HeaderStringCache()
        let path = Array("/inference.GRPCInferenceService/ModelInfer".utf8)
        let first = path.withUnsafeBufferPointer { cache.string($0) }
        let second = path.withUnsafeBufferPointer { cache.string($0) }
        XCTAssertEqual(first, "/inference.GRPCInferenceService/ModelInfer")
        XCTAssertEqual(second, first)
        XCTAssertEqual(storageAddress(first), storageAddress(second), "a repeated value should reuse the cached string")
        // A different value of the same length is not mistaken for it.
        var other = path
        other[other.count - 1] = UInt8(ascii: "X")
        XCTAssertEqual(other.withUnsafeBufferPointer { cache.string($0) }, "/inference.GRPCInferenceService/ModelInfeX")
    }

    func testHeaderStringCacheIsBoundedAndRepairsInvalidUTF8() {
        var cache = HTTP2HeaderStringCache()
        // More distinct values than the cache holds: all still decode correctly.
        for index in 0..<(HTTP2HeaderStringCache.capacity * 3) {
            let value = "application/grpc+custom-\(index)"
            XCTAssertEqual(Array(value.utf8).withUnsafeBufferPointer { cache.string($0) }, value)
        }
        // Invalid UTF-8 is repaired (U+FFFD), as String(decoding:) does, and never matches the raw bytes.
        let invalid: [UInt8] = Array("content-type-with-".utf8) + [0xFF, 0xFE]
        let repaired = invalid.withUnsafeBufferPointer { cache.string($0) }
        XCTAssertEqual(repaired, String(decoding: invalid, as: UTF8.self))
        XCTAssertEqual(invalid.withUnsafeBufferPointer { cache.string($0) }, repaired)
        // Short strings and very long ones are decoded without caching.
        XCTAssertEqual(Array("te".utf8).withUnsafeBufferPointer { cache.string($0) }, "te")
        let long = String(repeating: "x", count: HTTP2HeaderStringCache.maximumLength + 1)
        XCTAssertEqual(Array(long.utf8).withUnsafeBufferPointer { cache.string($0) }, long)
    }

    func testPreparedHeaderBlocksAreRecognisedByIdentityNotContent() {
        let prepared = GRPCServerStreamStateMachine.preparedResponseHeaders
        XCTAssertTrue(HTTP2PreparedHeaderBlock.matching(prepared.fields) === prepared)
        // An equal list in other storage goes the ordinary way (it may differ next time).
        var copy = prepared.fields
        copy.append(("x", "y"))
        copy.removeLast()
        XCTAssertEqual(copy.map { "\($0.name): \($0.value)" }, prepared.fields.map { "\($0.name): \($0.value)" })
        XCTAssertNil(HTTP2PreparedHeaderBlock.matching(copy))
        XCTAssertNil(HTTP2PreparedHeaderBlock.matching([]))
        // The entries nghttp2 gets spell the fields exactly.
        let spelled: [String] = prepared.withNameValues { entries, count in
            (0..<count).map { index in
                let entry = entries[index]
                let name = String(decoding: UnsafeBufferPointer(start: entry.name, count: entry.namelen), as: UTF8.self)
                let value = String(decoding: UnsafeBufferPointer(start: entry.value, count: entry.valuelen), as: UTF8.self)
                return "\(name): \(value)"
            }
        }
        XCTAssertEqual(spelled, [":status: 200", "content-type: application/grpc", "grpc-accept-encoding: identity,deflate,gzip"])
    }

    private func storageAddress(_ string: String) -> UnsafeRawPointer? {
        string.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
    }
}
