import AsyncHTTPClient
import Atomics
import Foundation
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

extension AuthPolicy {
    /// OAuth2 access tokens as JWTs (`authorization: Bearer <JWT>`): the `auth.jwt` section.
    /// A token is accepted when its signature verifies with a key of the JWKS (found by the
    /// token's `kid`, with an accepted algorithm), its issuer is `issuer`, its audience includes
    /// one of `audiences` (when any are given) and it is within `exp` and `nbf`, give or take
    /// `clockLeewaySeconds`. Its principal is the first rule its claims match.
    public struct JWT: Sendable, Hashable {
        /// Maps a verified token to a principal.
        public struct Rule: Sendable, Hashable {
            public enum Match: Sendable, Hashable {
                /// The token's `scope` (space-separated, RFC 8693) or `scp` (a list or a string)
                /// holds a scope matching the pattern.
                case scope(String)
                /// The claim (a dotted path reaches into objects: `realm_access.roles`) is a
                /// string, number or boolean matching the pattern, or a list holding one.
                case claim(name: String, pattern: String)
                /// Every verified token.
                case anyToken
            }

            public var principal: String
            public var match: Match

            public init(principal: String, match: Match) {
                self.principal = principal
                self.match = match
            }
        }

        /// The asymmetric algorithms accepted unless configured otherwise. HMAC (`HS*`) and
        /// `none` are never accepted: a gateway verifies with public keys only.
        public static let supportedAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

        /// Where the JWKS (`{"keys": [...]}`) comes from, read again every `refreshInterval`.
        public enum KeySource: Sendable, Hashable, CustomStringConvertible {
            case file(String)
            /// Fetched with GET (HTTPS, or HTTP on a trusted network); 200 and at most 1 MiB.
            case url(String)

            public var description: String {
                switch self {
                case .file(let path): return "the JWKS file \(path)"
                case .url(let url): return "the JWKS at \(url)"
                }
            }
        }

        public var keys: KeySource
        /// The `iss` every token must carry.
        public var issuer: String
        /// The token's `aud` must include one of these; empty: not checked.
        public var audiences: [String] = []
        public var algorithms: [String] = JWT.supportedAlgorithms
        /// Tolerance for clocks that differ, on `exp` and `nbf`.
        public var clockLeewaySeconds: Int = 60
        /// How often the JWKS file is read again; a changed file replaces the keys, a file that
        /// cannot be read or parsed keeps the keys in use.
        public var refreshInterval: TimeAmount = .seconds(10)
        public var rules: [Rule] = []

        public init(keys: KeySource, issuer: String) {
            self.keys = keys
            self.issuer = issuer
        }
    }
}

/// A JSON value of a token's claims.
enum ClaimValue: Decodable, Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case list([ClaimValue])
    case object([String: ClaimValue])
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([ClaimValue].self) {
            self = .list(value)
        } else {
            self = .object(try container.decode([String: ClaimValue].self))
        }
    }

    /// The scalar values of this claim as text (a list's members, one level deep).
    var texts: [String] {
        switch self {
        case .string(let text): return [text]
        case .number(let number): return [number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)]
        case .bool(let flag): return [flag ? "true" : "false"]
        case .list(let values): return values.flatMap { value -> [String] in
                if case .list = value { return [] }
                return value.texts
            }
        case .object, .null: return []
        }
    }
}

/// The claims of a token: the registered ones the gateway checks, and all of them for rules.
struct TokenClaims: JWTPayload {
    var issuer: IssuerClaim?
    var subject: SubjectClaim?
    var audience: AudienceClaim?
    var expiration: ExpirationClaim?
    var notBefore: NotBeforeClaim?
    var all: [String: ClaimValue]

    private enum Registered: String, CodingKey {
        case issuer = "iss", subject = "sub", audience = "aud", expiration = "exp", notBefore = "nbf"
    }

