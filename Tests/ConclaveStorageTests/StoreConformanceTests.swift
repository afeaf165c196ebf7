import ConclaveCore
import ConclaveInference
@testable import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// The store kinds every conformance test runs against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A fresh, empty store of one kind; `reopen()` opens a second instance on the same database
/// (another gateway, or the same one restarted).
struct StoreUnderTest: Sendable {
    let kind: StoreKind
    let configuration: StorageConfiguration
    let store: any ConclaveStore

    static func make(_ kind: StoreKind) async throws -> StoreUnderTest {
        let configuration: StorageConfiguration
        switch kind {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(RandomID.make()).sqlite").path
            configuration = StorageConfiguration(driver: .sqlite, path: path)
        case .postgres:
            let url = try await PostgresTestServer.shared().makeDatabase()
            configuration = StorageConfiguration(driver: .postgres, url: url, maxConnections: 4)
        }
        return StoreUnderTest(kind: kind, configuration: configuration, store: try await StoreFactory.open(configuration))
    }

    func reopen() async throws -> any ConclaveStore {
        try await StoreFactory.open(configuration)
    }

    func close() async {
        await store.close()
        if kind == .sqlite {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: configuration.path + suffix) }
        }
    }
}

/// One suite, both stores: what the rest of Conclave relies on from any store.
@Suite("Store conformance (SQLite and PostgreSQL)")
struct StoreConformanceTests {
    private func withStore(_ kind: StoreKind, _ body: (StoreUnderTest) async throws -> Void) async throws {
        let subject = try await StoreUnderTest.make(kind)
        do {
            try await body(subject)
        } catch {
            await subject.close()
            throw error
        }
        await subject.close()
    }

    private static func document(_ id: String, title: String, supersedes: String? = nil, department: String? = "ops") -> DocumentRecord {
        DocumentRecord(id: id, title: title, department: department, classification: "internal", effectiveDate: "2026-01-01",
                       supersedes: supersedes, path: "docs/\(id).md", contentHash: "hash-\(id)", metadata: ["owner": "tests"])
    }

    private static func chunks(_ documentID: String, _ texts: [String]) -> [ChunkRecord] {
        texts.enumerated().map { ChunkRecord(id: "\(documentID)#\($0.offset)", documentID: documentID, position: $0.offset,
                                             section: "Section \($0.offset)", text: $0.element) }
    }

    // MARK: - Conversations

