import ConclaveCore
import ConclaveGovernance
import ConclaveInference
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// The direct model route: `model` naming a served model (`inference.served_model_name`, default
/// `smollm2`, or one of `inference.models`) goes straight to its replica pool, as an LLM gateway would, with the same
/// authentication, permission (the policy's `workflows` entry of that name), PII pseudonyms and
/// masking, audit and streaming semantics as the workflows. Stateless: no conversation is kept.
struct DirectModelRoute: Sendable {
    let runtime: ConclaveRuntime
    /// The model named in the request.
    let served: ServedModel

    struct Chunk: Encodable {
        var id: String
        var object = "chat.completion.chunk"
        var created: Int
        var model: String
        var choices: [ChatCompletionChunk.Choice]
        var usage: UsageBody?
    }

    func complete(_ chat: ChatCompletionRequest, principal: Principal, requestBody: RequestBody) async throws -> Response {
        let name = served.name
        try await runtime.governance.authorize(workflow: name, for: principal)
        guard let model = served.chat else {
            throw ConclaveError(.invalidRequest, "The model '\(name)' serves embeddings only; use POST /v1/embeddings.", parameter: "model")
        }
        guard await model.isReady() else { throw ConclaveError(.modelUnavailable, "No model backend is ready.") }
        let mode = try await runtime.governance.mode(requested: chat.metadata?["governance_mode"], for: principal)
        let question = chat.messages.last?.content ?? ""
        if case .refused(let rule) = try runtime.governance.checkInput(chat.messages.filter { $0.role == .user }.map(\.content), mode: mode) {
            throw ConclaveError(.forbidden, "The request is not allowed by the platform's usage policy.", context: rule)
        }
        let guardian = runtime.governance.textGuard(for: principal, mode: mode)
        let messages = chat.messages.map { ChatMessage(role: $0.role, content: guardian?.input($0.content) ?? $0.content) }
        let request = ChatRequest(messages: messages, temperature: chat.temperature ?? runtime.callOptions.temperature,
                                  maxTokens: chat.completionTokenLimit ?? runtime.callOptions.maxTokens,
                                  seed: chat.seed ?? runtime.callOptions.seed,
                                  timeout: .milliseconds(Int64(runtime.configuration.server.requestTimeoutSeconds * 1000)))
        let id = "chatcmpl-" + RandomID.makeTimeOrdered()
        let created = Int(Date().timeIntervalSince1970)
        var headers = HTTPFields()
        if chat.stream == true {
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            headers[.connection] = "close"
            let includeUsage = chat.streamOptions?.includeUsage == true
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                let filter = SharedOutputFilter(guardian?.outputStream())
                let prefix = #"data: {"id":"\#(id)","object":"chat.completion.chunk","created":\#(created),"model":"#
                    + JSONString.quoted(name) + #","choices":[{"index":0,"delta":{"#
                // Written by hand: this runs once per token.
                func chunk(_ text: String?, role: String? = nil, finish: String?) throws -> ByteBuffer {
                    var fields: [String] = []
                    if let role { fields.append(#""role":"# + JSONString.quoted(role)) }
                    if let text { fields.append(#""content":"# + JSONString.quoted(text)) }
                    return ByteBuffer(string: prefix + fields.joined(separator: ",") + #"},"finish_reason":"#
                                      + (finish.map(JSONString.quoted) ?? "null") + "}]}\n\n")
                }
                let audited = Mutex(false)
                @Sendable func finalAudit(_ status: String, _ usage: TokenUsage) async {
                    guard audited.withLock({ done in defer { done = true }; return !done }) else { return }
                    await Task.detached { await audit(principal, name: name, mode: mode, question: question, answer: filter.released,
                                                      usage: usage, guardian: guardian, status: status) }.value
                }
                do {
                try await writer.write(try chunk("", role: "assistant", finish: nil))
                let (deltas, continuation) = AsyncStream.makeStream(of: String.self)
                // A client that goes away cancels the model call.
                try await requestBody.consumeWithCancellationOnInboundClose { _ in
                try await withThrowingTaskGroup(of: ChatResponse.self) { group in
                    group.addTask {
                        defer { continuation.finish() }
                        return try await model.stream(request) { delta in continuation.yield(delta) }
                    }
                    for await delta in deltas {
                        let released = filter.append(delta)
                        if !released.isEmpty { try await writer.write(try chunk(released, finish: nil)) }
                    }
                    do {
                        guard let response = try await group.next() else { throw ConclaveError(.internal, "model task vanished") }
                        let rest = filter.finish()
                        if !rest.isEmpty { try await writer.write(try chunk(rest, finish: nil)) }
                        try await writer.write(try chunk(nil, finish: response.finishReason ?? "stop"))
                        if includeUsage {
                            try await writer.write(Self.sse(try JSONCoding.encode(Chunk(id: id, created: created, model: name, choices: [],
                                                                                        usage: UsageBody(response.usage)))))
                        }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                        await finalAudit("ok", response.usage)
                    } catch {
                        // A failure mid-stream ends the stream with an error event, never a clean [DONE].
                        await finalAudit(OpenAIError.from(error).error.code ?? "error", TokenUsage())
                        try await writer.write(Self.sse(try JSONCoding.encode(OpenAIError.from(error))))
                    }
                }
                }
                } catch {
                    // The client went away (or the write failed): the request is still recorded.
                    await finalAudit("client_gone", TokenUsage())
                    throw error
                }
                try await writer.finish(nil)
            })
        }
        let response: ChatResponse
        do {
            response = try await model.complete(request)
        } catch {
            await audit(principal, name: name, mode: mode, question: question, answer: nil, usage: TokenUsage(), guardian: guardian,
                        status: OpenAIError.from(error).error.code ?? "error")
            throw error
        }
        let filter = SharedOutputFilter(guardian?.outputStream())
        let text = filter.append(response.content) + filter.finish()
        await Task.detached { await audit(principal, name: name, mode: mode, question: question, answer: text, usage: response.usage,
                                          guardian: guardian, status: "ok") }.value
        headers[.contentType] = "application/json"
        let usage = UsageBody(response.usage)
        // Written by hand (an OpenAI chat.completion): JSONEncoder was a large share of a proxied request.
        let json = #"{"id":"\#(id)","object":"chat.completion","created":\#(created),"model":"# + JSONString.quoted(name)
            + #","choices":[{"index":0,"message":{"role":"assistant","content":"# + JSONString.quoted(text)
            + #"},"finish_reason":"# + JSONString.quoted(response.finishReason ?? "stop")
            + #"}],"usage":{"prompt_tokens":\#(usage.promptTokens),"completion_tokens":\#(usage.completionTokens),"total_tokens":\#(usage.totalTokens)}}"#
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    private func audit(_ principal: Principal, name: String, mode: GovernanceConfiguration.Mode, question: String, answer: String?,
                       usage: TokenUsage, guardian: RequestGuard?, status: String) async {
        // Every ending of the request passes here: charge its tokens to the quotas too.
        await runtime.limiter.charge(principal, tokens: usage.totalTokens)
        guard let log = runtime.governance.audit else { return }
        await log.record(AuditEntry(
            type: "request", user: principal.userID, tenant: principal.tenant, roles: principal.roles, status: status, workflow: name,
            decisions: [.init(point: "model", allowed: true, rule: "workflows", reason: "direct model route")],
            maskedEntities: guardian?.masker.maskedCounts ?? [:], models: [served.upstreamModel],
            promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, prompt: question, answer: answer))
    }

    static func sse(_ json: ByteBuffer) -> ByteBuffer {
        JSONCoding.sseEvent(json)
    }
}
