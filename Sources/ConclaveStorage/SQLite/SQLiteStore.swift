import ConclaveCore
import Foundation
import GRDB
import Synchronization

/// The embedded store: one SQLite database (WAL mode) holding conversations, documents, chunks
/// with an FTS5 index, and run events. Implements every store protocol.
public final class SQLiteStore: ConclaveStore, Sendable {
    private let writer: any DatabaseWriter
    private let generation = Mutex(0)

    public var documentsGeneration: Int { generation.withLock { $0 } }

    /// Opens (creating if needed) the database at `path` and migrates it; `:memory:` opens an
    /// in-memory database.
    public init(path: String) throws {
        do {
            var configuration = Configuration()
            // Another process on the same file (`conclave ingest` or `audit purge` beside a
            // running server) waits for the write lock instead of failing at once.
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            if path == ":memory:" {
                writer = try DatabaseQueue(configuration: configuration)
            } else {
                let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                writer = try DatabasePool(path: path, configuration: configuration)
            }
            try Self.migrator.migrate(writer)
        } catch {
            throw ConclaveError(.storage, "Cannot open the database at '\(path)'.", context: "\(error)")
        }
    }

    /// Replaces everything in `other` with a copy of this database (SQLite's online backup): a
    /// snapshot, or a second store that starts with what this one holds without doing the work
    /// (ingestion) again.
    public func copy(into other: SQLiteStore) async throws {
        other.generation.withLock { $0 += 1 }
        defer { other.generation.withLock { $0 += 1 } }
        let source = writer
        try await other.writer.writeWithoutTransaction { destination in
            try source.read { try $0.backup(to: destination) }
        }
    }

    /// True when the database answers a trivial query.
    public func isHealthy() async -> Bool {
        (try? await writer.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }

    /// Nothing to release: GRDB closes the database when the store is released.
    public func close() async {}

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE conversations (
                    id TEXT PRIMARY KEY NOT NULL,
                    user_id TEXT NOT NULL,
                    created_at DOUBLE NOT NULL
                );
                CREATE TABLE messages (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                    role TEXT NOT NULL,
                    content TEXT NOT NULL,
                    created_at DOUBLE NOT NULL
                );
                CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
                CREATE TABLE documents (
                    id TEXT PRIMARY KEY NOT NULL,
                    title TEXT NOT NULL,
                    department TEXT,
                    classification TEXT,
                    effective_date TEXT,
                    supersedes TEXT,
                    path TEXT NOT NULL,
                    content_hash TEXT NOT NULL,
                    metadata TEXT NOT NULL
                );
                CREATE TABLE chunks (
                    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                    position INTEGER NOT NULL,
                    section TEXT NOT NULL,
                    text TEXT NOT NULL
                );
                CREATE INDEX chunks_by_document ON chunks(document_id, position);
                CREATE VIRTUAL TABLE chunks_fts USING fts5(text, section, title, tokenize = 'porter unicode61');
                CREATE TABLE run_events (
                    run_id TEXT NOT NULL,
                    sequence INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    step_id TEXT,
                    role TEXT,
                    attempt INTEGER NOT NULL,
                    detail TEXT,
                    duration_ms DOUBLE,
                    prompt_tokens INTEGER,
                    completion_tokens INTEGER,
                    timestamp DOUBLE NOT NULL,
                    PRIMARY KEY (run_id, sequence)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2-audit") { db in
            try db.execute(sql: """
                CREATE TABLE audit_log (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    type TEXT NOT NULL,
                    time DOUBLE NOT NULL,
                    body TEXT NOT NULL,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                );
                CREATE TABLE audit_anchors (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    hash TEXT NOT NULL,
                    from_seq INTEGER,
                    time DOUBLE NOT NULL,
                    signature TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3-embeddings") { db in
            // One vector per chunk and embedding model; a chunk's vectors go with it.
            try db.execute(sql: """
                CREATE TABLE chunk_embeddings (
                    chunk_id TEXT NOT NULL,
                    model TEXT NOT NULL,
                    vector BLOB NOT NULL,
                    PRIMARY KEY (chunk_id, model)
                );
                CREATE TRIGGER chunk_embeddings_cleanup AFTER DELETE ON chunks
                BEGIN
                    DELETE FROM chunk_embeddings WHERE chunk_id = OLD.id;
                END;
                """)
        }
        migrator.registerMigration("v4-step-results") { db in
            try db.execute(sql: """
                CREATE TABLE step_results (
                    key TEXT PRIMARY KEY NOT NULL,
                    run_id TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    created_at DOUBLE NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5-rate-buckets") { db in
            try db.execute(sql: """
                CREATE TABLE rate_buckets (
                    key TEXT PRIMARY KEY NOT NULL,
                    level DOUBLE NOT NULL,
                    updated_at DOUBLE NOT NULL
                );
                """)
        }
        migrator.registerMigration("v6-conversations-by-user") { db in
            try db.execute(sql: "CREATE INDEX conversations_by_user ON conversations(user_id, created_at)")
        }
        return migrator
    }

    // MARK: - Conversations

    public func createConversation(_ conversation: Conversation) async throws {
        try await write { db in
            try db.execute(sql: "INSERT INTO conversations (id, user_id, created_at) VALUES (?, ?, ?)",
                           arguments: [conversation.id, conversation.userID, conversation.createdAt.timeIntervalSince1970])
            try Self.insert(conversation.messages, into: conversation.id, db)
        }
    }

    public func conversation(id: String) async throws -> Conversation? {
        try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, user_id, created_at FROM conversations WHERE id = ?",
                                             arguments: [id]) else { return nil }
            let messages = try Row.fetchAll(db, sql: "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id",
                                            arguments: [id]).map { row in
                ChatMessage(role: ChatMessage.Role(rawValue: row["role"]) ?? .user, content: row["content"])
            }
            return Conversation(id: row["id"], userID: row["user_id"], messages: messages,
                                createdAt: Date(timeIntervalSince1970: row["created_at"]))
        }
    }