    @Test(arguments: StoreKind.allCases)
    func conversationsKeepTheirMessagesInOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            let created = Date(timeIntervalSince1970: 1_790_000_000.25)
            try await store.createConversation(Conversation(id: "conv_a", userID: "u1", messages: [
                ChatMessage(role: .system, content: "be brief"), ChatMessage(role: .user, content: "first"),
            ], createdAt: created))
            try await store.appendMessages([ChatMessage(role: .assistant, content: "answer 1"), ChatMessage(role: .user, content: "second")],
                                           toConversation: "conv_a")
            let loaded = try #require(try await store.conversation(id: "conv_a"))
            #expect(loaded.userID == "u1")
            #expect(abs(loaded.createdAt.timeIntervalSince1970 - created.timeIntervalSince1970) < 0.001)
            #expect(loaded.messages.map(\.content) == ["be brief", "first", "answer 1", "second"])
            #expect(loaded.messages.map(\.role) == [.system, .user, .assistant, .user])
            #expect(try await store.conversation(id: "conv_missing") == nil)
            // A second instance (another gateway) sees the same conversation.
            let other = try await subject.reopen()
            #expect(try await other.conversation(id: "conv_a")?.messages.count == 4)
            await other.close()
        }
    }

    @Test(arguments: StoreKind.allCases)
    func anOwnersConversationsAreListedMostRecentlyActiveFirst(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            let long = String(repeating: "why ", count: 60)
            try await store.createConversation(Conversation(id: "conv_old", userID: "u1", messages: [
                ChatMessage(role: .system, content: "be brief"), ChatMessage(role: .user, content: long),
            ], createdAt: Date(timeIntervalSince1970: 1_790_000_000)))
            try await store.createConversation(Conversation(id: "conv_new", userID: "u1", createdAt: Date(timeIntervalSince1970: 1_790_000_100)))
            try await store.createConversation(Conversation(id: "conv_other", userID: "u2", messages: [ChatMessage(role: .user, content: "mine")]))
            try await Task.sleep(for: .milliseconds(20))
            // A new turn makes the older conversation the most recently active.
            try await store.appendMessages([ChatMessage(role: .assistant, content: "because"), ChatMessage(role: .user, content: "ok")],
                                           toConversation: "conv_old")
            let listed = try await store.conversations(ownedBy: "u1", limit: 10)
            #expect(listed.map(\.id) == ["conv_old", "conv_new"])
            #expect(listed[0].messageCount == 4 && listed[1].messageCount == 0)
            #expect(listed[0].title.count == ConversationSummary.titleLength && listed[0].title.hasPrefix("why why"))
            #expect(listed[1].title.isEmpty)
            #expect(listed[1].updatedAt == listed[1].createdAt)
            #expect(listed[0].updatedAt > listed[0].createdAt)
            #expect(try await store.conversations(ownedBy: "u1", limit: 1).map(\.id) == ["conv_old"])
            #expect(try await store.conversations(ownedBy: "nobody", limit: 10).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func appendingToAMissingConversationIsNotFoundAndStoresNothing(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            await #expect(throws: ConclaveError.self) {
                try await subject.store.appendMessages([ChatMessage(role: .user, content: "lost?")], toConversation: "conv_nope")
            }
            do {
                try await subject.store.appendMessages([ChatMessage(role: .user, content: "x")], toConversation: "conv_nope")
            } catch let error as ConclaveError {
                #expect(error.code == .notFound)
            }
            #expect(try await subject.store.conversation(id: "conv_nope") == nil)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aDuplicateConversationIDIsRejected(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            try await subject.store.createConversation(Conversation(id: "conv_dup", userID: "u1"))
            await #expect(throws: ConclaveError.self) {
                try await subject.store.createConversation(Conversation(id: "conv_dup", userID: "u2"))
            }
            #expect(try await subject.store.conversation(id: "conv_dup")?.userID == "u1")
        }
    }

    // MARK: - Documents and search

    @Test(arguments: StoreKind.allCases)
    func documentsAreReplacedDeletedAndLinkedToTheirSuccessors(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            let generation = store.documentsGeneration
            try await store.replaceDocument(Self.document("pol-1", title: "Travel policy v1"), chunks: Self.chunks("pol-1", ["old text"]))
            try await store.replaceDocument(Self.document("pol-2", title: "Travel policy v2", supersedes: "pol-1"),
                                            chunks: Self.chunks("pol-2", ["new text", "more new text"]))
            #expect(store.documentsGeneration > generation)
            #expect(try await store.contentHash(ofDocument: "pol-2") == "hash-pol-2")
            #expect(try await store.contentHash(ofDocument: "nope") == nil)
            #expect(try await store.chunkCount() == 3)
            let documents = try await store.documents()
            #expect(documents.map(\.id) == ["pol-1", "pol-2"])
            #expect(documents[0].supersededBy == "pol-2")
            #expect(documents[1].supersedes == "pol-1" && documents[1].supersededBy == nil)
            #expect(documents[1].metadata == ["owner": "tests"])
            #expect(documents[1].department == "ops" && documents[1].classification == "internal")

            // Replacing swaps every chunk; deleting removes the document and its chunks.
            try await store.replaceDocument(Self.document("pol-2", title: "Travel policy v2", supersedes: "pol-1"),
                                            chunks: Self.chunks("pol-2", ["only chunk"]))
            #expect(try await store.chunkCount() == 2)
            try await store.deleteDocument(id: "pol-1")
            #expect(try await store.documents().map(\.id) == ["pol-2"])
            #expect(try await store.chunkCount() == 1)
            #expect(try await store.chunkHits(ids: ["pol-1#0"]).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func searchRanksTheChunkWithTheRareTermFirstAndHonoursTheAllowList(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            try await store.replaceDocument(Self.document("hr-1", title: "Leave handbook"), chunks: Self.chunks("hr-1", [
                "Employees accrue annual leave every month. Leave requests go to the manager.",
                "Parental leave lasts sixteen weeks and is paid in full.",
            ]))
            try await store.replaceDocument(Self.document("fin-1", title: "Expense rules", department: "finance"), chunks: Self.chunks("fin-1", [
                "Expenses need a receipt. Leave the original receipt with finance.",
                "Mileage is reimbursed per kilometre driven.",
            ]))
            try await store.replaceDocument(Self.document("ops-1", title: "Depot hours"), chunks: Self.chunks("ops-1", [
                "The depot opens at six and closes at ten.",
            ]))
            // "parental" occurs once in the corpus, "leave" in three chunks: the rare term decides.
            let hits = try await store.searchChunks(matching: "\"parental\" OR \"leave\"", limit: 10, allowedDocuments: nil)
            #expect(hits.first?.chunk.id == "hr-1#1")
            #expect(Set(hits.map(\.chunk.id)) == ["hr-1#0", "hr-1#1", "fin-1#0"])
            #expect(hits.map(\.score) == hits.map(\.score).sorted(by: >))
            #expect(hits.first?.documentTitle == "Leave handbook" && hits.first?.documentDepartment == "ops")

            // Stemming: "reimbursement" finds "reimbursed"; the title is searchable too.
            let stemmed = try await store.searchChunks(matching: "\"reimbursement\"", limit: 5, allowedDocuments: nil)
            #expect(stemmed.map(\.chunk.id) == ["fin-1#1"])
            let byTitle = try await store.searchChunks(matching: "\"depot\"", limit: 5, allowedDocuments: nil)
            #expect(byTitle.map(\.chunk.id) == ["ops-1#0"])

            // The allow-list applies inside the search: the best allowed chunk is found even
            // though forbidden chunks rank higher, and no forbidden chunk comes back.
            let allowed = try await store.searchChunks(matching: "\"parental\" OR \"leave\"", limit: 1, allowedDocuments: ["fin-1"])
            #expect(allowed.map(\.chunk.id) == ["fin-1#0"])
            #expect(try await store.searchChunks(matching: "\"leave\"", limit: 10, allowedDocuments: []).isEmpty)

            #expect(try await store.searchChunks(matching: "\"leave\"", limit: 2, allowedDocuments: nil).count == 2)
            #expect(try await store.searchChunks(matching: "\"zeppelin\"", limit: 10, allowedDocuments: nil).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func searchHitsNameTheSuccessorOfASupersededDocument(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            try await store.replaceDocument(Self.document("v1", title: "Refund policy"), chunks: Self.chunks("v1", ["Refunds within 14 days."]))
            try await store.replaceDocument(Self.document("v2", title: "Refund policy", supersedes: "v1"),
                                            chunks: Self.chunks("v2", ["Refunds within 30 days."]))
            let hits = try await store.searchChunks(matching: "\"refunds\"", limit: 5, allowedDocuments: nil)
            let byDocument = Dictionary(uniqueKeysWithValues: hits.map { ($0.chunk.documentID, $0.supersededBy) })
            #expect(byDocument["v1"] == .some("v2"))
            #expect(byDocument["v2"] == .some(nil))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aDocumentComesBackWithItsChunksInOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            try await subject.store.replaceDocument(Self.document("d", title: "Doc"), chunks: Self.chunks("d", ["a", "b", "c"]).reversed())
            try await subject.store.replaceDocument(Self.document("e", title: "Other"), chunks: Self.chunks("e", ["x"]))
            let (record, chunks) = try #require(try await subject.store.document(id: "d"))
            #expect(record.title == "Doc" && record.classification == "internal")
            #expect(chunks.map(\.id) == ["d#0", "d#1", "d#2"] && chunks.map(\.section) == ["Section 0", "Section 1", "Section 2"])
            #expect(try await subject.store.document(id: "missing") == nil)
            #expect(try await subject.store.chunks(ofDocument: "missing").isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func chunkHitsComeBackInTheOrderAskedSkippingMissingIDs(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            try await subject.store.replaceDocument(Self.document("d", title: "Doc"), chunks: Self.chunks("d", ["a", "b", "c"]))
            let hits = try await subject.store.chunkHits(ids: ["d#2", "missing", "d#0"])
            #expect(hits.map(\.chunk.id) == ["d#2", "d#0"])
            #expect(hits.map(\.chunk.text) == ["c", "a"])
            #expect(try await subject.store.chunkHits(ids: []).isEmpty)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func embeddingsArePerModelReplacedAndGoWithTheirChunks(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            try await store.replaceDocument(Self.document("e", title: "Embedded"), chunks: Self.chunks("e", ["one", "two"]))
            #expect(try await store.chunksWithoutEmbedding(model: "m").map(\.chunkID) == ["e#0", "e#1"])
            #expect(try await store.chunksWithoutEmbedding(model: "m").first?.title == "Embedded")
            try await store.storeEmbeddings([("e#0", [0.5, -1.25, 3])], model: "m")
            #expect(try await store.chunksWithoutEmbedding(model: "m").map(\.chunkID) == ["e#1"])
            #expect(try await store.chunksWithoutEmbedding(model: "other").count == 2)
            try await store.storeEmbeddings([("e#0", [1, 2, 3]), ("e#1", [4, 5, 6])], model: "m")
            let stored = try await store.embeddings(model: "m")
            #expect(stored.map(\.chunkID) == ["e#0", "e#1"])
            #expect(stored.map(\.vector) == [[1, 2, 3], [4, 5, 6]])
            #expect(stored.allSatisfy { $0.documentID == "e" })
            try await store.deleteDocument(id: "e")
            #expect(try await store.embeddings(model: "m").isEmpty)
        }
    }

    // MARK: - Events

    @Test(arguments: StoreKind.allCases)
    func eventsAreStoredOnceInSequenceOrder(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            let time = Date(timeIntervalSince1970: 1_790_000_000.5)
            let events = [
                RunEvent(runID: "run_1", sequence: 0, kind: .runStarted, timestamp: time),
                RunEvent(runID: "run_1", sequence: 1, kind: .stepCompleted, stepID: "plan", role: .planner, attempt: 2, detail: "ok",
                         durationMilliseconds: 12.5, usage: TokenUsage(promptTokens: 30, completionTokens: 7), timestamp: time),
                RunEvent(runID: "run_1", sequence: 2, kind: .runCompleted, timestamp: time),
            ]
            try await store.appendEvents(batches: [[events[2], events[0]], [RunEvent(runID: "run_2", sequence: 0, kind: .runStarted)]])
            // A redelivered batch (the same run id and sequence) is stored once.
            try await store.appendEvents(events)
            let stored = try await store.events(ofRun: "run_1")
            #expect(stored.map(\.sequence) == [0, 1, 2])
            #expect(stored[1].kind == .stepCompleted && stored[1].role == .planner && stored[1].stepID == "plan")
            #expect(stored[1].attempt == 2 && stored[1].detail == "ok" && stored[1].durationMilliseconds == 12.5)
            #expect(stored[1].usage == TokenUsage(promptTokens: 30, completionTokens: 7))
            #expect(stored[0].usage == nil && stored[0].role == nil)
            #expect(abs(stored[0].timestamp.timeIntervalSince1970 - time.timeIntervalSince1970) < 0.001)
            #expect(try await store.events(ofRun: "run_2").count == 1)
            #expect(try await store.events(ofRun: "run_none").isEmpty)
        }
    }

    // MARK: - Audit

    /// Appends `count` rows one at a time, each chained to the head the store hands over.
    private static func appendChained(_ store: any ConclaveStore, count: Int, tag: String) async throws {
        for n in 0..<count {
            try await store.appendAudit { lastSeq, lastHash in
                let body = "{\"n\":\(n),\"tag\":\"\(tag)\"}"
                return [AuditRow(seq: lastSeq + 1, type: "request", time: 1_790_000_000, body: body, prevHash: lastHash,
                                 hash: "\(lastSeq + 1)-\(tag)-\(n)")]
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func theAuditChainGrowsFromItsHeadAndSurvivesAPurge(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            #expect(try await store.lastAuditRow() == nil)
            try await store.appendAudit { lastSeq, lastHash in
                #expect(lastSeq == 0 && lastHash == auditGenesisHash)
                return [AuditRow(seq: 1, type: "request", time: 1, body: "{}", prevHash: lastHash, hash: "h1"),
                        AuditRow(seq: 2, type: "denial", time: 2, body: "{\"d\":1}", prevHash: "h1", hash: "h2")]
            }
            try await Self.appendChained(store, count: 3, tag: "x")
            let rows = try await store.auditRows(from: 1, limit: 100)
            #expect(rows.map(\.seq) == [1, 2, 3, 4, 5])
            #expect(rows[2].prevHash == "h2" && rows[1].type == "denial" && rows[1].body == "{\"d\":1}")
            #expect(try await store.auditRows(from: 4, limit: 1).map(\.seq) == [4])
            #expect(try await store.lastAuditRow()?.seq == 5)

            try await store.addAuditAnchor(AuditAnchor(kind: .checkpoint, seq: 2, hash: "h2", time: 10, signature: "sig"))
            try await store.purgeAudit(AuditAnchor(kind: .purge, seq: 5, hash: rows[4].hash, fromSeq: 1, time: 11, signature: "sig2"))
            #expect(try await store.auditRows(from: 1, limit: 100).isEmpty)
            let anchors = try await store.auditAnchors()
            #expect(anchors.map(\.kind) == [.checkpoint, .purge])
            #expect(anchors[1].fromSeq == 1 && anchors[0].fromSeq == nil && anchors[1].signature == "sig2")
            // An empty chain continues from the purge anchor, not from the genesis.
            try await store.appendAudit { lastSeq, lastHash in
                #expect(lastSeq == 5 && lastHash == rows[4].hash)
                return [AuditRow(seq: lastSeq + 1, type: "request", time: 12, body: "{}", prevHash: lastHash, hash: "h6")]
            }
            #expect(try await store.lastAuditRow()?.seq == 6)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func twoInstancesAppendingAtOnceLeaveOneGaplessChain(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let other = try await subject.reopen()
            async let a: Void = Self.appendChained(subject.store, count: 25, tag: "a")
            async let b: Void = Self.appendChained(other, count: 25, tag: "b")
            _ = try await (a, b)
            let rows = try await subject.store.auditRows(from: 1, limit: 1000)
            #expect(rows.map(\.seq) == Array(1...50))
            for (previous, row) in zip(rows, rows.dropFirst()) { #expect(row.prevHash == previous.hash) }
            await other.close()
        }
    }

    // MARK: - Step results

    @Test(arguments: StoreKind.allCases)
    func theFirstStepResultStoredUnderAKeyWins(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let store = subject.store
            #expect(try await store.stepResult(key: "run_1/plan/d1") == nil)
            #expect(try await store.storeStepResult(key: "run_1/plan/d1", runID: "run_1", payload: Array("first".utf8))
                    == Array("first".utf8))
            // A second worker finishing the same redelivered step does not replace it, and is
            // handed the first outcome to send.
            let other = try await subject.reopen()
            #expect(try await other.storeStepResult(key: "run_1/plan/d1", runID: "run_1", payload: Array("second".utf8))
                    == Array("first".utf8))
            #expect(try await store.stepResult(key: "run_1/plan/d1") == Array("first".utf8))
            #expect(try await other.stepResult(key: "run_1/plan/d2") == nil)
            await other.close()
            // Old outcomes are pruned; recent ones stay.
            #expect(try await store.pruneStepResults(storedBefore: Date().timeIntervalSince1970 - 3600) == 0)
            #expect(try await store.pruneStepResults(storedBefore: Date().timeIntervalSince1970 + 1) == 1)
            #expect(try await store.stepResult(key: "run_1/plan/d1") == nil)
        }
    }

    // MARK: - Rate limits

    @Test(arguments: StoreKind.allCases)
    func concurrentTakesFromOneBucketAcrossInstancesNeverOverspend(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            let other = try await subject.reopen()
            let now = 1_000_000.0
            // Ten requests' worth, no refill: of 30 concurrent takes over two instances (two
            // gateways), exactly ten are admitted.
            let take = TokenBucket.Take(capacity: 10, refillPerSecond: 0, cost: 1, mode: .admit)
            let stores: [any ConclaveStore] = [subject.store, other]
            let admitted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<30 {
                    let store = stores[index % 2]
                    group.addTask { try await store.take(from: "requests:user:t/u", take, now: now).allowed }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(admitted == 10)
            let refused = try await other.take(from: "requests:user:t/u", take, now: now)
            #expect(!refused.allowed && refused.retryAfter == .infinity)
            // Another key is another bucket.
            #expect(try await subject.store.take(from: "requests:user:t/v", take, now: now).allowed)
            // Charges may overdraw; an admission then waits for the refill.
            let quota = TokenBucket.Take(capacity: 100, refillPerSecond: 10, cost: 250, mode: .charge)
            #expect(try await subject.store.take(from: "tokens:user:t/u", quota, now: now).level == -150)
            let check = TokenBucket.Take(capacity: 100, refillPerSecond: 10, cost: 0, mode: .admit)
            let waiting = try await other.take(from: "tokens:user:t/u", check, now: now + 5)
            #expect(!waiting.allowed && abs(waiting.level - -100) < 1e-9 && abs(waiting.retryAfter - 10) < 1e-6)
            #expect(try await subject.store.take(from: "tokens:user:t/u", check, now: now + 16).allowed)
            await other.close()
        }
    }

    @Test(arguments: StoreKind.allCases)
    func reopeningAMigratedDatabaseKeepsItsData(_ kind: StoreKind) async throws {
        try await withStore(kind) { subject in
            try await subject.store.createConversation(Conversation(id: "conv_keep", userID: "u"))
            // Several instances opening at once (gateways starting together) migrate once.
            async let first = subject.reopen()
            async let second = subject.reopen()
            let (one, two) = try await (first, second)
            #expect(try await one.conversation(id: "conv_keep") != nil)
            #expect(await two.isHealthy())
            await one.close()
            await two.close()
        }
    }
}

