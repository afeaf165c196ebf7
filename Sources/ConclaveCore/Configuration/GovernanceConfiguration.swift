/// Authentication settings (`auth`).
public struct AuthConfiguration: Sendable, Codable, Hashable {
    /// How callers prove who they are.
    public enum Mode: String, Sendable, Codable, Hashable, CaseIterable {
        /// Bearer tokens: JWTs (and API keys when `api_keys_file` is set). The default.
        case jwt
        /// No authentication: every caller is the anonymous principal. Must be explicit; the server
        /// logs a warning at start.
        case none
    }

    /// Default `jwt`.
    public var mode: Mode
    /// File holding the HS256 secret (at least 32 bytes). Default `var/dev-hs256.key`, created by
    /// `make setup`. `CONCLAVE_AUTH__HS256_KEY_FILE` may point elsewhere.
    public var hs256KeyFile: String
    /// PEM file with an RS256 or ES256 public key; empty for none.
    public var publicKeyFile: String
    /// JWKS (JSON Web Key Set) file; empty for none.
    public var jwksFile: String
    /// Required `iss` claim. Default `conclave`.
    public var issuer: String
    /// Required `aud` claim. Default `conclave`.
    public var audience: String
    /// YAML file of API keys (SHA-256 hashes with tenant, user and roles); empty for none.
    public var apiKeysFile: String
    /// The directory of users `conclave token` issues development tokens for.
    public var usersFile: String
    /// Lifetime of tokens issued by `conclave token`, in seconds. Default 3600.
    public var tokenTTLSeconds: Int

    /// Creates authentication settings.
    public init(mode: Mode = .jwt, hs256KeyFile: String = "var/dev-hs256.key", publicKeyFile: String = "",
                jwksFile: String = "", issuer: String = "conclave", audience: String = "conclave", apiKeysFile: String = "",
                usersFile: String = "examples/meridian/identities/users.yaml", tokenTTLSeconds: Int = 3600) {
        self.mode = mode
        self.hs256KeyFile = hs256KeyFile
        self.publicKeyFile = publicKeyFile
        self.jwksFile = jwksFile
        self.issuer = issuer
        self.audience = audience
        self.apiKeysFile = apiKeysFile
        self.usersFile = usersFile
        self.tokenTTLSeconds = tokenTTLSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode
        case hs256KeyFile = "hs256_key_file"
        case publicKeyFile = "public_key_file"
        case jwksFile = "jwks_file"
        case issuer, audience
        case apiKeysFile = "api_keys_file"
        case usersFile = "users_file"
        case tokenTTLSeconds = "token_ttl_seconds"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = AuthConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.enumValue(.mode, default: d.mode)
        hs256KeyFile = try c.value(.hs256KeyFile, default: d.hs256KeyFile)
        publicKeyFile = try c.value(.publicKeyFile, default: d.publicKeyFile)
        jwksFile = try c.value(.jwksFile, default: d.jwksFile)
        issuer = try c.value(.issuer, default: d.issuer)
        audience = try c.value(.audience, default: d.audience)
        apiKeysFile = try c.value(.apiKeysFile, default: d.apiKeysFile)
        usersFile = try c.value(.usersFile, default: d.usersFile)
        tokenTTLSeconds = try c.value(.tokenTTLSeconds, default: d.tokenTTLSeconds)
    }

    func validate() throws {
        guard mode == .none || !(hs256KeyFile.isEmpty && publicKeyFile.isEmpty && jwksFile.isEmpty && apiKeysFile.isEmpty) else {
            throw ConfigurationError(key: "auth.hs256_key_file", value: "",
                                     expected: "a key file (or auth.public_key_file, auth.jwks_file or auth.api_keys_file) when auth.mode is jwt")
        }
        guard tokenTTLSeconds > 0 else {
            throw ConfigurationError(key: "auth.token_ttl_seconds", value: String(tokenTTLSeconds), expected: "a positive number of seconds")
        }
    }
}

/// Governance settings (`governance`).
public struct GovernanceConfiguration: Sendable, Codable, Hashable {
    /// How much governance runs (the overhead experiment's variable).
    public enum Mode: String, Sendable, Codable, Hashable, CaseIterable {
        /// No access control: every principal reads everything.
        case off
        /// Access control: workflow permissions and the retrieval ACL pre-filter.
        case access
        /// Access control plus the audit trail.
        case audit
        /// Everything: access, audit, PII masking, input/output rules, injection checks.
        case full
    }

    /// Default `full`.
    public var mode: Mode
    /// The access policy (YAML). Default `config/policies/meridian.yaml`.
    public var policyFile: String
    /// Lets the policy's `mode_override_roles` choose the governance mode of their own requests
    /// (for overhead evaluations on a test deployment). Default false.
    public var allowModeOverride: Bool = false

