import AsyncHTTPClient
import ConclaveCore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import Synchronization
import Tracing

/// A ``ChatModel`` that talks to any OpenAI-compatible `/v1/chat/completions` endpoint:
/// llama.cpp's `llama-server`, vLLM, Ollama or a hosted API.
public struct OpenAICompatibleChatModel: ChatModel {
    /// Connection settings.
    public struct Configuration: Sendable {
        /// Model name sent in the request body.
        public var model: String
        /// Bearer token, if the endpoint needs one.
        public var apiKey: String?
        /// Upper bound of one call.
        public var timeout: Duration
        /// Ask the server to reuse its KV cache for a shared prompt prefix (llama.cpp).
        public var cachePrompt: Bool
        /// Attempts per call, each on another replica where there is one (1: no retry).
        public var maxAttempts: Int
        /// Backoff before the first retry; doubled per retry, jittered ±50 %, capped at 2 s.
        public var retryBackoff: Duration
        /// A streamed attempt that has produced no token within this is abandoned as the
        /// replica's fault (and retried elsewhere); nil for no limit.
        public var firstTokenTimeout: Duration?

        /// Creates a configuration.
        public init(model: String = "default", apiKey: String? = nil, timeout: Duration = .seconds(120),
                    cachePrompt: Bool = true, maxAttempts: Int = 3, retryBackoff: Duration = .milliseconds(50),
                    firstTokenTimeout: Duration? = nil) {
            self.model = model
            self.apiKey = apiKey
            self.timeout = timeout
            self.cachePrompt = cachePrompt
            self.maxAttempts = maxAttempts
            self.retryBackoff = retryBackoff
            self.firstTokenTimeout = firstTokenTimeout
        }
    }

    private let pool: ReplicaPool
    private let client: HTTPClient
    private let configuration: Configuration
    private let logger: Logger

    /// Creates a provider over the replicas in `pool`.
    public init(pool: ReplicaPool, client: HTTPClient = InferenceHTTPClient.shared(connectTimeout: .seconds(5)),
                configuration: Configuration = .init(),
                logger: Logger = Logger(label: "conclave.inference")) {
        self.pool = pool
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    /// True when the pool has a replica whose breaker is not open. This reads the pool's state
    /// instead of probing `/health`: a probe with a short timeout fails spuriously under load, and
    /// the supervisor (process exits) and the breakers (failed calls) already keep the state current.
    public func isReady() async -> Bool {
        !pool.ready.isEmpty
    }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        let body = try encode(request, stream: false)
        return try await measured(request, streaming: false) { span in try await completeWithRetries(request, body: body, span: span) }
    }

    /// Records a call's duration and tokens per model (`conclave_inference_request_duration_seconds`,
    /// `conclave_inference_tokens_total{kind}`); tokens per second is the rate of the latter. The
    /// call is one span, `chat MODEL`, with the OpenTelemetry GenAI attributes.
    private func measured(_ request: ChatRequest, streaming: Bool, _ call: (any Span) async throws -> ChatResponse)
        async throws -> ChatResponse
    {
        try await withSpan("chat \(configuration.model)", ofKind: .client) { span in
            // Attributes cost even on the no-op span of a process without tracing.
            let recording = span.isRecording
            if recording {
                span.attributes["gen_ai.operation.name"] = "chat"
                span.attributes["gen_ai.provider.name"] = "openai"
                span.attributes["gen_ai.request.model"] = configuration.model
                span.attributes["conclave.model"] = pool.model
                span.attributes["conclave.stream"] = streaming
                if let maxTokens = request.maxTokens { span.attributes["gen_ai.request.max_tokens"] = maxTokens }
                if let temperature = request.temperature { span.attributes["gen_ai.request.temperature"] = temperature }
                if let seed = request.seed { span.attributes["gen_ai.request.seed"] = seed }
            }
            let started = ContinuousClock.now
            let response = try await call(span)
            let elapsed = ContinuousClock.now - started
            let instruments = pool.instruments
            instruments.requestDuration.recordNanoseconds(elapsed.inNanoseconds)
            instruments.promptTokens.increment(by: response.usage.promptTokens)
            instruments.completionTokens.increment(by: response.usage.completionTokens)
            if recording {
                span.attributes["gen_ai.usage.input_tokens"] = response.usage.promptTokens
                span.attributes["gen_ai.usage.output_tokens"] = response.usage.completionTokens
                if let finish = response.finishReason { span.attributes["gen_ai.response.finish_reasons"] = [finish] }
            }
            return response
        }
    }

