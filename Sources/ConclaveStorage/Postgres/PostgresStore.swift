import ConclaveCore
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

/// The shared store of distributed mode: PostgreSQL through a pooled `PostgresClient`
/// (postgres-nio). Implements every store protocol the embedded ``SQLiteStore`` does; one
/// conformance suite runs against both.
///
/// Differences from SQLite, by design:
/// - Full-text search is PostgreSQL's (`english` text search configuration, GIN index); the
///   ranking is BM25 computed in SQL over the chunks' `tsvector`s (k1 1.2, b 0.75; section and
///   title count 0.6 of body text, as SQLite's `bm25(chunks_fts, 1.0, 0.6, 0.6)`), so the scores
///   are comparable in order, not in value.
/// - The audit chain's head is read and extended under a transaction-scoped advisory lock, so
///   several gateways append to one chain without forks.
/// - `documentsGeneration` counts this instance's own document writes, as SQLite's does.
public final class PostgresStore: ConclaveStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let generation = Mutex(0)
    /// A printable target (`host:port/database`), never the password.
    public let target: String

    public var documentsGeneration: Int { generation.withLock { $0 } }

    /// Connects to the database `url` names (`postgres://user[:password]@host[:port]/database`,
    /// optional libpq-style `?sslmode=…&sslrootcert=…&sslcert=…&sslkey=…`), with at most `maxConnections` pooled connections,
    /// and migrates it. `password` (from configuration or the environment) wins over the URL's.
    public init(url: String, password: String? = nil, maxConnections: Int = 10, logger: Logger = Logger(label: "conclave.storage")) async throws {
        let location = try PostgresLocation(url: url)
        let tls = try location.connectionTLS()
        let poolTLS = try location.clientTLS()
        let target = "\(location.host):\(location.port)/\(location.database ?? location.user)"
        self.target = target
        self.logger = logger
        // One plain connection first: it migrates, and an unreachable or misconfigured server
        // fails here with its own error instead of inside the pool's reconnect loop.
        do {
            var direct = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                          password: password ?? location.password, database: location.database, tls: tls)
            direct.options.connectTimeout = .seconds(5)
            let connection = try await PostgresConnection.connect(configuration: direct, id: 0, logger: logger)
            do {
                try await Self.migrate(connection, logger: logger)
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        } catch {
            throw ConclaveError(.storage, "Cannot open the PostgreSQL database at '\(target)'.", context: "\(String(reflecting: error))")
        }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user,
            password: password ?? location.password, database: location.database, tls: .disable)
        configuration.tls = poolTLS
        configuration.options.maximumConnections = max(1, maxConnections)
        configuration.options.connectTimeout = .seconds(5)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    /// Stops the connection pool.
    public func close() async {
        runner.cancel()
        await runner.value
    }

    public func isHealthy() async -> Bool {
        (try? await scalar("SELECT 1::int8", as: Int.self)) == 1
    }

    // MARK: - Schema

    /// Versioned migrations, each applied once in its own transaction; a transaction-scoped
    /// advisory lock keeps gateways that start together from applying one twice.
    static let migrations: [(version: String, statements: [String])] = [
        ("v1", [
            """
            CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE messages (
                id BIGSERIAL PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                role TEXT NOT NULL,
                content TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
            "CREATE INDEX messages_by_conversation ON messages(conversation_id, id)",
            """
            CREATE TABLE documents (
                id TEXT PRIMARY KEY,
                title TEXT NOT NULL,
                department TEXT,
                classification TEXT,
                effective_date TEXT,
                supersedes TEXT,
                path TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                metadata TEXT NOT NULL)
            """,
            "CREATE INDEX documents_by_supersedes ON documents(supersedes)",
            """
            CREATE TABLE chunks (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
                position BIGINT NOT NULL,
                section TEXT NOT NULL,
                text TEXT NOT NULL,
                title TEXT NOT NULL,
                tsv TSVECTOR NOT NULL,
                tokens BIGINT NOT NULL)
            """,
            "CREATE INDEX chunks_by_document ON chunks(document_id, position)",
            "CREATE INDEX chunks_tsv ON chunks USING GIN (tsv)",
            """
            CREATE TABLE chunk_embeddings (
                chunk_id TEXT NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
                model TEXT NOT NULL,
                vector BYTEA NOT NULL,
                PRIMARY KEY (chunk_id, model))
            """,
            """
            CREATE TABLE run_events (
                run_id TEXT NOT NULL,
                sequence BIGINT NOT NULL,
                kind TEXT NOT NULL,
                step_id TEXT,
                role TEXT,
                attempt BIGINT NOT NULL,
                detail TEXT,
                duration_ms DOUBLE PRECISION,
                prompt_tokens BIGINT,
                completion_tokens BIGINT,
                timestamp DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (run_id, sequence))
            """,
            """
            CREATE TABLE audit_log (
                seq BIGINT PRIMARY KEY,
                type TEXT NOT NULL,
                time DOUBLE PRECISION NOT NULL,
                body TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL)
            """,
            """
            CREATE TABLE audit_anchors (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                seq BIGINT NOT NULL,
                hash TEXT NOT NULL,
                from_seq BIGINT,
                time DOUBLE PRECISION NOT NULL,
                signature TEXT NOT NULL)
            """,
        ]),
        ("v2-step-results", [
            """
            CREATE TABLE step_results (
                key TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                payload BYTEA NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)
            """,
        ]),
        ("v3-rate-buckets", [
            """
            CREATE TABLE rate_buckets (
                key TEXT PRIMARY KEY,
                level DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL)
            """,
        ]),
        ("v4-conversations-by-user", [
            "CREATE INDEX conversations_by_user ON conversations(user_id, created_at)",
        ]),
    ]

    /// Advisory lock keys (arbitrary constants, one per purpose).
    private static let migrationLock = 0x436F_6E63_6C01
    private static let auditLock = 0x436F_6E63_6C02

    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS conclave_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger)
            var applied = Set<String>()
            for try await version in try await connection.query("SELECT version FROM conclave_migrations", logger: logger).decode(String.self) {
                applied.insert(version)
            }
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO conclave_migrations (version) VALUES (\(migration.version))", logger: logger)
                logger.info("storage: applied migration", metadata: ["version": "\(migration.version)"])
            }
        }
    }

    // MARK: - Conversations

    public func createConversation(_ conversation: Conversation) async throws {
        try await transaction { connection, logger in
            try await connection.query("""
                INSERT INTO conversations (id, user_id, created_at)
                VALUES (\(conversation.id), \(conversation.userID), \(conversation.createdAt.timeIntervalSince1970))
                """, logger: logger)
            try await Self.insert(conversation.messages, into: conversation.id, connection, logger)
        }
    }

    public func conversation(id: String) async throws -> Conversation? {
        try await run("A database read failed.") { connection, logger in
            var header: (String, String, Double)?
            for try await row in try await connection.query(
                "SELECT id, user_id, created_at FROM conversations WHERE id = \(id)", logger: logger).decode((String, String, Double).self) {
                header = row
            }
            guard let header else { return nil }
            var messages: [ChatMessage] = []
            for try await (role, content) in try await connection.query(
                "SELECT role, content FROM messages WHERE conversation_id = \(id) ORDER BY id", logger: logger).decode((String, String).self) {
                messages.append(ChatMessage(role: ChatMessage.Role(rawValue: role) ?? .user, content: content))
            }
            return Conversation(id: header.0, userID: header.1, messages: messages, createdAt: Date(timeIntervalSince1970: header.2))
        }
    }

    public func appendMessages(_ messages: [ChatMessage], toConversation id: String) async throws {
        try await transaction { connection, logger in
            // Locks the conversation row, so concurrent turns of one conversation append in order.
            let exists = try await connection.query("SELECT 1::int8 FROM conversations WHERE id = \(id) FOR UPDATE", logger: logger)
                .collect().count == 1
            guard exists else { throw ConclaveError(.notFound, "Conversation '\(id)' does not exist.") }
            try await Self.insert(messages, into: id, connection, logger)
        }
    }

    public func conversations(ownedBy userID: String, limit: Int) async throws -> [ConversationSummary] {
        try await run("A database read failed.") { connection, logger in
            var summaries: [ConversationSummary] = []
            let rows = try await connection.query("""
                SELECT c.id, c.created_at, count(m.id)::int8, coalesce(max(m.created_at), c.created_at) AS updated_at,
                       (SELECT f.content FROM messages f WHERE f.conversation_id = c.id AND f.role = 'user' ORDER BY f.id LIMIT 1)
                FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id
                WHERE c.user_id = \(userID)
                GROUP BY c.id
                ORDER BY updated_at DESC, c.id
                LIMIT \(max(0, limit))
                """, logger: logger)
            for try await (id, created, count, updated, title) in rows.decode((String, Double, Int, Double, String?).self) {
                summaries.append(ConversationSummary(id: id, createdAt: Date(timeIntervalSince1970: created),
                                                     updatedAt: Date(timeIntervalSince1970: updated), messageCount: count,
                                                     title: title ?? ""))
            }
            return summaries
        }
    }

    private static func insert(_ messages: [ChatMessage], into conversationID: String, _ connection: PostgresConnection,
                               _ logger: Logger) async throws {
        guard !messages.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        var rows = MultiRowInsert(sql: "INSERT INTO messages (conversation_id, role, content, created_at) VALUES", columns: 4)
        for message in messages {
            rows.add { b in
                b.append(conversationID)
                b.append(message.role.rawValue)
                b.append(message.content)
                b.append(now)
            }
        }
        for query in rows.queries() { try await connection.query(query, logger: logger) }
    }

    // MARK: - Documents

    public func contentHash(ofDocument id: String) async throws -> String? {
        try await run("A database read failed.") { connection, logger in
            var hash: String?
            for try await value in try await connection.query("SELECT content_hash FROM documents WHERE id = \(id)", logger: logger)
                .decode(String.self) { hash = value }
            return hash
        }
    }

    public func replaceDocument(_ document: DocumentRecord, chunks: [ChunkRecord]) async throws {
        // Before and after the write: a scope computed meanwhile is never cached under the new generation.
        generation.withLock { $0 += 1 }
        defer { generation.withLock { $0 += 1 } }
        let metadata = String(decoding: try JSONEncoder().encode(document.metadata), as: UTF8.self)
        try await transaction { connection, logger in
            try await connection.query("DELETE FROM documents WHERE id = \(document.id)", logger: logger)
            try await connection.query("""
                INSERT INTO documents (id, title, department, classification, effective_date, supersedes, path, content_hash, metadata)
                VALUES (\(document.id), \(document.title), \(document.department), \(document.classification),
                        \(document.effectiveDate), \(document.supersedes), \(document.path), \(document.contentHash), \(metadata))
                """, logger: logger)
            for chunk in chunks {
                // Section and title are weighted 'A' (0.6 of body text in the ranking); the token
                // count is the document length BM25 normalises by.
                try await connection.query("""
                    WITH v AS (SELECT setweight(to_tsvector('english', \(chunk.section) || ' ' || \(document.title)), 'A')
                                      || to_tsvector('english', \(chunk.text)) AS tsv)
                    INSERT INTO chunks (id, document_id, position, section, text, title, tsv, tokens)
                    SELECT \(chunk.id), \(chunk.documentID), \(chunk.position), \(chunk.section), \(chunk.text), \(document.title),
                           v.tsv, (SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0) FROM unnest(v.tsv) u)
                    FROM v
                    """, logger: logger)
            }
        }
    }

    public func deleteDocument(id: String) async throws {
        generation.withLock { $0 += 1 }
        defer { generation.withLock { $0 += 1 } }
        try await transaction { connection, logger in
            try await connection.query("DELETE FROM documents WHERE id = \(id)", logger: logger)
        }
    }

    public func documents() async throws -> [DocumentRecord] {
        try await run("A database read failed.") { connection, logger in
            var records: [DocumentRecord] = []
            let rows = try await connection.query("""
                SELECT d.id, d.title, d.department, d.classification, d.effective_date, d.supersedes, d.path, d.content_hash, d.metadata,
                       (SELECT min(s.id) FROM documents s WHERE s.supersedes = d.id)
                FROM documents d ORDER BY d.id
                """, logger: logger)
            for try await (id, title, department, classification, effectiveDate, supersedes, path, hash, metadataText, successor) in rows.decode(
                (String, String, String?, String?, String?, String?, String, String, String, String?).self) {
                let metadata = (try? JSONDecoder().decode([String: String].self, from: Data(metadataText.utf8))) ?? [:]
                records.append(DocumentRecord(id: id, title: title, department: department, classification: classification,
                                              effectiveDate: effectiveDate, supersedes: supersedes, supersededBy: successor, path: path,
                                              contentHash: hash, metadata: metadata))
            }
            return records
        }
    }

    public func searchChunks(matching expression: String, limit: Int, allowedDocuments: Set<String>?) async throws -> [ChunkHit] {
        // The expression is FTS5's (`"a" OR "b"`): its quoted terms are the query's words.
        let terms = Self.quotedTerms(in: expression)
        guard !terms.isEmpty, limit > 0 else { return [] }
        let allowed = allowedDocuments.map { $0.sorted() }
        return try await run("A database read failed.") { connection, logger in
            let rows = try await connection.query("""
                WITH q AS (SELECT DISTINCT u.lexeme FROM unnest(to_tsvector('english', \(terms.joined(separator: " ")))) u),
                     tq AS (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS query FROM q),
                     stats AS (SELECT greatest(count(*), 1)::float8 AS n, greatest(coalesce(avg(tokens), 1), 1)::float8 AS avgdl FROM chunks),
                     df AS (SELECT q.lexeme, (SELECT count(*) FROM chunks c WHERE c.tsv @@ quote_literal(q.lexeme)::tsquery)::float8 AS df FROM q),
                     candidates AS (
                        SELECT c.seq, c.tsv, c.tokens FROM chunks c, tq
                        WHERE c.tsv @@ tq.query AND (\(allowed)::text[] IS NULL OR c.document_id = ANY(\(allowed)::text[]))),
                     scored AS (
                        SELECT c.seq, sum(
                            ln(1 + (stats.n - df.df + 0.5) / (df.df + 0.5))
                            * (t.tf * 2.2) / (t.tf + 1.2 * (0.25 + 0.75 * c.tokens / stats.avgdl))) AS score
                        FROM candidates c CROSS JOIN stats
                        CROSS JOIN LATERAL unnest(c.tsv) u
                        JOIN df ON df.lexeme = u.lexeme
                        CROSS JOIN LATERAL (
                            SELECT coalesce(sum(CASE w WHEN 'D' THEN 1.0 ELSE 0.6 END), 1.0)::float8 AS tf
                            FROM unnest(u.weights) w) t
                        GROUP BY c.seq
                        ORDER BY score DESC, c.seq
                        LIMIT \(limit))
                SELECT c.id, c.document_id, c.position, c.section, c.text, d.title, d.department,
                       (SELECT min(s.id) FROM documents s WHERE s.supersedes = d.id), s.score
                FROM scored s JOIN chunks c ON c.seq = s.seq JOIN documents d ON d.id = c.document_id
                ORDER BY s.score DESC, c.seq
                """, logger: logger)
            var hits: [ChunkHit] = []
            for try await (id, documentID, position, section, text, title, department, successor, score) in rows.decode(
                (String, String, Int, String, String, String, String?, String?, Double).self) {
                hits.append(ChunkHit(chunk: ChunkRecord(id: id, documentID: documentID, position: position, section: section, text: text),
                                     documentTitle: title, supersededBy: successor, score: score, documentDepartment: department))
            }
            return hits
        }
    }

    /// The quoted terms of an FTS5 expression (`"refund" OR "policy"` → `[refund, policy]`);
    /// an expression without quotes is taken word by word.
    static func quotedTerms(in expression: String) -> [String] {
        let parts = expression.split(separator: "\"", omittingEmptySubsequences: false)
        if parts.count >= 3 {
            return stride(from: 1, to: parts.count, by: 2).map { String(parts[$0]) }.filter { !$0.isEmpty }
        }
        return expression.split(whereSeparator: { $0 == " " }).map(String.init).filter { $0 != "OR" && $0 != "AND" && $0 != "NOT" }
    }

    public func chunkCount() async throws -> Int {
        try await scalar("SELECT count(*) FROM chunks", as: Int.self) ?? 0
    }

    public func chunks(ofDocument id: String) async throws -> [ChunkRecord] {
        try await run("A database read failed.") { connection, logger in
            var chunks: [ChunkRecord] = []
            let rows = try await connection.query(
                "SELECT id, document_id, position, section, text FROM chunks WHERE document_id = \(id) ORDER BY position", logger: logger)
            for try await (chunkID, documentID, position, section, text) in rows.decode((String, String, Int, String, String).self) {
                chunks.append(ChunkRecord(id: chunkID, documentID: documentID, position: position, section: section, text: text))
            }
            return chunks
        }
    }

    public func chunkHits(ids: [String]) async throws -> [ChunkHit] {
        guard !ids.isEmpty else { return [] }
        let hits = try await run("A database read failed.") { connection, logger in
            var hits: [ChunkHit] = []
            let rows = try await connection.query("""
                SELECT c.id, c.document_id, c.position, c.section, c.text, d.title, d.department,
                       (SELECT min(s.id) FROM documents s WHERE s.supersedes = d.id)
                FROM chunks c JOIN documents d ON d.id = c.document_id
                WHERE c.id = ANY(\(ids)::text[])
                """, logger: logger)
            for try await (id, documentID, position, section, text, title, department, successor) in rows.decode(
                (String, String, Int, String, String, String, String?, String?).self) {
                hits.append(ChunkHit(chunk: ChunkRecord(id: id, documentID: documentID, position: position, section: section, text: text),
                                     documentTitle: title, supersededBy: successor, score: 0, documentDepartment: department))
            }
            return hits
        }
        let byID = Dictionary(hits.map { ($0.chunk.id, $0) }, uniquingKeysWith: { a, _ in a })
        return ids.compactMap { byID[$0] }
    }

    // MARK: - Embeddings

    public func chunksWithoutEmbedding(model: String) async throws -> [ChunkEmbeddingInput] {
        try await run("A database read failed.") { connection, logger in
            var inputs: [ChunkEmbeddingInput] = []
            let rows = try await connection.query("""
                SELECT c.id, c.title, c.section, c.text FROM chunks c
                WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.chunk_id = c.id AND e.model = \(model))
                ORDER BY c.seq
                """, logger: logger)
            for try await (id, title, section, text) in rows.decode((String, String, String, String).self) {
                inputs.append(ChunkEmbeddingInput(chunkID: id, title: title, section: section, text: text))
            }
            return inputs
        }
    }

    public func storeEmbeddings(_ vectors: [(chunkID: String, vector: [Float])], model: String) async throws {
        guard !vectors.isEmpty else { return }
        try await transaction { connection, logger in
            var rows = MultiRowInsert(sql: "INSERT INTO chunk_embeddings (chunk_id, model, vector) VALUES", columns: 3,
                                      suffix: " ON CONFLICT (chunk_id, model) DO UPDATE SET vector = EXCLUDED.vector")
            for item in vectors {
                let bytes = item.vector.withUnsafeBytes { ByteBuffer(bytes: $0) }
                rows.add { b in
                    b.append(item.chunkID)
                    b.append(model)
                    b.append(bytes)
                }
            }
            for query in rows.queries() { try await connection.query(query, logger: logger) }
        }
    }

    public func embeddings(model: String) async throws -> [StoredEmbedding] {
        try await run("A database read failed.") { connection, logger in
            var stored: [StoredEmbedding] = []
            let rows = try await connection.query("""
                SELECT e.chunk_id, c.document_id, e.vector FROM chunk_embeddings e JOIN chunks c ON c.id = e.chunk_id
                WHERE e.model = \(model) ORDER BY c.seq
                """, logger: logger)
            for try await (chunkID, documentID, data) in rows.decode((String, String, Data).self) {
                let vector = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                stored.append(StoredEmbedding(chunkID: chunkID, documentID: documentID, vector: vector))
            }
            return stored
        }
    }

    // MARK: - Events

    public func appendEvents(_ events: [RunEvent]) async throws {
        try await appendEvents(batches: [events])
    }

    public func appendEvents(batches: [[RunEvent]]) async throws {
        guard batches.contains(where: { !$0.isEmpty }) else { return }
        var rows = MultiRowInsert(sql: """
            INSERT INTO run_events
            (run_id, sequence, kind, step_id, role, attempt, detail, duration_ms, prompt_tokens, completion_tokens, timestamp) VALUES
            """, columns: 11, suffix: " ON CONFLICT (run_id, sequence) DO NOTHING")
        for events in batches {
            for e in events {
                rows.add { b in
                    b.append(e.runID)
                    b.append(e.sequence)
                    b.append(e.kind.rawValue)
                    b.append(e.stepID)
                    b.append(e.role?.rawValue)
                    b.append(e.attempt)
                    b.append(e.detail)
                    b.append(e.durationMilliseconds)
                    b.append(e.usage?.promptTokens)
                    b.append(e.usage?.completionTokens)
                    b.append(e.timestamp.timeIntervalSince1970)
                }
            }
        }
        let queries = rows.queries()
        try await transaction { connection, logger in
            for query in queries { try await connection.query(query, logger: logger) }
        }
    }

    public func events(ofRun runID: String) async throws -> [RunEvent] {
        try await run("A database read failed.") { connection, logger in
            var events: [RunEvent] = []
            let rows = try await connection.query("""
                SELECT run_id, sequence, kind, step_id, role, attempt, detail, duration_ms, prompt_tokens, completion_tokens, timestamp
                FROM run_events WHERE run_id = \(runID) ORDER BY sequence
                """, logger: logger)
            for try await (run, sequence, kind, stepID, role, attempt, detail, duration, prompt, completion, time) in rows.decode(
                (String, Int, String, String?, String?, Int, String?, Double?, Int?, Int?, Double).self) {
                events.append(RunEvent(runID: run, sequence: sequence, kind: RunEvent.Kind(rawValue: kind) ?? .stepFailed, stepID: stepID,
                                       role: role.flatMap(AgentRole.init(rawValue:)), attempt: attempt, detail: detail,
                                       durationMilliseconds: duration,
                                       usage: prompt.map { TokenUsage(promptTokens: $0, completionTokens: completion ?? 0) },
                                       timestamp: Date(timeIntervalSince1970: time)))
            }
            return events
        }
    }

    // MARK: - Audit

    public func appendAudit(_ make: @escaping @Sendable (_ lastSeq: Int64, _ lastHash: String) throws -> [AuditRow]) async throws {
        try await transaction { connection, logger in
            // One writer at a time across every gateway: the head read and the append are one step.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.auditLock))", logger: logger)
            var head: (Int64, String)?
            for try await row in try await connection.query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", logger: logger)
                .decode((Int64, String).self) { head = row }
            if head == nil {
                for try await row in try await connection.query(
                    "SELECT seq, hash FROM audit_anchors WHERE kind = 'purge' ORDER BY seq DESC LIMIT 1", logger: logger)
                    .decode((Int64, String).self) { head = row }
            }
            let start = head ?? (0, auditGenesisHash)
            var rows = MultiRowInsert(sql: "INSERT INTO audit_log (seq, type, time, body, prev_hash, hash) VALUES", columns: 6)
            for r in try make(start.0, start.1) {
                rows.add { b in
                    b.append(r.seq)
                    b.append(r.type)
                    b.append(r.time)
                    b.append(r.body)
                    b.append(r.prevHash)
                    b.append(r.hash)
                }
            }
            for query in rows.queries() { try await connection.query(query, logger: logger) }
        }
    }

    public func auditRows(from seq: Int64, limit: Int) async throws -> [AuditRow] {
        try await auditRows("SELECT seq, type, time, body, prev_hash, hash FROM audit_log WHERE seq >= \(seq) ORDER BY seq LIMIT \(limit)")
    }

    public func lastAuditRow() async throws -> AuditRow? {
        try await auditRows("SELECT seq, type, time, body, prev_hash, hash FROM audit_log ORDER BY seq DESC LIMIT 1").first
    }

    private func auditRows(_ query: PostgresQuery) async throws -> [AuditRow] {
        try await run("A database read failed.") { connection, logger in
            var rows: [AuditRow] = []
            for try await (seq, type, time, body, prev, hash) in try await connection.query(query, logger: logger)
                .decode((Int64, String, Double, String, String, String).self) {
                rows.append(AuditRow(seq: seq, type: type, time: time, body: body, prevHash: prev, hash: hash))
            }
            return rows
        }
    }

    public func auditAnchors() async throws -> [AuditAnchor] {
        try await run("A database read failed.") { connection, logger in
            var anchors: [AuditAnchor] = []
            for try await (kind, seq, hash, fromSeq, time, signature) in try await connection.query(
                "SELECT kind, seq, hash, from_seq, time, signature FROM audit_anchors ORDER BY id", logger: logger)
                .decode((String, Int64, String, Int64?, Double, String).self) {
                guard let kind = AuditAnchor.Kind(rawValue: kind) else { continue }
                anchors.append(AuditAnchor(kind: kind, seq: seq, hash: hash, fromSeq: fromSeq, time: time, signature: signature))
            }
            return anchors
        }
    }

    public func addAuditAnchor(_ anchor: AuditAnchor) async throws {
        try await transaction { connection, logger in try await Self.insert(anchor, connection, logger) }
    }

    public func purgeAudit(_ anchor: AuditAnchor) async throws {
        try await transaction { connection, logger in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.auditLock))", logger: logger)
            try await connection.query("DELETE FROM audit_log WHERE seq <= \(anchor.seq)", logger: logger)
            try await Self.insert(anchor, connection, logger)
        }
    }

    private static func insert(_ anchor: AuditAnchor, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO audit_anchors (kind, seq, hash, from_seq, time, signature)
            VALUES (\(anchor.kind.rawValue), \(anchor.seq), \(anchor.hash), \(anchor.fromSeq), \(anchor.time), \(anchor.signature))
            """, logger: logger)
    }

    // MARK: - Step results

    public func stepResult(key: String) async throws -> [UInt8]? {
        try await scalar("SELECT payload FROM step_results WHERE key = \(key)", as: ByteBuffer.self).map { Array($0.readableBytesView) }
    }

    public func storeStepResult(key: String, runID: String, payload: [UInt8]) async throws -> [UInt8] {
        try await transaction { connection, logger in
            try await connection.query("""
                INSERT INTO step_results (key, run_id, payload, created_at)
                VALUES (\(key), \(runID), \(ByteBuffer(bytes: payload)), \(Date().timeIntervalSince1970))
                ON CONFLICT (key) DO NOTHING
                """, logger: logger)
            var stored = payload
            for try await value in try await connection.query("SELECT payload FROM step_results WHERE key = \(key)", logger: logger)
                .decode(ByteBuffer.self) { stored = Array(value.readableBytesView) }
            return stored
        }
    }

    public func pruneStepResults(storedBefore time: Double) async throws -> Int {
        try await transaction { connection, logger in
            var count = 0
            for try await _ in try await connection.query(
                "DELETE FROM step_results WHERE created_at < \(time) RETURNING 1::int8", logger: logger).decode(Int.self) { count += 1 }
            return count
        }
    }

    // MARK: - Rate limits

    public func take(from key: String, _ request: TokenBucket.Take, now: Double) async throws -> TokenBucket.Outcome {
        try await transaction { connection, logger in
            // The row lock serialises concurrent takes from one bucket across gateways.
            try await connection.query("""
                INSERT INTO rate_buckets (key, level, updated_at) VALUES (\(key), \(request.capacity), \(now))
                ON CONFLICT (key) DO NOTHING
                """, logger: logger)
            var stored: (Double, Double)?
            for try await row in try await connection.query(
                "SELECT level, updated_at FROM rate_buckets WHERE key = \(key) FOR UPDATE", logger: logger).decode((Double, Double).self) {
                stored = row
            }
            let outcome = TokenBucket.apply(request, level: stored?.0, updated: stored?.1, now: now)
            try await connection.query("UPDATE rate_buckets SET level = \(outcome.level), updated_at = \(now) WHERE key = \(key)",
                                       logger: logger)
            return outcome
        }
    }

    // MARK: - Access

    private func scalar<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type) async throws -> T? {
        try await run("A database read failed.") { connection, logger in
            var value: T?
            for try await v in try await connection.query(query, logger: logger).decode(T.self) { value = v }
            return value
        }
    }

    private func run<T: Sendable>(_ message: String, _ body: (PostgresConnection, Logger) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in try await body(connection, logger) }
        } catch let error as ConclaveError {
            throw error
        } catch {
            throw ConclaveError(.storage, message, context: "\(String(reflecting: error))")
        }
    }

    @discardableResult
    private func transaction<T: Sendable>(_ body: (PostgresConnection, Logger) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection, logger) }
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? ConclaveError { throw inner }
            throw ConclaveError(.storage, "A database write failed.", context: "\(String(reflecting: error))")
        } catch let error as ConclaveError {
            throw error
        } catch {
            throw ConclaveError(.storage, "A database write failed.", context: "\(String(reflecting: error))")
        }
    }
}

