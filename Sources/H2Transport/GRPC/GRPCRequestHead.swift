import NIOCore

/// The request headers of one gRPC call on the server, checked against PROTOCOL-HTTP2.md
/// ("Requests") and parsed into what the rest of the gateway needs.
///
/// Build one with `validate(_:receivedAt:supportedEncodings:)`, which either returns a head or
/// says how to refuse the request: with an HTTP status (the request is not gRPC at all) or with
/// a gRPC status in a Trailers-Only response (it is gRPC, but broken or unsupported).
public struct GRPCRequestHead: Sendable, Hashable {
    /// `:path`, e.g. `/inference.GRPCInferenceService/ModelInfer`: always `/Service/Method`
    /// with both parts non-empty (validated).
    public var path: String
    /// The service part of the path, e.g. `inference.GRPCInferenceService`.
    public var service: Substring { Self.splitPath(path)?.0 ?? "" }
    /// The method part of the path, e.g. `ModelInfer`.
    public var method: Substring { Self.splitPath(path)?.1 ?? "" }
    /// `:scheme` (`http` or `https`).
    public var scheme: String
    /// `:authority`, or `host` when `:authority` is absent.
    public var authority: String?
    /// `user-agent`, e.g. `grpc-python/1.62.0 grpc-c/39.0.0 (linux; chttp2)`.
    public var userAgent: String?
    /// `content-type` as sent, e.g. `application/grpc+proto`.
    public var contentType: String
    /// `grpc-timeout`, when the client set one.
    public var timeout: GRPCTimeout?
    /// When the call must be finished: arrival time plus `timeout`; nil without a timeout
    /// (PROTOCOL-HTTP2.md: "If Timeout is omitted a server should assume an infinite timeout").
    public var deadline: NIODeadline?
    /// `grpc-encoding` of the request messages; nil when absent. Always one the server
    /// supports (others are refused).
    public var requestEncoding: GRPCCompression.Algorithm?
    /// The algorithms in `grpc-accept-encoding` that Switchyard implements, in the client's
    /// order, without duplicates. Names we do not know are left out.
    public var acceptedEncodings: [GRPCCompression.Algorithm]
    /// The custom metadata: every field that is not reserved (see `GRPCMetadata`).
    public var metadata: GRPCMetadata
}

extension GRPCRequestHead {
    /// What to do with a request's headers.
    public enum Validation: Sendable, Hashable {
        /// A well-formed gRPC request: run the call.
        case valid(GRPCRequestHead)
        /// Not a gRPC request: answer with this HTTP status and end the stream.
        case rejectWithHTTPStatus(HTTPRejection)
        /// A gRPC request that cannot be served: answer Trailers-Only with this status (for an
        /// unsupported `grpc-encoding` the response must also carry `grpc-accept-encoding`;
        /// `GRPCServerStreamStateMachine` always sends it).
        case rejectWithGRPCStatus(GRPCStatus)
    }

    /// An HTTP-level refusal: the status code and a sentence saying why.
    public struct HTTPRejection: Sendable, Hashable {
        /// 415 (content-type is not gRPC) or 405 (method is not POST).
        public var status: Int
        /// Why, for a person.
        public var message: String

        /// The response header block: `:status`, `allow: POST` for 405, and `grpc-status` /
        /// `grpc-message` (INTERNAL), which grpc-java also sends so that a gRPC client that
        /// looks at them reads something useful.
        public var headerFields: GRPCHeaderFields {
            var fields: GRPCHeaderFields = [(":status", String(status))]
            if status == 405 { fields.append(("allow", "POST")) }
            fields.append(("grpc-status", GRPCStatus.Code.internalError.wireValue))
            fields.append(("grpc-message", GRPCStatusMessage.encode(message)))
            return fields
        }
    }

