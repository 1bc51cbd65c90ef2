import CNGHTTP2
import NIOCore

/// An HTTP/2 header field as nghttp2 delivers it.
public struct HTTP2HeaderField: Sendable, Hashable {
    public var name: String
    public var value: String
    /// Never index this field in HPACK tables (for secrets such as authorization).
    public var sensitive: Bool

    public init(_ name: String, _ value: String, sensitive: Bool = false) {
        self.name = name
        self.value = value
        self.sensitive = sensitive
    }
}

/// A header block on its way to nghttp2: the HTTP/2 layer's fields (with the sensitive flag),
/// or the gRPC layer's name/value pairs as its state machines produce them, so neither needs
/// converting into the other per call.
enum HTTP2HeaderBlock {
    case fields([HTTP2HeaderField])
    case pairs(GRPCHeaderFields)
    /// Pairs and one or two more fields after them (a call's `x-request-id` and the gateway's
    /// `x-switchyard-variant` after the default response headers): a prepared block stays
    /// prepared, with no array built for the extra fields.
    case pairsAnd(GRPCHeaderFields, extras: HTTP2ExtraHeaders)

    var isEmpty: Bool {
        switch self {
        case .fields(let fields): return fields.isEmpty
        case .pairs(let pairs): return pairs.isEmpty
        case .pairsAnd: return false
        }
    }
}

/// One or two header fields sent after a header block's pairs without building an array.
/// `sensitive` fields are never indexed (HPACK), for values unique per call.
struct HTTP2ExtraHeaders {
    var first: (name: String, value: String, sensitive: Bool)
    var second: (name: String, value: String, sensitive: Bool)?

    var count: Int { second == nil ? 1 : 2 }

    subscript(index: Int) -> (name: String, value: String, sensitive: Bool) {
        index == 0 ? first : second!
    }
}

/// HTTP/2 error codes (RFC 9113 §7).
public struct HTTP2ErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = Self(rawValue: 0x0)
    public static let protocolError = Self(rawValue: 0x1)
    public static let internalError = Self(rawValue: 0x2)
    public static let flowControlError = Self(rawValue: 0x3)
    public static let settingsTimeout = Self(rawValue: 0x4)
    public static let streamClosed = Self(rawValue: 0x5)
    public static let frameSizeError = Self(rawValue: 0x6)
    public static let refusedStream = Self(rawValue: 0x7)
    public static let cancel = Self(rawValue: 0x8)
    public static let compressionError = Self(rawValue: 0x9)
    public static let connectError = Self(rawValue: 0xA)
    public static let enhanceYourCalm = Self(rawValue: 0xB)
    public static let inadequateSecurity = Self(rawValue: 0xC)
    public static let http11Required = Self(rawValue: 0xD)

    public var description: String {
        String(cString: nghttp2_http2_strerror(rawValue))
    }
}

/// An error reported by nghttp2, with its message.
public struct NGHTTP2Error: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var description: String

    init(_ code: Int32) {
        self.code = code
        self.description = "nghttp2: \(String(cString: nghttp2_strerror(Int32(code))))"
    }

    init(code: Int32, message: String) {
        self.code = code
        self.description = message
    }
}