    public func appendMessages(_ messages: [ChatMessage], toConversation id: String) async throws {
        try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM conversations WHERE id = ?)", arguments: [id]) == true else {
                throw ConclaveError(.notFound, "Conversation '\(id)' does not exist.")
            }
            try Self.insert(messages, into: id, db)
        }
    }

    public func conversations(ownedBy userID: String, limit: Int) async throws -> [ConversationSummary] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, c.created_at, COUNT(m.id) AS messages, COALESCE(MAX(m.created_at), c.created_at) AS updated_at,
                       (SELECT f.content FROM messages f WHERE f.conversation_id = c.id AND f.role = 'user'
                        ORDER BY f.id LIMIT 1) AS title
                FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
                WHERE c.user_id = ?
                GROUP BY c.id
                ORDER BY updated_at DESC, c.id
                LIMIT ?
                """, arguments: [userID, max(0, limit)]).map { row in
                ConversationSummary(id: row["id"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
                                    updatedAt: Date(timeIntervalSince1970: row["updated_at"]), messageCount: row["messages"],
                                    title: row["title"] ?? "")
            }
        }
    }

    private static func insert(_ messages: [ChatMessage], into conversationID: String, _ db: Database) throws {
        let now = Date().timeIntervalSince1970
        let statement = try db.cachedStatement(sql: "INSERT INTO messages (conversation_id, role, content, created_at) VALUES (?, ?, ?, ?)")
        for message in messages {
            try statement.execute(arguments: [conversationID, message.role.rawValue, message.content, now])
        }
    }

    // MARK: - Documents

    public func contentHash(ofDocument id: String) async throws -> String? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT content_hash FROM documents WHERE id = ?", arguments: [id])
        }
    }

    public func replaceDocument(_ document: DocumentRecord, chunks: [ChunkRecord]) async throws {
        // Before and after the write: a scope computed meanwhile is never cached under the new generation.
        generation.withLock { $0 += 1 }
        defer { generation.withLock { $0 += 1 } }
        let metadata = String(decoding: try JSONEncoder().encode(document.metadata), as: UTF8.self)
        try await write { db in
            try Self.delete(documentID: document.id, db)
            try db.execute(sql: """
                INSERT INTO documents (id, title, department, classification, effective_date, supersedes, path, content_hash, metadata)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [document.id, document.title, document.department, document.classification,
                                 document.effectiveDate, document.supersedes, document.path, document.contentHash, metadata])
            let insertChunk = try db.cachedStatement(sql: "INSERT INTO chunks (id, document_id, position, section, text) VALUES (?, ?, ?, ?, ?)")
            let insertFTS = try db.cachedStatement(sql: "INSERT INTO chunks_fts (rowid, text, section, title) VALUES (?, ?, ?, ?)")
            for chunk in chunks {
                try insertChunk.execute(arguments: [chunk.id, chunk.documentID, chunk.position, chunk.section, chunk.text])
                try insertFTS.execute(arguments: [db.lastInsertedRowID, chunk.text, chunk.section, document.title])
            }
        }
    }

    public func deleteDocument(id: String) async throws {
        // Before and after the write: a scope computed meanwhile is never cached under the new generation.
        generation.withLock { $0 += 1 }
        defer { generation.withLock { $0 += 1 } }
        try await write { db in try Self.delete(documentID: id, db) }
    }

    private static func delete(documentID: String, _ db: Database) throws {
        try db.execute(sql: "DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE document_id = ?)",
                       arguments: [documentID])
        try db.execute(sql: "DELETE FROM chunks WHERE document_id = ?", arguments: [documentID])
        try db.execute(sql: "DELETE FROM documents WHERE id = ?", arguments: [documentID])
    }

    public func documents() async throws -> [DocumentRecord] {
        try await read { db in
            let successors = try Dictionary(
                Row.fetchAll(db, sql: "SELECT supersedes, id FROM documents WHERE supersedes IS NOT NULL").map {
                    (($0["supersedes"] as String), ($0["id"] as String))
                }, uniquingKeysWith: { a, _ in a })
            return try Row.fetchAll(db, sql: "SELECT * FROM documents ORDER BY id").map { row in
                let id: String = row["id"]
                let metadataText: String = row["metadata"]
                let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(metadataText.utf8))) ?? [:]
                return DocumentRecord(id: id, title: row["title"], department: row["department"],
                                      classification: row["classification"], effectiveDate: row["effective_date"],
                                      supersedes: row["supersedes"], supersededBy: successors[id], path: row["path"],
                                      contentHash: row["content_hash"], metadata: metadata)
            }
        }
    }

    // MARK: - Embeddings

    public func chunksWithoutEmbedding(model: String) async throws -> [ChunkEmbeddingInput] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, c.section, c.text, d.title FROM chunks c JOIN documents d ON d.id = c.document_id
                WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.chunk_id = c.id AND e.model = ?)
                ORDER BY c.rowid
                """, arguments: [model]).map { ChunkEmbeddingInput(chunkID: $0["id"], title: $0["title"], section: $0["section"], text: $0["text"]) }
        }
    }

    public func storeEmbeddings(_ vectors: [(chunkID: String, vector: [Float])], model: String) async throws {
        try await write { db in
            let statement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO chunk_embeddings (chunk_id, model, vector) VALUES (?, ?, ?)")
            for item in vectors {
                let blob = item.vector.withUnsafeBufferPointer { Data(buffer: $0) }
                try statement.execute(arguments: [item.chunkID, model, blob])
            }
        }
    }

    public func embeddings(model: String) async throws -> [StoredEmbedding] {
        try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT e.chunk_id, c.document_id, e.vector FROM chunk_embeddings e JOIN chunks c ON c.id = e.chunk_id
                WHERE e.model = ? ORDER BY c.rowid
                """, arguments: [model]).map { row in
                let data: Data = row["vector"]
                let vector = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                return StoredEmbedding(chunkID: row["chunk_id"], documentID: row["document_id"], vector: vector)
            }
        }
    }

    public func chunks(ofDocument id: String) async throws -> [ChunkRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT id, document_id, position, section, text FROM chunks WHERE document_id = ? ORDER BY position",
                             arguments: [id]).map { row in
                ChunkRecord(id: row["id"], documentID: row["document_id"], position: row["position"], section: row["section"],
                            text: row["text"])
            }
        }
    }

    public func chunkHits(ids: [String]) async throws -> [ChunkHit] {
        guard !ids.isEmpty else { return [] }
        let list = String(decoding: try JSONEncoder().encode(ids), as: UTF8.self)
        let hits = try await read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, c.document_id, c.position, c.section, c.text, d.title, d.department,
                       (SELECT s.id FROM documents s WHERE s.supersedes = d.id LIMIT 1) AS superseded_by
                FROM chunks c JOIN documents d ON d.id = c.document_id
                WHERE c.id IN (SELECT value FROM json_each(?))
                """, arguments: [list]).map { row in
                ChunkHit(chunk: ChunkRecord(id: row["id"], documentID: row["document_id"], position: row["position"],
                                            section: row["section"], text: row["text"]),
                         documentTitle: row["title"], supersededBy: row["superseded_by"], score: 0,
                         documentDepartment: row["department"])
            }
        }
        let byID = Dictionary(hits.map { ($0.chunk.id, $0) }, uniquingKeysWith: { a, _ in a })
        return ids.compactMap { byID[$0] }
    }

    public func searchChunks(matching expression: String, limit: Int, allowedDocuments: Set<String>?) async throws -> [ChunkHit] {
        // The allowed ids travel as one JSON array argument, whatever their number.
        let allowed = try allowedDocuments.map { String(decoding: try JSONEncoder().encode($0.sorted()), as: UTF8.self) }
        return try await read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT c.id, c.document_id, c.position, c.section, c.text, d.title, d.department,
                       (SELECT s.id FROM documents s WHERE s.supersedes = d.id LIMIT 1) AS superseded_by,
                       bm25(chunks_fts, 1.0, 0.6, 0.6) AS rank
                FROM chunks_fts
                JOIN chunks c ON c.rowid = chunks_fts.rowid
                JOIN documents d ON d.id = c.document_id
                WHERE chunks_fts MATCH ?
                  AND (? IS NULL OR c.document_id IN (SELECT value FROM json_each(?)))
                ORDER BY rank
                LIMIT ?
                """, arguments: [expression, allowed, allowed, limit])
            return rows.map { row in
                ChunkHit(chunk: ChunkRecord(id: row["id"], documentID: row["document_id"], position: row["position"],
                                            section: row["section"], text: row["text"]),
                         documentTitle: row["title"], supersededBy: row["superseded_by"], score: -(row["rank"] as Double),
                         documentDepartment: row["department"])
            }
        }
    }

    public func chunkCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunks") ?? 0 }
    }

    // MARK: - Events

    public func appendEvents(_ events: [RunEvent]) async throws {
        try await appendEvents(batches: [events])
    }

    /// Inserts with SQLite's own bind calls on GRDB's cached statement: GRDB's generic argument
    /// boxing was a third of the event log's cost at thousands of runs per second.
    public func appendEvents(batches: [[RunEvent]]) async throws {
        guard batches.contains(where: { !$0.isEmpty }) else { return }
        try await write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT OR IGNORE INTO run_events
                (run_id, sequence, kind, step_id, role, attempt, detail, duration_ms, prompt_tokens, completion_tokens, timestamp)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            let insert = RawInsert(statement)
            for events in batches {
                for e in events {
                    insert.bind(1, e.runID)
                    insert.bind(2, e.sequence)
                    insert.bind(3, e.kind.rawValue)
                    insert.bind(4, e.stepID)
                    insert.bind(5, e.role?.rawValue)
                    insert.bind(6, e.attempt)
                    insert.bind(7, e.detail)
                    insert.bind(8, e.durationMilliseconds)
                    insert.bind(9, e.usage?.promptTokens)
                    insert.bind(10, e.usage?.completionTokens)
                    insert.bind(11, e.timestamp.timeIntervalSince1970)
                    try insert.step(db)
                }
            }
        }
    }

    public func events(ofRun runID: String) async throws -> [RunEvent] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run_events WHERE run_id = ? ORDER BY sequence", arguments: [runID]).map { row in
                let prompt: Int? = row["prompt_tokens"]
                let completion: Int? = row["completion_tokens"]
                return RunEvent(runID: row["run_id"], sequence: row["sequence"],
                                kind: RunEvent.Kind(rawValue: row["kind"]) ?? .stepFailed, stepID: row["step_id"],
                                role: (row["role"] as String?).flatMap(AgentRole.init(rawValue:)), attempt: row["attempt"],
                                detail: row["detail"], durationMilliseconds: row["duration_ms"],
                                usage: prompt.map { TokenUsage(promptTokens: $0, completionTokens: completion ?? 0) },
                                timestamp: Date(timeIntervalSince1970: row["timestamp"]))
            }
        }
    }

    // MARK: - Audit

    public func appendAudit(_ make: @escaping @Sendable (_ lastSeq: Int64, _ lastHash: String) throws -> [AuditRow]) async throws {
        try await write { db in
            var head: (Int64, String) = (0, auditGenesisHash)
            if let row = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1") {
                head = (row["seq"], row["hash"])
            } else if let row = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_anchors WHERE kind = 'purge' ORDER BY seq DESC LIMIT 1") {
                head = (row["seq"], row["hash"])
            }
            let statement = try db.cachedStatement(sql: "INSERT INTO audit_log (seq, type, time, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)")
            for r in try make(head.0, head.1) {
                try statement.execute(arguments: [r.seq, r.type, r.time, r.body, r.prevHash, r.hash])
            }
        }
    }

    public func auditRows(from seq: Int64, limit: Int) async throws -> [AuditRow] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?", arguments: [seq, limit]).map {
                AuditRow(seq: $0["seq"], type: $0["type"], time: $0["time"], body: $0["body"], prevHash: $0["prev_hash"], hash: $0["hash"])
            }
        }
    }

    public func lastAuditRow() async throws -> AuditRow? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1").map {
                AuditRow(seq: $0["seq"], type: $0["type"], time: $0["time"], body: $0["body"], prevHash: $0["prev_hash"], hash: $0["hash"])
            }
        }
    }

    public func auditAnchors() async throws -> [AuditAnchor] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_anchors ORDER BY id").compactMap { row in
                guard let kind = AuditAnchor.Kind(rawValue: row["kind"]) else { return nil }
                return AuditAnchor(kind: kind, seq: row["seq"], hash: row["hash"], fromSeq: row["from_seq"], time: row["time"],
                                   signature: row["signature"])
            }
        }
    }

    public func addAuditAnchor(_ anchor: AuditAnchor) async throws {
        try await write { db in try Self.insert(anchor, db) }
    }

    public func purgeAudit(_ anchor: AuditAnchor) async throws {
        try await write { db in
            try db.execute(sql: "DELETE FROM audit_log WHERE seq <= ?", arguments: [anchor.seq])
            try Self.insert(anchor, db)
        }
    }

    private static func insert(_ anchor: AuditAnchor, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO audit_anchors (kind, seq, hash, from_seq, time, signature) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [anchor.kind.rawValue, anchor.seq, anchor.hash, anchor.fromSeq, anchor.time, anchor.signature])
    }

    // MARK: - Step results

    public func stepResult(key: String) async throws -> [UInt8]? {
        try await read { db in
            try Data.fetchOne(db, sql: "SELECT payload FROM step_results WHERE key = ?", arguments: [key]).map { Array($0) }
        }
    }

    public func storeStepResult(key: String, runID: String, payload: [UInt8]) async throws -> [UInt8] {
        try await write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO step_results (key, run_id, payload, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [key, runID, Data(payload), Date().timeIntervalSince1970])
            return try Data.fetchOne(db, sql: "SELECT payload FROM step_results WHERE key = ?", arguments: [key]).map { Array($0) } ?? payload
        }
    }

    public func pruneStepResults(storedBefore time: Double) async throws -> Int {
        try await write { db in
            try db.execute(sql: "DELETE FROM step_results WHERE created_at < ?", arguments: [time])
            return db.changesCount
        }
    }

    // MARK: - Rate limits

    public func take(from key: String, _ request: TokenBucket.Take, now: Double) async throws -> TokenBucket.Outcome {
        // One write transaction: SQLite serialises writers, so the read and the update are atomic.
        try await write { db in
            let row = try Row.fetchOne(db, sql: "SELECT level, updated_at FROM rate_buckets WHERE key = ?", arguments: [key])
            let outcome = TokenBucket.apply(request, level: row?["level"], updated: row?["updated_at"], now: now)
            try db.execute(sql: """
                INSERT INTO rate_buckets (key, level, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at
                """, arguments: [key, outcome.level, now])
            return outcome
        }
    }

    // MARK: - Access

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await writer.read(body)
        } catch let error as ConclaveError {
            throw error
        } catch {
            throw ConclaveError(.storage, "A database read failed.", context: "\(error)")
        }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await writer.write(body)
        } catch let error as ConclaveError {
            throw error
        } catch {
            throw ConclaveError(.storage, "A database write failed.", context: "\(error)")
        }
    }
}