    /// Checks request headers as nghttp2 delivered them, in this order (first failure wins):
    ///
    /// 1. `content-type` is one value that starts with `application/grpc`, followed by nothing,
    ///    `+subtype` or `;parameters`; otherwise HTTP 415 (the spec: "gRPC servers SHOULD
    ///    respond with HTTP status of 415 (Unsupported Media Type)").
    /// 2. `:method` is POST; otherwise HTTP 405 with `allow: POST`. Not a gRPC request either,
    ///    so HTTP answers it, as grpc-java does (grpc-core answers a gRPC status instead).
    /// 3. `te` is `trailers`; otherwise INTERNAL, as grpc-java answers (a missing `te` means
    ///    an intermediary that may drop trailers; grpc-core refuses it too).
    /// 4. `:scheme` and `:path` are present (nghttp2 already insists); otherwise INTERNAL.
    /// 5. `:path` is `/Service/Method` with both parts non-empty; otherwise UNIMPLEMENTED,
    ///    since no method can have that name ("Method not found at server").
    /// 6. `grpc-timeout` parses (one value); otherwise INTERNAL, as grpc-go answers.
    /// 7. `grpc-encoding` is one value the server supports; more than one is INTERNAL, an
    ///    unknown or unsupported one UNIMPLEMENTED naming the ones accepted (doc/compression.md).
    /// 8. Binary metadata is valid base64; otherwise INTERNAL.
    ///
    /// - Parameters:
    ///   - headers: the request header block, names lower-case as HTTP/2 requires (nghttp2
    ///     refuses others).
    ///   - receivedAt: when the headers arrived; the deadline counts from here.
    ///   - supportedEncodings: the request encodings the server accepts (identity is always
    ///     accepted).
    public static func validate(
        _ headers: some Sequence<(name: String, value: String)>,
        receivedAt: NIODeadline,
        supportedEncodings: [GRPCCompression.Algorithm] = GRPCCompression.Algorithm.all
    ) -> Validation {
        validate(fields: headers.map { HTTP2HeaderField($0.name, $0.value) }, receivedAt: receivedAt, supportedEncodings: supportedEncodings)
    }

