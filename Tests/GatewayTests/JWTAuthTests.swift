@testable import Gateway
import Foundation
import H2Transport
import JWTKit
import NIOConcurrencyHelpers
import XCTest

/// OAuth2 access tokens: the matrix of valid, wrong, expired, not yet valid, revoked (key
/// rotated out) and not allowed tokens, signed here with jwt-kit and checked by the gateway's
/// verifier with an injected clock; JWKS rotation and refresh failure.
final class JWTAuthTests: XCTestCase {
    private struct Claims: JWTPayload {
        var iss: String?
        var sub: String?
        var aud: [String]?
        var exp: Int?
        var nbf: Int?
        var scope: String?
        var groups: [String]?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    private let issuer = "https://login.example.com/"
    private let start = Date(timeIntervalSince1970: 1_800_000_000)
    private let clock = NIOLockedValueBox(Date(timeIntervalSince1970: 1_800_000_000))
    private let ecKey = ES256PrivateKey()
    private let otherECKey = ES256PrivateKey()
    private let edKey = try! EdDSA.PrivateKey()

    private func jwks(ec: ES256PrivateKey? = nil, ecKID: String = "ec-1", ed: Bool = true) -> [UInt8] {
        var keys: [String] = []
        if let parameters = (ec ?? ecKey).publicKey.parameters {
            keys.append(#"{"kty":"EC","crv":"P-256","kid":"\#(ecKID)","x":"\#(parameters.x)","y":"\#(parameters.y)","use":"sig"}"#)
        }
        if ed {
            let x = edKey.publicKey.rawRepresentation.base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            keys.append(#"{"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"\#(x)","alg":"EdDSA"}"#)
        }
        return Array(#"{"keys":[\#(keys.joined(separator: ","))]}"#.utf8)
    }

    private func settings() -> AuthPolicy.JWT {
        var jwt = AuthPolicy.JWT(keys: .file("/unused"), issuer: issuer)
        jwt.audiences = ["switchyard"]
        jwt.clockLeewaySeconds = 30
        jwt.rules = [
            .init(principal: "scorer", match: .scope("models.infer")),
            .init(principal: "ml-team", match: .claim(name: "groups", pattern: "ml-*")),
        ]
        return jwt
    }

    private func policy(_ verifier: JWTVerifier, generation: Int = 1) -> CompiledAuthPolicy {
        var policy = AuthPolicy()
        policy.jwt = verifier.settings
        policy.principals = ["scorer": .init(models: ["simple"], methods: [.inference]), "ml-team": .init()]
        policy.anonymousOnPlaintext = false
        return CompiledAuthPolicy(policy, generation: generation, jwt: verifier)
    }

    private func verifier(_ settings: AuthPolicy.JWT? = nil, jwks: [UInt8]? = nil) async throws -> JWTVerifier {
        let clock = self.clock
        let verifier = JWTVerifier(settings: settings ?? self.settings(), now: { clock.withLockedValue { $0 } })
        try await verifier.refresh(with: jwks ?? self.jwks())
        return verifier
    }

    private func claims(
        iss: String? = nil, sub: String = "user-1", aud: [String]? = ["switchyard"], expiresIn: Int? = 300, notBeforeIn: Int? = nil,
        scope: String? = "openid models.infer", groups: [String]? = nil
    ) -> Claims {
        let now = Int(start.timeIntervalSince1970)
        return Claims(
            iss: iss ?? issuer, sub: sub, aud: aud, exp: expiresIn.map { now + $0 }, nbf: notBeforeIn.map { now + $0 }, scope: scope, groups: groups)
    }

    private func sign(_ claims: Claims, key: ES256PrivateKey? = nil, kid: String = "ec-1") async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key ?? ecKey, kid: JWKIdentifier(string: kid))
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    private func signEd(_ claims: Claims) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(eddsa: edKey, kid: "ed-1")
        return try await keys.sign(claims, kid: "ed-1")
    }

    private func authenticate(_ token: String, _ policy: CompiledAuthPolicy, cache: Authenticator.KeyCache? = nil) -> Result<Principal, RPCError> {
        Authenticator.authenticate(
            metadata: GRPCMetadata(["authorization": "Bearer \(token)"]),
            connection: HTTP2ConnectionInfo(remoteAddress: "127.0.0.1:1", localAddress: "127.0.0.1:2", isSecure: false), policy: policy, cache: cache)
    }

    private func outcome(_ result: Result<Principal, RPCError>) -> String {
        switch result {
        case .success(let principal): return principal.name
        case .failure(let error): return "\(error.code)"
        }
    }

    func testEachKindOfTokenGivesItsPrincipalOrTheRightRefusal() async throws {
        let verifier = try await verifier()
        let policy = policy(verifier)
        var wrongAlgorithms = settings()
        wrongAlgorithms.algorithms = ["RS256", "EdDSA"]
        let rsaOnly = self.policy(try await self.verifier(wrongAlgorithms))
        let unsigned = try await sign(claims()).split(separator: ".").prefix(2).joined(separator: ".") + "."
        let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let noneToken = noneHeader + "." + (try await sign(claims())).split(separator: ".")[1] + "."
        let cases: [(String, String, CompiledAuthPolicy, String)] = [
            ("ES256, scope", try await sign(claims()), policy, "scorer"),
            ("EdDSA, group claim", try await signEd(claims(scope: nil, groups: ["ops", "ml-research"])), policy, "ml-team"),
            ("valid, no rule matches", try await sign(claims(scope: "openid", groups: ["sales"])), policy, "PERMISSION_DENIED"),
            ("signed by another key with the same kid", try await sign(claims(), key: otherECKey), policy, "UNAUTHENTICATED"),
            ("unknown kid", try await sign(claims(), key: otherECKey, kid: "ec-9"), policy, "UNAUTHENTICATED"),
            ("expired", try await sign(claims(expiresIn: -31)), policy, "UNAUTHENTICATED"),
            ("expired, within the leeway", try await sign(claims(expiresIn: -29)), policy, "scorer"),
            ("not yet valid", try await sign(claims(notBeforeIn: 31)), policy, "UNAUTHENTICATED"),
            ("not yet valid, within the leeway", try await sign(claims(notBeforeIn: 29)), policy, "scorer"),
            ("no exp", try await sign(claims(expiresIn: nil)), policy, "UNAUTHENTICATED"),
            ("another issuer", try await sign(claims(iss: "https://evil.example.com/")), policy, "UNAUTHENTICATED"),
            ("another audience", try await sign(claims(aud: ["billing"])), policy, "UNAUTHENTICATED"),
            ("no audience", try await sign(claims(aud: nil)), policy, "UNAUTHENTICATED"),
            ("algorithm not accepted", try await sign(claims()), rsaOnly, "UNAUTHENTICATED"),
            ("signature stripped", unsigned, policy, "UNAUTHENTICATED"),
            ("alg none", String(noneToken), policy, "UNAUTHENTICATED"),
            ("garbage with two dots", "abc.def.ghi", policy, "UNAUTHENTICATED"),
        ]
        for (what, token, policy, expected) in cases {
            let result = authenticate(token, policy)
            XCTAssertEqual(outcome(result), expected, what)
            if case .failure(let error) = result {
                XCTAssertFalse(error.message.contains(token), "\(what): the message repeats the token")
                XCTAssertFalse(error.message.contains(token.split(separator: ".").last.map(String.init) ?? "-"), "\(what): the message repeats the signature")
            }
        }
    }

    func testRefusalsSayWhichCheckFailed() async throws {
        let verifier = try await verifier()
        let policy = policy(verifier)
        func message(_ token: String) -> String {
            guard case .failure(let error) = authenticate(token, policy) else { return "accepted" }
            return error.message
        }
        let checks: [(Claims, ES256PrivateKey?, String, String)] = [
            (claims(expiresIn: -100), nil, "ec-1", "expired at 2027-01-15T07:58:20Z"),
            (claims(), otherECKey, "ec-9", "key id 'ec-9'"),
            (claims(), otherECKey, "ec-1", "signature does not verify"),
            (claims(iss: "https://evil.example.com/"), nil, "ec-1", "issuer 'https://evil.example.com/'"),
            (claims(aud: ["billing"]), nil, "ec-1", "audience [\"billing\"]"),
            (claims(scope: nil), nil, "ec-1", "(sub 'user-1') is valid, but its claims match no rule"),
        ]
        for (claims, key, kid, words) in checks {
            let text = message(try await sign(claims, key: key, kid: kid))
            XCTAssertTrue(text.contains(words), "\(words): \(text)")
        }
    }

    func testACachedTokenStopsAtItsExpiryAndWhenItsKeyLeavesTheJWKS() async throws {
        let verifier = try await verifier()
        let policy = policy(verifier)
        let cache = Authenticator.KeyCache()
        let token = try await sign(claims(expiresIn: 60))
        let first = try authenticate(token, policy, cache: cache).get()
        XCTAssertTrue(first === (try authenticate(token, policy, cache: cache).get()))
        // Past exp + leeway: refused although cached.
        clock.withLockedValue { $0 = start.addingTimeInterval(60 + 31) }
        XCTAssertEqual(outcome(authenticate(token, policy, cache: cache)), "UNAUTHENTICATED")
        clock.withLockedValue { $0 = start }
        XCTAssertEqual(outcome(authenticate(token, policy, cache: cache)), "scorer")
        // The issuer rotates ec-1 out: the cached token is refused at once.
        try await verifier.refresh(with: jwks(ec: otherECKey, ecKID: "ec-2"))
        XCTAssertEqual(outcome(authenticate(token, policy, cache: cache)), "UNAUTHENTICATED")
        let rotated = try await sign(claims(), key: otherECKey, kid: "ec-2")
        XCTAssertEqual(outcome(authenticate(rotated, policy, cache: cache)), "scorer")
    }

    func testARefreshThatFailsKeepsTheKeysInUse() async throws {
        let verifier = try await verifier()
        let policy = policy(verifier)
        let token = try await sign(claims())
        let version = verifier.keysVersion
        for broken in ["{not json", #"{"keys":[]}"#, #"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#] {
            do {
                try await verifier.refresh(with: Array(broken.utf8))
                XCTFail("\(broken) was accepted")
            } catch {}
        }
        XCTAssertEqual(verifier.keysVersion, version)
        XCTAssertEqual(outcome(authenticate(token, policy)), "scorer")
        // The same file again changes nothing.
        let unchanged = try await verifier.refresh(with: jwks())
        XCTAssertFalse(unchanged)
        XCTAssertEqual(verifier.keysVersion, version)
    }

    func testAJWKSWithAPrivateKeyOrAKeyWithoutKidIsRefused() async throws {
        let parameters = try XCTUnwrap(ecKey.publicKey.parameters)
        let withPrivate = #"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"\#(parameters.x)","y":"\#(parameters.y)","d":"AAAA"}]}"#
        let withoutKid = #"{"keys":[{"kty":"EC","crv":"P-256","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
        for (document, expected) in [(withPrivate, "holds a private key"), (withoutKid, "has no kid")] {
            do {
                _ = try await JWTKeySet.load(jwks: Array(document.utf8), algorithms: AuthPolicy.JWT.supportedAlgorithms)
                XCTFail("accepted")
            } catch {
                XCTAssertTrue(error.description.contains(expected), error.description)
                XCTAssertFalse(error.description.contains("AAAA"))
            }
        }
    }

    func testAPIKeysStillWorkNextToTokens() async throws {
        let verifier = try await verifier()
        var policy = AuthPolicy()
        policy.jwt = verifier.settings
        policy.apiKeys = [.init(principal: "ml-team", sha256: Digest.sha256("sy_key".utf8))]
        policy.principals = ["scorer": .init(), "ml-team": .init()]
        let compiled = CompiledAuthPolicy(policy, generation: 1, jwt: verifier)
        XCTAssertEqual(outcome(authenticate("sy_key", compiled)), "ml-team")
        let token = try await sign(claims())
        XCTAssertEqual(outcome(authenticate(token, compiled)), "scorer")
        XCTAssertFalse(compiled.anonymousOnTLS, "with tokens configured, the TLS listener wants credentials")
    }

    func testMetricLabelsNameAtMostFiftyPrincipalsAndOtherOnlyGrows() {
        var labels = PrincipalLabels()
        let few = (0..<3).map { ("p\($0)", [UInt64(0), 0]) }
        XCTAssertEqual(labels.labels(for: few, generation: 1), ["p0", "p1", "p2"])
        var many = (0..<80).map { ("p\($0)", [UInt64(0), 0]) }
        many[70].1 = [5, 0]
        many[3].1 = [1, 0]
        var chosen = labels.labels(for: many, generation: 2)
        XCTAssertEqual(chosen, ["p70", "p3"], "only principals with refusals, most first")
        for index in 0..<80 { many[index].1[1] += UInt64(index) }
        chosen = labels.labels(for: many, generation: 2)
        XCTAssertEqual(chosen.count, 50)
        XCTAssertTrue(chosen.isSuperset(of: ["p70", "p3", "p79", "p31"]), "kept, then the busiest")
        XCTAssertFalse(chosen.contains("p30"))
        many[30].1[0] = 1000
        XCTAssertFalse(labels.labels(for: many, generation: 2).contains("p30"), "no room: stays in other, so other never drops")
        XCTAssertTrue(labels.labels(for: many, generation: 3).contains("p30"), "a new policy starts afresh")
    }
}