    /// Creates governance settings.
    public init(mode: Mode = .full, policyFile: String = "config/policies/meridian.yaml") {
        self.mode = mode
        self.policyFile = policyFile
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode
        case policyFile = "policy_file"
        case allowModeOverride = "allow_mode_override"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = GovernanceConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // YAML 1.1 reads a bare `off` as the boolean false; take it as the mode it was meant to be.
        if (try? c.decodeIfPresent(Bool.self, forKey: .mode)) == false || (try? c.decodeIfPresent(String.self, forKey: .mode)) == "false" {
            mode = .off
        } else {
            mode = try c.enumValue(.mode, default: d.mode)
        }
        policyFile = try c.value(.policyFile, default: d.policyFile)
        allowModeOverride = try c.value(.allowModeOverride, default: d.allowModeOverride)
    }

    func validate() throws {
        guard mode == .off || !policyFile.isEmpty else {
            throw ConfigurationError(key: "governance.policy_file", value: "", expected: "a policy YAML file unless governance.mode is off")
        }
    }

    /// True when access control applies.
    public var enforcesAccess: Bool { mode != .off }

    /// True when the audit trail is kept.
    public var keepsAudit: Bool { mode == .audit || mode == .full }
}

/// Audit trail settings (`audit`). The trail is kept when `governance.mode` is `audit` or `full`.
public struct AuditConfiguration: Sendable, Codable, Hashable {
    /// How much a record holds.
    public enum Granularity: String, Sendable, Codable, Hashable, CaseIterable {
        /// No records.
        case none
        /// Who, what, sources, decisions, counts and SHA-256 hashes of the prompt and answer.
        case metadata
        /// As `metadata`, plus the raw question and answer.
        case full
    }

    /// Default `metadata`.
    public var granularity: Granularity
    /// Ed25519 private key that signs checkpoints; created (mode 600) when missing.
    /// Default `var/audit-ed25519.key`.
    public var signingKeyFile: String
    /// A signed checkpoint every this many records (and at shutdown). Default 1000.
    public var checkpointEvery: Int
    /// Days each record type is kept before `conclave audit purge` may remove it; types not
    /// listed are kept for `default`. Default: 365 days for everything.
    public var retentionDays: [String: Int]
    /// The gateway verifies the whole chain at start and then every this many seconds, and
    /// reports the result as `conclave_audit_chain_valid`; 0 verifies at start only. Default 600.
    public var verifyIntervalSeconds: Int

    /// Creates audit settings.
    public init(granularity: Granularity = .metadata, signingKeyFile: String = "var/audit-ed25519.key", checkpointEvery: Int = 1000,
                retentionDays: [String: Int] = ["default": 365], verifyIntervalSeconds: Int = 600) {
        self.granularity = granularity
        self.signingKeyFile = signingKeyFile
        self.checkpointEvery = checkpointEvery
        self.retentionDays = retentionDays
        self.verifyIntervalSeconds = verifyIntervalSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case granularity
        case signingKeyFile = "signing_key_file"
        case checkpointEvery = "checkpoint_every"
        case retentionDays = "retention_days"
        case verifyIntervalSeconds = "verify_interval_seconds"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = AuditConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        granularity = try c.enumValue(.granularity, default: d.granularity)
        signingKeyFile = try c.value(.signingKeyFile, default: d.signingKeyFile)
        checkpointEvery = try c.value(.checkpointEvery, default: d.checkpointEvery)
        retentionDays = try c.value(.retentionDays, default: d.retentionDays)
        verifyIntervalSeconds = try c.value(.verifyIntervalSeconds, default: d.verifyIntervalSeconds)
    }

    func validate() throws {
        guard checkpointEvery >= 1 else {
            throw ConfigurationError(key: "audit.checkpoint_every", value: String(checkpointEvery), expected: "a positive number of records")
        }
        guard verifyIntervalSeconds >= 0 else {
            throw ConfigurationError(key: "audit.verify_interval_seconds", value: String(verifyIntervalSeconds),
                                     expected: "a number of seconds, 0 or more (0: verify at start only)")
        }
        for (type, days) in retentionDays where days < 1 {
            throw ConfigurationError(key: "audit.retention_days.\(type)", value: String(days), expected: "a positive number of days")
        }
        guard granularity == .none || !signingKeyFile.isEmpty else {
            throw ConfigurationError(key: "audit.signing_key_file", value: "", expected: "a path for the Ed25519 checkpoint key")
        }
    }

    /// Retention of a record type, in days.
    public func retention(of type: String) -> Int {
        retentionDays[type] ?? retentionDays["default"] ?? 365
    }
}
