import Gateway
import Yams

extension ConfigReader {
    /// `auth` (how callers prove who they are) and `principals` (what each may do).
    mutating func readAuth(_ authNode: Node?, principals principalsNode: Node?, into settings: inout ServeSettings) {
        var policy = AuthPolicy()
        var referenced: [(name: String, node: Node)] = []
        if let authNode, let auth = mapping(authNode, "auth", keys: ["api_keys", "client_certificates", "jwt", "anonymous"]) {
            for keyNode in auth["api_keys"].map({ sequence($0, "api_keys") }) ?? [] {
                guard let fields = mapping(keyNode, "an API key", keys: ["principal", "sha256"]) else { continue }
                guard let principalNode = fields["principal"], let principal = string(principalNode, "a principal name") else {
                    error(keyNode, "an API key without its principal", hint: "add principal: NAME (a name under principals)")
                    continue
                }
                guard let digestNode = fields["sha256"], let text = string(digestNode, "the key's SHA-256") else {
                    error(keyNode, "the API key of '\(principal)' has no sha256", hint: "run `switchyard hash-key` and paste its output as sha256")
                    continue
                }
                guard let digest = Self.hexDigest(text) else {
                    // Never echo what might be the key itself.
                    error(digestNode, "the sha256 of the API key of '\(principal)' is not 64 hex digits", hint: "store the key's SHA-256, not the key: run `switchyard hash-key`")
                    continue
                }
                if policy.apiKeys.contains(where: { $0.sha256 == digest }) {
                    error(digestNode, "the same API key is configured twice", hint: "each key belongs to one principal")
                    continue
                }
                policy.apiKeys.append(AuthPolicy.APIKey(principal: principal, sha256: digest))
                referenced.append((principal, principalNode))
            }
            for ruleNode in auth["client_certificates"].map({ sequence($0, "client_certificates") }) ?? [] {
                let fieldNames = AuthPolicy.CertificateRule.Field.allCases.map(\.rawValue)
                guard let fields = mapping(ruleNode, "a client certificate rule", keys: ["principal"] + fieldNames) else { continue }
                guard let principalNode = fields["principal"], let principal = string(principalNode, "a principal name") else {
                    error(ruleNode, "a client certificate rule without its principal", hint: "add principal: NAME")
                    continue
                }
                let given = fieldNames.filter { fields[$0] != nil }
                guard given.count == 1, let field = AuthPolicy.CertificateRule.Field(rawValue: given[0]),
                    let pattern = string(fields[given[0]]!, "a name pattern")
                else {
                    error(ruleNode, "a client certificate rule matches one of \(fieldNames.joined(separator: ", ")), not \(given.isEmpty ? "none" : given.joined(separator: " and "))", hint: "for example uri: spiffe://example.org/billing")
                    continue
                }
                policy.certificates.append(AuthPolicy.CertificateRule(principal: principal, field: field, pattern: pattern))
                referenced.append((principal, principalNode))
            }
            if let jwtNode = auth["jwt"], let jwt = readJWT(jwtNode, referenced: &referenced) { policy.jwt = jwt }
            if let anonymousNode = auth["anonymous"], let anonymous = mapping(anonymousNode, "auth.anonymous", keys: ["plaintext", "tls"]) {
                if let node = anonymous["plaintext"], let value = boolean(node, "auth.anonymous.plaintext") { policy.anonymousOnPlaintext = value }
                if let node = anonymous["tls"], let value = boolean(node, "auth.anonymous.tls") { policy.anonymousOnTLS = value }
            }
        }
        if let principalsNode, let principals = mapping(principalsNode, "principals", keys: nil) {
            for (name, nameNode, node) in principals.entries {
                guard
                    let fields = mapping(
                        node, "principal '\(name)'", keys: ["models", "methods", "allow_override", "rate_limit", "model_rate_limits", "max_concurrent_calls"])
                else { continue }
                var permissions = AuthPolicy.Permissions()
                if let modelsNode = fields["models"] {
                    permissions.models = sequence(modelsNode, "models").compactMap { string($0, "a model pattern (NAME or NAME:VERSION, * allowed)") }
                }
                if let methodsNode = fields["methods"] {
                    let choices = AuthPolicy.MethodGroup.allCases.map(\.rawValue)
                    permissions.methods = Set(sequence(methodsNode, "methods").compactMap { choice($0, "a method group", choices).flatMap(AuthPolicy.MethodGroup.init) })
                }
                if let node = fields["allow_override"], let value = boolean(node, "allow_override") { permissions.allowOverride = value }
                if let node = fields["rate_limit"] { permissions.rateLimit = rateLimit(node, "the rate limit of '\(name)'") }
                if let node = fields["model_rate_limits"], let limits = mapping(node, "model_rate_limits of '\(name)'", keys: nil) {
                    for (model, _, limitNode) in limits.entries {
                        if let limit = rateLimit(limitNode, "the rate limit of '\(name)' for '\(model)'") { permissions.modelRateLimits[model] = limit }
                    }
                }
                if let node = fields["max_concurrent_calls"] { permissions.maxConcurrentCalls = integer(node, "a number of calls", minimum: 1) }
                if name.isEmpty { error(nameNode, "a principal needs a name") }
                policy.principals[name] = permissions
            }
        }
        for (name, node) in referenced where policy.principals[name] == nil {
            let hint = nearest(name, in: policy.principals.keys.sorted()).map { "did you mean '\($0)'?" } ?? "add it under principals with what it may do"
            error(node, "principal '\(name)' has no permissions under principals", hint: hint)
        }
        if authNode != nil || principalsNode != nil { settings.auth = policy }
    }

