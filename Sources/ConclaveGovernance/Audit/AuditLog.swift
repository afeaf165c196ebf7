import ConclaveCore
import ConclaveStorage
import Crypto
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// What one audit record says. Encoded canonically (sorted keys, no insignificant whitespace);
/// the stored bytes are what the chain hashes.
public struct AuditEntry: Sendable, Codable, Hashable {
    public struct Decision: Sendable, Codable, Hashable {
        public var point: String
        public var allowed: Bool
        public var rule: String
        public var reason: String

        public init(point: String, allowed: Bool, rule: String, reason: String) {
            self.point = point
            self.allowed = allowed
            self.rule = rule
            self.reason = reason
        }
    }

    public struct Source: Sendable, Codable, Hashable {
        public var id: String
        public var classification: String?

        public init(id: String, classification: String?) {
            self.id = id
            self.classification = classification
        }
    }

    /// `request` (one per chat request), `denial` (401/403), `checkpoint`.
    public var type: String
    public var user: String
    public var tenant: String?
    public var roles: [String]
    public var status: String
    public var workflow: String?
    public var runID: String?
    public var conversationID: String?
    public var decisions: [Decision]
    public var sources: [Source]
    public var withheld: [String]
    public var maskedEntities: [String: Int]
    public var models: [String]
    public var promptTokens: Int
    public var completionTokens: Int
    /// SHA-256 of the question and of the answer, lowercase hex.
    public var promptSHA256: String?
    public var answerSHA256: String?
    /// Raw text, only at granularity `full`.
    public var prompt: String?
    public var answer: String?

    public init(type: String, user: String, tenant: String? = nil, roles: [String] = [], status: String, workflow: String? = nil,
                runID: String? = nil, conversationID: String? = nil, decisions: [Decision] = [], sources: [Source] = [],
                withheld: [String] = [], maskedEntities: [String: Int] = [:], models: [String] = [], promptTokens: Int = 0,
                completionTokens: Int = 0, prompt: String? = nil, answer: String? = nil) {
        self.type = type
        self.user = user
        self.tenant = tenant
        self.roles = roles
        self.status = status
        self.workflow = workflow
        self.runID = runID
        self.conversationID = conversationID
        self.decisions = decisions
        self.sources = sources
        self.withheld = withheld
        self.maskedEntities = maskedEntities
        self.models = models
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.promptSHA256 = prompt.map(AuditLog.sha256)
        self.answerSHA256 = answer.map(AuditLog.sha256)
        self.prompt = prompt
        self.answer = answer
    }
}

/// The outcome of ``AuditLog/verify(store:publicKey:)``.
public enum AuditVerification: Sendable, Hashable, CustomStringConvertible {
    case valid(records: Int, checkpoints: Int, lastSeq: Int64)
    /// The first record (or anchor) that does not verify, and why.
    case invalid(seq: Int64, reason: String)

    public var isValid: Bool { if case .valid = self { true } else { false } }

    public var description: String {
        switch self {
        case .valid(let records, let checkpoints, let last):
            return "audit chain valid: \(records) records up to #\(last), \(checkpoints) signed anchors"
        case .invalid(let seq, let reason):
            return "audit chain INVALID at record #\(seq): \(reason)"
        }
    }
}

/// The append-only, hash-chained audit trail.
///
/// Each record's hash is SHA-256 over the previous record's hash, a newline and the record's
/// canonical JSON, so editing, deleting, inserting or reordering a record breaks the chain at that
/// record. Every `checkpoint_every` records, and at shutdown, an Ed25519-signed checkpoint is
/// stored apart from the chain; it pins the hash of its record, which also detects a rewritten
/// chain and a truncated tail. Appends are SQLite transactions, so a killed process leaves a chain
/// that verifies.
///
/// Appends are group-committed: records that arrive while a transaction is being written wait
/// and go together in the next one, and ``record(_:at:)`` returns only once its record is
/// committed. Under concurrent load one commit carries many requests' records; alone, a record
/// is written at once.
public final class AuditLog: Service, Sendable {
    public let configuration: AuditConfiguration
    private let store: any AuditStore
    private let key: Curve25519.Signing.PrivateKey
    private let logger: Logger
    private let sinceCheckpoint = Mutex(0)
    private let recordsWritten = Counter(label: "conclave_audit_records_total")
    private let writeErrors = Counter(label: "conclave_audit_write_errors_total")
    private let chainValid = Gauge(label: "conclave_audit_chain_valid")

