import InferenceProtocol
import NIOCore
import NIOEmbedded
import XCTest

/// The frame decoder (InferenceProtocol's, which the worker uses) on a channel, fed byte by byte and
/// with bad lengths.
final class WorkerFrameDecoderTests: XCTestCase {
    private func frames() -> [WorkerFrame] {
        var ping = WorkerProtocol.Ping()
        ping.nonce = 77
        return [
            WorkerFrame(kind: .ping, requestID: 0, message: ping),
            WorkerFrame(kind: .inferRequest, requestID: 5, payload: ByteBuffer(string: String(repeating: "p", count: 300))),
            WorkerFrame(kind: .cancel, requestID: 5, payload: ByteBuffer()),
            WorkerFrame(kind: .init(rawValue: 200), requestID: .max, payload: ByteBuffer(string: "future")),
        ]
    }

    func testFramesSplitAtEveryByteAreReassembled() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WorkerFrameDecoder()))
        var bytes = ByteBuffer()
        for frame in frames() { frame.write(to: &bytes) }
        while let byte = bytes.readSlice(length: 1) {
            try channel.writeInbound(byte)
        }
        for expected in frames() {
            XCTAssertEqual(try channel.readInbound(as: WorkerFrame.self), expected)
        }
        XCTAssertNil(try channel.readInbound(as: WorkerFrame.self))
        XCTAssertTrue(try channel.finish().isClean)
    }

    func testAllFramesInOneReadAreDelivered() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WorkerFrameDecoder()))
        var bytes = ByteBuffer()
        for frame in frames() { frame.write(to: &bytes) }
        try channel.writeInbound(bytes)
        for expected in frames() {
            XCTAssertEqual(try channel.readInbound(as: WorkerFrame.self), expected)
        }
        _ = try channel.finish()
    }

    func testAnOversizedLengthIsAFramingErrorBeforeTheBodyArrives() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WorkerFrameDecoder(maxFrameSize: 1024)))
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(1025), endianness: .big)
        XCTAssertThrowsError(try channel.writeInbound(bytes)) { error in
            XCTAssertTrue(error is WorkerFrame.FramingError, "\(error)")
            XCTAssertTrue("\(error)".contains("exceeds the limit of 1024 bytes"), "\(error)")
        }
        _ = try? channel.finish()
    }

    func testALengthShorterThanTheHeaderIsAFramingError() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WorkerFrameDecoder()))
        XCTAssertThrowsError(try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 3, 1, 2, 3]))) { error in
            XCTAssertTrue(error is WorkerFrame.FramingError, "\(error)")
        }
        _ = try? channel.finish()
    }

    func testTheEncoderWritesWhatTheDecoderReads() throws {
        let channel = EmbeddedChannel(handlers: [ByteToMessageHandler(WorkerFrameDecoder()), MessageToByteHandler(WorkerFrameEncoder())])
        for frame in frames() { try channel.writeOutbound(frame) }
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) {
            try channel.writeInbound(bytes)
        }
        for expected in frames() {
            XCTAssertEqual(try channel.readInbound(as: WorkerFrame.self), expected)
        }
        _ = try channel.finish()
    }
}
