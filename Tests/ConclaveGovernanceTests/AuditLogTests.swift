import ConclaveCore
@testable import ConclaveGovernance
import ConclaveStorage
import Foundation
import Crypto
import GRDB
import Logging
import Testing

/// The audit chain detects every kind of tampering and survives retention purges.
@Suite final class AuditLogTests {
    let directory: URL
    let databasePath: String
    let store: SQLiteStore
    let log: AuditLog

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-audit-\(RandomID.make())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        databasePath = directory.appendingPathComponent("audit.sqlite").path
        store = try SQLiteStore(path: databasePath)
        log = try AuditLog(store: store, configuration: AuditConfiguration(granularity: .metadata,
                                                                           signingKeyFile: directory.appendingPathComponent("k").path,
                                                                           checkpointEvery: 4),
                           logger: Logger(label: "test"))
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    private func fill(_ count: Int) async {
        for i in 1...count {
            await log.record(AuditEntry(type: i % 3 == 0 ? "denial" : "request", user: "u-\(i)", roles: ["employee"], status: "ok",
                                        workflow: "full", prompt: "question \(i)", answer: "answer \(i)"))
        }
    }

    /// Tampers with the database directly, as an attacker with file access would.
    private func tamper(_ sql: String) throws {
        let queue = try DatabaseQueue(path: databasePath)
        try queue.write { try $0.execute(sql: sql) }
    }

    private func verify() async throws -> AuditVerification {
        try await AuditLog.verify(store: store, publicKey: log.publicKey)
    }

    @Test func intactChainVerifiesAndHoldsHashesNotText() async throws {
        await fill(10)
        #expect(try await verify() == .valid(records: 10, checkpoints: 2, lastSeq: 10))
        let rows = try await store.auditRows(from: 0, limit: 100)
        #expect(rows.allSatisfy { !$0.body.contains("question") && $0.body.contains("promptSHA256") })
    }

