import NIOCore
import XCTest

@testable import H2Transport

final class GRPCServerStreamStateMachineTests: XCTestCase {
    typealias Machine = GRPCServerStreamStateMachine
    let now = NIODeadline.uptimeNanoseconds(5_000)

    /// One event of a call, for tables of sequences.
    enum Event: CustomStringConvertible {
        case headers(endStream: Bool)
        case data([UInt8])
        case end
        case reset
        case sendHeaders
        case sendMessage
        case sendStatus

        var description: String {
            switch self {
            case .headers(let endStream): return endStream ? "headers+END" : "headers"
            case .data: return "data"
            case .end: return "end"
            case .reset: return "reset"
            case .sendHeaders: return "sendHeaders"
            case .sendMessage: return "sendMessage"
            case .sendStatus: return "sendStatus"
            }
        }
    }

    /// Applies `event`; throws the machine's refusal.
    func apply(_ event: Event, to machine: inout Machine) throws {
        switch event {
        case .headers(let endStream):
            guard case .accept = try machine.receiveHeaders(requestHeaders(), endStream: endStream, receivedAt: now) else {
                throw GRPCStatus(code: .internalError, message: "test headers were rejected")
            }
        case .data(let bytes): try machine.receiveMessageBytes(ByteBuffer(bytes: bytes))
        case .end: try machine.receiveEnd()
        case .reset: _ = machine.receiveReset(errorCode: 0x8)
        case .sendHeaders: _ = try machine.sendHeaders()
        case .sendMessage: _ = try machine.sendMessage(ByteBuffer(bytes: [1, 2, 3]))
        case .sendStatus: _ = try machine.sendStatus(.ok)
        }
    }

    func machine(after events: [Event], configuration: Machine.Configuration = .init()) throws -> Machine {
        var machine = Machine(configuration: configuration)
        for event in events { try apply(event, to: &machine) }
        return machine
    }

    // MARK: - Orders

    func testIllegalOrdersAreRefusedWithAReason() throws {
        let table: [([Event], Event, String)] = [
            ([], .data([0]), "receiveMessageBytes refused (request idle, response idle): DATA before the request headers"),
            ([], .end, "receiveEnd refused (request idle, response idle): END_STREAM before the request headers"),
            ([], .sendHeaders, "sendHeaders refused (request idle, response idle): no request headers have arrived"),
            ([], .sendMessage, "sendMessage refused (request idle, response idle): no request headers have arrived"),
            ([], .sendStatus, "sendStatus refused (request idle, response idle): no request headers have arrived"),
            ([.headers(endStream: false)], .headers(endStream: false), "a second header block: gRPC requests carry no trailers"),
            ([.headers(endStream: true)], .headers(endStream: true), "(request closed, response idle): a second header block: gRPC requests carry no trailers"),
            ([.headers(endStream: false)], .sendMessage, "sendMessage refused (request open, response idle): a message before the response headers"),
            ([.headers(endStream: true)], .data([0]), "receiveMessageBytes refused (request closed, response idle): DATA after the request's END_STREAM"),
            ([.headers(endStream: false), .end], .data([0]), "DATA after the request's END_STREAM"),
            ([.headers(endStream: false), .end], .end, "receiveEnd refused (request closed, response idle): a second END_STREAM"),
            ([.headers(endStream: false), .sendHeaders], .sendHeaders, "sendHeaders refused (request open, response open): response headers were already sent"),
            ([.headers(endStream: false), .sendStatus], .sendStatus, "sendStatus refused (request open, response closed): the status was already sent"),
            ([.headers(endStream: false), .sendHeaders, .sendStatus], .sendMessage, "the status was already sent"),
            ([.headers(endStream: false), .sendStatus], .sendHeaders, "the status was already sent"),
            ([.headers(endStream: false), .reset], .data([0]), "receiveMessageBytes refused (stream reset): the stream was reset"),
            ([.headers(endStream: false), .reset], .end, "the stream was reset"),
            ([.headers(endStream: false), .reset], .sendHeaders, "the stream was reset"),
            ([.headers(endStream: false), .reset], .sendMessage, "the stream was reset"),
            ([.headers(endStream: false), .reset], .sendStatus, "the stream was reset"),
            ([.reset], .headers(endStream: false), "receiveHeaders refused (stream reset): the stream was reset"),
        ]
        for (setup, event, reason) in table {
            var machine = try machine(after: setup)
            XCTAssertThrowsError(try apply(event, to: &machine), "\(setup) then \(event)") { error in
                guard let refusal = error as? Machine.InvalidTransition else {
                    return XCTFail("\(setup) then \(event): \(error)")
                }
                XCTAssertTrue(refusal.description.hasSuffix(reason), "\(setup) then \(event): '\(refusal)'")
            }
        }
    }