    /// `auth.jwt`: OAuth2 access tokens, their keys, the checks on their claims and the rules that
    /// map them to principals.
    mutating func readJWT(_ node: Node, referenced: inout [(name: String, node: Node)]) -> AuthPolicy.JWT? {
        let keys = ["jwks_file", "jwks_url", "issuer", "audiences", "algorithms", "clock_leeway", "refresh_interval", "rules"]
        guard let fields = mapping(node, "auth.jwt", keys: keys) else { return nil }
        // Missing keys are reported, and the rest of the section is still checked.
        var source: AuthPolicy.JWT.KeySource?
        switch (fields["jwks_file"], fields["jwks_url"]) {
        case (let fileNode?, nil):
            source = string(fileNode, "the path of a JWKS file").map { .file($0) }
        case (nil, let urlNode?):
            if let url = string(urlNode, "the URL of a JWKS") {
                if url.hasPrefix("https://") || url.hasPrefix("http://") {
                    source = .url(url)
                } else {
                    error(urlNode, "jwks_url must be an https:// (or http://) URL", hint: "such as https://login.example.com/.well-known/jwks.json")
                }
            }
        case (.some, .some):
            error(node, "auth.jwt has both jwks_file and jwks_url", hint: "keep one")
        case (nil, nil):
            error(
                node, "auth.jwt has no jwks_file or jwks_url",
                hint: "give your issuer's public keys, {\"keys\": [...]}, as jwks_file: PATH or jwks_url: https://…/jwks.json")
        }
        let issuer = fields["issuer"].flatMap { string($0, "the issuer (iss) of accepted tokens") }
        if fields["issuer"] == nil {
            error(node, "auth.jwt has no issuer", hint: "give the iss your tokens carry, such as issuer: https://login.example.com/")
        }
        var jwt = AuthPolicy.JWT(keys: source ?? .file(""), issuer: issuer ?? "")
        // A URL is fetched less often than a file is read.
        if case .url? = source { jwt.refreshInterval = .minutes(5) }
        if let audiencesNode = fields["audiences"] {
            jwt.audiences = audiencesNode.scalar != nil
                ? [string(audiencesNode, "an audience")].compactMap { $0 }
                : sequence(audiencesNode, "audiences").compactMap { string($0, "an audience") }
        }
        if let algorithmsNode = fields["algorithms"] {
            let choices = AuthPolicy.JWT.supportedAlgorithms
            jwt.algorithms = sequence(algorithmsNode, "algorithms").compactMap { node in
                if let text = node.scalar?.string, text.hasPrefix("HS") || text.lowercased() == "none" {
                    error(node, "\(text) cannot be accepted: the gateway verifies tokens with public keys only", hint: "one of \(choices.joined(separator: ", "))")
                    return nil
                }
                return choice(node, "an algorithm", choices)
            }
            if jwt.algorithms.isEmpty { error(algorithmsNode, "auth.jwt.algorithms accepts no algorithm", hint: "leave it out to accept \(choices.joined(separator: ", "))") }
        }
        if let node = fields["clock_leeway"], case .some(let leeway?) = duration(node, offAllowed: false, zeroAllowed: true) {
            jwt.clockLeewaySeconds = Int(leeway.nanoseconds / 1_000_000_000)
        }
        if let node = fields["refresh_interval"], case .some(let interval?) = duration(node, offAllowed: false) { jwt.refreshInterval = interval }
        for ruleNode in fields["rules"].map({ sequence($0, "auth.jwt.rules") }) ?? [] {
            guard let rule = mapping(ruleNode, "a token rule", keys: ["principal", "scope", "claim", "value"]) else { continue }
            guard let principalNode = rule["principal"], let principal = string(principalNode, "a principal name") else {
                error(ruleNode, "a token rule without its principal", hint: "add principal: NAME")
                continue
            }
            let match: AuthPolicy.JWT.Rule.Match
            switch (rule["scope"], rule["claim"], rule["value"]) {
            case (nil, nil, nil):
                match = .anyToken
            case (let scopeNode?, nil, nil):
                guard let scope = string(scopeNode, "a scope pattern") else { continue }
                match = .scope(scope)
            case (nil, let claimNode?, let valueNode?):
                guard let claim = string(claimNode, "a claim name"), let value = string(valueNode, "a value pattern") else { continue }
                match = .claim(name: claim, pattern: value)
            default:
                error(ruleNode, "a token rule matches scope: PATTERN, or claim: NAME with value: PATTERN, or nothing (every token)", hint: "for example scope: models.infer, or claim: groups and value: ml-team")
                continue
            }
            jwt.rules.append(AuthPolicy.JWT.Rule(principal: principal, match: match))
            referenced.append((principal, principalNode))
        }
        if jwt.rules.isEmpty {
            error(node, "auth.jwt has no rules, so no token could name a principal", hint: "add rules: [{principal: NAME, scope: SCOPE}]")
        }
        return source == nil || issuer == nil ? nil : jwt
    }

    /// `{requests_per_second: R, burst: B}`; burst defaults to R rounded up (one second's worth).
    mutating func rateLimit(_ node: Node, _ what: String) -> AuthPolicy.RateLimit? {
        guard let fields = mapping(node, what, keys: ["requests_per_second", "burst"]) else { return nil }
        guard let rateNode = fields["requests_per_second"] else {
            error(node, "\(what) has no requests_per_second", hint: "for example {requests_per_second: 100, burst: 200}")
            return nil
        }
        guard let rate = number(rateNode, "a number of requests per second above 0", minimum: 0, exclusive: true) else { return nil }
        var burst = max(1, Int(rate.rounded(.up)))
        if let burstNode = fields["burst"] {
            guard let value = integer(burstNode, "a burst", minimum: 1) else { return nil }
            burst = value
        }
        return AuthPolicy.RateLimit(requestsPerSecond: rate, burst: burst)
    }

    /// 32 bytes from 64 hex digits (either case), or nil.
    static func hexDigest(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.hexValue(digits[index]), let low = Self.hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
