import ConclaveCore
import Crypto
import Foundation
import JWTKit
import Logging
import Synchronization
import Yams

/// The claims of a Conclave access token.
public struct AccessTokenClaims: JWTPayload, Equatable {
    public var sub: SubjectClaim
    public var iss: IssuerClaim
    public var aud: AudienceClaim
    public var exp: ExpirationClaim
    public var nbf: NotBeforeClaim?
    public var iat: IssuedAtClaim?
    public var tenant: String?
    public var roles: [String]
    public var department: String?
    public var clearance: String?
    public var name: String?

    public init(principal: Principal, issuer: String, audience: String, issuedAt: Date, lifetime: TimeInterval, name: String? = nil) {
        sub = SubjectClaim(value: principal.userID)
        iss = IssuerClaim(value: issuer)
        aud = AudienceClaim(value: [audience])
        iat = IssuedAtClaim(value: issuedAt)
        nbf = NotBeforeClaim(value: issuedAt.addingTimeInterval(-1))
        exp = ExpirationClaim(value: issuedAt.addingTimeInterval(lifetime))
        tenant = principal.tenant
        roles = principal.roles
        department = principal.department
        clearance = principal.clearance
        self.name = name
    }

    /// Signature checks happen before this; here the time claims. Issuer and audience are
    /// checked by ``Authenticator`` against its configuration.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }

    var principal: Principal {
        Principal(userID: sub.value, tenant: tenant ?? "default", roles: roles, department: department, clearance: clearance)
    }
}

/// Why a credential was refused. Clients only ever learn "invalid token"; the reason goes to the
/// audit trail and the logs.
public struct AuthenticationFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Turns a bearer credential into a ``Principal``: a JWT (HS256 from a key file; RS256 or ES256
/// from a PEM public key; any key of a JWKS file) with expiry, not-before, issuer and audience
/// checked, or an API key (stored as a SHA-256 hash, scoped to a tenant and roles).
public final class Authenticator: Sendable {
    private let keys: JWTKeyCollection?
    private let apiKeys: [String: Principal]
    /// Tokens verified recently, with the principal and the window they are valid in: a client
    /// sends the same token on every request, and verifying it (signature, JSON claims) each time
    /// was a tenth of a proxied request's cost. An entry is used only inside its token's own
    /// not-before/expiry window, so caching changes no decision.
    private let verified = Mutex<[String: (principal: Principal, notBefore: Date, expires: Date)]>([:])
    static let verifiedCapacity = 4096
    private let issuer: String
    private let audience: String
    /// True when `auth.mode` is `none`: everyone is ``Principal/anonymous``.
    public let isDisabled: Bool
    /// The HS256 key collection that can also sign (for `conclave token`), when configured.
    let signingKeys: JWTKeyCollection?

    /// Loads keys as `configuration` says. Errors name the key and the file.
    public init(configuration: AuthConfiguration) async throws {
        issuer = configuration.issuer
        audience = configuration.audience
        isDisabled = configuration.mode == .none
        guard !isDisabled else {
            keys = nil
            signingKeys = nil
            apiKeys = [:]
            return
        }
        let collection = JWTKeyCollection()
        var any = false
        var signing: JWTKeyCollection?
        if !configuration.hs256KeyFile.isEmpty {
            let secret = try Self.read(configuration.hs256KeyFile, key: "auth.hs256_key_file")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(key: "auth.hs256_key_file", value: configuration.hs256KeyFile,
                                         expected: "a secret of at least 32 bytes")
            }
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            let signer = JWTKeyCollection()
            await signer.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            signing = signer
            any = true
        }
        if !configuration.publicKeyFile.isEmpty {
            let pem = try Self.read(configuration.publicKeyFile, key: "auth.public_key_file")
            if let rsa = try? Insecure.RSA.PublicKey(pem: pem) {
                await collection.add(rsa: rsa, digestAlgorithm: .sha256, kid: "pem-rsa")
            } else if let ec = try? ES256PublicKey(pem: pem) {
                await collection.add(ecdsa: ec, kid: "pem-ec")
            } else {
                throw ConfigurationError(key: "auth.public_key_file", value: configuration.publicKeyFile,
                                         expected: "a PEM RSA (RS256) or P-256 (ES256) public key")
            }
            any = true
        }
        if !configuration.jwksFile.isEmpty {
            let json = try Self.read(configuration.jwksFile, key: "auth.jwks_file")
            do {
                try await collection.add(jwksJSON: json)
            } catch {
                throw ConfigurationError(key: "auth.jwks_file", value: configuration.jwksFile, expected: "a JSON Web Key Set (\(error))")
            }
            any = true
        }
        apiKeys = configuration.apiKeysFile.isEmpty ? [:] : try Self.loadAPIKeys(configuration.apiKeysFile)
        keys = any ? collection : nil
        signingKeys = signing
    }

    /// The principal behind an `Authorization` header value, or ``AuthenticationFailure``.
    public func authenticate(authorization: String?) async throws -> Principal {
        if isDisabled { return .anonymous }
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else {
            throw AuthenticationFailure(reason: "missing bearer credential")
        }
        let credential = String(authorization.dropFirst(7)).trimmed
        guard !credential.isEmpty else { throw AuthenticationFailure(reason: "empty bearer credential") }
        if !apiKeys.isEmpty, let principal = apiKeys[Self.hash(apiKey: credential)] { return principal }
        guard let keys else { throw AuthenticationFailure(reason: "no JWT keys configured and the API key is unknown") }
        let now = Date()
        if let hit = verified.withLock({ $0[credential] }), hit.notBefore <= now, now < hit.expires { return hit.principal }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(credential, as: AccessTokenClaims.self, iteratingKeys: true)
        } catch {
            throw AuthenticationFailure(reason: "token rejected: \(error)")
        }
        guard claims.iss.value == issuer else { throw AuthenticationFailure(reason: "issuer '\(claims.iss.value)' is not '\(issuer)'") }
        do {
            try claims.aud.verifyIntendedAudience(includes: audience)
        } catch {
            throw AuthenticationFailure(reason: "audience \(claims.aud.value) does not include '\(audience)'")
        }
        let principal = claims.principal
        verified.withLock { cache in
            if cache.count >= Self.verifiedCapacity { cache.removeAll(keepingCapacity: true) }
            cache[credential] = (principal, claims.nbf?.value ?? .distantPast, claims.exp.value)
        }
        return principal
    }

    /// SHA-256 of an API key, lowercase hex: what the API keys file stores.
    public static func hash(apiKey: String) -> String {
        SHA256.hash(data: Data(apiKey.utf8)).hexEncoded
    }

    private static func read(_ path: String, key: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: key, value: path, expected: "a readable file")
        }
        return text
    }

    private struct APIKeyFile: Decodable {
        struct Entry: Decodable {
            var sha256: String
            var user: String
            var tenant: String?
            var roles: [String]
            var department: String?
        }
        var keys: [Entry]
    }

    private static func loadAPIKeys(_ path: String) throws -> [String: Principal] {
        let text = try read(path, key: "auth.api_keys_file")
        do {
            let file = try YAMLDecoder().decode(APIKeyFile.self, from: text)
            var out: [String: Principal] = [:]
            for entry in file.keys {
                out[entry.sha256.lowercased()] = Principal(userID: entry.user, tenant: entry.tenant ?? "default", roles: entry.roles,
                                                           department: entry.department)
            }
            return out
        } catch {
            throw ConfigurationError(key: "auth.api_keys_file", value: path,
                                     expected: "YAML 'keys: [{sha256, user, tenant, roles, department}]' (\(error))")
        }
    }
}