    func testLegalOrdersAreAccepted() throws {
        let table: [[Event]] = [
            [.headers(endStream: true), .sendHeaders, .sendMessage, .sendStatus],
            [.headers(endStream: true), .sendStatus],
            [.headers(endStream: false), .data(framed([1])), .data([]), .end, .sendHeaders, .sendMessage, .sendMessage, .sendStatus],
            [.headers(endStream: false), .sendHeaders, .data(framed([1])), .sendMessage, .data(framed([2])), .sendMessage, .end, .sendStatus],
            // The server may finish before the client: later request DATA and END_STREAM are fine.
            [.headers(endStream: false), .sendStatus, .data(framed([1])), .end],
            [.headers(endStream: false), .data([0, 0]), .reset],
            [.headers(endStream: false), .sendStatus, .reset],
        ]
        for events in table {
            XCTAssertNoThrow(try machine(after: events), "\(events)")
        }
    }

    func testARefusedEventLeavesTheStateAsItWas() throws {
        var machine = try machine(after: [.headers(endStream: false)])
        XCTAssertThrowsError(try apply(.sendMessage, to: &machine))
        XCTAssertThrowsError(try apply(.headers(endStream: false), to: &machine))
        XCTAssertNoThrow(try apply(.sendHeaders, to: &machine))
        XCTAssertNoThrow(try apply(.sendMessage, to: &machine))
    }

    // MARK: - A whole call

    func testAUnaryCallFromHeadersToTrailers() throws {
        var machine = Machine()
        guard case .accept(let head) = try machine.receiveHeaders(requestHeaders(), endStream: false, receivedAt: now) else {
            return XCTFail("expected accept")
        }
        XCTAssertEqual(head.method, "ModelInfer")
        XCTAssertEqual(machine.nextInboundMessage().name, "awaitingMoreData")

        try machine.receiveMessageBytes(ByteBuffer(bytes: framed([1, 2, 3]).prefix(4)))
        XCTAssertEqual(machine.nextInboundMessage().name, "awaitingMoreData")
        try machine.receiveMessageBytes(ByteBuffer(bytes: framed([1, 2, 3]).dropFirst(4)))
        try machine.receiveEnd()
        XCTAssertEqual(machine.nextInboundMessage().bytes, [1, 2, 3])
        XCTAssertEqual(machine.nextInboundMessage().name, "endOfRequest")

        var metadata = GRPCMetadata()
        metadata.add("x-model-version", "1")
        XCTAssertEqual(
            lines(try machine.sendHeaders(metadata)),
            [":status: 200", "content-type: application/grpc", "grpc-accept-encoding: identity,deflate,gzip", "x-model-version: 1"]
        )
        guard case .framed = try machine.sendMessage(ByteBuffer(bytes: [9, 9])) else { return XCTFail("expected framed") }

        var trailers = GRPCMetadata()
        trailers.add("trace-bin", binary: [1, 2, 3])
        let action = try machine.sendStatus(GRPCStatus(code: .ok), trailers: trailers)
        XCTAssertEqual(action.data.map { Array($0.readableBytesView) }, framed([9, 9]))
        XCTAssertEqual(lines(action.headers), ["grpc-status: 0", "trace-bin: AQID"])
        XCTAssertFalse(action.isTrailersOnly)
        XCTAssertFalse(action.resetStream)
        XCTAssertTrue(machine.isFinished)
    }