@Suite("Token bucket arithmetic")
struct TokenBucketTests {
    @Test func aNewBucketStartsFullAndRefillsUpToItsCapacity() {
        let take = TokenBucket.Take(capacity: 3, refillPerSecond: 1, cost: 1, mode: .admit)
        var outcome = TokenBucket.apply(take, level: nil, updated: nil, now: 100)
        #expect(outcome.allowed && outcome.level == 2)
        // An hour later it holds its capacity, not more.
        outcome = TokenBucket.apply(take, level: 0, updated: 100, now: 3700)
        #expect(outcome.allowed && outcome.level == 2)
    }

    @Test func anEmptyBucketRefusesAndSaysWhenToRetry() {
        let take = TokenBucket.Take(capacity: 60, refillPerSecond: 0.5, cost: 1, mode: .admit)
        let outcome = TokenBucket.apply(take, level: 0.25, updated: 100, now: 100)
        #expect(!outcome.allowed && outcome.level == 0.25 && outcome.retryAfter == 1.5)
        // A clock that went backwards refills nothing.
        #expect(!TokenBucket.apply(take, level: 0.25, updated: 100, now: 50).allowed)
    }

    @Test func aBalanceCheckNeedsAPositiveBalanceAndCostsNothing() {
        let check = TokenBucket.Take(capacity: 1000, refillPerSecond: 1, cost: 0, mode: .admit)
        #expect(TokenBucket.apply(check, level: 0.5, updated: 0, now: 0) == .init(allowed: true, level: 0.5, retryAfter: 0))
        let refused = TokenBucket.apply(check, level: -20, updated: 0, now: 0)
        #expect(!refused.allowed && refused.retryAfter > 20 && refused.retryAfter < 20.001)
        #expect(TokenBucket.apply(.init(capacity: 10, refillPerSecond: 1, cost: 30, mode: .charge), level: 10, updated: 0, now: 0).level == -20)
        // A refund (negative charge) never lifts a bucket above its capacity.
        #expect(TokenBucket.apply(.init(capacity: 10, refillPerSecond: 1, cost: -1, mode: .charge), level: 9.5, updated: 0, now: 0).level == 10)
    }
}