    /// What a waiting record learns: its batch was written (or failed), or it leads the next batch.
    private enum Turn: Sendable {
        case written
        case failed(String)
        case lead
    }

    private struct Pending: Sendable {
        var entry: AuditEntry
        var time: Double
        var continuation: CheckedContinuation<Turn, Never>?
    }

    /// Records waiting for the next commit, and whether a leader is writing one.
    private let queue = Mutex<(waiting: [Pending], writing: Bool)>(([], false))

    /// Opens the log; creates the signing key file (mode 600) when it does not exist.
    public init(store: any AuditStore, configuration: AuditConfiguration, logger: Logger) throws {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        key = try Self.loadOrCreateKey(path: configuration.signingKeyFile)
    }

    /// The public key that verifies this log's anchors.
    public var publicKey: Curve25519.Signing.PublicKey { key.publicKey }

    /// Appends a record. Never throws to the caller: a failure is logged as an error (the request
    /// it describes has already been answered).
    public func record(_ entry: AuditEntry, at time: Date = Date()) async {
        guard configuration.granularity != .none else { return }
        var entry = entry
        if configuration.granularity != .full {
            entry.prompt = nil
            entry.answer = nil
        }
        do {
            try await append(entry, time: time.timeIntervalSince1970)
            let due = sinceCheckpoint.withLock { count -> Bool in
                count += 1
                guard count >= configuration.checkpointEvery else { return false }
                count = 0
                return true
            }
            if due { try await checkpoint() }
        } catch {
            writeErrors.increment()
            logger.error("audit append failed", metadata: ["error": "\(error)", "type": "\(entry.type)", "user": "\(entry.user)"])
        }
    }

    private func append(_ entry: AuditEntry, time: Double) async throws {
        // Join the queue; with no writer, this caller leads (writes) the next batch itself.
        let turn: Turn = await withCheckedContinuation { continuation in
            let leads = queue.withLock { queue -> Bool in
                if queue.writing {
                    queue.waiting.append(Pending(entry: entry, time: time, continuation: continuation))
                    return false
                }
                queue.writing = true
                queue.waiting.append(Pending(entry: entry, time: time, continuation: nil))
                return true
            }
            if leads { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .written:
            recordsWritten.increment()
            return
        case .failed(let message): throw AuditWriteFailure(message: message)
        case .lead: break
        }
        let batch = queue.withLock { queue -> [Pending] in
            defer { queue.waiting = [] }
            return queue.waiting
        }
        var outcome = Turn.written
        do {
            try await write(batch)
        } catch {
            outcome = .failed("\(error)")
        }
        // Hand the lead to the first record that arrived meanwhile, or stop writing.
        let next = queue.withLock { queue -> CheckedContinuation<Turn, Never>? in
            guard !queue.waiting.isEmpty else {
                queue.writing = false
                return nil
            }
            // The new leader writes its own record with the batch; it is resumed once, here.
            defer { queue.waiting[0].continuation = nil }
            return queue.waiting[0].continuation
        }
        for pending in batch { pending.continuation?.resume(returning: outcome) }
        next?.resume(returning: .lead)
        if case .failed(let message) = outcome { throw AuditWriteFailure(message: message) }
        recordsWritten.increment()
    }

    private func write(_ batch: [Pending]) async throws {
        try await store.appendAudit { lastSeq, lastHash in
            var rows: [AuditRow] = []
            rows.reserveCapacity(batch.count)
            var seq = lastSeq
            var hash = lastHash
            for pending in batch {
                seq += 1
                let body = pending.entry.canonicalEnvelope(seq: seq, time: pending.time)
                let chained = Self.chain(hash, body)
                rows.append(AuditRow(seq: seq, type: pending.entry.type, time: pending.time, body: body, prevHash: hash, hash: chained))
                hash = chained
            }
            return rows
        }
    }

    /// A batch of records could not be committed.
    struct AuditWriteFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { "audit write failed: \(message)" }
    }

