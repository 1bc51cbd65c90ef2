import NIOCore

/// The request headers of one gRPC call on the server, checked against PROTOCOL-HTTP2.md
/// ("Requests") and parsed into what the rest of the gateway needs.
///
/// Build one with `validate(_:receivedAt:supportedEncodings:)`, which either returns a head or
/// says how to refuse the request: with an HTTP status (the request is not gRPC at all) or with
/// a gRPC status in a Trailers-Only response (it is gRPC, but broken or unsupported).
public struct GRPCRequestHead: Sendable, Hashable {
    /// `:path`, e.g. `/inference.GRPCInferenceService/ModelInfer`.
    public var path: String
    /// The service part of the path, e.g. `inference.GRPCInferenceService`.
    public var service: String
    /// The method part of the path, e.g. `ModelInfer`.
    public var method: String
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
            case 1: message = "content-type '\(fields.contentType[0])' is not supported; a gRPC request has content-type application/grpc"
            default: message = "more than one content-type header"
            }
            return .rejectWithHTTPStatus(HTTPRejection(status: 415, message: message))
        }

        // 2. :method
        guard fields.method.count == 1, fields.method[0] == "POST" else {
            let message =
                fields.method.count == 1
                ? "HTTP method \(fields.method[0]) is not supported; gRPC requests use POST"
                : "missing or repeated :method; gRPC requests use POST"
            return .rejectWithHTTPStatus(HTTPRejection(status: 405, message: message))
        }

        // 3. te
        guard fields.te.count == 1, fields.te[0].lowercased() == "trailers" else {
            let found = fields.te.isEmpty ? "no te header" : "te '\(fields.te.joined(separator: ", "))'"
            return .rejectWithGRPCStatus(
                GRPCStatus(
                    code: .internalError,
                    message: "expected header 'te: trailers' but found \(found); an intermediary may not support trailers"
                )
            )
        }

        // 4. :scheme, :path present
        guard fields.scheme.count == 1, !fields.scheme[0].isEmpty else {
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "missing or repeated :scheme header"))
        }
        guard fields.path.count == 1 else {
            return .rejectWithGRPCStatus(GRPCStatus(code: .internalError, message: "missing or repeated :path header"))
        }

        // 5. :path form
        let path = fields.path[0]
        guard let parts = splitPath(path) else {
            return .rejectWithGRPCStatus(
                GRPCStatus(code: .unimplemented, message: "malformed :path '\(path)'; expected /package.Service/Method")
            )
        }
        let (service, method) = parts

        // 6. grpc-timeout
        var timeout: GRPCTimeout?
        var deadline: NIODeadline?
        switch fields.timeout.count {
        case 0:
            break
        case 1:
            do throws(GRPCTimeout.ParseError) {
                let parsed = try GRPCTimeout(parsing: fields.timeout[0])
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
            let name = fields.encoding[0]
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
        for list in fields.acceptEncoding {
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
                service: String(service),
                method: String(method),
                scheme: fields.scheme[0],
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
        let lowered = value.lowercased()
        guard lowered.hasPrefix("application/grpc") else { return false }
        let rest = lowered.utf8.dropFirst("application/grpc".utf8.count)
        guard let next = rest.first else { return true }
        if next == UInt8(ascii: ";") { return true }
        return next == UInt8(ascii: "+") && rest.count > 1
    }

    /// The value of `grpc-accept-encoding` advertising `encodings` (identity first, always).
    public static func acceptEncodingValue(_ encodings: [GRPCCompression.Algorithm]) -> String {
        var names = ["identity"]
        for encoding in encodings where !names.contains(encoding.name) {
            names.append(encoding.name)
        }
        return names.joined(separator: ",")
    }

    // MARK: - Private

    /// The header values the validation looks at, gathered in one pass.
    private struct Fields {
        var method: [String] = []
        var scheme: [String] = []
        var path: [String] = []
        var authority: String?
        var host: String?
        var te: [String] = []
        var contentType: [String] = []
        var userAgent: String?
        var timeout: [String] = []
        var encoding: [String] = []
        var acceptEncoding: [String] = []
        var custom: GRPCHeaderFields = []

        mutating func collect(name: String, value: String) {
            switch name {
            case ":method": method.append(value)
            case ":scheme": scheme.append(value)
            case ":path": path.append(value)
            case ":authority": authority = authority ?? value
            case "host": host = host ?? value
            case "te": te.append(value)
            case "content-type": contentType.append(value)
            case "user-agent": userAgent = userAgent ?? value
            case "grpc-timeout": timeout.append(value)
            case "grpc-encoding": encoding.append(value)
            case "grpc-accept-encoding": acceptEncoding.append(value)
            default: custom.append((name, value))
            }
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
