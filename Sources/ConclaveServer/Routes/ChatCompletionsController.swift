import ConclaveAgents
import ConclaveCore
import ConclaveGovernance
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveStorage
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `POST /v1/chat/completions`: resolves the workflow and conversation, runs the workflow and
/// answers in OpenAI's format, streamed (SSE) or whole.
struct ChatCompletionsController: Sendable {
    let runtime: ConclaveRuntime

    /// Header that carries the conversation id both ways.
    static let conversationHeader = HTTPField.Name("X-Conclave-Conversation")!
    /// The reloadable configuration version a chat request runs on (also `conclave.config_version`).
    static let configVersionHeader = HTTPField.Name("X-Conclave-Config-Version")!

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v1/chat/completions") { request, context in
            try await self.complete(request, context: context)
        }
    }

    func complete(_ request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        let body = try await BodyReader.collect(&request, server: runtime.configuration.server)
        let principal = try await runtime.admit(authorization: request.headers[.authorization])
        let chat = try ChatCompletionRequest.decode(Data(body.readableBytesView), maxMessages: runtime.configuration.server.maxMessages,
                                                    maxTokens: runtime.configuration.server.maxTokens)
        if let name = chat.model, !name.isEmpty, let served = runtime.directModel(named: name) {
            return try await DirectModelRoute(runtime: runtime, served: served).complete(chat, principal: principal, requestBody: request.body)
        }
        // The reloadable configuration this request runs on, read once (`conclave reload`).
        let live = runtime.live.current
        let workflow = try live.workflows.resolve(chat.model)
        try await runtime.governance.authorize(workflow: workflow.name, for: principal)
        guard await runtime.model.isReady() else {
            throw ConclaveError(.modelUnavailable, "No model backend is ready.")
        }
        let mode = try await runtime.governance.mode(requested: chat.metadata?["governance_mode"], for: principal)
        let scope = try await Self.narrow(try await runtime.governance.documentScope(for: principal, mode: mode),
                                          metadata: chat.metadata, store: runtime.store)
        let requestedConversation = request.headers[Self.conversationHeader] ?? chat.metadata?["conversation_id"]
        let (conversationID, history) = try await openConversation(requestedConversation, chat: chat, principal: principal)
        let question = chat.messages.last?.content ?? ""
        let verdict = try runtime.governance.checkInput(chat.messages.filter { $0.role == .user }.map(\.content), mode: mode)
        let masker = runtime.governance.textGuard(for: principal, mode: mode, conversation: conversationID)
        // Personal data the user typed reaches the models only as pseudonyms.
        let modelQuestion = masker?.input(question) ?? question
        let modelHistory = masker.map { guardian in history.map { ChatMessage(role: $0.role, content: guardian.input($0.content)) } } ?? history
        var state = WorkflowState(question: modelQuestion, history: modelHistory, principal: principal, scope: scope, textGuard: masker)
        if case .refused(let rule) = verdict { state.inputRefusal = rule }
        state.dataAccess = try Self.dataAccess(requested: chat.metadata?["data_access"], workflow: workflow,
                                               configured: runtime.configuration.knowledge.dataAccess)
        state.conversationID = conversationID
        var options = runtime.callOptions
        if let t = chat.temperature { options.temperature = t }
        if let s = chat.seed { options.seed = s }
        if let m = chat.completionTokenLimit { options.maxTokens = m }
        let runID = "run_" + RandomID.makeTimeOrdered()
        var logger = context.logger
        logger[metadataKey: "conversation_id"] = "\(conversationID)"
        logger[metadataKey: "run_id"] = "\(runID)"
        logger[metadataKey: "user"] = "\(principal.userID)"
        logger.debug("chat run started", metadata: ["workflow": "\(workflow.name)", "governance_mode": "\(mode.rawValue)"])
        let job = ChatJob(runtime: runtime, workflow: workflow, state: state, question: question, mode: mode, options: options, runID: runID,
                          conversationID: conversationID, configVersion: live.version.number, logger: logger,
                          timeout: .milliseconds(Int64(runtime.configuration.server.requestTimeoutSeconds * 1000)))
        var headers = HTTPFields()
        headers[Self.conversationHeader] = conversationID
        headers[Self.configVersionHeader] = String(live.version.number)
        if chat.stream == true {
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            // Watching the inbound side for a disconnect consumes it, so the connection closes after the stream.
            headers[.connection] = "close"
            let includeUsage = chat.streamOptions?.includeUsage == true
            let requestBody = request.body
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                try await requestBody.consumeWithCancellationOnInboundClose { _ in
                    try await job.stream(into: &writer, includeUsage: includeUsage)
                }
                try await writer.finish(nil)
            })
        }
        // A non-streaming run is bounded by server.request_timeout_seconds; it is not tied to the
        // inbound stream, because watching it would cost the connection its keep-alive.
        let result = try await job.run()
        headers[.contentType] = "application/json"
        let response = job.completion(for: result)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: try JSONCoding.encode(response)))
    }

    /// Who owns a conversation: the user within its tenant (the same user id in another tenant is
    /// someone else).
    /// The request's data-access modes (`metadata.data_access`, a comma-separated list), else the
    /// workflow's, else the configured default.
    static func dataAccess(requested: String?, workflow: Workflow, configured: [DataAccessMode]) throws -> Set<DataAccessMode> {
        if let requested, !requested.isEmpty {
            guard let modes = DataAccessMode.parse(requested) else {
                throw ConclaveError(.invalidRequest, "metadata.data_access must list modes from: "
                                    + DataAccessMode.allCases.map(\.rawValue).joined(separator: ", ") + ".")
            }
            return modes
        }
        return Set(workflow.dataAccess ?? configured)
    }

    /// The scope narrowed by the request's metadata filters: `metadata.departments` and
    /// `metadata.classifications` (comma-separated) keep only documents with those labels. A
    /// filter never widens what the policy allows, and a document it leaves out is not searched
    /// rather than reported as withheld.
    static func narrow(_ scope: DocumentScope, metadata: [String: String]?, store: any DocumentStore) async throws -> DocumentScope {
        func list(_ key: String) -> Set<String>? {
            guard let value = metadata?[key], !value.isEmpty else { return nil }
            return Set(value.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        let departments = list("departments"), classifications = list("classifications")
        guard departments != nil || classifications != nil else { return scope }
        let matching = try await store.documents().filter { document in
            (departments.map { $0.contains((document.department ?? "").lowercased()) } ?? true)
                && (classifications.map { $0.contains((document.classification ?? "").lowercased()) } ?? true)
        }.map(\.id)
        var narrowed = scope
        narrowed.filterDocumentIDs = Set(matching)
        return narrowed
    }

    static func owner(_ principal: Principal) -> String {
        principal.tenant == "default" ? principal.userID : principal.tenant + "/" + principal.userID
    }

    /// Loads the named conversation (the caller's own only) or starts one from the request's messages.
    private func openConversation(_ id: String?, chat: ChatCompletionRequest, principal: Principal) async throws
        -> (String, [ChatMessage])
    {
        if let id, !id.isEmpty {
            guard let conversation = try await runtime.store.conversation(id: id), conversation.userID == Self.owner(principal) else {
                throw ConclaveError(.notFound, "Conversation '\(id)' does not exist.", parameter: "conversation_id")
            }
            return (id, conversation.messages)
        }
        let earlier = chat.messages.dropLast().filter { $0.role == .user || $0.role == .assistant }
            .map { ChatMessage(role: $0.role, content: $0.content) }
        let conversation = Conversation(id: Conversation.newID(), userID: Self.owner(principal), messages: earlier)
        try await runtime.store.createConversation(conversation)
        return (conversation.id, earlier)
    }
}

/// One chat request's run: executes the workflow, records the turn, renders the response.
struct ChatJob: Sendable {
    let runtime: ConclaveRuntime
    let workflow: Workflow
    let state: WorkflowState
    /// The question as the user wrote it (the state's may carry pseudonyms).
    let question: String
    let mode: GovernanceConfiguration.Mode
    let options: ModelCallOptions
    let runID: String
    let conversationID: String
    /// The `LiveConfiguration` version the request started on.
    let configVersion: Int
    let logger: Logger
    let timeout: Duration
    let created = Int(Date().timeIntervalSince1970)

    var completionID: String { "chatcmpl-" + runID.dropFirst("run_".count) }

    /// Runs the workflow to completion and records the turn.
    func run() async throws -> RunResult {
        do {
            let key = cacheKey
            let result: RunResult
            if let key, let cached = runtime.answerCache.answer(for: key) {
                result = replay(cached)
            } else {
                result = try await WorkflowEngine.withDeadline(timeout) {
                    try await runtime.engine.run(workflow, state: state, runID: runID, options: options, configVersion: configVersion)
                }
                if let key, let answer = result.state.answer, !answer.text.isEmpty { runtime.answerCache.store(answer, for: key) }
            }
            // Records are written outside this task: a client that leaves cancels the run, and the
            // database refuses writes from a cancelled task.
            let job = self
            try await Task.detached { try await job.record(answer: result.state.answer?.text) }.value
            await Task.detached { await job.audit(result, error: nil) }.value
            await Task.detached { await job.runtime.limiter.charge(job.state.principal, tokens: result.usage.totalTokens) }.value
            return result
        } catch {
            let job = self
            try? await Task.detached { try await job.record(answer: nil) }.value
            await Task.detached { await job.audit(nil, error: error) }.value
            if !(error is CancellationError) {
                logger.error("chat run failed", metadata: ["error": "\(error)"])
            }
            throw error
        }
    }

    /// The answer-cache key of this turn: only first turns (a follow-up depends on its
    /// conversation) that no input rule refused, and only when the `cached` mode is on.
    var cacheKey: String? {
        guard state.dataAccess.contains(.cached), state.history.isEmpty, state.inputRefusal == nil else { return nil }
        return AnswerCache.key(question: question, workflow: workflow.name, principal: state.principal, mode: mode,
                               dataAccess: state.dataAccess, generation: runtime.store.documentsGeneration)
    }

    /// A cached answer as the run's result: streamed as one delta, traced as one `cache` step.
    private func replay(_ answer: Answer) -> RunResult {
        runtime.bus.publish([
            RunEvent(runID: runID, sequence: 0, kind: .runStarted, detail: workflow.name),
            RunEvent(runID: runID, sequence: 1, kind: .tokenDelta, stepID: "cache", role: .responder, detail: answer.text),
            RunEvent(runID: runID, sequence: 2, kind: .runCompleted),
        ])
        var final = state
        final.answer = answer
        let trace = StepTrace(step: "cache", role: .responder, status: "completed", milliseconds: 0, attempts: 1,
                              usage: TokenUsage(), summary: "answer from the cache (data-access mode cached)")
        return RunResult(runID: runID, state: final, trace: [trace])
    }

    /// One audit record for the request: who, which workflow, what was read and withheld, the
    /// decisions, token counts, and hashes (or text, at granularity `full`) of question and answer.
    func audit(_ result: RunResult?, error: (any Error)?) async {
        let governance = runtime.governance
        // Recorded whenever the deployment keeps an audit trail, whatever mode this request ran in.
        guard let log = governance.audit else { return }
        let principal = state.principal
        let final = result?.state
        var decisions: [AuditEntry.Decision] = [
            .init(point: "workflow", allowed: true, rule: "workflows", reason: "\(principal.roles.joined(separator: "/")) may run \(workflow.name)"),
        ]
        if let allowed = state.scope.allowedDocumentIDs {
            decisions.append(.init(point: "retrieval", allowed: true, rule: "documents",
                                   reason: "search limited to \(allowed.count) readable documents"))
        }
        if let guardian = state.textGuard as? RequestGuard, guardian.removedInstructions > 0 {
            decisions.append(.init(point: "evidence", allowed: false, rule: "injection",
                                   reason: "\(guardian.removedInstructions) instruction-like passages removed from retrieved text"))
        }
        if InjectionFilter.isInstructionLike(state.question) {
            decisions.append(.init(point: "input", allowed: true, rule: "injection",
                                   reason: "the question contains instruction-like text; it is answered as a question"))
        }
        if let rule = state.inputRefusal {
            decisions.append(.init(point: "input", allowed: false, rule: rule, reason: "the question was refused by an input rule"))
        }
        if let validation = final?.validation, validation.isRestricted {
            decisions.append(.init(point: "output", allowed: false, rule: "documents",
                                   reason: "answer refused: it lies in \(validation.withheld.map(\.documentID).joined(separator: ", "))"))
        }
        let sourceIDs = Array(Set((final?.evidence ?? []).map(\.source.id))).sorted()
        let usage = result?.usage ?? TokenUsage()
        let status = error.map { OpenAIError.from($0).error.code ?? "error" } ?? "ok"
        await log.record(AuditEntry(
            type: "request", user: principal.userID, tenant: principal.tenant, roles: principal.roles, status: status,
            workflow: workflow.name, runID: runID, conversationID: conversationID, decisions: decisions,
            sources: sourceIDs.map { AuditEntry.Source(id: $0, classification: governance.classification(of: $0)) },
            withheld: Array(Set((final?.withheld ?? []).map(\.documentID))).sorted(),
            maskedEntities: (state.textGuard as? RequestGuard)?.masker.maskedCounts ?? [:],
            models: usage.promptTokens + usage.completionTokens > 0 ? [runtime.configuration.inference.model] : [],
            promptTokens: usage.promptTokens, completionTokens: usage.completionTokens,
            prompt: question, answer: final?.answer?.text))
    }

    /// Appends the turn to the conversation; a failed turn keeps the user's message.
    func record(answer: String?) async throws {
        var messages = [ChatMessage.user(question)]
        if let answer { messages.append(.assistant(answer)) }
        try await runtime.store.appendMessages(messages, toConversation: conversationID)
    }

    /// Streams the run as OpenAI chunks, ending with `[DONE]`, or with an error event when the run fails.
    func stream(into writer: inout any ResponseBodyWriter, includeUsage: Bool) async throws {
        let events = runtime.bus.subscribe(toRun: runID)
        try await withThrowingTaskGroup(of: RunResult.self) { group in
            group.addTask { try await self.run() }
            try await writer.write(sse(chunk(delta: .init(role: "assistant", content: ""), finish: nil)))
            for await event in events {
                guard event.kind == .tokenDelta, event.role == .responder, let text = event.detail else { continue }
                try await writer.write(sse(chunk(delta: .init(role: nil, content: text), finish: nil)))
            }
            let result: RunResult
            do {
                guard let finished = try await group.next() else { throw ConclaveError(.internal, "run task vanished") }
                result = finished
            } catch {
                let body = OpenAIError.from(error)
                try await writer.write(sseData(try JSONCoding.encode(body)))
                return
            }
            let annotations = annotations(for: result)
            var last = chunk(delta: .init(role: nil, content: nil), finish: "stop")
            last.conclave = annotations
            try await writer.write(sse(last))
            if includeUsage {
                var usage = ChatCompletionChunk(id: completionID, created: created, model: workflow.modelID, choices: [],
                                                usage: UsageBody(result.usage), conversationID: conversationID)
                usage.conclave = annotations
                try await writer.write(sse(usage))
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        }
    }

    func completion(for result: RunResult) -> ChatCompletionResponse {
        ChatCompletionResponse(
            id: completionID, created: created, model: workflow.modelID,
            choices: [.init(index: 0, message: .init(role: "assistant", content: result.state.answer?.text ?? ""),
                            finishReason: "stop")],
            usage: UsageBody(result.usage), conversationID: conversationID, conclave: annotations(for: result))
    }

    private func annotations(for result: RunResult) -> ConclaveAnnotations {
        ConclaveAnnotations(runID: runID, workflow: workflow.name, configVersion: configVersion, promptsVersion: runtime.prompts.version,
                            citations: result.state.answer?.citations ?? [], trace: result.trace)
    }

    private func chunk(delta: ChatCompletionChunk.Choice.Delta, finish: String?) -> ChatCompletionChunk {
        ChatCompletionChunk(id: completionID, created: created, model: workflow.modelID,
                            choices: [.init(index: 0, delta: delta, finishReason: finish)], usage: nil,
                            conversationID: conversationID)
    }

    private func sse(_ chunk: ChatCompletionChunk) throws -> ByteBuffer {
        sseData(try JSONCoding.encode(chunk))
    }

    private func sseData(_ json: ByteBuffer) -> ByteBuffer {
        JSONCoding.sseEvent(json)
    }
}

/// JSON encoding of response bodies.
enum JSONCoding {
    /// A 200 response with `value` as its JSON body.
    static func response(_ value: some Encodable) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: try encode(value)))
    }

    static func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return ByteBuffer(bytes: try encoder.encode(value))
    }

    /// One server-sent event carrying `json`: `data: <json>` and a blank line.
    static func sseEvent(_ json: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        var json = json
        buffer.writeBuffer(&json)
        buffer.writeString("\n\n")
        return buffer
    }
}