/// What a session reports to its owner. Called synchronously from inside `receive` or
/// `produceOutput`; the owner may submit frames from these calls.
protocol NGHTTP2SessionDelegate: AnyObject {
    /// Any frame header arrived (before its payload), including frames nghttp2 then ignores:
    /// used to count abusive frames. Called for every header in a `receive` call before
    /// nghttp2 processes that call's bytes. Return false to fail the session.
    func session(_ session: NGHTTP2Session, beginFrame type: UInt8, flags: UInt8, streamID: Int32, length: Int) -> Bool
    /// A HEADERS frame starts: request headers (server), response headers (client) or trailers.
    func session(_ session: NGHTTP2Session, beginHeadersOn streamID: Int32)
    /// One header field; return false to refuse the header block (the stream is reset).
    /// The field is handed over (`consuming`), so keeping it costs no copy of its strings.
    func session(_ session: NGHTTP2Session, header: consuming HTTP2HeaderField, on streamID: Int32) -> Bool
    /// A complete header block.
    func session(_ session: NGHTTP2Session, headersCompleteOn streamID: Int32, endStream: Bool)
    /// Body bytes. The receive window is not replenished until `consume` is called.
    func session(_ session: NGHTTP2Session, data: ByteBuffer, on streamID: Int32)
    /// A DATA frame with END_STREAM arrived (after its bytes were delivered).
    func session(_ session: NGHTTP2Session, endStreamOn streamID: Int32)
    /// The peer reset the stream.
    func session(_ session: NGHTTP2Session, resetReceived code: HTTP2ErrorCode, on streamID: Int32)
    /// The stream is closed for good, for whatever reason.
    func session(_ session: NGHTTP2Session, streamClosed streamID: Int32, code: HTTP2ErrorCode)
    /// A PING (not an ACK) arrived.
    func sessionReceivedPing(_ session: NGHTTP2Session)
    /// A PING ACK arrived.
    func sessionReceivedPingAck(_ session: NGHTTP2Session)
    /// A SETTINGS frame (not an ACK) arrived and was applied.
    func sessionReceivedSettings(_ session: NGHTTP2Session)
    /// The peer sent GOAWAY.
    func session(_ session: NGHTTP2Session, goAwayReceived code: HTTP2ErrorCode, lastStreamID: Int32)
    /// A frame nghttp2 judged invalid (it answers it itself); counts as a glitch.
    func session(_ session: NGHTTP2Session, invalidFrame type: UInt8, on streamID: Int32, error: Int32)
    /// We sent a frame: used to count our own resets and to reset ping strikes on headers/data.
    func session(_ session: NGHTTP2Session, sentFrame type: UInt8, flags: UInt8, streamID: Int32, errorCode: UInt32)
    /// The body source of a stream for the data provider: copy up to `into.count` bytes.
    func session(_ session: NGHTTP2Session, readBody streamID: Int32, into: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.BodyRead
}

extension NGHTTP2SessionDelegate {
    func sessionReceivedSettings(_ session: NGHTTP2Session) {}
}

/// Owns one `nghttp2_session` in memory mode: bytes from the network go in through `receive`,
/// bytes for the network come out of `produceOutput`; nghttp2 never touches a socket.
///
/// Not thread-safe: a session lives on one event loop, inside one channel handler. C callbacks
/// recover `self` from nghttp2's user-data pointer, which is valid only while a call into
/// nghttp2 runs, as NIO's HTTPDecoder does with llhttp.
final class NGHTTP2Session {
    enum Role { case server, client }

    /// What the body source had to give.
    enum BodyRead {
        /// Bytes were copied; `endOfBody` when nothing more will come; `trailers` to send
        /// after the body (implies END_STREAM on the trailers instead of the last DATA).
        case bytes(Int, endOfBody: Bool, trailers: HTTP2HeaderBlock?)
        /// Nothing now; `resumeData` will be called when there is.
        case deferred
    }

    private let session: OpaquePointer
    /// Not retained: every callback reads it, and neither a weak reference (side-table
    /// reference counts, a slow path on every retain) nor a strong one (a retain and release
    /// per callback, and a cycle) pays. The owner — the connection handler that owns this
    /// session and makes every call into it — must outlive it or clear it first; callbacks run
    /// only inside the owner's own calls (`receive`, `produceOutput`, submits).
    ///
    /// The connection handler (the delegate in production) is also kept as an `Unmanaged`
    /// reference and called through `withDelegate`, which borrows it
    /// (`_withUnsafeGuaranteedRef`): an `unowned(unsafe)` property still costs a retain and a
    /// release each time it is loaded into a local to be called (measured: two pairs per
    /// header field). `Unmanaged` cannot hold a protocol existential, hence the concrete type;
    /// other delegates (tests) go through the `unowned(unsafe)` reference.
    unowned(unsafe) var delegate: NGHTTP2SessionDelegate? {
        didSet { connectionHandler = (delegate as? HTTP2ConnectionHandler).map { Unmanaged.passUnretained($0) } }
    }
    private var connectionHandler: Unmanaged<HTTP2ConnectionHandler>?
    let role: Role
    /// Follows the peer's frame headers for `beginFrame` (see HTTP2FrameHeaderScanner).
    private var frameScanner: HTTP2FrameHeaderScanner
    /// The buffer `receive` is feeding to nghttp2 and where its bytes are, while it runs.
    private var input: (buffer: ByteBuffer, base: UnsafeRawPointer, count: Int)?
    /// The connection's recurring header strings (see HTTP2HeaderStringCache).
    private var headerStrings = HTTP2HeaderStringCache()