    /// The stored body's shape (written by ``AuditEntry/canonicalEnvelope(seq:time:)``; tests decode with it).
    struct Envelope: Codable, Equatable {
        var seq: Int64
        var time: Double
        var record: AuditEntry
    }

    /// Signs a checkpoint over the chain's last record.
    public func checkpoint() async throws {
        guard let last = try await lastRow() else { return }
        var anchor = AuditAnchor(kind: .checkpoint, seq: last.seq, hash: last.hash, time: Date().timeIntervalSince1970)
        anchor.signature = try key.signature(for: Data(anchor.signedText.utf8)).base64EncodedString()
        try await store.addAuditAnchor(anchor)
    }

    /// Removes the oldest records whose retention has passed (the longest such prefix of the
    /// chain) and stores a signed purge summary in their place, so `verify` still passes.
    /// Returns the number of records removed.
    @discardableResult
    public func purge(now: Date = Date()) async throws -> Int {
        var purgeThrough: AuditRow?
        var first: Int64?
        var from: Int64 = 0
        scan: while true {
            let rows = try await store.auditRows(from: from, limit: 1000)
            guard !rows.isEmpty else { break }
            for row in rows {
                // Type and time are read from the hashed body, not the row's plain columns.
                guard let (type, time) = Self.typeAndTime(row.body) else { break scan }
                let expires = time + Double(configuration.retention(of: type)) * 86400
                guard expires <= now.timeIntervalSince1970 else { break scan }
                if first == nil { first = row.seq }
                purgeThrough = row
            }
            from = rows[rows.count - 1].seq + 1
        }
        guard let last = purgeThrough, let first else { return 0 }
        var anchor = AuditAnchor(kind: .purge, seq: last.seq, hash: last.hash, fromSeq: first, time: now.timeIntervalSince1970)
        anchor.signature = try key.signature(for: Data(anchor.signedText.utf8)).base64EncodedString()
        try await store.purgeAudit(anchor)
        logger.notice("audit records purged", metadata: ["from": "\(first)", "through": "\(last.seq)"])
        return Int(last.seq - first + 1)
    }

    private func lastRow() async throws -> AuditRow? {
        try await store.lastAuditRow()
    }

    /// Checks the whole chain and every anchor; names the first record that fails.
    public static func verify(store: any AuditStore, publicKey: Curve25519.Signing.PublicKey) async throws -> AuditVerification {
        let anchors = try await store.auditAnchors()
        for anchor in anchors {
            guard let signature = Data(base64Encoded: anchor.signature),
                  publicKey.isValidSignature(signature, for: Data(anchor.signedText.utf8)) else {
                return .invalid(seq: anchor.seq, reason: "the \(anchor.kind.rawValue) anchor's signature does not verify")
            }
        }
        let purge = anchors.filter { $0.kind == .purge }.max { $0.seq < $1.seq }
        var expectedSeq = (purge?.seq ?? 0) + 1
        var previous = purge?.hash ?? auditGenesisHash
        var hashes: [Int64: String] = [:]
        var count = 0
        var from: Int64 = 0
        while true {
            let rows = try await store.auditRows(from: from, limit: 5000)
            guard !rows.isEmpty else { break }
            for row in rows {
                if row.seq < expectedSeq {
                    return .invalid(seq: row.seq, reason: "record survives inside a purged range")
                }
                if row.seq > expectedSeq {
                    return .invalid(seq: expectedSeq, reason: "record is missing (deleted)")
                }
                if row.prevHash != previous {
                    return .invalid(seq: row.seq, reason: "its previous-hash does not match the record before it (inserted or reordered)")
                }
                if chain(row.prevHash, row.body) != row.hash {
                    return .invalid(seq: row.seq, reason: "its content does not match its hash (modified)")
                }
                if let (type, time) = typeAndTime(row.body), type != row.type || abs(time - row.time) > 0.001 {
                    return .invalid(seq: row.seq, reason: "its type or time columns differ from its hashed content (modified)")
                }
                hashes[row.seq] = row.hash
                previous = row.hash
                expectedSeq += 1
                count += 1
            }
            from = rows[rows.count - 1].seq + 1
        }
        let lastSeq = expectedSeq - 1
        for anchor in anchors where anchor.kind == .checkpoint && anchor.seq > (purge?.seq ?? 0) {
            guard anchor.seq <= lastSeq else {
                return .invalid(seq: lastSeq + 1, reason: "records up to #\(anchor.seq), covered by a signed checkpoint, are missing (truncated)")
            }
            guard hashes[anchor.seq] == anchor.hash else {
                return .invalid(seq: anchor.seq, reason: "does not match the signed checkpoint (the chain was rewritten)")
            }
        }
        return .valid(records: count, checkpoints: anchors.count, lastSeq: lastSeq)
    }