    func testTrailersCarryTheEncodedMessageAndCustomTrailers() throws {
        var machine = try machine(after: [.headers(endStream: true), .sendHeaders])
        let error = RPCError.resourceExhausted("queue full (100%)\nretry later", retryAfter: .milliseconds(1500))
        let action = try machine.sendStatus(error)
        XCTAssertNil(action.data)
        XCTAssertEqual(
            lines(action.headers),
            ["grpc-status: 8", "grpc-message: queue full (100%25)%0Aretry later", "retry-after: 2", "retry-after-ms: 1500"]
        )
    }

    func testStatusBeforeHeadersIsTrailersOnly() throws {
        let table: [(Bool, Bool)] = [(false, true), (true, false)]  // (request ended, reset expected)
        for (ended, reset) in table {
            var machine = try machine(after: [.headers(endStream: ended)])
            var trailers = GRPCMetadata()
            trailers.add("grpc-status", "0")  // reserved: cannot forge the status
            trailers.add("x-why", "unknown model")
            let action = try machine.sendStatus(GRPCStatus(code: .notFound, message: "model 'x' not found"), trailers: trailers)
            XCTAssertTrue(action.isTrailersOnly)
            XCTAssertEqual(action.resetStream, reset)
            XCTAssertNil(action.data)
            XCTAssertEqual(
                lines(action.headers),
                [
                    ":status: 200", "content-type: application/grpc", "grpc-accept-encoding: identity,deflate,gzip",
                    "grpc-status: 5", "grpc-message: model 'x' not found", "x-why: unknown model",
                ]
            )
            XCTAssertEqual(machine.isFinished, ended)
        }
    }

    func testResponseEndsBeforeTheRequestWithAReset() throws {
        var machine = try machine(after: [.headers(endStream: false), .sendHeaders])
        let action = try machine.sendStatus(.ok)
        XCTAssertTrue(action.resetStream)
        XCTAssertFalse(machine.isFinished)
        try machine.receiveMessageBytes(ByteBuffer(bytes: framed([1])))
        XCTAssertEqual(machine.nextInboundMessage().name, "endOfRequest")
        try machine.receiveEnd()
        XCTAssertTrue(machine.isFinished)
    }

    // MARK: - Rejected requests

    func testRejectedRequestsGetOneClosingHeaderBlock() throws {
        let table: [(GRPCHeaderFields, Bool, [String])] = [
            (requestHeaders([("content-type", "application/json")]), false,
             [":status: 415", "grpc-status: 13", "grpc-message: content-type 'application/json' is not supported; a gRPC request has content-type application/grpc"]),
            (requestHeaders([(":method", "GET")]), true,
             [":status: 405", "allow: POST", "grpc-status: 13", "grpc-message: HTTP method GET is not supported; gRPC requests use POST"]),
            (requestHeaders([("grpc-encoding", "snappy")]), false,
             [":status: 200", "content-type: application/grpc", "grpc-accept-encoding: identity,deflate,gzip", "grpc-status: 12",
              "grpc-message: grpc-encoding 'snappy' is not supported; supported encodings: identity,deflate,gzip"]),
            (requestHeaders([("te", nil)]), true,
             [":status: 200", "content-type: application/grpc", "grpc-accept-encoding: identity,deflate,gzip", "grpc-status: 13",
              "grpc-message: expected header 'te: trailers' but found no te header; an intermediary may not support trailers"]),
        ]
        for (fields, endStream, expected) in table {
            var machine = Machine()
            guard case .reject(let headers, let resetStream) = try machine.receiveHeaders(fields, endStream: endStream, receivedAt: now) else {
                XCTFail("expected a rejection for \(lines(fields))")
                continue
            }
            XCTAssertEqual(lines(headers), expected)
            XCTAssertEqual(resetStream, !endStream)
            XCTAssertThrowsError(try machine.sendStatus(.ok))
            XCTAssertThrowsError(try machine.sendHeaders())
            if !endStream {
                XCTAssertNoThrow(try machine.receiveMessageBytes(ByteBuffer(bytes: framed([1]))))
                XCTAssertEqual(machine.nextInboundMessage().name, "endOfRequest")
                XCTAssertNoThrow(try machine.receiveEnd())
            }
            XCTAssertTrue(machine.isFinished)
        }
    }

