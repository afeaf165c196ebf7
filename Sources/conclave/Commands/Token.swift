import ArgumentParser
import ConclaveCore
import ConclaveGovernance
import Foundation

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a development access token (HS256 JWT) for a user of auth.users_file.",
        discussion: """
            Signs with auth.hs256_key_file (created by `make setup` as var/dev-hs256.key). The token carries the \
            user's id, tenant, role, department and clearance, and expires after auth.token_ttl_seconds. Use it as \
            `Authorization: Bearer <token>`, or as the api_key of an OpenAI client.
            """)

    @Option(name: .long, help: "User id from the users file (e.g. u-employee).")
    var user: String

    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(name: .long, help: "Lifetime in seconds (overrides auth.token_ttl_seconds).")
    var ttl: Int?

    func run() async throws {
        let configuration = try loadConfiguration(path: config)
        try await reportingFailures {
            let directory = try UserDirectory(path: configuration.auth.usersFile)
            guard let entry = directory.user(user) else {
                throw ValidationFailure("unknown user '\(user)'; known: \(directory.users.map(\.id).joined(separator: ", "))")
            }
            var auth = configuration.auth
            auth.mode = .jwt
            let issuer = try TokenIssuer(authenticator: try await Authenticator(configuration: auth), configuration: auth)
            let token = try await issuer.token(for: entry.principal, name: entry.name, lifetime: ttl.map(TimeInterval.init))
            print(token)
        }
    }
}