@Suite("PostgreSQL store configuration")
struct PostgresStoreConfigurationTests {
    @Test func aBadURLNamesTheKeyWithoutThePassword() async throws {
        do {
            _ = try await PostgresStore(url: "mysql://root:hunter2@db/x")
            Issue.record("expected a configuration error")
        } catch let error as ConfigurationError {
            #expect(error.key == "storage.url")
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func anUnreachableServerIsAStorageErrorNamingTheTarget() async throws {
        let port = try FreePort.find()
        do {
            _ = try await PostgresStore(url: "postgres://conclave@127.0.0.1:\(port)/db")
            Issue.record("expected a storage error")
        } catch let error as ConclaveError {
            #expect(error.code == .storage)
            #expect(error.message.contains("127.0.0.1:\(port)/db"))
        }
    }

    @Test func theURLGivesHostPortUserDatabaseAndTLSMode() throws {
        let location = try PostgresLocation(url: "postgres://app:s%40cret@db.internal:5433/conclave?sslmode=verify-full")
        #expect(location.host == "db.internal" && location.port == 5433 && location.user == "app")
        #expect(location.password == "s@cret" && location.database == "conclave" && location.sslMode == "verify-full")
        #expect(try PostgresLocation(url: "postgresql://h/db").sslMode == "disable")
        #expect(try PostgresLocation(url: "postgresql://h/db").port == 5432)
        #expect(throws: ConfigurationError.self) { try PostgresLocation(url: "postgres://h/db?sslmode=sometimes") }
        // libpq's file parameters; `require` with a root certificate verifies the chain, as in libpq.
        let files = try PostgresLocation(url: "postgres://h/db?sslmode=require&sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/c.key")
        #expect(files.sslMode == "verify-ca" && files.rootCertificateFile == "/ca.pem")
        #expect(files.certificateFile == "/c.pem" && files.keyFile == "/c.key")
        #expect(throws: ConfigurationError.self) { try PostgresLocation(url: "postgres://h/db?sslmode=require&sslcert=/c.pem") }
        #expect(throws: ConfigurationError.self) {
            try PostgresLocation(url: "postgres://h/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem").connectionTLS()
        }
    }

    /// A server that takes only TLS with a client certificate of its CA (mutual TLS): the store
    /// connects with the CA and the certificate, and is refused without either, or in plain text.
    @Test func mutualTLSToAServerThatVerifiesClients() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await PostgresTestServer.startRequiringClientCertificates(certificates)
        defer { server.stop() }
        let database = try await server.makeDatabase()
        let ca = "sslrootcert=\(certificates.caFile)"
        let client = "sslcert=\(certificates.clientCertFile)&sslkey=\(certificates.clientKeyFile)"
        let store = try await PostgresStore(url: "\(database)?sslmode=verify-full&\(ca)&\(client)")
        try await store.createConversation(Conversation(id: "conv_tls", userID: "u1", messages: [ChatMessage(role: .user, content: "over TLS")]))
        #expect(try await store.conversation(id: "conv_tls")?.messages.first?.content == "over TLS")
        await store.close()
        for refused in ["\(database)?sslmode=verify-full&\(ca)",          // no client certificate
                        "\(database)?sslmode=verify-full&\(client)",      // the server's CA not trusted
                        "\(database)?sslmode=disable&\(ca)&\(client)"] {   // plain text
            await #expect(throws: ConclaveError.self, "\(refused)") { _ = try await PostgresStore(url: refused) }
        }
    }

    @Test func postgresConfigurationRequiresAURL() throws {
        #expect(throws: ConfigurationError.self) {
            try ConclaveConfiguration(storage: StorageConfiguration(driver: .postgres)).validate()
        }
        try ConclaveConfiguration(storage: StorageConfiguration(driver: .postgres, url: "postgres://u@h/db")).validate()
    }
}