    func testOnlyConfiguredEncodingsAreAcceptedAndAdvertised() throws {
        var configuration = Machine.Configuration()
        configuration.supportedEncodings = [.gzip]
        var machine = Machine(configuration: configuration)
        guard case .reject(let headers, _) = try machine.receiveHeaders(requestHeaders([("grpc-encoding", "deflate")]), endStream: true, receivedAt: now) else {
            return XCTFail("deflate is not configured")
        }
        XCTAssertEqual(lines(headers).filter { $0.hasPrefix("grpc-accept-encoding") || $0.hasPrefix("grpc-status") }, ["grpc-accept-encoding: identity,gzip", "grpc-status: 12"])
    }

    // MARK: - Broken request streams

    func testBrokenRequestStreamsFailWithAStatusToSend() throws {
        var small = Machine.Configuration()
        small.maxReceiveMessageSize = 2
        let table: [(Machine.Configuration, [Event], GRPCStatus)] = [
            (small, [.headers(endStream: false), .data(framed([1, 2, 3]))],
             GRPCStatus(code: .resourceExhausted, message: "received message larger than max (3 vs. 2)")),
            (.init(), [.headers(endStream: false), .data(framed([1], flag: 1))],
             GRPCStatus(code: .internalError, message: "compressed flag set by client but no grpc-encoding")),
            (.init(), [.headers(endStream: false), .data(framed([1], flag: 7))],
             GRPCStatus(code: .internalError, message: "invalid compressed flag 7 in message prefix (must be 0 or 1)")),
            (.init(), [.headers(endStream: false), .data(Array(framed([1, 2]).prefix(6))), .end],
             GRPCStatus(code: .internalError, message: "stream ended inside a message (1 of 2 bytes received)")),
            (.init(), [.headers(endStream: false), .data([0, 0]), .end],
             GRPCStatus(code: .internalError, message: "stream ended inside a message (2 of 5 prefix bytes received)")),
        ]
        for (configuration, events, status) in table {
            var machine = try machine(after: events, configuration: configuration)
            guard case .failed(let failure) = machine.nextInboundMessage() else {
                XCTFail("\(events) should fail")
                continue
            }
            XCTAssertEqual(failure, status)
            let action = try machine.sendStatus(failure)
            XCTAssertEqual(lines(action.headers).dropFirst(3).first, "grpc-status: \(status.code.rawValue)")
        }
    }

    func testMessagesBeforeAFailureAreDeliveredFirst() throws {
        var machine = try machine(after: [.headers(endStream: false), .data(framed([1]) + framed([2]) + [0, 0]), .end])
        XCTAssertEqual(machine.nextInboundMessage().bytes, [1])
        XCTAssertEqual(machine.nextInboundMessage().bytes, [2])
        XCTAssertEqual(machine.nextInboundMessage().name, "failed")
    }

    // MARK: - Compression

    func testCompressedRequestsAreInflated() throws {
        var machine = Machine()
        _ = try machine.receiveHeaders(requestHeaders([("grpc-encoding", "gzip")]), endStream: false, receivedAt: now)
        let body = compressibleBytes(2000)
        try machine.receiveMessageBytes(ByteBuffer(bytes: framed(try compressed(body, .gzip), flag: 1) + framed([3])))
        XCTAssertEqual(machine.nextInboundMessage().bytes, body)
        XCTAssertEqual(machine.nextInboundMessage().bytes, [3])
    }

