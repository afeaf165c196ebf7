import ConclaveCore
import ConclaveGovernance
import ConclaveStorage
import Foundation
import Hummingbird

/// What a signed-in user may look at besides chat: who they are, their conversations, the source
/// passages behind citations, the evaluation reports and (auditors, admins) the audit trail. The
/// web console reads these; so may any other client, under the same authentication, rate limits
/// and access policy.
struct WorkspaceController: Sendable {
    let runtime: ConclaveRuntime

    struct Me: Codable, Sendable {
        struct Permissions: Codable, Sendable {
            var audit: Bool
            var admin: Bool
        }

        var user: String
        var tenant: String
        var roles: [String]
        var department: String?
        var clearance: String?
        var governanceMode: String
        var permissions: Permissions

        enum CodingKeys: String, CodingKey {
            case user, tenant, roles, department, clearance, permissions
            case governanceMode = "governance_mode"
        }
    }

    struct ConversationEntry: Codable, Sendable {
        var id: String
        var object = "conversation"
        var createdAt: Int
        var updatedAt: Int
        var messageCount: Int
        var title: String

        enum CodingKeys: String, CodingKey {
            case id, object, title
            case createdAt = "created_at"
            case updatedAt = "updated_at"
            case messageCount = "message_count"
        }
    }

    struct ConversationDetail: Codable, Sendable {
        struct Message: Codable, Sendable {
            var role: String
            var content: String
        }

        var id: String
        var object = "conversation"
        var createdAt: Int
        var messages: [Message]

        enum CodingKeys: String, CodingKey {
            case id, object, messages
            case createdAt = "created_at"
        }
    }

    struct DocumentView: Codable, Sendable {
        struct Passage: Codable, Sendable {
            var id: String
            var position: Int
            var section: String
            var text: String
        }

        var id: String
        var object = "document"
        var title: String
        var department: String?
        var classification: String?
        var effectiveDate: String?
        var supersededBy: String?
        var passages: [Passage]

        enum CodingKeys: String, CodingKey {
            case id, object, title, department, classification, passages
            case effectiveDate = "effective_date"
            case supersededBy = "superseded_by"
        }
    }

    struct List<Element: Codable & Sendable>: Codable, Sendable {
        var object = "list"
        var data: [Element]
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/me") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            let me = Me(user: principal.userID, tenant: principal.tenant, roles: principal.roles, department: principal.department,
                        clearance: principal.clearance, governanceMode: runtime.configuration.governance.mode.rawValue,
                        permissions: .init(audit: runtime.governance.mayReadAudit(principal),
                                           admin: runtime.governance.mayAdminister(principal)))
            return try JSONCoding.response(me)
        }
        router.get("/v1/conversations") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            let limit = try Self.limit(request, default: 50, maximum: 200)
            let owned = try await runtime.store.conversations(ownedBy: ChatCompletionsController.owner(principal), limit: limit)
            return try JSONCoding.response(List(data: owned.map {
                ConversationEntry(id: $0.id, createdAt: Int($0.createdAt.timeIntervalSince1970),
                                  updatedAt: Int($0.updatedAt.timeIntervalSince1970), messageCount: $0.messageCount, title: $0.title)
            }))
        }
        router.get("/v1/conversations/:id") { request, context -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            let id = context.parameters.get("id") ?? ""
            // Another user's conversation is as unknown as one that does not exist.
            guard let conversation = try await runtime.store.conversation(id: id),
                  conversation.userID == ChatCompletionsController.owner(principal) else {
                throw ConclaveError(.notFound, "No conversation '\(id)'.")
            }
            return try JSONCoding.response(ConversationDetail(
                id: conversation.id, createdAt: Int(conversation.createdAt.timeIntervalSince1970),
                messages: conversation.messages.map { .init(role: $0.role.rawValue, content: $0.content) }))
        }
        router.get("/v1/documents/:id") { request, context -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            return try JSONCoding.response(try await document(context.parameters.get("id") ?? "", for: principal))
        }
        EvaluationReports(directory: runtime.configuration.console.reportsDirectory).addRoutes(to: router, runtime: runtime)
        AuditBrowser(runtime: runtime).addRoutes(to: router)
    }

    /// A stored document with its passages in order, as the principal may see them: the access
    /// policy decides whether it may be read at all, and audits the read or the refusal
    /// (``Governance/authorizeDocumentRead(_:classification:for:)``); in governance `full` the
    /// passages are masked as they would be in an answer.
    func document(_ id: String, for principal: Principal) async throws -> DocumentView {
        guard let (record, chunks) = try await runtime.store.document(id: id) else {
            throw ConclaveError(.notFound, "No document '\(id)'.")
        }
        try await runtime.governance.authorizeDocumentRead(record.id, classification: record.classification, for: principal)
        let shown = runtime.governance.textGuard(for: principal)
        return DocumentView(
            id: record.id, title: record.title, department: record.department, classification: record.classification,
            effectiveDate: record.effectiveDate, supersededBy: record.supersededBy,
            passages: chunks.map { chunk in
                .init(id: chunk.id, position: chunk.position, section: chunk.section, text: shown.map { $0.shown(chunk.text) } ?? chunk.text)
            })
    }

    /// `?limit=` as a whole number from 1 to `maximum`; a bad value is a 400 naming it.
    static func limit(_ request: Request, default value: Int, maximum: Int) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return value }
        guard let limit = Int(text), (1...maximum).contains(limit) else {
            throw ConclaveError(.invalidRequest, "limit must be a whole number from 1 to \(maximum).", parameter: "limit")
        }
        return limit
    }
}

