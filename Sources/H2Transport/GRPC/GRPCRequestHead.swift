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
        var fields = Fields()
        for (name, value) in headers {
            fields.collect(name: name, value: value)
        }

        // 1. content-type
        guard fields.contentType.count == 1, let contentType = fields.contentType.first, isGRPCContentType(contentType) else {
            let message: String
            switch fields.contentType.count {
            case 0: message = "missing content-type; a gRPC request has content-type application/grpc"
            case 1: message = "content-type '\(fields.contentType.first ?? "")' is not supported; a gRPC request has content-type application/grpc"
            default: message = "more than one content-type header"
            }
            return .rejectWithHTTPStatus(HTTPRejection(status: 415, message: message))
        }

        // 2. :method
        guard fields.method.count == 1, let method = fields.method.first, method == "POST" else {
            let message =
                fields.method.count == 1
                ? "HTTP method \(fields.method.first ?? "") is not supported; gRPC requests use POST"
                : "missing or repeated :method; gRPC requests use POST"
            return .rejectWithHTTPStatus(HTTPRejection(status: 405, message: message))
        }

        // 3. te
        guard fields.te.count == 1, let te = fields.te.first, equalsASCIICaseInsensitive(te, "trailers") else {
            let found = fields.te.count == 0 ? "no te header" : "te '\(fields.te.all.joined(separator: ", "))'"
            return .rejectWithGRPCStatus(
                GRPCStatus(
                    code: .internalError,
                    message: "expected header 'te: trailers' but found \(found); an intermediary may not support trailers"
                )
            )
        }

        // 4. :scheme, :path present
        guard fields.scheme.count == 1, let scheme = fields.scheme.first, !scheme.isEmpty else {
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "missing or repeated :scheme header"))
        }
        guard fields.path.count == 1, let path = fields.path.first else {
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "missing or repeated :path header"))
        }

        // 5. :path form
        guard isValidPath(path) else {
            return .rejectWithGRPCStatus(
                GRPCStatus(code: .unimplemented, message: "malformed :path '\(path)'; expected /package.Service/Method")
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
                let parsed = try GRPCTimeout(parsing: fields.timeout.first ?? "")
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
            let name = fields.encoding.first ?? ""
            guard let algorithm = GRPCCompression.Algorithm(name: name),
                algorithm == .identity || supportedEncodings.contains(algorithm)
            else {
                let accepted = acceptEncodingValue(supportedEncodings)
                return .rejectWithGRPCStatus(
                    GRPCStatus(
                        code: .unimplemented,
                        message: "grpc-encoding '\(name)' is not supported; supported encodings: \(accepted)"
                    )
                )
            }
            requestEncoding = algorithm
        default:
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "more than one grpc-encoding header"))
        }

        // grpc-accept-encoding: any number of comma-separated lists.
        var acceptedEncodings: [GRPCCompression.Algorithm] = []
        for list in fields.acceptEncoding.all {
            for token in list.split(separator: ",") {
                let name = token.trimmingSpaces()
                if let algorithm = GRPCCompression.Algorithm(name: name), !acceptedEncodings.contains(algorithm) {
                    acceptedEncodings.append(algorithm)
                }
            }
        }

        // 8. metadata
        let metadata: GRPCMetadata
        do throws(GRPCStatus) {
            metadata = try GRPCMetadata(headerFields: fields.custom)
        } catch {
            return .rejectWithGRPCStatus(error)
        }

        return .valid(
            GRPCRequestHead(
                path: path,
                scheme: scheme,
                authority: fields.authority ?? fields.host,
                userAgent: fields.userAgent,
                contentType: contentType,
                timeout: timeout,
                deadline: deadline,
                requestEncoding: requestEncoding,
                acceptedEncodings: acceptedEncodings,
                metadata: metadata
            )
        )
    }

    /// Whether `value` is a gRPC content-type: `application/grpc` alone or followed by
    /// `+subtype` (`+proto`, `+json`, or a custom one, as the spec's grammar allows) or by
    /// `;parameters`. Compared case-insensitively (media types are, RFC 9110 §8.3.1).
    /// `application/grpc-web` is a different protocol and does not qualify.
    public static func isGRPCContentType(_ value: some StringProtocol) -> Bool {
        withUTF8(value) { bytes in
            let prefix: StaticString = "application/grpc"
            let prefixLength = prefix.utf8CodeUnitCount
            guard bytes.count >= prefixLength,
                equalsASCIICaseInsensitive(UnsafeBufferPointer(rebasing: bytes[0..<prefixLength]), prefix)
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

    /// The header values the validation looks at, gathered in one pass without allocating for
    /// the usual one value per name.
    private struct Fields {
        /// The values of one header name: the first, and any further ones (rare, and refused
        /// for most names).
        struct Values {
            private(set) var first: String?
            private(set) var count = 0
            private var rest: [String] = []

            mutating func append(_ value: String) {
                if first == nil { first = value } else { rest.append(value) }
                count += 1
            }

            var all: [String] { first.map { [$0] + rest } ?? [] }
        }

        var method = Values()
        var scheme = Values()
        var path = Values()
        var authority: String?
        var host: String?
        var te = Values()
        var contentType = Values()
        var userAgent: String?
        var timeout = Values()
        var encoding = Values()
        var acceptEncoding = Values()
        var custom: GRPCHeaderFields = []

        mutating func collect(name: String, value: String) {
            // Dispatch on the length first: most names are compared once, and equal small
            // strings compare by their raw bits.
            switch name.utf8.count {
            case 2 where name == "te": te.append(value)
            case 4 where name == "host": host = host ?? value
            case 5 where name == ":path": path.append(value)
            case 7 where name == ":method": method.append(value)
            case 7 where name == ":scheme": scheme.append(value)
            case 10 where name == ":authority": authority = authority ?? value
            case 10 where name == "user-agent": userAgent = userAgent ?? value
            case 12 where name == "content-type": contentType.append(value)
            case 12 where name == "grpc-timeout": timeout.append(value)
            case 13 where name == "grpc-encoding": encoding.append(value)
            case 20 where name == "grpc-accept-encoding": acceptEncoding.append(value)
            default: custom.append((name, value))
            }
        }
    }

    /// ASCII case-insensitive equality of `value` and `expected` (lower-case).
    private static func equalsASCIICaseInsensitive(_ value: UnsafeBufferPointer<UInt8>, _ expected: StaticString) -> Bool {
        guard value.count == expected.utf8CodeUnitCount else { return false }
        let lower = expected.utf8Start
        for index in 0..<value.count {
            let byte = value[index]
            if (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) != lower[index] { return false }
        }
        return true
    }

    private static func equalsASCIICaseInsensitive(_ value: String, _ expected: StaticString) -> Bool {
        withUTF8(value) { equalsASCIICaseInsensitive($0, expected) }
    }

    /// Runs `body` on the UTF-8 bytes of `string` (contiguous for native strings; copied
    /// otherwise).
    private static func withUTF8<T>(_ string: some StringProtocol, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(string.utf8).withUnsafeBufferPointer(body)
    }

    /// Whether `path` has the form `/Service/Method`, both parts non-empty and no third `/`.
    private static func isValidPath(_ path: String) -> Bool {
        withUTF8(path) { bytes in
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

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var result = self
        while result.first == " " || result.first == "\t" { result = result.dropFirst() }
        while result.last == " " || result.last == "\t" { result = result.dropLast() }
        return result
    }
}
