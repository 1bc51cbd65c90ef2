import NIOCore
import XCTest

@testable import H2Transport

final class GRPCClientStreamStateMachineTests: XCTestCase {
    typealias Machine = GRPCClientStreamStateMachine

    private let okHeaders: GRPCHeaderFields = [(":status", "200"), ("content-type", "application/grpc")]
    private let okTrailers: GRPCHeaderFields = [("grpc-status", "0")]

    private func head(
        metadata: GRPCMetadata = GRPCMetadata(),
        timeout: Duration? = nil,
        compression: GRPCCompression.Algorithm? = nil
    ) -> Machine.RequestHead {
        Machine.RequestHead(
            path: "/pkg.Service/Method", scheme: "https", authority: "localhost:8443",
            metadata: metadata, timeout: timeout, compression: compression)
    }

    /// A machine whose request headers were sent and, when `ended`, whose request was ended.
    private func started(ended: Bool = true, configuration: Machine.Configuration = .init()) throws -> Machine {
        var machine = Machine(configuration: configuration)
        _ = try machine.sendHeaders(head())
        if ended { _ = try machine.sendEnd() }
        return machine
    }

    private func frame(_ bytes: [UInt8], compressed: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(compressed ? 1 : 0))
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
        return buffer
    }

    /// Drains the machine: the messages, then the outcome.
    private func drain(_ machine: inout Machine) -> (messages: [[UInt8]], end: Machine.InboundMessage?) {
        var messages: [[UInt8]] = []
        while true {
            switch machine.nextInboundMessage() {
            case .message(let message): messages.append(Array(buffer: message))
            case .awaitingMoreData: return (messages, nil)
            case let end: return (messages, end)
            }
        }
    }

    private func status(of end: Machine.InboundMessage?) -> (GRPCStatus, GRPCMetadata, HTTP2ErrorCode?)? {
        guard case .finished(let status, let trailers, let reset) = end else { return nil }
        return (status, trailers, reset)
    }

    // MARK: - Request

    func testRequestHeadersCarryTheProtocolFieldsThenTheMetadata() throws {
        var metadata = GRPCMetadata()
        metadata.add("authorization", "Bearer t")
        metadata.add("x-trace-bin", binary: [1, 2, 3])
        metadata.add("content-type", "text/plain")  // reserved: left out
        var machine = Machine()
        let headers = try machine.sendHeaders(head(metadata: metadata, timeout: .milliseconds(1500), compression: .gzip))
        let expected: GRPCHeaderFields = [
            (":method", "POST"), (":scheme", "https"), (":path", "/pkg.Service/Method"), (":authority", "localhost:8443"),
            ("te", "trailers"), ("content-type", "application/grpc"), ("grpc-timeout", "1500m"), ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "identity,deflate,gzip"), ("user-agent", "switchyard/0.1"),
            ("authorization", "Bearer t"), ("x-trace-bin", "AQID"),
        ]
        XCTAssertEqual(headers.map(\.name), expected.map(\.name))
        XCTAssertEqual(headers.map(\.value), expected.map(\.value))
    }

    func testRequestHeadersWithoutDeadlineOrCompressionLeaveThoseFieldsOut() throws {
        var machine = Machine()
        let names = try machine.sendHeaders(head(compression: .identity)).map(\.name)
        XCTAssertFalse(names.contains("grpc-timeout"))
        XCTAssertFalse(names.contains("grpc-encoding"))
    }

    func testRequestMessagesAreFramedAndCompressedWhenItPays() throws {
        var machine = Machine()
        _ = try machine.sendHeaders(head(compression: .gzip))
        XCTAssertEqual(try machine.sendMessage(ByteBuffer(bytes: [7, 8])), .framed)
        XCTAssertEqual(try machine.sendMessage(ByteBuffer(repeating: 0x41, count: 4096)), .framed)
        var bytes = try XCTUnwrap(machine.nextOutboundBytes())
        XCTAssertEqual(bytes.readBytes(length: 7), [0, 0, 0, 0, 2, 7, 8], "small: uncompressed")
        XCTAssertEqual(bytes.readInteger(as: UInt8.self), 1, "large: compressed")
        let length = try XCTUnwrap(bytes.readInteger(as: UInt32.self))
        XCTAssertEqual(Int(length), bytes.readableBytes)
        XCTAssertLessThan(length, 100)
        XCTAssertNil(machine.nextOutboundBytes())
    }

    func testAMessageOverTheSendLimitIsRefusedWithResourceExhausted() throws {
        var configuration = Machine.Configuration()
        configuration.maxSendMessageSize = 3
        var machine = try started(ended: false, configuration: configuration)
        guard case .refused(let status) = try machine.sendMessage(ByteBuffer(bytes: [1, 2, 3, 4])) else {
            return XCTFail("a 4-byte message passed a 3-byte limit")
        }
        XCTAssertEqual(status.code, .resourceExhausted)
    }

    func testTheApplicationsMisuseIsRefusedWithAReason() throws {
        let table: [(String, (inout Machine) throws -> Void, String)] = [
            ("message before headers", { _ = try $0.sendMessage(ByteBuffer()) }, "sendMessage refused (request idle, response awaiting headers): a message before the request headers"),
            ("end before headers", { _ = try $0.sendEnd() }, "sendEnd refused (request idle, response awaiting headers): no request headers were sent"),
            ("headers twice", { _ = try $0.sendHeaders(self.head()); _ = try $0.sendHeaders(self.head()) }, "the request headers were already sent"),
            ("message after end", { _ = try $0.sendHeaders(self.head()); _ = try $0.sendEnd(); _ = try $0.sendMessage(ByteBuffer()) }, "sendMessage refused (request closed, response awaiting headers): the request was already ended"),
            ("end twice", { _ = try $0.sendHeaders(self.head()); _ = try $0.sendEnd(); _ = try $0.sendEnd() }, "the request was already ended"),
            ("message after the call ended", { _ = try $0.sendHeaders(self.head()); _ = $0.cancel(with: GRPCStatus(code: .cancelled)); _ = try $0.sendMessage(ByteBuffer()) }, "the call is over"),
        ]
        for (name, steps, reason) in table {
            var machine = Machine()
            XCTAssertThrowsError(try steps(&machine), name) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(name): \(error)")
            }
        }
    }

    // MARK: - Response headers

    func testResponseHeaderBlocksMapToTheStatusTheSpecsSay() throws {
        // (name, header block, END_STREAM, expected: nil = response headers accepted, else code)
        let table: [(String, GRPCHeaderFields, Bool, GRPCStatus.Code?)] = [
            ("gRPC 200", okHeaders, false, nil),
            ("+proto subtype", [(":status", "200"), ("content-type", "application/grpc+proto")], false, nil),
            ("parameters", [(":status", "200"), ("content-type", "application/grpc; charset=utf-8")], false, nil),
            ("HTML", [(":status", "200"), ("content-type", "text/html")], false, .unknown),
            ("grpc-web", [(":status", "200"), ("content-type", "application/grpc-web")], false, .unknown),
            ("no content-type", [(":status", "200")], false, .unknown),
            ("400", [(":status", "400")], false, .internalError),
            ("401", [(":status", "401")], false, .unauthenticated),
            ("403", [(":status", "403")], false, .permissionDenied),
            ("404", [(":status", "404")], false, .unimplemented),
            ("429", [(":status", "429")], false, .unavailable),
            ("431", [(":status", "431")], true, .internalError),
            ("502", [(":status", "502")], false, .unavailable),
            ("503", [(":status", "503"), ("content-type", "text/plain")], true, .unavailable),
            ("504", [(":status", "504")], false, .unavailable),
            ("500", [(":status", "500")], false, .unknown),
            ("302", [(":status", "302")], true, .unknown),
            ("no :status", [("content-type", "application/grpc")], false, .internalError),
            ("200 ends without grpc-status", okHeaders, true, .unknown),
            ("Trailers-Only", okHeaders + [("grpc-status", "5"), ("grpc-message", "model%20not%20found")], true, .notFound),
            ("415 that says its gRPC status", [(":status", "415"), ("grpc-status", "13"), ("grpc-message", "x")], true, .internalError),
            ("503 that says UNAVAILABLE", [(":status", "503"), ("grpc-status", "14")], true, .unavailable),
            ("unknown grpc-encoding", okHeaders + [("grpc-encoding", "snappy")], false, .internalError),
            ("two grpc-encodings", okHeaders + [("grpc-encoding", "gzip"), ("grpc-encoding", "gzip")], false, .internalError),
            ("broken binary metadata", okHeaders + [("x-bin", "!!!")], false, .internalError),
        ]
        for (name, headers, endStream, expected) in table {
            var machine = try started()
            let action = machine.receiveHeaders(headers, endStream: endStream)
            guard let expected else {
                guard case .responseHeaders = action else { XCTFail("\(name): \(action)"); continue }
                XCTAssertFalse(machine.hasResponseEnded, name)
                continue
            }
            XCTAssertEqual(action, .responseEnded, name)
            let end = status(of: drain(&machine).end)
            XCTAssertEqual(end?.0.code, expected, "\(name): \(String(describing: end?.0))")
            // A response that did not end the stream is reset: the client stops listening.
            XCTAssertEqual(end?.2, endStream ? nil : .cancel, name)
        }
    }

    func testTrailersOnlyCarriesTheDecodedMessageAndItsMetadataAsTrailers() throws {
        var machine = try started()
        let block = okHeaders + [
            ("grpc-status", "8"), ("grpc-message", "queue full: 100%25 %E2%80%94 retry %zz"), ("retry-after", "2"), ("d-bin", "AQI"),
        ]
        XCTAssertEqual(machine.receiveHeaders(block, endStream: true), .responseEnded)
        let end = try XCTUnwrap(status(of: drain(&machine).end))
        XCTAssertEqual(end.0, GRPCStatus(code: .resourceExhausted, message: "queue full: 100% — retry %zz"))
        XCTAssertEqual(end.1.firstString(named: "retry-after"), "2")
        XCTAssertEqual(end.1.firstBinary(named: "d-bin"), [1, 2])
        XCTAssertNil(end.1.firstString(named: "grpc-status"))
        XCTAssertTrue(machine.isFinished)
    }

    func testInformationalHeadersAreSkipped() throws {
        var machine = try started()
        XCTAssertEqual(machine.receiveHeaders([(":status", "100")], endStream: false), .ignored)
        var metadata = GRPCMetadata()
        metadata.add("x-a", "1")
        XCTAssertEqual(machine.receiveHeaders(okHeaders + [("x-a", "1")], endStream: false), .responseHeaders(metadata))
    }

    // MARK: - Messages and trailers

    func testMessagesSplitAnywhereComeOutWholeThenTheStatus() throws {
        var wire = frame([1, 2, 3])
        wire.writeImmutableBuffer(frame([]))
        wire.writeImmutableBuffer(frame(Array(repeating: 9, count: 300)))
        let bytes = Array(buffer: wire)
        for split in 0...bytes.count {
            var machine = try started()
            _ = machine.receiveHeaders(okHeaders, endStream: false)
            machine.receiveMessageBytes(ByteBuffer(bytes: bytes[..<split]))
            var messages = drain(&machine).messages
            machine.receiveMessageBytes(ByteBuffer(bytes: bytes[split...]))
            messages += drain(&machine).messages
            XCTAssertEqual(machine.receiveHeaders(okTrailers, endStream: true), .responseEnded)
            let (rest, end) = drain(&machine)
            messages += rest
            XCTAssertEqual(messages, [[1, 2, 3], [], Array(repeating: 9, count: 300)], "split at \(split)")
            XCTAssertEqual(status(of: end)?.0, .ok, "split at \(split)")
            XCTAssertNil(status(of: end)?.2)
        }
    }

    func testTrailersMapToTheirStatus() throws {
        let table: [(String, GRPCHeaderFields, GRPCStatus)] = [
            ("OK", [("grpc-status", "0")], .ok),
            ("with message", [("grpc-status", "16"), ("grpc-message", "bad%20key")], GRPCStatus(code: .unauthenticated, message: "bad key")),
            ("unknown number", [("grpc-status", "99")], GRPCStatus(code: .unknown)),
            ("missing", [("x-other", "1")], GRPCStatus(code: .unknown, message: "the server's trailers carry no grpc-status")),
            ("not a number", [("grpc-status", "abc")], GRPCStatus(code: .internalError, message: "malformed grpc-status 'abc'")),
            ("leading zero", [("grpc-status", "05")], GRPCStatus(code: .internalError, message: "malformed grpc-status '05'")),
            ("two", [("grpc-status", "0"), ("grpc-status", "1")], GRPCStatus(code: .internalError, message: "malformed grpc-status '0, 1'")),
            ("broken binary trailer", [("grpc-status", "0"), ("x-bin", "@@")], GRPCStatus(code: .internalError, message: "malformed binary metadata in 'x-bin': the value is not base64")),
        ]
        for (name, trailers, expected) in table {
            var machine = try started()
            _ = machine.receiveHeaders(okHeaders, endStream: false)
            machine.receiveMessageBytes(frame([5]))
            XCTAssertEqual(machine.receiveHeaders(trailers, endStream: true), .responseEnded, name)
            let (messages, end) = drain(&machine)
            XCTAssertEqual(messages, [[5]], "\(name): messages before the trailers are delivered")
            XCTAssertEqual(status(of: end)?.0, expected, name)
        }
    }

    func testCustomTrailersComeWithTheStatus() throws {
        var machine = try started()
        _ = machine.receiveHeaders(okHeaders, endStream: false)
        let trailers: GRPCHeaderFields = [("grpc-status", "0"), ("x-cost", "3"), ("x-cost", "4"), ("t-bin", "/w")]
        _ = machine.receiveHeaders(trailers, endStream: true)
        let received = try XCTUnwrap(status(of: drain(&machine).end)?.1)
        XCTAssertEqual(received.values(named: "x-cost"), [.string("3"), .string("4")])
        XCTAssertEqual(received.firstBinary(named: "t-bin"), [0xFF])
    }

    func testCompressedResponsesAreInflatedAndBoundedByTheReceiveLimit() throws {
        let original = [UInt8](repeating: 0x61, count: 10_000)
        let compressor = try GRPCCompression.Compressor(algorithm: .gzip)
        var compressed = ByteBuffer()
        _ = try compressor.compress(ByteBuffer(bytes: original), into: &compressed)

        var machine = try started()
        _ = machine.receiveHeaders(okHeaders + [("grpc-encoding", "gzip")], endStream: false)
        machine.receiveMessageBytes(frame(Array(buffer: compressed), compressed: true))
        XCTAssertEqual(drain(&machine).messages, [original])

        var small = Machine.Configuration()
        small.maxReceiveMessageSize = 1_000
        var limited = try started(configuration: small)
        _ = limited.receiveHeaders(okHeaders + [("grpc-encoding", "gzip")], endStream: false)
        limited.receiveMessageBytes(frame(Array(buffer: compressed), compressed: true))
        let end = try XCTUnwrap(status(of: drain(&limited).end))
        XCTAssertEqual(end.0.code, .resourceExhausted)
        XCTAssertEqual(end.2, .cancel, "the client stops the stream")
    }

    func testBrokenResponseStreamsFailTheCall() throws {
        let table: [(String, (inout Machine) -> Void, GRPCStatus.Code, HTTP2ErrorCode?)] = [
            ("message over the limit", { $0.receiveMessageBytes(ByteBuffer(bytes: [0, 0, 0x10, 0, 1])) }, .resourceExhausted, .cancel),
            ("compressed flag without encoding", { $0.receiveMessageBytes(self.frame([1], compressed: true)) }, .internalError, .cancel),
            ("bad flag", { $0.receiveMessageBytes(ByteBuffer(bytes: [7, 0, 0, 0, 0])) }, .internalError, .cancel),
            ("trailers inside a message", { $0.receiveMessageBytes(ByteBuffer(bytes: [0, 0, 0, 0, 9, 1])); _ = $0.receiveHeaders(self.okTrailers, endStream: true) }, .internalError, nil),
            ("END_STREAM without trailers", { $0.receiveMessageBytes(self.frame([1])); $0.receiveEnd() }, .internalError, nil),
        ]
        var configuration = Machine.Configuration()
        configuration.maxReceiveMessageSize = 1024
        for (name, events, code, reset) in table {
            var machine = try started(configuration: configuration)
            _ = machine.receiveHeaders(okHeaders, endStream: false)
            events(&machine)
            let end = status(of: drain(&machine).end)
            XCTAssertEqual(end?.0.code, code, "\(name): \(String(describing: end?.0))")
            XCTAssertEqual(end?.2, reset, name)
        }
    }

    func testAServerErrorStatusIsKeptWhenATruncatedMessageIsLeft() throws {
        var machine = try started()
        _ = machine.receiveHeaders(okHeaders, endStream: false)
        machine.receiveMessageBytes(ByteBuffer(bytes: [0, 0, 0, 0, 9, 1]))
        let trailers: GRPCHeaderFields = [("grpc-status", "14"), ("grpc-message", "worker died")]
        _ = machine.receiveHeaders(trailers, endStream: true)
        XCTAssertEqual(status(of: drain(&machine).end)?.0, GRPCStatus(code: .unavailable, message: "worker died"))
    }

    // MARK: - Resets, cancellation, early closure

    func testStreamResetsMapThroughTheProtocolTable() throws {
        let table: [(HTTP2ErrorCode, GRPCStatus.Code)] = [
            (.noError, .internalError), (.protocolError, .internalError), (.internalError, .internalError),
            (.flowControlError, .internalError), (.refusedStream, .unavailable), (.cancel, .cancelled),
            (.compressionError, .internalError), (.enhanceYourCalm, .resourceExhausted), (.inadequateSecurity, .permissionDenied),
        ]
        for (code, expected) in table {
            for afterHeaders in [false, true] {
                var machine = try started(ended: false)
                if afterHeaders { _ = machine.receiveHeaders(okHeaders, endStream: false) }
                XCTAssertTrue(machine.receiveReset(code))
                let end = status(of: drain(&machine).end)
                XCTAssertEqual(end?.0.code, expected, "\(code)")
                XCTAssertNil(end?.2, "a reset stream needs no reset of ours")
            }
        }
    }

    func testAResetAfterTheTrailersChangesNothing() throws {
        var machine = try started(ended: false)
        _ = machine.receiveHeaders(okHeaders, endStream: false)
        machine.receiveMessageBytes(frame([4, 2]))
        _ = machine.receiveHeaders(okTrailers, endStream: true)
        XCTAssertFalse(machine.receiveReset(.noError), "Early Server Closure: RST_STREAM NO_ERROR after the trailers")
        let (messages, end) = drain(&machine)
        XCTAssertEqual(messages, [[4, 2]])
        XCTAssertEqual(status(of: end)?.0, .ok)
        XCTAssertNil(status(of: end)?.2)
    }

    func testTrailersBeforeTheRequestEndedAskForAResetWithNoError() throws {
        var open = try started(ended: false)
        _ = open.receiveHeaders(okHeaders, endStream: false)
        _ = open.receiveHeaders(okTrailers, endStream: true)
        XCTAssertEqual(status(of: drain(&open).end)?.2, .noError)
        XCTAssertNil(status(of: open.nextInboundMessage())?.2, "the reset is asked for once")

        var trailersOnly = try started(ended: false)
        _ = trailersOnly.receiveHeaders(okHeaders + [("grpc-status", "7")], endStream: true)
        XCTAssertEqual(status(of: drain(&trailersOnly).end)?.2, .noError)

        var closed = try started(ended: true)
        _ = closed.receiveHeaders(okHeaders, endStream: false)
        _ = closed.receiveHeaders(okTrailers, endStream: true)
        XCTAssertNil(status(of: drain(&closed).end)?.2)

        var endsLater = try started(ended: false)
        _ = endsLater.receiveHeaders(okHeaders, endStream: false)
        _ = endsLater.receiveHeaders(okTrailers, endStream: true)
        _ = try endsLater.sendEnd()
        XCTAssertNil(status(of: drain(&endsLater).end)?.2, "our END_STREAM closed the stream instead")
    }

    func testCancelEndsTheCallAndResetsOnlyAnOpenStream() throws {
        let deadline = GRPCStatus(code: .deadlineExceeded, message: "late")
        var idle = Machine()
        XCTAssertNil(idle.cancel(with: deadline), "nothing was sent: nothing to reset")
        XCTAssertEqual(status(of: idle.nextInboundMessage())?.0, deadline)
        XCTAssertThrowsError(try idle.sendHeaders(head()))

        var waiting = try started()
        XCTAssertEqual(waiting.cancel(with: deadline), .cancel)
        XCTAssertEqual(status(of: waiting.nextInboundMessage())?.0, deadline)
        XCTAssertNil(status(of: waiting.nextInboundMessage())?.2, "the reset was returned by cancel")

        var draining = try started()
        _ = draining.receiveHeaders(okHeaders, endStream: false)
        draining.receiveMessageBytes(frame([1]))
        _ = draining.receiveHeaders(okTrailers, endStream: true)
        XCTAssertNil(draining.cancel(with: deadline), "both sides ended: no reset")
        XCTAssertEqual(drain(&draining).messages, [], "undelivered messages are dropped")

        var finished = try started()
        _ = finished.receiveHeaders(okHeaders + [("grpc-status", "0")], endStream: true)
        _ = drain(&finished)
        XCTAssertNil(finished.cancel(with: deadline), "over already")
        XCTAssertEqual(status(of: finished.nextInboundMessage())?.0, .ok)
    }

    func testDataBeforeHeadersAndBlocksAfterTheEndAreHandled() throws {
        var early = try started()
        early.receiveMessageBytes(frame([1]))
        XCTAssertEqual(status(of: early.nextInboundMessage())?.0.code, .internalError)

        var late = try started()
        _ = late.receiveHeaders(okHeaders + [("grpc-status", "0")], endStream: true)
        XCTAssertEqual(late.receiveHeaders(okHeaders, endStream: true), .ignored)
        late.receiveMessageBytes(frame([1]))
        late.receiveEnd()
        XCTAssertEqual(status(of: drain(&late).end)?.0, .ok)
    }
}