    /// `validate(_:receivedAt:supportedEncodings:)` on the header block as the HTTP/2 layer
    /// keeps it. The fields are only borrowed: the checks look at them in place (`Fields`
    /// keeps positions, not strings), and only the strings the head keeps are copied, once.
    /// (Copying every name and value into a gathering struct cost about 60 reference-count
    /// operations per call.)
    static func validate(
        fields headers: [HTTP2HeaderField],
        receivedAt: NIODeadline,
        supportedEncodings: [GRPCCompression.Algorithm]
    ) -> Validation {
        var fields = Fields()
        for index in headers.indices {
            fields.collect(name: headers[index].name, at: index)
        }
        func value(_ values: Fields.Values) -> String? { values.count > 0 ? headers[values.first].value : nil }
        func all(_ values: Fields.Values, _ name: String) -> [String] {
            values.count == 0 ? [] : headers.filter { $0.name == name }.map(\.value)
        }

        // 1. content-type
        guard fields.contentType.count == 1, isGRPCContentType(headers[fields.contentType.first].value) else {
            let message: String
            switch fields.contentType.count {
            case 0: message = "missing content-type; a gRPC request has content-type application/grpc"
            case 1: message = "content-type '\(value(fields.contentType) ?? "")' is not supported; a gRPC request has content-type application/grpc"
            default: message = "more than one content-type header"
            }
            return .rejectWithHTTPStatus(HTTPRejection(status: 415, message: message))
        }

        // 2. :method
        guard fields.method.count == 1, headers[fields.method.first].value == "POST" else {
            let message =
                fields.method.count == 1
                ? "HTTP method \(value(fields.method) ?? "") is not supported; gRPC requests use POST"
                : "missing or repeated :method; gRPC requests use POST"
            return .rejectWithHTTPStatus(HTTPRejection(status: 405, message: message))
        }

        // 3. te
        guard fields.te.count == 1, ASCIIBytes.withUTF8(headers[fields.te.first].value, { ASCIIBytes.equalsCaseInsensitive($0, "trailers") }) else {
            let found = fields.te.count == 0 ? "no te header" : "te '\(all(fields.te, "te").joined(separator: ", "))'"
            return .rejectWithGRPCStatus(
                GRPCStatus(
                    code: .internalError,
                    message: "expected header 'te: trailers' but found \(found); an intermediary may not support trailers"
                )
            )
        }

        // 4. :scheme, :path present
        guard fields.scheme.count == 1, !headers[fields.scheme.first].value.isEmpty else {
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "missing or repeated :scheme header"))
        }
        guard fields.path.count == 1 else {
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "missing or repeated :path header"))
        }

        // 5. :path form
        guard isValidPath(headers[fields.path.first].value) else {
            return .rejectWithGRPCStatus(
                GRPCStatus(code: .unimplemented, message: "malformed :path '\(headers[fields.path.first].value)'; expected /package.Service/Method")
            )
        }

        // 6. grpc-timeout
        var timeout: GRPCTimeout?
        var deadline: NIODeadline?
        switch fields.timeout.count {
        case 0:
            break
        case 1:
            do throws(GRPCTimeout.ParseError) {
                let parsed = try GRPCTimeout(parsing: headers[fields.timeout.first].value)
                timeout = parsed
                deadline = receivedAt + timeAmount(parsed.duration)
            } catch {
                return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "malformed grpc-timeout: \(error)"))
            }
        default:
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "more than one grpc-timeout header"))
        }

        // 7. grpc-encoding
        var requestEncoding: GRPCCompression.Algorithm?
        switch fields.encoding.count {
        case 0:
            break
        case 1:
            guard let algorithm = GRPCCompression.Algorithm(name: headers[fields.encoding.first].value),
                algorithm == .identity || supportedEncodings.contains(algorithm)
            else {
                let accepted = acceptEncodingValue(supportedEncodings)
                return .rejectWithGRPCStatus(
                    GRPCStatus(
                        code: .unimplemented,
                        message: "grpc-encoding '\(headers[fields.encoding.first].value)' is not supported; supported encodings: \(accepted)"
                    )
                )
            }
            requestEncoding = algorithm
        default:
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "more than one grpc-encoding header"))
        }

        // grpc-accept-encoding: any number of comma-separated lists.
        var acceptedEncodings: [GRPCCompression.Algorithm] = []
        if fields.acceptEncoding.count > 0 {
            for index in fields.acceptEncoding.first..<headers.count where headers[index].name == "grpc-accept-encoding" {
                appendAlgorithms(listedIn: headers[index].value, to: &acceptedEncodings)
            }
        }

        // 8. metadata
        var metadata = GRPCMetadata()
        if fields.customCount > 0 {
            do throws(GRPCStatus) {
                for index in headers.indices where !Fields.isKnown(headers[index].name) {
                    try metadata.appendReceived(name: headers[index].name, value: headers[index].value)
                }
            } catch {
                return .rejectWithGRPCStatus(error)
            }
        }

        return .valid(
            GRPCRequestHead(
                path: headers[fields.path.first].value,
                scheme: headers[fields.scheme.first].value,
                authority: fields.authority >= 0 ? headers[fields.authority].value : fields.host >= 0 ? headers[fields.host].value : nil,
                userAgent: fields.userAgent >= 0 ? headers[fields.userAgent].value : nil,
                contentType: headers[fields.contentType.first].value,
                timeout: timeout,
                deadline: deadline,
                requestEncoding: requestEncoding,
                acceptedEncodings: acceptedEncodings,
                metadata: metadata
            )
        )
    }

    /// Appends the algorithms of a `grpc-accept-encoding` list (comma-separated names, spaces
    /// or tabs around them) that are known and not listed yet; scans the bytes in place.
    private static func appendAlgorithms(listedIn list: String, to algorithms: inout [GRPCCompression.Algorithm]) {
        ASCIIBytes.withUTF8(list) { bytes in
            var start = 0
            while start <= bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
                var low = start
                var high = end
                while low < high && (bytes[low] == UInt8(ascii: " ") || bytes[low] == UInt8(ascii: "\t")) { low += 1 }
                while high > low && (bytes[high - 1] == UInt8(ascii: " ") || bytes[high - 1] == UInt8(ascii: "\t")) { high -= 1 }
                if let algorithm = GRPCCompression.Algorithm(nameBytes: UnsafeBufferPointer(rebasing: bytes[low..<high])),
                    !algorithms.contains(algorithm)
                {
                    algorithms.append(algorithm)
                }
                start = end + 1
            }
        }
    }

    /// Whether `value` is a gRPC content-type: `application/grpc` alone or followed by
    /// `+subtype` (`+proto`, `+json`, or a custom one, as the spec's grammar allows) or by
    /// `;parameters`. Compared case-insensitively (media types are, RFC 9110 §8.3.1).
    /// `application/grpc-web` is a different protocol and does not qualify.
    public static func isGRPCContentType(_ value: some StringProtocol) -> Bool {
        ASCIIBytes.withUTF8(value) { bytes in
            let prefix: StaticString = "application/grpc"
            let prefixLength = prefix.utf8CodeUnitCount
            guard bytes.count >= prefixLength,
                ASCIIBytes.equalsCaseInsensitive(UnsafeBufferPointer(rebasing: bytes[0..<prefixLength]), prefix)
            else { return false }
            guard bytes.count > prefixLength else { return true }
            let next = bytes[prefixLength]
            if next == UInt8(ascii: ";") { return true }
            return next == UInt8(ascii: "+") && bytes.count > prefixLength + 1
        }
    }

    /// The value of `grpc-accept-encoding` advertising `encodings` (identity first, always).
    public static func acceptEncodingValue(_ encodings: [GRPCCompression.Algorithm]) -> String {
        // Every response carries this header: the default list's value is built once.
        if encodings == GRPCCompression.Algorithm.all { return defaultAcceptEncodingValue }
        return makeAcceptEncodingValue(encodings)
    }

    private static let defaultAcceptEncodingValue = makeAcceptEncodingValue(GRPCCompression.Algorithm.all)

    private static func makeAcceptEncodingValue(_ encodings: [GRPCCompression.Algorithm]) -> String {
        var names = ["identity"]
        for encoding in encodings where !names.contains(encoding.name) {
            names.append(encoding.name)
        }
        return names.joined(separator: ",")
    }

    // MARK: - Private

    /// Where the header values the validation looks at are, gathered in one pass: positions
    /// in the header block, so gathering copies no string.
    private struct Fields {
        /// The fields of one header name: the position of the first, and how many there are
        /// (more than one is rare, and refused for most names).
        struct Values {
            private(set) var first = -1
            private(set) var count = 0

            mutating func append(_ index: Int) {
                if count == 0 { first = index }
                count += 1
            }
        }

        var method = Values()
        var scheme = Values()
        var path = Values()
        /// The first `:authority`, `host` and `user-agent`; -1 when absent.
        var authority = -1
        var host = -1
        var te = Values()
        var contentType = Values()
        var userAgent = -1
        var timeout = Values()
        var encoding = Values()
        var acceptEncoding = Values()
        /// How many fields are custom metadata (any name not listed here).
        var customCount = 0

        mutating func collect(name: String, at index: Int) {
            // Dispatch on the length first: most names are compared once, and equal small
            // strings compare by their raw bits.
            switch name.utf8.count {
            case 2 where name == "te": te.append(index)
            case 4 where name == "host": if host < 0 { host = index }
            case 5 where name == ":path": path.append(index)
            case 7 where name == ":method": method.append(index)
            case 7 where name == ":scheme": scheme.append(index)
            case 10 where name == ":authority": if authority < 0 { authority = index }
            case 10 where name == "user-agent": if userAgent < 0 { userAgent = index }
            case 12 where name == "content-type": contentType.append(index)
            case 12 where name == "grpc-timeout": timeout.append(index)
            case 13 where name == "grpc-encoding": encoding.append(index)
            case 20 where name == "grpc-accept-encoding": acceptEncoding.append(index)
            default: customCount += 1
            }
        }

        /// Whether `collect` files `name` under a field of its own (not custom metadata).
        static func isKnown(_ name: String) -> Bool {
            var fields = Fields()
            fields.collect(name: name, at: 0)
            return fields.customCount == 0
        }
    }

    /// Whether `path` has the form `/Service/Method`, both parts non-empty and no third `/`.
    private static func isValidPath(_ path: String) -> Bool {
        ASCIIBytes.withUTF8(path) { bytes in
            let slash = UInt8(ascii: "/")
            guard bytes.count >= 4, bytes[0] == slash else { return false }
            var separator = -1
            for index in 1..<bytes.count where bytes[index] == slash {
                guard separator < 0 else { return false }
                separator = index
            }
            return separator > 1 && separator < bytes.count - 1
        }
    }

    private static func splitPath(_ path: String) -> (Substring, Substring)? {
        // On UTF-8 bytes: the Character-based split and contains cost a measurable share of a
        // small call (the profile in loadtest/RESULTS.md). '/' is ASCII, so its byte positions
        // are also Character boundaries.
        let bytes = path.utf8
        let slash = UInt8(ascii: "/")
        guard bytes.first == slash else { return nil }
        let serviceStart = bytes.index(after: bytes.startIndex)
        guard let separator = bytes[serviceStart...].firstIndex(of: slash), separator > serviceStart else { return nil }
        let methodStart = bytes.index(after: separator)
        guard methodStart < bytes.endIndex, !bytes[methodStart...].contains(slash) else { return nil }
        return (path[serviceStart..<separator], path[methodStart...])
    }

    /// `duration` as a TimeAmount, saturating where nanoseconds no longer fit in Int64 (about
    /// 292 years; `grpc-timeout` can say 11,400).
    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        guard seconds < Int64.max / 1_000_000_000 - 1 else { return .nanoseconds(.max) }
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