/// An `INSERT … VALUES (…), (…)` built from rows of bindings, split into statements that stay
/// under PostgreSQL's 65,535 parameters.
struct MultiRowInsert {
    private let sql: String
    private let columns: Int
    private let suffix: String
    private var rows: [(inout PostgresBindings) -> Void] = []

    init(sql: String, columns: Int, suffix: String = "") {
        self.sql = sql
        self.columns = columns
        self.suffix = suffix
    }

    /// Adds a row; `fill` appends exactly `columns` values.
    mutating func add(_ fill: @escaping (inout PostgresBindings) -> Void) {
        rows.append(fill)
    }

    func queries() -> [PostgresQuery] {
        let rowsPerStatement = max(1, 60_000 / columns)
        return stride(from: 0, to: rows.count, by: rowsPerStatement).map { start in
            let slice = rows[start..<min(rows.count, start + rowsPerStatement)]
            var text = sql
            var binds = PostgresBindings(capacity: slice.count * columns)
            for (n, fill) in slice.enumerated() {
                let first = binds.count
                fill(&binds)
                precondition(binds.count - first == columns, "a row of \(binds.count - first) values for \(columns) columns")
                text += n == 0 ? " (" : ", ("
                text += (first + 1...first + columns).map { "$\($0)" }.joined(separator: ", ")
                text += ")"
            }
            return PostgresQuery(unsafeSQL: text + suffix, binds: binds)
        }
    }
}

