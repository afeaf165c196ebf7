import ConclaveCore
import ConclaveGovernance
import Foundation
import JWTKit
import Testing

/// JWT and API key authentication, edge cases included.
@Suite struct AuthenticatorTests {
    let directory: URL
    let configuration: AuthConfiguration
    let hr = Principal(userID: "u-hr", tenant: "meridian", roles: ["hr"], department: "hr", clearance: "restricted")

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-auth-\(RandomID.make())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let key = directory.appendingPathComponent("hs256.key")
        try "0123456789abcdef0123456789abcdef-test-secret".write(to: key, atomically: true, encoding: .utf8)
        let apiKeys = directory.appendingPathComponent("api-keys.yaml")
        try """
            keys:
              - {sha256: \(Authenticator.hash(apiKey: "ck_test_finance")), user: svc-finance, tenant: meridian, roles: [finance], department: finance}
            """.write(to: apiKeys, atomically: true, encoding: .utf8)
        configuration = AuthConfiguration(hs256KeyFile: key.path, apiKeysFile: apiKeys.path)
    }

    private func issue(_ principal: Principal, configuration: AuthConfiguration? = nil, lifetime: TimeInterval = 600,
                       now: Date = Date()) async throws -> String {
        let config = configuration ?? self.configuration
        return try await TokenIssuer(authenticator: try await Authenticator(configuration: config), configuration: config)
            .token(for: principal, lifetime: lifetime, now: now)
    }

    @Test func validTokenYieldsThePrincipal() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        let token = try await issue(hr)
        let principal = try await authenticator.authenticate(authorization: "Bearer \(token)")
        #expect(principal == hr)
    }

    @Test func missingOrMalformedCredentialsAreRefused() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        for header in [nil, "", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer not.a.jwt", "Bearer abc"] as [String?] {
            await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: header) }
        }
    }

    @Test func expiredAndNotYetValidTokensAreRefused() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        let expired = try await issue(hr, lifetime: 60, now: Date().addingTimeInterval(-3600))
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(expired)") }
        let future = try await issue(hr, lifetime: 600, now: Date().addingTimeInterval(3600))
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(future)") }
    }

    @Test func aVerifiedTokenIsRememberedOnlyUntilItExpires() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        let token = try await issue(hr, lifetime: 2)
        #expect(try await authenticator.authenticate(authorization: "Bearer \(token)") == hr)
        #expect(try await authenticator.authenticate(authorization: "Bearer \(token)") == hr)
        try await Task.sleep(for: .milliseconds(2600))
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(token)") }
        // A forged variant of a remembered token is not a cache hit.
        let other = try await issue(hr)
        _ = try await authenticator.authenticate(authorization: "Bearer \(other)")
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(other)x") }
    }

    @Test func wrongIssuerOrAudienceIsRefused() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        var other = configuration
        other.issuer = "someone-else"
        let wrongIssuer = try await issue(hr, configuration: other)
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(wrongIssuer)") }
        other = configuration
        other.audience = "another-service"
        let wrongAudience = try await issue(hr, configuration: other)
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(wrongAudience)") }
    }

    @Test func tamperedSignatureAndAlgNoneAreRefused() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        let token = try await issue(Principal(userID: "u-employee", tenant: "meridian", roles: ["employee"]))
        var parts = token.split(separator: ".").map(String.init)
        // Promote the employee to executive without re-signing.
        let claims = try #require(Data(base64URL: parts[1]))
        let promoted = String(decoding: claims, as: UTF8.self).replacingOccurrences(of: "\"employee\"", with: "\"executive\"")
        parts[1] = Data(promoted.utf8).base64URLString
        let tampered = parts.joined(separator: ".")
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(tampered)") }
        let unsigned = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLString + "." + parts[1] + "."
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(unsigned)") }
        // A token signed with a different secret.
        let otherKey = directory.appendingPathComponent("other.key")
        try "another-secret-that-is-long-enough-32b".write(to: otherKey, atomically: true, encoding: .utf8)
        var other = configuration
        other.hs256KeyFile = otherKey.path
        let foreign = try await issue(hr, configuration: other)
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer \(foreign)") }
    }

    @Test func es256TokensVerifyWithAPEMPublicKey() async throws {
        let privateKey = ES256PrivateKey()
        let pem = directory.appendingPathComponent("es256.pem")
        try privateKey.publicKey.pemRepresentation.write(to: pem, atomically: true, encoding: .utf8)
        let config = AuthConfiguration(hs256KeyFile: "", publicKeyFile: pem.path)
        let authenticator = try await Authenticator(configuration: config)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: privateKey, kid: "pem-ec")
        let claims = AccessTokenClaims(principal: hr, issuer: "conclave", audience: "conclave", issuedAt: Date(), lifetime: 600)
        let token = try await signer.sign(claims, kid: "pem-ec")
        #expect(try await authenticator.authenticate(authorization: "Bearer \(token)") == hr)
    }

    @Test func apiKeysAreMatchedByHash() async throws {
        let authenticator = try await Authenticator(configuration: configuration)
        let principal = try await authenticator.authenticate(authorization: "Bearer ck_test_finance")
        #expect(principal.userID == "svc-finance" && principal.roles == ["finance"] && principal.tenant == "meridian")
        await #expect(throws: AuthenticationFailure.self) { try await authenticator.authenticate(authorization: "Bearer ck_test_financ") }
    }

    @Test func disabledAuthenticationIsAnonymousAndShortKeysAreRejected() async throws {
        let open = try await Authenticator(configuration: AuthConfiguration(mode: .none))
        #expect(try await open.authenticate(authorization: nil) == .anonymous)
        let short = directory.appendingPathComponent("short.key")
        try "too-short".write(to: short, atomically: true, encoding: .utf8)
        await #expect(throws: ConfigurationError.self) { try await Authenticator(configuration: AuthConfiguration(hs256KeyFile: short.path)) }
        await #expect(throws: ConfigurationError.self) {
            try await Authenticator(configuration: AuthConfiguration(hs256KeyFile: directory.appendingPathComponent("missing").path))
        }
    }
}

extension Data {
    init?(base64URL: String) {
        var text = base64URL.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        self.init(base64Encoded: text)
    }

    var base64URLString: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
