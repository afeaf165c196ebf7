import ConclaveCore
import ConclaveInference
import Foundation
import Synchronization

/// A test double of ``ChatModel``: answers from a script instead of a language model.
///
/// Never used by default; it exists for unit tests of orchestration logic and for the
/// orchestration benchmark, where an instant model isolates the engine's own cost. The default
/// script answers each agent's JSON schema with a valid object and streams a fixed reply that
/// cites fact 1.
public final class ScriptedChatModel: ChatModel, Sendable {
    /// Produces the reply text for a request.
    public typealias Script = @Sendable (ChatRequest) throws -> String

    private let script: Script
    private let latency: Duration
    private let tokenDelay: Duration
    private let ready: Mutex<Bool>
    private let log = Mutex<[ChatRequest]>([])
    private let recordsRequests: Bool

    /// Creates a scripted model. `latency` is waited before each reply and `tokenDelay` between
    /// streamed words (both zero for an instant model).
    public init(latency: Duration = .zero, tokenDelay: Duration = .zero, recordsRequests: Bool = true,
                script: @escaping Script = ScriptedChatModel.defaultScript) {
        self.script = script
        self.latency = latency
        self.tokenDelay = tokenDelay
        self.ready = Mutex(true)
        self.recordsRequests = recordsRequests
    }

    /// The requests received so far.
    public var requests: [ChatRequest] { log.withLock { $0 } }

    /// Makes ``isReady()`` answer `value` (to simulate a dead backend).
    public func setReady(_ value: Bool) { ready.withLock { $0 = value } }

    public func isReady() async -> Bool { ready.withLock { $0 } }

    public func complete(_ request: ChatRequest) async throws -> ChatResponse {
        if recordsRequests { log.withLock { $0.append(request) } }
        if latency > .zero { try await Task.sleep(for: latency) }
        let text = try script(request)
        return ChatResponse(content: text, usage: Self.usage(request, text))
    }

    public func stream(_ request: ChatRequest, onDelta: @Sendable (String) async throws -> Void) async throws -> ChatResponse {
        if recordsRequests { log.withLock { $0.append(request) } }
        if latency > .zero { try await Task.sleep(for: latency) }
        let text = try script(request)
        var first = true
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if tokenDelay > .zero { try await Task.sleep(for: tokenDelay) }
            try Task.checkCancellation()
            try await onDelta(first ? String(word) : " " + word)
            first = false
        }
        return ChatResponse(content: text, usage: Self.usage(request, text))
    }

    private static func usage(_ request: ChatRequest, _ text: String) -> TokenUsage {
        let prompt = request.messages.reduce(0) { $0 + $1.content.split(separator: " ").count }
        return TokenUsage(promptTokens: prompt, completionTokens: text.split(separator: " ").count)
    }

    /// Valid JSON for the planner, reasoner and validator schemas; a fixed cited sentence otherwise.
    public static let defaultScript: Script = { request in
        guard let schema = request.jsonSchema else {
            return "According to the sources, here is the answer [1]."
        }
        let question = request.messages.last?.content ?? ""
        if schema.contains("sub_questions") {
            let latest = question.components(separatedBy: "Latest message: ").last ?? question
            let escaped = latest.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: " ")
            return #"{"query":"\#(escaped)","sub_questions":[]}"#
        }
        if schema.contains("answer_form") {
            return #"{"answer_form":"text","entities":[],"computation":"none"}"#
        }
        if schema.contains("answerable") {
            return #"{"answerable":true,"facts":[1]}"#
        }
        return "{}"
    }
}