/// `GET /admin/audit` and `GET /admin/audit/verify`: the audit trail, newest first, and the
/// chain's verification, for the policy's `rules.audit_roles`.
struct AuditBrowser: Sendable {
    let runtime: ConclaveRuntime

    struct Verification: Encodable, Sendable {
        var valid: Bool
        var records: Int?
        var checkpoints: Int?
        var lastSeq: Int64?
        var failedSeq: Int64?
        var reason: String?
        var message: String

        enum CodingKeys: String, CodingKey {
            case valid, records, checkpoints, reason, message
            case lastSeq = "last_seq"
            case failedSeq = "failed_seq"
        }
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/admin/audit") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            try await runtime.governance.authorizeAuditRead(principal, route: "/admin/audit")
            let limit = try WorkspaceController.limit(request, default: 50, maximum: 500)
            var before = Int64.max
            if let text = request.uri.queryParameters.get("before") {
                guard let value = Int64(text), value > 0 else {
                    throw ConclaveError(.invalidRequest, "before must be a positive record number.", parameter: "before")
                }
                before = value
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try await page(before: before, limit: limit))))
        }
        router.get("/admin/audit/verify") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            try await runtime.governance.authorizeAuditRead(principal, route: "/admin/audit/verify")
            guard let audit = runtime.governance.audit else {
                throw ConclaveError(.notFound, "No audit trail is kept (governance.mode is off or access, or audit.granularity is none).")
            }
            guard let result = await audit.verifyChain() else {
                throw ConclaveError(.unavailable, "The audit trail could not be read; try again.")
            }
            let verification: Verification
            switch result {
            case .valid(let records, let checkpoints, let last):
                verification = .init(valid: true, records: records, checkpoints: checkpoints, lastSeq: last, message: result.description)
            case .invalid(let seq, let reason):
                verification = .init(valid: false, failedSeq: seq, reason: reason, message: result.description)
            }
            return try JSONCoding.response(verification)
        }
    }

    /// Up to `limit` records numbered below `before`, newest first, as
    /// `{"object":"list","data":[{"seq","time","type","hash","prev_hash","record"}],"next_before"}`:
    /// `record` is the stored record as it was hashed; `next_before` (absent on the last page)
    /// asks for the next, older page.
    func page(before: Int64, limit: Int) async throws -> Data {
        var records: [[String: Any]] = []
        var nextBefore: Int64?
        if let last = try await runtime.store.lastAuditRow() {
            let end = min(before, last.seq + 1)
            // Records are numbered without gaps past the purged range, so the page starts `limit`
            // below `end`; a purged range only makes it shorter.
            let rows = try await runtime.store.auditRows(from: max(0, end - Int64(limit)), limit: limit).filter { $0.seq < end }
            for row in rows.reversed() {
                let stored = (try? JSONSerialization.jsonObject(with: Data(row.body.utf8))) ?? row.body
                records.append(["seq": row.seq, "time": row.time, "type": row.type, "hash": row.hash, "prev_hash": row.prevHash,
                                "record": stored])
            }
            if let oldest = rows.first?.seq, let first = try await runtime.store.auditRows(from: 0, limit: 1).first, first.seq < oldest {
                nextBefore = oldest
            }
        }
        var page: [String: Any] = ["object": "list", "data": records]
        if let nextBefore { page["next_before"] = nextBefore }
        return try JSONSerialization.data(withJSONObject: page, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