    /// Verifies the chain (at start, then every `verify_interval_seconds`) and writes a
    /// checkpoint when the process shuts down.
    public func run() async throws {
        let verifier = Task { await self.verifyPeriodically() }
        try? await gracefulShutdown()
        verifier.cancel()
        do {
            try await Task.detached { try await self.checkpoint() }.value
        } catch {
            logger.error("audit checkpoint at shutdown failed", metadata: ["error": "\(error)"])
        }
    }

    /// Verifies the whole chain with this log's key and sets `conclave_audit_chain_valid`
    /// (1 valid, 0 broken); a break is logged as an error naming the record. A store that cannot
    /// be read leaves the gauge as it was.
    @discardableResult
    public func verifyChain() async -> AuditVerification? {
        do {
            let result = try await Self.verify(store: store, publicKey: publicKey)
            chainValid.record(result.isValid ? 1 : 0)
            if !result.isValid { logger.error("audit chain verification failed", metadata: ["result": "\(result)"]) }
            return result
        } catch {
            logger.warning("audit chain could not be verified", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func verifyPeriodically() async {
        // Unknown until the first verification ends: NaN, which no alert comparison matches.
        chainValid.record(Double.nan)
        while !Task.isCancelled {
            await verifyChain()
            guard configuration.verifyIntervalSeconds > 0 else { return }
            try? await Task.sleep(for: .seconds(configuration.verifyIntervalSeconds))
        }
    }

    /// The record type and time inside a stored body.
    static func typeAndTime(_ body: String) -> (String, Double)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let time = object["time"] as? Double, let record = object["record"] as? [String: Any],
              let type = record["type"] as? String else { return nil }
        return (type, time)
    }

    static func chain(_ previous: String, _ body: String) -> String {
        sha256(previous + "\n" + body)
    }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).hexEncoded
    }

    /// Reads the raw 32-byte key (hex) or creates it.
    static func loadOrCreateKey(path: String) throws -> Curve25519.Signing.PrivateKey {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let bytes = Data(hex: hex), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes) else {
                throw ConfigurationError(key: "audit.signing_key_file", value: path, expected: "a 32-byte Ed25519 private key in hex")
            }
            return key
        }
        let key = Curve25519.Signing.PrivateKey()
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let hex = key.rawRepresentation.hexEncoded
        guard FileManager.default.createFile(atPath: path, contents: Data(hex.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError(key: "audit.signing_key_file", value: path, expected: "a writable path for the new checkpoint key")
        }
        return key
    }

    /// The public key for a private key file (for `conclave audit verify`).
    public static func publicKey(keyFile: String) throws -> Curve25519.Signing.PublicKey {
        guard FileManager.default.fileExists(atPath: keyFile) else {
            throw ConfigurationError(key: "audit.signing_key_file", value: keyFile, expected: "the checkpoint key the server signed with")
        }
        return try loadOrCreateKey(path: keyFile).publicKey
    }
}

extension Data {
    init?(hex: String) {
        guard hex.utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(bytes)
    }
}