    @Test func concurrentRecordsAreGroupCommittedIntoOneValidChainWithNoneLost() async throws {
        let log = self.log
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<16 {
                group.addTask {
                    for i in 0..<25 {
                        await log.record(AuditEntry(type: "request", user: "u-\(client)", status: "ok", workflow: "full",
                                                    prompt: "q \(client) \(i)"))
                    }
                }
            }
        }
        let rows = try await store.auditRows(from: 0, limit: 1000)
        #expect(rows.count == 400)
        #expect(rows.map(\.seq) == Array(1...400))
        // Every client's records are all there, in the order each client made them.
        for client in 0..<16 {
            let mine = rows.filter { $0.body.contains(#""user":"u-\#(client)""#) }
            #expect(mine.count == 25)
        }
        if case .valid(let records, _, let lastSeq) = try await verify() {
            #expect(records == 400 && lastSeq == 400)
        } else {
            Issue.record("the chain does not verify")
        }
        #expect(try await store.lastAuditRow()?.seq == 400)
    }

    @Test func canonicalBodyIsTheSortedKeyDocumentJSONEncoderWrites() throws {
        let entries = [
            AuditEntry(type: "request", user: "u-1", status: "ok"),
            AuditEntry(type: "request", user: "u \"quoted\" \\ /slash/", tenant: "meridian", roles: ["hr", "admin"], status: "ok",
                       workflow: "full", runID: "r1", conversationID: "c1",
                       decisions: [.init(point: "retrieval", allowed: false, rule: "classification", reason: "línea\nnueva 😀")],
                       sources: [.init(id: "doc-1", classification: "internal"), .init(id: "db:x", classification: nil)],
                       withheld: ["doc-9"], maskedEntities: ["phone": 2, "email": 1, "iban": 0], models: ["smollm2"],
                       promptTokens: 12, completionTokens: 34, prompt: "control \u{01} tab\t", answer: "answer"),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for entry in entries {
            let body = entry.canonicalEnvelope(seq: 42, time: 1_764_111_000.125)
            let expected = String(decoding: try encoder.encode(AuditLog.Envelope(seq: 42, time: 1_764_111_000.125, record: entry)),
                                  as: UTF8.self)
            #expect(body == expected)
            #expect(try JSONDecoder().decode(AuditLog.Envelope.self, from: Data(body.utf8)).record == entry)
        }
    }

    @Test func modifiedRecordIsNamed() async throws {
        await fill(10)
        try tamper("UPDATE audit_log SET body = replace(body, 'u-6', 'u-x') WHERE seq = 6")
        #expect(try await verify() == .invalid(seq: 6, reason: "its content does not match its hash (modified)"))
    }

    @Test func deletedRecordIsNamed() async throws {
        await fill(10)
        try tamper("DELETE FROM audit_log WHERE seq = 5")
        #expect(try await verify() == .invalid(seq: 5, reason: "record is missing (deleted)"))
    }

    @Test func insertedRecordIsNamed() async throws {
        await fill(10)
        // Shift records 7… up by one and insert a forged record 7 that chains onto record 6.
        try tamper("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 7")
        try tamper("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000")
        try tamper("""
            INSERT INTO audit_log (seq, type, time, body, prev_hash, hash)
            SELECT 7, 'request', time, '{"forged":true}', hash, hash FROM audit_log WHERE seq = 6
            """)
        let result = try await verify()
        guard case .invalid(let seq, _) = result else { Issue.record("forgery not detected"); return }
        #expect(seq == 7)
    }

    @Test func rewrittenChainIsCaughtByTheSignedCheckpoint() async throws {
        await fill(8)
        // Rewrite record 2 and recompute every later hash: the chain is self-consistent again,
        // but checkpoint 4 (signed) pins the old hash.
        let rows = try await store.auditRows(from: 0, limit: 100)
        let queue = try DatabaseQueue(path: databasePath)
        try await queue.write { db in
            var previous = String(repeating: "0", count: 64)
            for row in rows {
                let body = row.seq == 2 ? row.body.replacingOccurrences(of: "u-2", with: "u-z") : row.body
                let hash = SHA256Hex.of(previous + "\n" + body)
                try db.execute(sql: "UPDATE audit_log SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                               arguments: [body, previous, hash, row.seq])
                previous = hash
            }
        }
        #expect(try await verify() == .invalid(seq: 4, reason: "does not match the signed checkpoint (the chain was rewritten)"))
    }

    @Test func truncatedTailUpToACheckpointIsDetected() async throws {
        await fill(9)
        try tamper("DELETE FROM audit_log WHERE seq >= 7")
        let result = try await verify()
        guard case .invalid(let seq, let reason) = result else { Issue.record("truncation not detected"); return }
        #expect(seq == 7 && reason.contains("truncated"))
    }

    @Test func forgedAnchorIsRejected() async throws {
        await fill(4)
        // Always a change: a hash that already began with "ab" made this a no-op (1 run in 256).
        try tamper("UPDATE audit_anchors SET hash = (CASE WHEN substr(hash, 1, 2) = 'ab' THEN 'cd' ELSE 'ab' END) || substr(hash, 3)")
        let result = try await verify()
        guard case .invalid(_, let reason) = result else { Issue.record("forged anchor accepted"); return }
        #expect(reason.contains("signature"))
    }

    @Test func purgeKeepsTheChainVerifiable() async throws {
        await fill(10)
        // Editing the plain time column does not age a record (purge reads the hashed body)...
        try tamper("UPDATE audit_log SET time = 0 WHERE seq <= 6")
        #expect(try await log.purge() == 0)
        #expect(try await verify() == .invalid(seq: 1, reason: "its type or time columns differ from its hashed content (modified)"))
        try tamper("DELETE FROM audit_log")
        try tamper("DELETE FROM audit_anchors")
        // ...records that are old in their hashed content are purged.
        let old = Date().addingTimeInterval(-400 * 86400)
        for i in 1...10 { await log.record(AuditEntry(type: "request", user: "u-\(i)", status: "ok"), at: i <= 6 ? old : Date()) }
        #expect(try await log.purge() == 6)
        #expect(try await store.auditRows(from: 0, limit: 100).first?.seq == 7)
        #expect(try await verify().isValid)
        await fill(3)
        let after = try await verify()
        #expect(after.isValid)
        guard case .valid(let records, _, let last) = after else { return }
        #expect(records == 7 && last == 13)
        // Deleting a record after the purged range is still caught.
        try tamper("DELETE FROM audit_log WHERE seq = 8")
        #expect(try await verify() == .invalid(seq: 8, reason: "record is missing (deleted)"))
    }

    @Test func fullGranularityKeepsTheText() async throws {
        let full = try AuditLog(store: store, configuration: AuditConfiguration(granularity: .full,
                                                                                signingKeyFile: directory.appendingPathComponent("k").path),
                                logger: Logger(label: "test"))
        await full.record(AuditEntry(type: "request", user: "u-1", status: "ok", prompt: "the question", answer: "the answer"))
        let body = try #require(try await store.auditRows(from: 0, limit: 1).first?.body)
        #expect(body.contains("the question") && body.contains("the answer"))
    }
}

enum SHA256Hex {
    static func of(_ text: String) -> String {
        Crypto.SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