/// The parts of a `postgres://` URL, read as libpq reads them (the store's and the tests' one reading).
public struct PostgresLocation: Equatable, Sendable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String?
    /// `sslmode` as libpq reads it: `disable`; `allow`/`prefer` (TLS when the server offers it,
    /// certificate not verified); `require` (TLS, certificate not verified, unless `sslrootcert`
    /// is given: then as `verify-ca`, as libpq does); `verify-ca` (the chain verified, not the
    /// host name); `verify-full` (both).
    var sslMode: String
    /// `sslrootcert`: PEM file of the CAs that verify the server (default: the system's).
    var rootCertificateFile: String?
    /// `sslcert` and `sslkey`: PEM files of a client certificate and its key, for a server that
    /// verifies clients (mutual TLS).
    var certificateFile: String?
    var keyFile: String?

    public init(url: String) throws {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty else {
            throw ConfigurationError(key: "storage.url", value: Self.redacted(url),
                                     expected: "a URL like postgres://user@host:5432/database")
        }
        self.host = host
        port = components.port ?? 5432
        user = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? nil : path
        let mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        switch mode {
        case "disable", "prefer", "allow", "require", "verify-ca", "verify-full": sslMode = mode
        default:
            throw ConfigurationError(key: "storage.url", value: Self.redacted(url),
                                     expected: "sslmode disable, allow, prefer, require, verify-ca or verify-full (got '\(mode)')")
        }
        func file(_ name: String) -> String? {
            components.queryItems?.first(where: { $0.name == name })?.value.flatMap { $0.isEmpty ? nil : $0 }
        }
        rootCertificateFile = file("sslrootcert")
        certificateFile = file("sslcert")
        keyFile = file("sslkey")
        guard (certificateFile == nil) == (keyFile == nil) else {
            throw ConfigurationError(key: "storage.url", value: Self.redacted(url), expected: "sslcert and sslkey together (a client certificate needs its key)")
        }
        if sslMode == "require", rootCertificateFile != nil { sslMode = "verify-ca" }
    }

    /// The TLS settings; reading a named certificate or key file that is missing or not PEM is a
    /// configuration error naming `storage.url`.
    private func tlsConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case "verify-full": configuration.certificateVerification = .fullVerification
        case "verify-ca": configuration.certificateVerification = .noHostnameVerification
        default: configuration.certificateVerification = .none
        }
        do {
            if let rootCertificateFile {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificateFile))
            }
            if let certificateFile, let keyFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
        } catch {
            throw ConfigurationError(key: "storage.url", value: [rootCertificateFile, certificateFile, keyFile].compactMap { $0 }.joined(separator: ", "),
                                     expected: "readable PEM files for sslrootcert, sslcert and sslkey (\(error))")
        }
        return configuration
    }

    /// TLS for a single connection.
    public func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        switch sslMode {
        case "disable": return .disable
        case "allow", "prefer": return .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
        default: return .require(try NIOSSLContext(configuration: tlsConfiguration()))
        }
    }

    /// TLS for the pool.
    func clientTLS() throws -> PostgresClient.Configuration.TLS {
        switch sslMode {
        case "disable": return .disable
        case "allow", "prefer": return .prefer(try tlsConfiguration())
        default: return .require(try tlsConfiguration())
        }
    }

    /// The URL without its password, for messages (also the SQL connector's).
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "(unparsable URL)"
    }
}