    init(from decoder: any Decoder) throws {
        let registered = try decoder.container(keyedBy: Registered.self)
        issuer = try registered.decodeIfPresent(IssuerClaim.self, forKey: .issuer)
        subject = try registered.decodeIfPresent(SubjectClaim.self, forKey: .subject)
        audience = try registered.decodeIfPresent(AudienceClaim.self, forKey: .audience)
        expiration = try registered.decodeIfPresent(ExpirationClaim.self, forKey: .expiration)
        notBefore = try registered.decodeIfPresent(NotBeforeClaim.self, forKey: .notBefore)
        all = try decoder.singleValueContainer().decode([String: ClaimValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var registered = encoder.container(keyedBy: Registered.self)
        try registered.encodeIfPresent(issuer, forKey: .issuer)
        try registered.encodeIfPresent(subject, forKey: .subject)
    }

    /// Required by `JWTPayload`; the gateway checks the claims itself, synchronously and with its
    /// own clock and leeway, in `JWTVerifier.check(_:now:)`. jwt-kit never calls this here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    /// The value at a dotted path (`realm_access.roles`).
    func value(at path: String) -> ClaimValue? {
        if let direct = all[path] { return direct }
        var current: ClaimValue? = .object(all)
        for part in path.split(separator: ".") {
            guard case .object(let members) = current else { return nil }
            current = members[String(part)]
        }
        return current
    }

    /// The token's scopes: `scope` split on spaces, and `scp` (a list or a string).
    var scopes: [String] {
        var scopes: [String] = []
        if case .string(let text) = all["scope"] { scopes += text.split(separator: " ").map(String.init) }
        switch all["scp"] {
        case .string(let text): scopes += text.split(separator: " ").map(String.init)
        case .list(let values): scopes += values.flatMap(\.texts)
        default: break
        }
        return scopes
    }

    /// Whether these claims satisfy `match`.
    func satisfies(_ match: AuthPolicy.JWT.Rule.Match) -> Bool {
        switch match {
        case .anyToken: return true
        case .scope(let pattern): return scopes.contains { Glob.matches(pattern, $0) }
        case .claim(let name, let pattern): return value(at: name)?.texts.contains { Glob.matches(pattern, $0) } ?? false
        }
    }
}

/// The verification keys of one JWKS, by key id and algorithm. Immutable.
final class JWTKeySet: Sendable {
    let keys: [String: [String: any JWTAlgorithm]]

    init(keys: [String: [String: any JWTAlgorithm]]) { self.keys = keys }

    var keyIDs: [String] { keys.keys.sorted() }

    /// Parses a JWKS document. Every key needs a `kid`; keys of a type or algorithm not accepted
    /// are left out; a private key is refused (the gateway needs public keys only).
    static func load(jwks data: [UInt8], algorithms accepted: [String]) async throws(JWTKeySetError) -> JWTKeySet {
        let jwks: JWKS
        do {
            jwks = try JSONDecoder().decode(JWKS.self, from: Data(data))
        } catch {
            throw JWTKeySetError("it is not a JWKS document ({\"keys\": [...]}) (\(Self.describe(error)))")
        }
        var keys: [String: [String: any JWTAlgorithm]] = [:]
        for (index, jwk) in jwks.keys.enumerated() {
            guard let kid = jwk.keyIdentifier?.string, !kid.isEmpty else {
                throw JWTKeySetError("key \(index + 1) has no kid; tokens name their key by kid, so every key needs one")
            }
            // `d`, the private part of RSA, EC and OKP keys alike.
            if jwk.privateExponent != nil {
                throw JWTKeySetError("key '\(kid)' holds a private key; give the gateway the public keys only")
            }
            let candidates: [String]
            if let algorithm = jwk.algorithm {
                candidates = [algorithm.rawValue]
            } else if jwk.keyType == .rsa {
                candidates = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
            } else if jwk.keyType == .ecdsa {
                switch jwk.curve?.rawValue {
                case "P-256": candidates = ["ES256"]
                case "P-384": candidates = ["ES384"]
                case "P-521": candidates = ["ES512"]
                default: candidates = []
                }
            } else if jwk.keyType == .octetKeyPair {
                candidates = ["EdDSA"]
            } else {
                candidates = []
            }
            let collection = JWTKeyCollection()
            do {
                try await collection.add(jwk: jwk)
            } catch {
                throw JWTKeySetError("key '\(kid)' cannot be used (\(Self.describe(error)))")
            }
            for algorithm in candidates where accepted.contains(algorithm) {
                guard let key = try? await collection.getKey(for: JWKIdentifier(string: kid), alg: algorithm), key.name == algorithm else { continue }
                keys[kid, default: [:]][algorithm] = key
            }
        }
        guard !keys.isEmpty else {
            throw JWTKeySetError("it has no key usable with the accepted algorithms (\(accepted.joined(separator: ", ")))")
        }
        return JWTKeySet(keys: keys)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DecodingError {
            switch error {
            case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
                let path = context.codingPath.map(\.stringValue).joined(separator: ".")
                return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
            @unknown default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

/// Why a JWKS could not be used.
public struct JWTKeySetError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Why a bearer token was refused: each case's text says which check failed, never the token.
enum JWTRejection: Error, Equatable {
    case malformed(String)
    case unknownKey(String?)
    case algorithmNotAccepted(String)
    case keyAlgorithmMismatch(kid: String, algorithm: String)
    case badSignature
    case missingExpiry
    case expired(Date)
    case notYetValid(Date)
    case wrongIssuer(String?)
    case wrongAudience([String])

    var message: String {
        switch self {
        case .malformed(let why): return "the bearer token is not a well-formed JWT (\(why))"
        case .unknownKey(let kid?): return "the bearer token is signed with key id '\(kid)', which the gateway's JWKS does not hold"
        case .unknownKey(nil): return "the bearer token has no kid in its header; the gateway finds keys by kid"
        case .algorithmNotAccepted(let algorithm): return "the bearer token is signed with \(algorithm), which the gateway does not accept (auth.jwt.algorithms)"
        case .keyAlgorithmMismatch(let kid, let algorithm): return "the bearer token says \(algorithm), but the JWKS key '\(kid)' is not for \(algorithm)"
        case .badSignature: return "the bearer token's signature does not verify with the JWKS key it names"
        case .missingExpiry: return "the bearer token has no exp claim; the gateway accepts only tokens that expire"
        case .expired(let date): return "the bearer token expired at \(Self.format(date))"
        case .notYetValid(let date): return "the bearer token is not valid before \(Self.format(date))"
        case .wrongIssuer(let issuer?): return "the bearer token's issuer '\(issuer)' is not the one the gateway trusts"
        case .wrongIssuer(nil): return "the bearer token has no iss claim"
        case .wrongAudience(let audience):
            return audience.isEmpty ? "the bearer token has no aud claim" : "the bearer token's audience \(audience) does not include this gateway"
        }
    }

    private static func format(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

/// Verifies bearer JWTs against the keys of a JWKS (a file or a URL), which it reads again every
/// `refreshInterval` off the serving loops. Shared by every loop: verification reads the current
/// key set under a lock, which happens only when a loop's token cache misses; a cache hit reads
/// `keysVersion` alone (one atomic load), so that a key dropped from the JWKS invalidates
/// every cached token at once.
public final class JWTVerifier: Sendable {
    public let settings: AuthPolicy.JWT
    private let keySet: NIOLockedValueBox<JWTKeySet>
    private let version = ManagedAtomic(1)
    private let refresher = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let lastFile: NIOLockedValueBox<[UInt8]>
    private let refreshes = (loaded: ManagedAtomic<UInt64>(0), failed: ManagedAtomic<UInt64>(0))
    /// The current time; injectable for tests.
    let now: @Sendable () -> Date

    /// A verifier without keys (every token is refused) until `loadKeys` installs the JWKS.
    public init(settings: AuthPolicy.JWT, now: @escaping @Sendable () -> Date = { Date() }) {
        self.settings = settings
        self.keySet = NIOLockedValueBox(JWTKeySet(keys: [:]))
        self.lastFile = NIOLockedValueBox([])
        self.now = now
    }

    /// Reads and installs the JWKS, or says what is wrong with it (the keys in use stay).
    public func loadKeys(threadPool: NIOThreadPool) async throws(JWTKeySetError) {
        let bytes = try await Self.read(settings.keys, threadPool: threadPool)
        do {
            try await refresh(with: bytes)
        } catch {
            throw JWTKeySetError("\(settings.keys) cannot be used: \(error.description)")
        }
    }

    /// The largest JWKS document taken from a URL.
    static let maximumDocumentSize = 1 << 20

    private static func read(_ source: AuthPolicy.JWT.KeySource, threadPool: NIOThreadPool) async throws(JWTKeySetError) -> [UInt8] {
        switch source {
        case .file(let path):
            do {
                return try await threadPool.runIfActive { try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) }
            } catch {
                throw JWTKeySetError("the JWKS file \(path) cannot be read (\((error as NSError).localizedDescription))")
            }
        case .url(let url):
            do {
                var request = HTTPClientRequest(url: url)
                request.headers.add(name: "accept", value: "application/json, application/jwk-set+json")
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                guard response.status == .ok else {
                    throw JWTKeySetError("the JWKS at \(url) answered \(response.status.code) \(response.status.reasonPhrase)")
                }
                var body = try await response.body.collect(upTo: maximumDocumentSize)
                return body.readBytes(length: body.readableBytes) ?? []
            } catch let error as JWTKeySetError {
                throw error
            } catch {
                throw JWTKeySetError("the JWKS at \(url) cannot be fetched (\(error))")
            }
        }
    }

    /// Changes with every key set installed.
    var keysVersion: Int { version.load(ordering: .relaxed) }

    /// The key ids in use.
    public var keyIDs: [String] { keySet.withLockedValue { $0.keyIDs } }

    /// JWKS reads that installed new keys, and that failed (the keys in use were kept).
    public var refreshCounts: (loaded: UInt64, failed: UInt64) {
        (refreshes.loaded.load(ordering: .relaxed), refreshes.failed.load(ordering: .relaxed))
    }

    /// Installs the keys of `bytes` when they differ from the file last read.
    @discardableResult
    func refresh(with bytes: [UInt8]) async throws(JWTKeySetError) -> Bool {
        guard lastFile.withLockedValue({ $0 != bytes }) else { return false }
        let keys = try await JWTKeySet.load(jwks: bytes, algorithms: settings.algorithms)
        keySet.withLockedValue { $0 = keys }
        lastFile.withLockedValue { $0 = bytes }
        version.wrappingIncrement(ordering: .relaxed)
        return true
    }

    /// Re-reads the JWKS file every `refreshInterval` until `stopRefreshing`.
    public func startRefreshing(threadPool: NIOThreadPool, logger: Logger) {
        let settings = settings
        let task = Task { [self] in
            var failing = false
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(max(settings.refreshInterval.nanoseconds, 1_000_000)))
                if Task.isCancelled { break }
                do {
                    let bytes = try await Self.read(settings.keys, threadPool: threadPool)
                    if try await refresh(with: bytes) {
                        refreshes.loaded.wrappingIncrement(ordering: .relaxed)
                        logger.notice("JWKS reloaded", metadata: ["source": "\(settings.keys)", "kids": "\(keyIDs)"])
                    }
                    if failing { logger.notice("JWKS readable again", metadata: ["source": "\(settings.keys)"]) }
                    failing = false
                } catch {
                    refreshes.failed.wrappingIncrement(ordering: .relaxed)
                    // Logged once per failing spell, not every interval.
                    if !failing {
                        logger.error(
                            "JWKS refresh failed; the keys in use are kept",
                            metadata: ["source": "\(settings.keys)", "error": "\(error)", "kids": "\(keyIDs)"])
                    }
                    failing = true
                }
            }
        }
        refresher.withLockedValue { $0 = task }
    }

    public func stopRefreshing() {
        refresher.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    /// Verifies `token` (the JWT alone, without "Bearer "): signature, then issuer, audience,
    /// expiry and not-before. Allocates; the callers cache what it returns.
    func verify(_ token: Substring) -> Result<TokenClaims, JWTRejection> {
        let bytes = Array(token.utf8)
        guard let lastDot = bytes.lastIndex(of: UInt8(ascii: ".")) else { return .failure(.malformed("it has no signature part")) }
        let parsed: (header: JWTHeader, payload: TokenClaims, signature: Data)
        do {
            parsed = try DefaultJWTParser().parse(bytes, as: TokenClaims.self)
        } catch {
            return .failure(.malformed("its header, claims or signature cannot be decoded"))
        }
        guard let algorithm = parsed.header.alg else { return .failure(.malformed("its header has no alg")) }
        guard settings.algorithms.contains(algorithm) else { return .failure(.algorithmNotAccepted(algorithm)) }
        let kid = parsed.header.kid
        // Without a kid, a JWKS of one key is unambiguous.
        let keys = keySet.withLockedValue { set in kid.map { set.keys[$0] } ?? (set.keys.count == 1 ? set.keys.first?.value : nil) }
        guard let keys else { return .failure(.unknownKey(kid)) }
        guard let key = keys[algorithm] else { return .failure(.keyAlgorithmMismatch(kid: kid ?? "", algorithm: algorithm)) }
        guard (try? key.verify(parsed.signature, signs: bytes[..<lastDot])) == true else { return .failure(.badSignature) }
        if let rejection = check(parsed.payload, now: now()) { return .failure(rejection) }
        return .success(parsed.payload)
    }

    /// The claim checks, on verified claims.
    func check(_ claims: TokenClaims, now: Date) -> JWTRejection? {
        let leeway = TimeInterval(settings.clockLeewaySeconds)
        guard let expiration = claims.expiration else { return .missingExpiry }
        guard (try? expiration.verifyNotExpired(currentDate: now.addingTimeInterval(-leeway))) != nil else { return .expired(expiration.value) }
        if let notBefore = claims.notBefore, (try? notBefore.verifyNotBefore(currentDate: now.addingTimeInterval(leeway))) == nil {
            return .notYetValid(notBefore.value)
        }
        guard claims.issuer?.value == settings.issuer else { return .wrongIssuer(claims.issuer?.value) }
        if !settings.audiences.isEmpty {
            let audience = claims.audience?.value ?? []
            guard audience.contains(where: settings.audiences.contains) else { return .wrongAudience(audience) }
        }
        return nil
    }

    /// Whether a bearer value's token has the shape of a JWT (three dot-separated parts): such
    /// values go to this verifier, others are API keys.
    static func looksLikeJWT(_ value: String) -> Bool {
        var dots = 0
        for byte in value.utf8 where byte == UInt8(ascii: ".") { dots += 1 }
        return dots == 2
    }
}
