@testable import Gateway
import Foundation
import H2Transport
import XCTest

/// The authentication and authorization matrix, without a network: each kind of credential
/// (API key in x-api-key, bearer, client certificate, none) × valid, wrong, revoked, not allowed.
final class AuthTests: XCTestCase {
    private let aliceKey = "sy_alice_key"
    private let bobKey = "sy_bob_key"

    private func policy(alice: Bool = true) -> AuthPolicy {
        var policy = AuthPolicy()
        if alice { policy.apiKeys.append(.init(principal: "alice", sha256: Digest.sha256(aliceKey.utf8))) }
        policy.apiKeys.append(.init(principal: "bob", sha256: Digest.sha256(bobKey.utf8)))
        policy.certificates = [.init(principal: "billing", field: .uri, pattern: "spiffe://example.org/billing/*")]
        policy.principals = [
            "alice": .init(models: ["simple:1", "iris*"], methods: [.inference, .metadata], allowOverride: true),
            "bob": .init(methods: [.statistics]),
            "billing": .init(models: ["*"], methods: [.inference]),
        ]
        return policy
    }

    private let plaintext = HTTP2ConnectionInfo(remoteAddress: "127.0.0.1:1", localAddress: "127.0.0.1:2", isSecure: false)

    private func tls(uri: String?) -> HTTP2ConnectionInfo {
        let peer = uri.map {
            PeerIdentity(commonName: "client", dnsNames: [], uris: [$0], ipAddresses: [], sha256Fingerprint: "", notAfter: Date.distantFuture)
        }
        return HTTP2ConnectionInfo(
            remoteAddress: "10.0.0.1:1", localAddress: "10.0.0.2:2", isSecure: true,
            tls: TLSHandshakeCompleted(negotiatedProtocol: "h2", tlsVersion: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", peer: peer))
    }

    private func authenticate(
        _ pairs: KeyValuePairs<String, String> = [:], on connection: HTTP2ConnectionInfo? = nil, policy: AuthPolicy? = nil,
        cache: Authenticator.KeyCache? = nil
    ) -> Result<Principal, RPCError> {
        Authenticator.authenticate(
            metadata: GRPCMetadata(pairs), connection: connection ?? plaintext, policy: CompiledAuthPolicy(policy ?? self.policy(), generation: 1),
            cache: cache)
    }

    private func name(_ result: Result<Principal, RPCError>) -> String {
        switch result {
        case .success(let principal): return principal.name
        case .failure(let error): return "\(error.code)"
        }
    }

    func testEachKindOfCredentialGivesItsPrincipalOrTheRightRefusal() {
        var anonymousPlaintext = policy()
        anonymousPlaintext.anonymousOnPlaintext = true
        var closed = policy()
        closed.anonymousOnPlaintext = false
        let cases: [(String, Result<Principal, RPCError>, String)] = [
            ("x-api-key, valid", authenticate(["x-api-key": aliceKey]), "alice"),
            ("bearer, valid", authenticate(["authorization": "Bearer \(bobKey)"]), "bob"),
            ("bearer, any case", authenticate(["authorization": "bEaReR \(bobKey)"]), "bob"),
            ("x-api-key, wrong", authenticate(["x-api-key": "sy_nobody"]), "UNAUTHENTICATED"),
            ("bearer, wrong", authenticate(["authorization": "Bearer sy_nobody"]), "UNAUTHENTICATED"),
            ("authorization, not bearer", authenticate(["authorization": "Basic YWxpY2U="]), "UNAUTHENTICATED"),
            ("authorization, bearer without a key", authenticate(["authorization": "Bearer "]), "UNAUTHENTICATED"),
            ("x-api-key, revoked", authenticate(["x-api-key": aliceKey], policy: policy(alice: false)), "UNAUTHENTICATED"),
            ("certificate, matching", authenticate(on: tls(uri: "spiffe://example.org/billing/api")), "billing"),
            ("certificate, not matching, TLS closed", authenticate(on: tls(uri: "spiffe://example.org/other")), "UNAUTHENTICATED"),
            ("no certificate, TLS closed", authenticate(on: tls(uri: nil)), "UNAUTHENTICATED"),
            ("key over certificate", authenticate(["x-api-key": bobKey], on: tls(uri: "spiffe://example.org/billing/x")), "bob"),
            ("none, plaintext open", authenticate(policy: anonymousPlaintext), "anonymous"),
            ("none, plaintext closed", authenticate(policy: closed), "UNAUTHENTICATED"),
        ]
        for (what, result, expected) in cases { XCTAssertEqual(name(result), expected, what) }
    }

    func testRefusalsSayWhatIsWrongAndNeverRepeatTheSecret() throws {
        guard case .failure(let wrong) = authenticate(["x-api-key": "sy_secret_guess"]) else { return XCTFail() }
        XCTAssertEqual(wrong.message, "the API key is not valid (it matches no key in the gateway's configuration)")
        guard case .failure(let basic) = authenticate(["authorization": "Basic c2VjcmV0"]) else { return XCTFail() }
        XCTAssertFalse(basic.message.contains("c2VjcmV0"))
        var closed = policy()
        closed.anonymousOnPlaintext = false
        guard case .failure(let none) = authenticate(policy: closed) else { return XCTFail() }
        XCTAssertTrue(none.message.hasPrefix("this listener requires credentials"), none.message)
    }

    func testPermissionsByModelVersionAndMethodGroup() throws {
        let compiled = CompiledAuthPolicy(policy(), generation: 1)
        let alice = try authenticateOK(["x-api-key": aliceKey], compiled)
        XCTAssertTrue(alice.mayUse(model: "simple", version: "1"))
        XCTAssertFalse(alice.mayUse(model: "simple", version: "2"))
        XCTAssertTrue(alice.mayUse(model: "iris_v2", version: "7"))
        XCTAssertFalse(alice.mayUse(model: "simple_string", version: "1"))
        XCTAssertTrue(alice.mayCall(.inference) && alice.mayCall(.metadata))
        XCTAssertFalse(alice.mayCall(.statistics) || alice.mayCall(.repository))
        XCTAssertEqual(alice.deniedModel("simple", version: "2").message, "principal 'alice' may not use version 2 of model 'simple'")
        let bob = try authenticateOK(["x-api-key": bobKey], compiled)
        XCTAssertTrue(bob.mayUse(model: "anything", version: "9"), "models default to all")
        XCTAssertFalse(bob.mayCall(.inference))
        XCTAssertEqual(
            bob.deniedMethod(.inference, path: "/inference.GRPCInferenceService/ModelInfer").message,
            "principal 'bob' may not call ModelInfer (method group 'inference'); its permissions list statistics")
        XCTAssertEqual(CompiledAuthPolicy.methodGroup(path: "/inference.GRPCInferenceService/RepositoryModelLoad"), .repository)
        XCTAssertEqual(CompiledAuthPolicy.methodGroup(path: "/inference.GRPCInferenceService/ModelConfig"), .metadata)
        XCTAssertNil(CompiledAuthPolicy.methodGroup(path: "/grpc.health.v1.Health/Check"), "health is open")
    }

    func testAPrincipalWithoutPermissionsMayDoNothing() throws {
        var policy = policy()
        policy.principals["bob"] = nil
        let bob = try authenticateOK(["x-api-key": bobKey], CompiledAuthPolicy(policy, generation: 1))
        XCTAssertFalse(bob.isConfigured)
        XCTAssertFalse(AuthPolicy.MethodGroup.allCases.contains { bob.mayCall($0) })
        XCTAssertFalse(bob.mayUse(model: "simple", version: "1"))
    }

    func testTheKeyCacheHashesAKeyOnceAndForgetsEverythingWhenThePolicyChanges() throws {
        let cache = Authenticator.KeyCache()
        let first = CompiledAuthPolicy(policy(), generation: 1)
        let a = try authenticateOK(["x-api-key": aliceKey], first, cache: cache)
        XCTAssertTrue(a === (try authenticateOK(["x-api-key": aliceKey], first, cache: cache)), "the same principal object, from the cache")
        // The same key sent as a bearer value is a different cache entry, not a collision.
        XCTAssertEqual(name(Authenticator.authenticate(metadata: GRPCMetadata(["authorization": "Bearer \(aliceKey)"]), connection: plaintext, policy: first, cache: cache)), "alice")
        XCTAssertEqual(name(Authenticator.authenticate(metadata: GRPCMetadata(["x-api-key": "Bearer \(aliceKey)"]), connection: plaintext, policy: first, cache: cache)), "UNAUTHENTICATED")
        // A reload that revokes alice: the cached entry must not survive it.
        let revoked = CompiledAuthPolicy(policy(alice: false), generation: 2)
        XCTAssertEqual(name(Authenticator.authenticate(metadata: GRPCMetadata(["x-api-key": aliceKey]), connection: plaintext, policy: revoked, cache: cache)), "UNAUTHENTICATED")
    }

    func testGlobs() {
        let cases: [(String, String, Bool)] = [
            ("*", "", true), ("*", "anything", true), ("simple", "simple", true), ("simple", "simple2", false),
            ("simple*", "simple", true), ("simple*", "simple_string", true), ("*string", "simple_string", true),
            ("s*e", "simple", true), ("s*e", "simples", false), ("spiffe://a/*/x", "spiffe://a/b/c/x", true),
            ("spiffe://a/*/x", "spiffe://a/b/c/y", false), ("a**b", "ab", true), ("", "", true), ("", "a", false),
        ]
        for (pattern, text, expected) in cases { XCTAssertEqual(Glob.matches(pattern, text), expected, "\(pattern) ~ \(text)") }
    }

    func testDigestMatchesKnownSHA256AndComparesInConstantTime() {
        XCTAssertEqual(Digest.sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertTrue(Digest.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Digest.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Digest.constantTimeEquals([1, 2, 3], [1, 2]))
    }

    private func authenticateOK(
        _ pairs: KeyValuePairs<String, String>, _ policy: CompiledAuthPolicy, cache: Authenticator.KeyCache? = nil
    ) throws -> Principal {
        try Authenticator.authenticate(metadata: GRPCMetadata(pairs), connection: plaintext, policy: policy, cache: cache).get()
    }
}