    private func completeWithRetries(_ request: ChatRequest, body: ByteBuffer, span: any Span) async throws -> ChatResponse {
        try await withRetries(request) { base, remaining in
            if span.isRecording { span.attributes["server.address"] = base }
            let response = try await send(body, to: base, timeout: remaining)
            let bytes: ByteBuffer
            do {
                bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
            } catch {
                throw mapTransportError(error)
            }
            guard response.status == .ok else { throw backendError(response.status, body: bytes) }
            if let simple = StreamChunkScanner.scanCompletion(bytes.readableBytesView) {
                return ChatResponse(content: simple.content ?? "",
                                    usage: TokenUsage(promptTokens: simple.promptTokens ?? 0, completionTokens: simple.completionTokens ?? 0),
                                    finishReason: simple.finishReason)
            }
            do {
                let decoded = try JSONDecoder().decode(WireCompletion.self, from: Data(bytes.readableBytesView))
                guard let choice = decoded.choices.first else {
                    throw ConclaveError(.modelFailed, "The model returned no choices.")
                }
                return ChatResponse(content: choice.message?.content ?? "", usage: decoded.usage?.tokenUsage ?? TokenUsage(),
                                    finishReason: choice.finishReason)
            } catch let error as ConclaveError {
                throw error
            } catch {
                throw ConclaveError(.modelFailed, "The model returned a response that is not a chat completion.",
                                    context: String(buffer: bytes).prefix(300).description)
            }
        }
    }

    private func withRetries<T>(_ request: ChatRequest, retryable: @Sendable () -> Bool = { true },
                                _ call: (String, Duration) async throws -> T) async throws -> T {
        try await pool.withRetries(
            policy: .init(maxAttempts: configuration.maxAttempts, backoff: configuration.retryBackoff),
            deadline: ContinuousClock.now + min(configuration.timeout, request.timeout ?? configuration.timeout),
            affinity: request.affinityKey, retryable: retryable, logger: logger, call)
    }

    public func stream(_ request: ChatRequest, onDelta: @Sendable (String) async throws -> Void) async throws -> ChatResponse {
        let body = try encode(request, stream: true)
        let started = StreamProgress()
        return try await measured(request, streaming: true) { span in
            let sent = ContinuousClock.now
            let firstToken = Mutex<Duration?>(nil)
            let response = try await withRetries(request, retryable: { !started.hasEmitted }) { base, remaining in
                if span.isRecording { span.attributes["server.address"] = base }
                return try await streamOnce(body, to: base, timeout: remaining, progress: started) { text in
                    firstToken.withLock { if $0 == nil { $0 = ContinuousClock.now - sent } }
                    try await onDelta(text)
                }
            }
            if span.isRecording, let ttft = firstToken.withLock({ $0 }) {
                span.attributes["conclave.time_to_first_token_ms"] = Double(ttft.inNanoseconds) / 1_000_000
            }
            return response
        }
    }