    init(role: Role, configuration: HTTP2Configuration) throws {
        self.role = role
        self.frameScanner = HTTP2FrameHeaderScanner(skippingClientPreface: role == .server)
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { throw NGHTTP2Error(NGHTTP2_ERR_NOMEM.rawValue) }
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { throw NGHTTP2Error(NGHTTP2_ERR_NOMEM.rawValue) }
        defer { nghttp2_option_del(option) }
        // The application replenishes receive windows as it takes data (flow control tied to
        // backpressure), not nghttp2 on receipt.
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_outbound_ack(option, configuration.maxOutboundAcks)
        nghttp2_option_set_max_continuations(option, configuration.maxContinuations)
        // nghttp2's own Rapid Reset limiter stays as a backstop behind ours.
        nghttp2_option_set_stream_reset_rate_limit(
            option, UInt64(configuration.streamResetBurst * 2), UInt64(configuration.streamResetRate * 2))
        nghttp2_option_set_max_send_header_block_length(option, 65_536)

        var created: OpaquePointer?
        let result: Int32
        switch role {
        case .server: result = nghttp2_session_server_new2(&created, callbacks, nil, option)
        case .client: result = nghttp2_session_client_new2(&created, callbacks, nil, option)
        }
        guard result == 0, let created else { throw NGHTTP2Error(result) }
        self.session = created
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Driving the session

    /// Feeds bytes from the network. Callbacks run during this call.
    func receive(_ buffer: ByteBuffer) throws {
        try withUserData {
            try buffer.withUnsafeReadableBytes { bytes in
                guard let base = bytes.baseAddress else { return }
                // DATA payloads that nghttp2 hands over in place become slices of `buffer`.
                input = (buffer, base, bytes.count)
                defer { input = nil }
                if connectionHandler != nil || delegate != nil {
                    try frameScanner.scan(bytes) { header in
                        guard withDelegate({ $0.session(self, beginFrame: header.type, flags: header.flags, streamID: header.streamID, length: header.length) }) ?? true else {
                            throw NGHTTP2Error(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
                        }
                    }
                }
                let result = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
                if result < 0 { throw NGHTTP2Error(Int32(result)) }
            }
        }
    }

    /// Appends frames nghttp2 has ready to `buffer`, up to about `limit` bytes. Returns false
    /// when nothing more is pending.
    @discardableResult
    func produceOutput(into buffer: inout ByteBuffer, limit: Int) throws -> Bool {
        try withUserData {
            while buffer.readableBytes < limit {
                var data: UnsafePointer<UInt8>?
                let length = nghttp2_session_mem_send(session, &data)
                if length < 0 { throw NGHTTP2Error(Int32(length)) }
                if length == 0 { return false }
                buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
            }
            return true
        }
    }

    /// True while nghttp2 wants to read or has something to write; false once the connection
    /// should be closed (after GOAWAY both ways, or a fatal error).
    var wantsIO: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    var wantsWrite: Bool { nghttp2_session_want_write(session) != 0 }

    // MARK: Submitting frames

    func submitSettings(_ configuration: HTTP2Configuration) throws {
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(configuration.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: UInt32(configuration.initialWindowSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: UInt32(configuration.maxFrameSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(configuration.maxHeaderListSize)),
        ]
        if role == .client {
            settings.append(nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0))
        }
        let result = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        guard result == 0 else { throw NGHTTP2Error(result) }
        if configuration.connectionWindowSize > 65_535 {
            let result = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(configuration.connectionWindowSize))
            guard result == 0 else { throw NGHTTP2Error(result) }
        }
    }

    /// Response headers (server). With `hasBody`, the body comes from the delegate's `readBody`.
    func submitResponse(streamID: Int32, headers: HTTP2HeaderBlock, hasBody: Bool) throws {
        let result = Self.withNameValues(headers) { nva, count in
            if hasBody {
                var provider = Self.dataProvider()
                return nghttp2_submit_response(session, streamID, nva, count, &provider)
            }
            return nghttp2_submit_response(session, streamID, nva, count, nil)
        }
        guard result == 0 else { throw NGHTTP2Error(result) }
    }

    /// A request (client). Returns the new stream's id.
    func submitRequest(headers: HTTP2HeaderBlock, hasBody: Bool) throws -> Int32 {
        let result = Self.withNameValues(headers) { nva, count in
            if hasBody {
                var provider = Self.dataProvider()
                return nghttp2_submit_request(session, nil, nva, count, &provider, nil)
            }
            return nghttp2_submit_request(session, nil, nva, count, nil, nil)
        }
        guard result > 0 else { throw NGHTTP2Error(result) }
        return result
    }

    /// Trailers that end the stream (no body provider running).
    func submitTrailers(streamID: Int32, headers: HTTP2HeaderBlock) throws {
        let result = Self.withNameValues(headers) { nva, count in
            nghttp2_submit_trailer(session, streamID, nva, count)
        }
        guard result == 0 else { throw NGHTTP2Error(result) }
    }

    /// Wakes a deferred body source.
    func resumeData(streamID: Int32) {
        _ = nghttp2_session_resume_data(session, streamID)
    }

    func submitReset(streamID: Int32, code: HTTP2ErrorCode) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
    }

