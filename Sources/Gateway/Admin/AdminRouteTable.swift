import Foundation
import NIOHTTP1

/// One admin request as a route sees it.
public struct AdminRequest: Sendable {
    public var method: HTTPMethod
    /// The path without the query, percent-decoded per segment.
    public var path: String
    /// The values of the route pattern's `{name}` segments.
    public var parameters: [String: String]
    /// The query's `name=value` pairs (the last wins).
    public var query: [String: String]
    /// Who asked: the client's address, for logs.
    public var remote: String

    public init(method: HTTPMethod, path: String, parameters: [String: String] = [:], query: [String: String] = [:], remote: String = "?") {
        self.method = method
        self.path = path
        self.parameters = parameters
        self.query = query
        self.remote = remote
    }
}

/// An admin answer: status, content type, body and extra headers.
public struct AdminResponse: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: String
    public var headers: [(name: String, value: String)] = []

    public init(status: HTTPResponseStatus, contentType: String, body: String, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// Plain text; a newline is added when missing.
    public static func text(_ body: String, status: HTTPResponseStatus = .ok) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: body.hasSuffix("\n") ? body : body + "\n")
    }

    /// A JSON value (objects with sorted keys), one line.
    public static func json(_ value: Any, status: HTTPResponseStatus = .ok) -> AdminResponse {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])) ?? Data("null".utf8)
        return AdminResponse(status: status, contentType: "application/json", body: String(decoding: data, as: UTF8.self) + "\n")
    }
}

/// One admin endpoint: a method and a path pattern (`/workers/{pid}/restart`: a `{name}`
/// segment matches any one segment and is handed to the route as a parameter), and the
/// closure that answers, asynchronously, on no particular thread.
public struct AdminRoute: Sendable {
    public var method: HTTPMethod
    public var pattern: String
    /// False for the probes (`/healthz`, `/readyz`), which answer without the bearer token.
    public var requiresToken: Bool
    public var answer: @Sendable (AdminRequest) async -> AdminResponse

    public init(
        _ method: HTTPMethod, _ pattern: String, requiresToken: Bool = true, answer: @escaping @Sendable (AdminRequest) async -> AdminResponse
    ) {
        self.method = method
        self.pattern = pattern
        self.requiresToken = requiresToken
        self.answer = answer
    }

    fileprivate var segments: [Substring] { pattern.split(separator: "/") }
}

/// The admin listener's routes, its bearer token, and the rules around them: HEAD is GET
/// without a body, an unknown path is 404, a known path with another method 405 with `Allow`,
/// a path that does not decode 400, and with a token every route that requires it answers
/// 401 with `WWW-Authenticate: Bearer` unless the request carries `Authorization: Bearer TOKEN`.
/// A value type with no I/O: `AdminHTTPHandler` feeds it requests.
public struct AdminRouteTable: Sendable {
    public var routes: [AdminRoute]
    /// The bearer token every route that requires one checks; nil for none (loopback only).
    private let token: [UInt8]?

    public init(routes: [AdminRoute], bearerToken: String?) {
        self.routes = routes
        self.token = bearerToken.map { Array($0.utf8) }
    }

    /// What to do with a request: answer it with a route, or refuse it at once.
    public enum Decision: Sendable {
        case route(AdminRoute, AdminRequest)
        case refuse(AdminResponse)
    }

    /// Matches `uri` and checks the `authorization` header value (nil when absent).
    public func decide(method: HTTPMethod, uri: String, authorization: String?, remote: String) -> Decision {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = parts.first.map(String.init) ?? uri
        var segments: [String] = []
        for raw in rawPath.split(separator: "/") {
            guard let segment = raw.removingPercentEncoding, !segment.isEmpty, !segment.contains("/") else {
                return .refuse(.text("the path \(Self.printable(rawPath)) is not valid: a segment does not decode", status: .badRequest))
            }
            segments.append(segment)
        }
        let path = "/" + segments.joined(separator: "/")
        let lookup = method == .HEAD ? HTTPMethod.GET : method
        var allowed: [HTTPMethod] = []
        var found: (AdminRoute, [String: String])?
        for route in routes {
            guard let parameters = Self.match(route.segments, segments) else { continue }
            allowed.append(route.method)
            if route.method == lookup && found == nil { found = (route, parameters) }
        }
        let needsToken = found?.0.requiresToken ?? true
        if needsToken, let token {
            if let refusal = Self.checkBearer(authorization, token: token) { return .refuse(refusal) }
        }
        guard let (route, parameters) = found else {
            if allowed.isEmpty {
                let list = routes.map { "\($0.method) \($0.pattern)" }.joined(separator: ", ")
                return .refuse(.text("no admin endpoint \(Self.printable(path)); there are \(list)", status: .notFound))
            }
            if allowed.contains(.GET) { allowed.append(.HEAD) }
            let allow = allowed.map { "\($0)" }.joined(separator: ", ")
            var response = AdminResponse.text("\(method) is not allowed on \(Self.printable(path)); use \(allow)", status: .methodNotAllowed)
            response.headers.append((name: "allow", value: allow))
            return .refuse(response)
        }
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(kv[0]).removingPercentEncoding ?? String(kv[0])
                query[name] = kv.count == 2 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            }
        }
        return .route(route, AdminRequest(method: method, path: path, parameters: parameters, query: query, remote: remote))
    }

    private static func match(_ pattern: [Substring], _ segments: [String]) -> [String: String]? {
        guard pattern.count == segments.count else { return nil }
        var parameters: [String: String] = [:]
        for (expected, actual) in zip(pattern, segments) {
            if expected.hasPrefix("{") && expected.hasSuffix("}") {
                parameters[String(expected.dropFirst().dropLast())] = actual
            } else if expected != actual {
                return nil
            }
        }
        return parameters
    }

    /// nil when `authorization` carries the token; else the 401 saying what is wrong (never
    /// echoing what was sent).
    private static func checkBearer(_ authorization: String?, token: [UInt8]) -> AdminResponse? {
        let challenge = (name: "www-authenticate", value: "Bearer realm=\"switchyard-admin\"")
        guard let authorization, !authorization.isEmpty else {
            var response = AdminResponse.text(
                "this admin endpoint requires a bearer token: send Authorization: Bearer <token> (the gateway's --admin-token-file)",
                status: .unauthorized)
            response.headers.append(challenge)
            return response
        }
        let scheme = authorization.prefix(7)
        let presented = scheme.lowercased() == "bearer " ? Array(authorization.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8) : []
        guard !presented.isEmpty, constantTimeEqual(presented, token) else {
            var response = AdminResponse.text(
                scheme.lowercased() == "bearer "
                    ? "the bearer token is wrong" : "the Authorization header is not a bearer token: send Authorization: Bearer <token>",
                status: .unauthorized)
            response.headers.append((name: challenge.name, value: challenge.value + ", error=\"invalid_token\""))
            return response
        }
        return nil
    }

    /// Compares without an early exit, so that the time taken does not tell how much of a
    /// guess was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }

    /// A path for a message: at most 200 characters, control characters as `?`.
    private static func printable(_ text: String) -> String {
        String(text.prefix(200).map { $0.isASCII && ($0.asciiValue! < 0x20 || $0.asciiValue! == 0x7f) ? "?" : $0 })
    }
}