    /// One streamed attempt, abandoned when its first token does not come within the
    /// configured time to first token.
    private func streamOnce(_ body: ByteBuffer, to base: String, timeout: Duration, progress: StreamProgress,
                            onDelta: @Sendable (String) async throws -> Void) async throws -> ChatResponse {
        guard let limit = configuration.firstTokenTimeout, limit < timeout else {
            return try await streamAttempt(body, to: base, timeout: timeout, progress: progress, attempt: StreamProgress(), onDelta: onDelta)
        }
        let attempt = StreamProgress()
        return try await withoutActuallyEscaping(onDelta) { onDelta in
            try await withThrowingTaskGroup(of: ChatResponse?.self) { group in
                group.addTask {
                    try await streamAttempt(body, to: base, timeout: timeout, progress: progress, attempt: attempt, onDelta: onDelta)
                }
                group.addTask {
                    try await Task.sleep(for: limit)
                    guard attempt.hasEmitted else {
                        throw ConclaveError(.timeout, "The model sent no token within \(limit).")
                    }
                    return nil
                }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let response = result { return response }
                }
                throw ConclaveError(.internal, "the stream attempt produced no outcome")
            }
        }
    }

    private func streamAttempt(_ body: ByteBuffer, to base: String, timeout: Duration, progress: StreamProgress, attempt: StreamProgress,
                               onDelta: @Sendable (String) async throws -> Void) async throws -> ChatResponse {
        let sent = ContinuousClock.now
        let response = try await send(body, to: base, timeout: timeout)
        guard response.status == .ok else {
            let bytes = (try? await response.body.collect(upTo: 1024 * 1024)) ?? ByteBuffer()
            throw backendError(response.status, body: bytes)
        }
        var content = ""
        var usage = TokenUsage()
        var finishReason: String?
        var sawDone = false
        var lines = SSELineSplitter()
        let decoder = JSONDecoder()
        do {
            for try await buffer in response.body {
                for line in lines.append(buffer) {
                    guard line.hasPrefix("data:") else { continue }
                    var payload = line.dropFirst(5)
                    while payload.first == " " { payload = payload.dropFirst() }
                    while payload.last == " " { payload = payload.dropLast() }
                    if payload == "[DONE]" { sawDone = true; continue }
                    let delta: String?
                    if let simple = StreamChunkScanner.scan(payload.utf8) {
                        if let reason = simple.finishReason { finishReason = reason }
                        delta = simple.content
                    } else {
                        let data = Data(payload.utf8)
                        if payload.contains(#""error""#), let error = try? decoder.decode(WireErrorEnvelope.self, from: data),
                           let message = error.error.message {
                            throw ConclaveError(.modelFailed, "The model backend failed mid-stream.", context: message)
                        }
                        let chunk = try decoder.decode(WireChunk.self, from: data)
                        if let u = chunk.usage { usage = u.tokenUsage }
                        guard let choice = chunk.choices.first else { continue }
                        if let reason = choice.finishReason { finishReason = reason }
                        delta = choice.delta?.content
                    }
                    if let delta, !delta.isEmpty {
                        if content.isEmpty {
                            let ttft = ContinuousClock.now - sent
                            pool.instruments.timeToFirstToken.recordNanoseconds(ttft.inNanoseconds)
                        }
                        content += delta
                        progress.markEmitted()
                        attempt.markEmitted()
                        try await onDelta(delta)
                    }
                }
            }
        } catch let error as ConclaveError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch is DecodingError {
            throw ConclaveError(.modelFailed, "The model backend sent a malformed stream chunk.")
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw mapTransportError(error)
        }
        guard sawDone || finishReason != nil else {
            // A stream cut short is the replica's fault; it is retried only if nothing was emitted.
            throw ConclaveError(.modelUnavailable, "The model stream ended before it finished.")
        }
        return ChatResponse(content: content, usage: usage, finishReason: finishReason)
    }

    // MARK: - Wire

    /// The request body, written directly (no JSONSerialization: this runs on every call).
    func encode(_ request: ChatRequest, stream: Bool) throws -> ByteBuffer {
        var json = #"{"model":"# + JSONString.quoted(configuration.model) + #","messages":["#
        for (index, message) in request.messages.enumerated() {
            if index > 0 { json += "," }
            json += #"{"role":"# + JSONString.quoted(message.role.rawValue) + #","content":"# + JSONString.quoted(message.content) + "}"
        }
        json += #"],"stream":"# + (stream ? "true" : "false")
        if stream { json += #","stream_options":{"include_usage":true}"# }
        if let t = request.temperature, t.isFinite { json += #","temperature":"# + String(t) }
        if let m = request.maxTokens { json += #","max_tokens":"# + String(m) }
        if let s = request.seed { json += #","seed":"# + String(s) }
        if !request.stop.isEmpty { json += #","stop":["# + request.stop.map(JSONString.quoted).joined(separator: ",") + "]" }
        if configuration.cachePrompt { json += #","cache_prompt":true"# }
        if let schema = request.jsonSchema {
            // The schema is embedded as it is, after checking it is one JSON object.
            guard let schemaData = schema.data(using: .utf8),
                  (try? JSONSerialization.jsonObject(with: schemaData)) is [String: Any] else {
                throw ConclaveError(.internal, "Invalid JSON schema.", context: schema)
            }
            json += #","response_format":{"type":"json_schema","json_schema":{"name":"output","strict":true,"schema":"# + schema + "}}"
        }
        json += "}"
        return ByteBuffer(string: json)
    }

    private func send(_ body: ByteBuffer, to base: String, timeout: Duration) async throws -> HTTPClientResponse {
        try await Upstream.post(body, to: base + "/chat/completions", apiKey: configuration.apiKey,
                                timeout: min(configuration.timeout, timeout), client: client, logger: logger)
    }

    private func mapTransportError(_ error: any Error) -> any Error {
        Upstream.mapTransportError(error, logger: logger)
    }

    private func backendError(_ status: HTTPResponseStatus, body: ByteBuffer) -> ConclaveError {
        Upstream.backendError(status, body: body)
    }
}

/// Splits a byte stream into text lines (SSE framing), keeping partial lines between buffers.
public struct SSELineSplitter: Sendable {
    /// Creates an empty splitter.
    public init() {}

    private var pending: [UInt8] = []

    /// Adds bytes and returns the complete lines they finish.
    public mutating func append(_ buffer: ByteBuffer) -> [String] {
        pending.append(contentsOf: buffer.readableBytesView)
        var lines: [String] = []
        var start = 0
        for i in pending.indices where pending[i] == UInt8(ascii: "\n") {
            var end = i
            if end > start, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            lines.append(String(decoding: pending[start..<end], as: UTF8.self))
            start = i + 1
        }
        if start > 0 { pending.removeFirst(start) }
        return lines
    }
}

private struct WireUsage: Decodable {
    var prompt_tokens: Int?
    var completion_tokens: Int?
    var tokenUsage: TokenUsage { TokenUsage(promptTokens: prompt_tokens ?? 0, completionTokens: completion_tokens ?? 0) }
}

private struct WireCompletion: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable { var content: String? }
        var message: Message?
        var finishReason: String?
        enum CodingKeys: String, CodingKey { case message; case finishReason = "finish_reason" }
    }
    var choices: [Choice]
    var usage: WireUsage?
}

private struct WireChunk: Decodable {
    struct Choice: Decodable {
        struct Delta: Decodable { var content: String? }
        var delta: Delta?
        var finishReason: String?
        enum CodingKeys: String, CodingKey { case delta; case finishReason = "finish_reason" }
    }
    var choices: [Choice]
    var usage: WireUsage?
}

private struct WireErrorEnvelope: Decodable {
    struct Body: Decodable { var message: String? }
    var error: Body
}

/// Whether a streamed call has passed a token to its caller (after which it must not be retried).
final class StreamProgress: Sendable {
    private let emitted = Mutex(false)
    var hasEmitted: Bool { emitted.withLock { $0 } }
    func markEmitted() { emitted.withLock { $0 = true } }
}