    /// Replenishes the receive windows of the stream and the connection.
    func consume(streamID: Int32, bytes: Int) {
        guard bytes > 0 else { return }
        _ = nghttp2_session_consume(session, streamID, bytes)
    }

    func submitPing() {
        _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// GOAWAY with the last stream we processed; `debugData` goes to the peer (e.g. "too_many_pings").
    func submitGoAway(code: HTTP2ErrorCode, debugData: String = "") {
        let last = nghttp2_session_get_last_proc_stream_id(session)
        let bytes = Array(debugData.utf8)
        _ = bytes.withUnsafeBufferPointer {
            nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, code.rawValue, $0.baseAddress, $0.count)
        }
    }

    /// The first half of a graceful shutdown: GOAWAY with the maximum stream id, so new
    /// streams already in flight are still accepted until the real GOAWAY.
    func submitShutdownNotice() {
        _ = nghttp2_submit_shutdown_notice(session)
    }

    /// Ends the session at once with GOAWAY `code` (nghttp2 then stops reading).
    func terminate(code: HTTP2ErrorCode) {
        _ = nghttp2_session_terminate_session(session, code.rawValue)
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited, 2^32-1, until it says otherwise).
    var remoteMaxConcurrentStreams: UInt32 {
        nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
    }

    /// The number of streams nghttp2 considers open.
    var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    // MARK: C plumbing

    private func withUserData<T>(_ body: () throws -> T) rethrows -> T {
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())
        defer { nghttp2_session_set_user_data(session, nil) }
        return try body()
    }

    /// Runs `body` with the session behind nghttp2's user data, borrowed without a retain:
    /// the callbacks run inside a call into nghttp2 that the session itself makes
    /// (`withUserData`), so it is alive. (An `unowned(unsafe)` local still retained it around
    /// every method call: two pairs per header field.)
    @inline(__always)
    private static func withOwner<R>(_ userData: UnsafeMutableRawPointer?, orElse fallback: R, _ body: (NGHTTP2Session) -> R) -> R {
        guard let userData else { return fallback }
        return Unmanaged<NGHTTP2Session>.fromOpaque(userData)._withUnsafeGuaranteedRef(body)
    }

    /// Runs `body` with the delegate, borrowed without a retain (see `delegate`); nil without one.
    @inline(__always)
    private func withDelegate<R>(_ body: (any NGHTTP2SessionDelegate) throws -> R) rethrows -> R? {
        if let connectionHandler { return try connectionHandler._withUnsafeGuaranteedRef { try body($0) } }
        guard let delegate else { return nil }
        return try body(delegate)
    }

