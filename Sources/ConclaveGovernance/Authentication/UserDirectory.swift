import ConclaveCore
import Foundation
import JWTKit
import Yams

/// The users of a deployment's identity file (`examples/meridian/identities/users.yaml`), for
/// issuing development tokens.
public struct UserDirectory: Sendable {
    public struct User: Sendable, Hashable, Decodable {
        public var id: String
        public var name: String?
        public var role: String
        public var department: String?
        public var clearance: String?
        public var tenant: String?

        /// The principal this user authenticates as.
        public var principal: Principal {
            Principal(userID: id, tenant: tenant ?? "meridian", roles: [role], department: department, clearance: clearance)
        }
    }

    public let users: [User]

    /// Reads the directory.
    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: "auth.users_file", value: path, expected: "a readable users YAML file")
        }
        struct File: Decodable { var users: [User] }
        do {
            users = try YAMLDecoder().decode(File.self, from: text).users
        } catch {
            throw ConfigurationError(key: "auth.users_file", value: path, expected: "YAML 'users: [{id, role, department, ...}]' (\(error))")
        }
    }

    /// The user with `id`.
    public func user(_ id: String) -> User? {
        users.first { $0.id == id }
    }
}

/// Issues HS256 access tokens with the configured signing key (`conclave token`, the evaluation
/// runner, tests).
public struct TokenIssuer: Sendable {
    private let keys: JWTKeyCollection
    private let configuration: AuthConfiguration

    /// An issuer over the authenticator's HS256 key; throws when none is configured.
    public init(authenticator: Authenticator, configuration: AuthConfiguration) throws {
        guard let keys = authenticator.signingKeys else {
            throw ConfigurationError(key: "auth.hs256_key_file", value: configuration.hs256KeyFile,
                                     expected: "an HS256 key file to sign development tokens with (auth.mode jwt)")
        }
        self.keys = keys
        self.configuration = configuration
    }

    /// A signed token for `principal`, valid for `lifetime` (default: `auth.token_ttl_seconds`).
    public func token(for principal: Principal, name: String? = nil, lifetime: TimeInterval? = nil, now: Date = Date()) async throws -> String {
        let claims = AccessTokenClaims(principal: principal, issuer: configuration.issuer, audience: configuration.audience, issuedAt: now,
                                       lifetime: lifetime ?? TimeInterval(configuration.tokenTTLSeconds), name: name)
        return try await keys.sign(claims)
    }
}
