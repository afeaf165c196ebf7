import ConclaveCore
import ConclaveGovernance
import ConclaveKnowledge
import Crypto
import Foundation
import Logging
import Metrics
import Synchronization

/// What `conclave reload` and SIGHUP replace while the process runs: the workflows
/// (`workflows.directory`), the access policy (`governance.policy_file`), the SQL templates
/// (`knowledge.sql_templates_file`) and the gateway's TLS certificate and key
/// (`server.tls_cert_file`, `server.tls_key_file`; new connections get the new pair). A reload reads and validates all of them first; if any is
/// invalid, nothing changes and the error says which file and what is wrong. Otherwise the new
/// set is swapped in and the version goes up (when the files changed).
///
/// A request reads the version and the workflow registry once, when it starts, and is decided
/// by the policy in force then (its document scope, workflow permission and PII visibility are
/// evaluated at the start); its answer names the version (`conclave.config_version`). The other
/// settings of `conclave.yaml` (ports, models, storage) are read at start only.
public final class LiveConfiguration: Sendable {
    /// One loaded set of files.
    public struct Version: Sendable, Hashable, Codable {
        /// 1 at start, one more after each reload that changed a file.
        public var number: Int
        /// SHA-256 of the files read (their paths and contents), first 16 hex digits.
        public var digest: String
        /// When this version was loaded (ISO 8601, UTC).
        public var loadedAt: String

        enum CodingKeys: String, CodingKey {
            case number = "version"
            case digest
            case loadedAt = "loaded_at"
        }
    }

    /// What a request reads at its start.
    public struct Snapshot: Sendable {
        public var version: Version
        public var workflows: WorkflowRegistry
    }

    /// The outcome of a reload.
    public struct Outcome: Sendable, Codable {
        /// The version in force afterwards.
        public var version: Version
        /// False when the files were unchanged (the version stays).
        public var changed: Bool
        /// The files read.
        public var files: [String]
    }

    private let configuration: ConclaveConfiguration
    private let governance: Governance
    private let database: SwappableSource?
    private let logger: Logger
    private let state: Mutex<Snapshot>
    /// The gateway's certificate, once the HTTPS server asked for it.
    private let certificate = Mutex<GatewayCertificate?>(nil)
    /// Held for the whole of a reload, so that two reloads do not interleave.
    private let reloading = Mutex<Void>(())

    /// The files as the runtime loaded them at start (`workflows`), version 1.
    init(configuration: ConclaveConfiguration, workflows: WorkflowRegistry, governance: Governance, database: SwappableSource?,
         logger: Logger) {
        self.configuration = configuration
        self.governance = governance
        self.database = database
        self.logger = logger
        let digest = (try? Self.digest(of: Self.files(configuration))) ?? ""
        state = Mutex(Snapshot(version: Version(number: 1, digest: digest, loadedAt: Self.now()), workflows: workflows))
        Gauge(label: "conclave_config_version").record(1)
    }

    /// The certificate and key the gateway presents (loaded on first use, replaced by reloads).
    func gatewayCertificate() throws -> GatewayCertificate {
        try certificate.withLock { holder in
            if let holder { return holder }
            let loaded = GatewayCertificate(try GatewayTLS.load(configuration.server))
            holder = loaded
            return loaded
        }
    }

    /// The version and workflows in force now.
    public var current: Snapshot { state.withLock { $0 } }

    /// Re-reads the files, validates them and swaps them in; throws `ConfigurationError` (naming
    /// the key of the file that is wrong) and changes nothing when any is invalid.
    public func reload() throws -> Outcome {
        do {
            let outcome = try reloadFiles()
            Counter(label: "conclave_config_reloads_total", dimensions: [("outcome", outcome.changed ? "changed" : "unchanged")]).increment()
            return outcome
        } catch {
            Counter(label: "conclave_config_reloads_total", dimensions: [("outcome", "refused")]).increment()
            throw error
        }
    }

    private func reloadFiles() throws -> Outcome {
        try reloading.withLock { _ in
            let files = try Self.files(configuration)
            let digest = try Self.digest(of: files)
            // Everything is loaded and checked before anything is replaced.
            let workflows: WorkflowRegistry
            do {
                workflows = try WorkflowRegistry(userDirectory: configuration.workflows.directory,
                                                 defaultName: configuration.workflows.defaultWorkflow)
            } catch let error as ConclaveError {
                throw ConfigurationError(key: "workflows.directory", value: configuration.workflows.directory,
                                         expected: "valid workflow files (\(error.message))")
            }
            let decisions = try Governance.loadPolicy(configuration.governance)
            let connector = database == nil ? nil : try Self.loadDatabase(configuration.knowledge, logger: logger)
            let gateway = certificate.withLock { $0 }
            let pair = try gateway.map { _ in try GatewayTLS.load(configuration.server) }
            let previous = current.version
            guard digest != previous.digest else {
                return Outcome(version: previous, changed: false, files: files)
            }
            governance.replacePolicy(decisions)
            if let connector { database?.replace(with: connector) }
            if let gateway, let pair { gateway.replace(with: pair) }
            let version = Version(number: previous.number + 1, digest: digest, loadedAt: Self.now())
            state.withLock { $0 = Snapshot(version: version, workflows: workflows) }
            Gauge(label: "conclave_config_version").record(version.number)
            logger.notice("configuration reloaded", metadata: [
                "config_version": "\(version.number)", "digest": "\(digest)", "files": "\(files.count)",
            ])
            return Outcome(version: version, changed: true, files: files)
        }
    }

    private static func now() -> String {
        Date().formatted(.iso8601)
    }

    /// The database connector of `knowledge.sql_templates_file` (templates checked against the
    /// database), nil when none is named; at start and at every reload. Throws
    /// `ConfigurationError` naming the key.
    static func loadDatabase(_ knowledge: KnowledgeConfiguration, logger: Logger) throws -> DatabaseConnector? {
        guard !knowledge.sqlTemplatesFile.isEmpty else { return nil }
        do {
            return try DatabaseConnector(path: knowledge.sqlTemplatesFile, logger: logger)
        } catch let error as TemplateError {
            throw ConfigurationError(key: "knowledge.sql_templates_file", value: knowledge.sqlTemplatesFile,
                                     expected: "a valid SQL template file (\(error.message))")
        }
    }

    /// The files a reload reads: the workflow directory's YAML files (sorted), the policy file,
    /// the SQL template file and the TLS certificate and key, where configured.
    static func files(_ configuration: ConclaveConfiguration) throws -> [String] {
        var files: [String] = []
        let directory = configuration.workflows.directory
        if !directory.isEmpty {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            files += names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                .map { (directory as NSString).appendingPathComponent($0) }
        }
        if configuration.governance.enforcesAccess { files.append(configuration.governance.policyFile) }
        if !configuration.knowledge.sqlTemplatesFile.isEmpty { files.append(configuration.knowledge.sqlTemplatesFile) }
        if configuration.server.usesTLS { files += [configuration.server.tlsCertFile, configuration.server.tlsKeyFile] }
        return files
    }

    /// SHA-256 over each file's path and contents (a missing file counts as empty; loading it
    /// fails later with the reason).
    static func digest(of files: [String]) throws -> String {
        var hash = SHA256()
        for file in files {
            hash.update(data: Data(file.utf8))
            hash.update(data: [0])
            hash.update(data: FileManager.default.contents(atPath: file) ?? Data())
            hash.update(data: [0])
        }
        return hash.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}