    /// A DATA payload as a buffer: a slice of the input when nghttp2 points into it (it does
    /// for DATA, which it never buffers), so body bytes are not copied; a copy otherwise.
    private func dataChunk(_ pointer: UnsafeRawPointer, _ length: Int) -> ByteBuffer {
        if let input, pointer >= input.base, pointer + length <= input.base + input.count,
            let slice = input.buffer.getSlice(at: input.buffer.readerIndex + (pointer - input.base), length: length)
        {
            return slice
        }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private static func dataProvider() -> nghttp2_data_provider {
        var provider = nghttp2_data_provider()
        provider.read_callback = { _, streamID, buffer, length, flags, _, userData in
            NGHTTP2Session.withOwner(userData, orElse: Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)) { owner in
                guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
                return owner.readBody(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length), flags: flags)
            }
        }
        return provider
    }

    private func readBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        let read = withDelegate { $0.session(self, readBody: streamID, into: buffer) }
        switch read {
            case nil:
                return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            case .deferred:
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            case .bytes(let count, let endOfBody, let trailers):
                if endOfBody {
                    flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
                    if let trailers {
                        flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                        let result = NGHTTP2Session.withNameValues(trailers) { nva, count in
                            nghttp2_submit_trailer(session, streamID, nva, count)
                        }
                        if result != 0 { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
                    }
                }
                return count
        }
    }

    /// Calls `body` with an nghttp2_nv array that points into one contiguous copy of the fields.
    /// Both live in temporary (stack, when small) memory: nghttp2 copies what it keeps, so a
    /// header block costs no allocation here.
    private static func withNameValues(_ block: HTTP2HeaderBlock, _ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32) -> Int32 {
        switch block {
        case .fields(let fields):
            return withNameValues(count: fields.count, field: { (fields[$0].name, fields[$0].value, fields[$0].sensitive) }, body)
        case .pairs(let pairs):
            if let prepared = HTTP2PreparedHeaderBlock.matching(pairs) {
                return prepared.withNameValues(body)
            }
            return withNameValues(count: pairs.count, field: { (pairs[$0].name, pairs[$0].value, false) }, body)
        case .pairsAnd(let pairs, let extras):
            if let prepared = HTTP2PreparedHeaderBlock.matching(pairs) {
                // The prepared entries as they are, then the extras in temporary memory. A
                // sensitive extra (a request id, unique per call) is never indexed: it would only
                // churn HPACK's dynamic table, costing an allocation each time.
                return prepared.withNameValues { entries, count in
                    withNameValues(count: extras.count, field: { extras[$0] }) { extra, extraCount in
                        withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: count + extraCount) { nva in
                            nva.baseAddress!.initialize(from: entries, count: count)
                            (nva.baseAddress! + count).initialize(from: extra, count: extraCount)
                            return body(nva.baseAddress!, count + extraCount)
                        }
                    }
                }
            }
            return withNameValues(
                count: pairs.count + extras.count,
                field: { $0 < pairs.count ? (pairs[$0].name, pairs[$0].value, false) : extras[$0 - pairs.count] }, body)
        }
    }

    private static func withNameValues(
        count: Int,
        field: (Int) -> (name: String, value: String, sensitive: Bool),
        _ body: (UnsafePointer<nghttp2_nv>, Int) -> Int32
    ) -> Int32 {
        var byteCount = 0
        for index in 0..<count {
            let (name, value, _) = field(index)
            byteCount += name.utf8.count + value.utf8.count
        }
        return withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(count, 1)) { nva in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { storage in
                let base = storage.baseAddress!
                var offset = 0
                func copy(_ string: String) -> (UnsafeMutablePointer<UInt8>, Int) {
                    let start = base + offset
                    let length = string.utf8.withContiguousStorageIfAvailable { bytes -> Int in
                        if let source = bytes.baseAddress { start.update(from: source, count: bytes.count) }
                        return bytes.count
                    } ?? {
                        var length = 0
                        for byte in string.utf8 {
                            start[length] = byte
                            length += 1
                        }
                        return length
                    }()
                    offset += length
                    return (start, length)
                }
                for index in 0..<count {
                    let (name, value, sensitive) = field(index)
                    let (namePointer, nameLength) = copy(name)
                    let (valuePointer, valueLength) = copy(value)
                    (nva.baseAddress! + index).initialize(
                        to: nghttp2_nv(
                            name: namePointer, value: valuePointer, namelen: nameLength, valuelen: valueLength,
                            flags: UInt8(sensitive ? NGHTTP2_NV_FLAG_NO_INDEX.rawValue : NGHTTP2_NV_FLAG_NONE.rawValue)))
                }
                return body(nva.baseAddress!, count)
            }
        }
    }

    private static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                guard let frame else { return 0 }
                owner.withDelegate { $0.session(owner, beginHeadersOn: frame.pointee.hd.stream_id) }
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, flags, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                guard let frame, let name, let value else { return 0 }
                return owner.receivedHeader(
                    UnsafeBufferPointer(start: name, count: nameLength), UnsafeBufferPointer(start: value, count: valueLength),
                    flags: flags, streamID: frame.pointee.hd.stream_id)
            }
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                guard let frame else { return 0 }
                owner.withDelegate { owner.receivedFrame(frame, delegate: $0) }
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                guard let data else { return 0 }
                owner.withDelegate { $0.session(owner, data: owner.dataChunk(UnsafeRawPointer(data), length), on: streamID) }
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                owner.withDelegate { $0.session(owner, streamClosed: streamID, code: HTTP2ErrorCode(rawValue: errorCode)) }
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, error, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                guard let frame else { return 0 }
                owner.withDelegate { $0.session(owner, invalidFrame: frame.pointee.hd.type, on: frame.pointee.hd.stream_id, error: error) }
                return 0
            }
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            NGHTTP2Session.withOwner(userData, orElse: 0) { owner in
                guard let frame else { return 0 }
                let header = frame.pointee.hd
                let code = Int(header.type) == Int(NGHTTP2_RST_STREAM.rawValue) ? frame.pointee.rst_stream.error_code : 0
                owner.withDelegate { $0.session(owner, sentFrame: header.type, flags: header.flags, streamID: header.stream_id, errorCode: code) }
                return 0
            }
        }
    }

    /// One header field from nghttp2: its strings (interned when recurring) go to the delegate.
    private func receivedHeader(_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>, flags: UInt8, streamID: Int32) -> Int32 {
        let sensitive = flags & UInt8(NGHTTP2_NV_FLAG_NO_INDEX.rawValue) != 0
        let accepted: Bool
        // The field is built in the call so that it moves into the delegate (no closure
        // captures it, which would force a copy of its strings).
        if let connectionHandler {
            accepted = connectionHandler._withUnsafeGuaranteedRef {
                $0.session(self, header: HTTP2HeaderField(headerStrings.string(name), headerStrings.string(value), sensitive: sensitive), on: streamID)
            }
        } else if let delegate {
            accepted = delegate.session(self, header: HTTP2HeaderField(headerStrings.string(name), headerStrings.string(value), sensitive: sensitive), on: streamID)
        } else {
            return 0
        }
        // TEMPORAL_CALLBACK_FAILURE resets just this stream; the connection goes on.
        return accepted ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }

    private func receivedFrame(_ frame: UnsafePointer<nghttp2_frame>, delegate: any NGHTTP2SessionDelegate) {
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch Int(header.type) {
        case Int(NGHTTP2_HEADERS.rawValue):
            delegate.session(self, headersCompleteOn: header.stream_id, endStream: endStream)
        case Int(NGHTTP2_DATA.rawValue):
            if endStream { delegate.session(self, endStreamOn: header.stream_id) }
        case Int(NGHTTP2_RST_STREAM.rawValue):
            delegate.session(self, resetReceived: HTTP2ErrorCode(rawValue: frame.pointee.rst_stream.error_code), on: header.stream_id)
        case Int(NGHTTP2_PING.rawValue):
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
                delegate.sessionReceivedPingAck(self)
            } else {
                delegate.sessionReceivedPing(self)
            }
        case Int(NGHTTP2_SETTINGS.rawValue):
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
                delegate.sessionReceivedSettings(self)
            }
        case Int(NGHTTP2_GOAWAY.rawValue):
            delegate.session(
                self, goAwayReceived: HTTP2ErrorCode(rawValue: frame.pointee.goaway.error_code),
                lastStreamID: frame.pointee.goaway.last_stream_id)
        default:
            break
        }
    }
}
