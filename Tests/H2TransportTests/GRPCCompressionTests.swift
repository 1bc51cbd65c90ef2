import NIOCore
import XCTest

@testable import H2Transport

/// Bytes that compress well: a repeated sentence, `count` bytes long.
func compressibleBytes(_ count: Int) -> [UInt8] {
    let sentence = Array("INPUT0 and INPUT1 are added into OUTPUT0; ".utf8)
    return (0..<count).map { sentence[$0 % sentence.count] }
}

func randomBytes(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

func compressed(_ bytes: [UInt8], _ algorithm: GRPCCompression.Algorithm) throws -> [UInt8] {
    var output = ByteBuffer()
    try GRPCCompression.Compressor(algorithm: algorithm).compress(ByteBuffer(bytes: bytes), into: &output)
    return Array(output.readableBytesView)
}

final class GRPCCompressionTests: XCTestCase {
    // Python 3: gzip.compress(b"hello, gRPC", mtime=0) and zlib.compress(b"hello, gRPC").
    let gzipHello: [UInt8] = [31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 203, 72, 205, 201, 201, 215, 81, 72, 15, 10, 112, 6, 0, 190, 96, 187, 219, 11, 0, 0, 0]
    let zlibHello: [UInt8] = [120, 156, 203, 72, 205, 201, 201, 215, 81, 72, 15, 10, 112, 6, 0, 23, 199, 3, 173]

    func testAlgorithmNames() {
        let table: [(String, GRPCCompression.Algorithm?)] = [
            ("identity", .identity), ("gzip", .gzip), ("deflate", .deflate), ("GZIP", .gzip), ("Deflate", .deflate),
            ("snappy", nil), ("br", nil), ("zstd", nil), ("", nil), ("gzip ", nil),
        ]
        for (name, algorithm) in table {
            XCTAssertEqual(GRPCCompression.Algorithm(name: name), algorithm, "'\(name)'")
        }
        XCTAssertEqual(GRPCCompression.Algorithm.all.map(\.name), ["identity", "deflate", "gzip"])
    }

    func testDecompressesWhatOtherImplementationsWrite() throws {
        for (algorithm, bytes) in [(GRPCCompression.Algorithm.gzip, gzipHello), (.deflate, zlibHello)] {
            let output = try GRPCCompression.Decompressor(algorithm: algorithm).decompress(ByteBuffer(bytes: bytes), limit: 100)
            XCTAssertEqual(String(buffer: output), "hello, gRPC", "\(algorithm)")
        }
    }

    func testWritesTheGzipAndZlibFormats() throws {
        XCTAssertEqual(Array(try compressed(Array("x".utf8), .gzip).prefix(3)), [0x1F, 0x8B, 0x08])
        XCTAssertEqual(try compressed(Array("x".utf8), .deflate).first, 0x78)
    }

    func testRoundTripsAtManySizesWithOneEnginePerDirection() throws {
        for algorithm in [GRPCCompression.Algorithm.gzip, .deflate] {
            let compressor = try GRPCCompression.Compressor(algorithm: algorithm)
            let decompressor = try GRPCCompression.Decompressor(algorithm: algorithm)
            for bytes in [[], [7], compressibleBytes(1000), randomBytes(5000), compressibleBytes(300_000)] {
                var wire = ByteBuffer()
                let written = try compressor.compress(ByteBuffer(bytes: bytes), into: &wire)
                XCTAssertEqual(written, wire.readableBytes)
                let output = try decompressor.decompress(wire, limit: bytes.count)
                XCTAssertEqual(Array(output.readableBytesView), bytes, "\(algorithm), \(bytes.count) bytes")
            }
        }
    }

    func testEachMessageIsCompressedWithAFreshContext() throws {
        let compressor = try GRPCCompression.Compressor(algorithm: .gzip)
        var first = ByteBuffer(), second = ByteBuffer()
        try compressor.compress(ByteBuffer(bytes: compressibleBytes(500)), into: &first)
        try compressor.compress(ByteBuffer(bytes: compressibleBytes(500)), into: &second)
        XCTAssertEqual(first, second)
    }

    func testCompressAppendsAfterExistingBytes() throws {
        var output = ByteBuffer(bytes: [1, 2, 3])
        let written = try GRPCCompression.Compressor(algorithm: .deflate).compress(ByteBuffer(bytes: compressibleBytes(100)), into: &output)
        XCTAssertEqual(output.readableBytes, 3 + written)
        XCTAssertEqual(Array(output.readableBytesView.prefix(3)), [1, 2, 3])
    }

    func testOutputLimitHoldsWhileInflating() throws {
        let bomb = try compressed([UInt8](repeating: 0, count: 10 << 20), .gzip)
        XCTAssertLessThan(bomb.count, 20_000)
        let gzip = try GRPCCompression.Decompressor(algorithm: .gzip)
        XCTAssertThrowsError(try gzip.decompress(ByteBuffer(bytes: bomb), limit: 1 << 20)) { error in
            let error = error as? GRPCCompression.ZlibError
            XCTAssertEqual(error?.kind, .outputLimitExceeded(limit: 1 << 20))
            XCTAssertEqual(error?.message, "decompressed message larger than max (more than 1048576 bytes)")
        }
        // Exactly at the limit is fine; one byte under is not.
        let exact = try compressed(compressibleBytes(4096), .deflate)
        XCTAssertEqual(try decompressor(.deflate).decompress(ByteBuffer(bytes: exact), limit: 4096).readableBytes, 4096)
        XCTAssertThrowsError(try decompressor(.deflate).decompress(ByteBuffer(bytes: exact), limit: 4095))
        // The engine is usable after a failure.
        XCTAssertEqual(String(buffer: try gzip.decompress(ByteBuffer(bytes: gzipHello), limit: 11)), "hello, gRPC")
    }

    func testBrokenInputIsReportedWithZlibsMessage() throws {
        let table: [(GRPCCompression.Algorithm, [UInt8], GRPCCompression.ZlibError.Kind, String)] = [
            (.gzip, Array(gzipHello.dropLast(4)), .truncatedInput, "gzip data ends before the compressed stream does"),
            (.gzip, [], .truncatedInput, "ends before"),
            (.gzip, gzipHello + [0], .trailingInput, "1 bytes follow the end of the gzip data"),
            (.gzip, zlibHello, .zlib(code: -3), "zlib inflate failed: incorrect header check"),
            (.deflate, gzipHello, .zlib(code: -3), "zlib inflate failed: incorrect header check"),
            (.deflate, Array(zlibHello.dropLast()) + [0], .zlib(code: -3), "zlib inflate failed: incorrect data check"),
            (.gzip, Array("hello".utf8), .zlib(code: -3), "incorrect header check"),
        ]
        for (algorithm, bytes, kind, message) in table {
            XCTAssertThrowsError(try decompressor(algorithm).decompress(ByteBuffer(bytes: bytes), limit: 1000)) { error in
                let error = error as? GRPCCompression.ZlibError
                XCTAssertEqual(error?.kind, kind, "\(bytes)")
                XCTAssertTrue(error?.message.contains(message) ?? false, error?.message ?? "")
            }
        }
    }

    func testIdentityHasNoEngine() {
        XCTAssertThrowsError(try GRPCCompression.Compressor(algorithm: .identity)) { error in
            XCTAssertEqual((error as? GRPCCompression.ZlibError)?.kind, .unsupportedAlgorithm)
        }
        XCTAssertThrowsError(try GRPCCompression.Decompressor(algorithm: .identity))
    }

    private func decompressor(_ algorithm: GRPCCompression.Algorithm) throws -> GRPCCompression.Decompressor {
        try GRPCCompression.Decompressor(algorithm: algorithm)
    }
}