    func testResponsesAreCompressedOnlyWithAnEncodingTheClientAccepts() throws {
        var configuration = Machine.Configuration()
        configuration.responseEncodings = [.deflate, .gzip]
        let table: [(String?, GRPCCompression.Algorithm?)] = [
            ("gzip", .gzip), ("deflate,gzip", .deflate), ("identity", nil), ("snappy", nil), (nil, nil),
        ]
        for (accept, negotiated) in table {
            var machine = Machine(configuration: configuration)
            _ = try machine.receiveHeaders(requestHeaders([("grpc-accept-encoding", accept)]), endStream: true, receivedAt: now)
            XCTAssertEqual(machine.negotiatedResponseEncoding, negotiated, accept ?? "nil")
            let headers = lines(try machine.sendHeaders())
            XCTAssertEqual(headers.contains("grpc-encoding: \(negotiated?.name ?? "")"), negotiated != nil)
            XCTAssertEqual(headers.contains { $0.hasPrefix("grpc-encoding:") }, negotiated != nil)

            let body = compressibleBytes(1000)
            _ = try machine.sendMessage(ByteBuffer(bytes: body))
            _ = try machine.sendMessage(ByteBuffer(bytes: body), compress: false)
            let wire = try XCTUnwrap(machine.nextOutboundBytes())
            XCTAssertEqual(wire.getInteger(at: 0, as: UInt8.self), negotiated == nil ? 0 : 1)
            var deframer = GRPCMessageDeframer(encoding: negotiated)
            XCTAssertEqual(try deframe([Array(wire.readableBytesView)], &deframer), [body, body])
            XCTAssertNil(machine.nextOutboundBytes())
        }
    }

    func testAResponseMessageOverTheLimitIsRefusedWithAStatus() throws {
        var configuration = Machine.Configuration()
        configuration.maxSendMessageSize = 2
        var machine = try machine(after: [.headers(endStream: true), .sendHeaders], configuration: configuration)
        guard case .refused(let status) = try machine.sendMessage(ByteBuffer(bytes: [1, 2, 3])) else {
            return XCTFail("expected a refusal")
        }
        XCTAssertEqual(status, GRPCStatus(code: .resourceExhausted, message: "sent message larger than max (3 vs. 2)"))
        XCTAssertNil(machine.nextOutboundBytes())
        XCTAssertEqual(lines(try machine.sendStatus(status).headers).first, "grpc-status: 8")
    }

    // MARK: - Resets

    func testAResetEndsARunningCallWithTheMappedStatus() throws {
        let table: [([Event], UInt32, GRPCStatus.Code?)] = [
            ([.headers(endStream: false)], 0x8, .cancelled),
            ([.headers(endStream: true), .sendHeaders], 0x8, .cancelled),
            ([.headers(endStream: false)], 0x2, .internalError),
            ([.headers(endStream: false)], 0xB, .resourceExhausted),
            ([], 0x8, nil),  // no call yet
            ([.headers(endStream: true), .sendStatus], 0x0, nil),  // already over
        ]
        for (events, code, expected) in table {
            var machine = try machine(after: events)
            XCTAssertEqual(machine.receiveReset(errorCode: code)?.code, expected, "\(events), \(code)")
            XCTAssertTrue(machine.isFinished)
            XCTAssertEqual(machine.nextInboundMessage().name, "endOfRequest")
            XCTAssertNil(machine.receiveReset(errorCode: code), "a second reset reports nothing")
        }
    }
}

extension GRPCServerStreamStateMachine.InboundMessage {
    var name: String {
        switch self {
        case .message: return "message"
        case .awaitingMoreData: return "awaitingMoreData"
        case .endOfRequest: return "endOfRequest"
        case .failed: return "failed"
        }
    }

    var bytes: [UInt8]? {
        if case .message(let buffer) = self { return Array(buffer.readableBytesView) }
        return nil
    }
}
