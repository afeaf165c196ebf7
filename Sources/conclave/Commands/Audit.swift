import ArgumentParser
import ConclaveCore
import ConclaveGovernance
import ConclaveStorage
import Foundation
import Logging

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify or purge the tamper-evident audit trail.", subcommands: [Verify.self, Purge.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain and the signed checkpoints; exit 1 naming the first bad record.")

        @Option(name: .long, help: "YAML configuration file (storage and audit.signing_key_file).")
        var config: String?

        func run() async throws {
            let configuration = try loadConfiguration(path: config)
            let result = try await reportingFailures {
                try await AuditLog.verify(store: try await StoreFactory.open(configuration.storage),
                                          publicKey: try AuditLog.publicKey(keyFile: configuration.audit.signingKeyFile))
            }
            print(result.description)
            if !result.isValid { throw ExitCode(1) }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove records past their retention (audit.retention_days), leaving a signed summary so verify still passes.")

        @Option(name: .long, help: "YAML configuration file.")
        var config: String?

        func run() async throws {
            let configuration = try loadConfiguration(path: config)
            let removed = try await reportingFailures {
                try await AuditLog(store: try await StoreFactory.open(configuration.storage), configuration: configuration.audit,
                                   logger: Logger(label: "conclave.audit")).purge()
            }
            print("purged \(removed) audit records")
        }
    }
}
