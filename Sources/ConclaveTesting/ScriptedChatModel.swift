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

    /// Token counts estimated as UTF-8 bytes / 4 (cheap: this model must cost next to nothing).
    private static func usage(_ request: ChatRequest, _ text: String) -> TokenUsage {
        let prompt = request.messages.reduce(0) { $0 + $1.content.utf8.count } / 4
        return TokenUsage(promptTokens: prompt, completionTokens: max(1, text.utf8.count / 4))
    }

    /// Valid JSON for the planner, reasoner and validator schemas; for an answer, the text of the
    /// first numbered fact or passage in the prompt (`[1] (SOURCE) text`) followed by `[1]`.
    public static let defaultScript: Script = { request in
        guard let schema = request.jsonSchema else {
            let prompt = Array((request.messages.last?.content ?? "").utf8)
            guard let start = ByteSearch.endOfFirst(Array("[1] (".utf8), in: prompt),
                  let close = prompt[start...].firstIndex(of: UInt8(ascii: ")")) else {
                return "I have no sources for this."
            }
            let rest = prompt[(close + 1)...]
            let line = rest.prefix { $0 != UInt8(ascii: "\n") }
            return String(decoding: line, as: UTF8.self).trimmed + " [1]"
        }
        let schemaBytes = Array(schema.utf8)
        func mentions(_ key: String) -> Bool { ByteSearch.contains(schemaBytes, Array(key.utf8)) }
        if mentions("sub_questions") {
            let question = request.messages.last?.content ?? ""
            let marker = Array("Latest message: ".utf8)
            let bytes = Array(question.utf8)
            let latest = ByteSearch.endOfFirst(marker, in: bytes).map { Array(bytes[$0...]) } ?? bytes
            var escaped: [UInt8] = []
            escaped.reserveCapacity(latest.count + 8)
            for byte in latest {
                switch byte {
                case UInt8(ascii: "\\"), UInt8(ascii: "\""): escaped += [UInt8(ascii: "\\"), byte]
                case UInt8(ascii: "\n"): escaped.append(UInt8(ascii: " "))
                default: escaped.append(byte)
                }
            }
            return #"{"query":""# + String(decoding: escaped, as: UTF8.self) + #"","sub_questions":[]}"#
        }
        if mentions("answer_form") {
            return #"{"answer_form":"text","entities":[],"computation":"none"}"#
        }
        if mentions("answerable") {
            return #"{"answerable":true,"facts":[1]}"#
        }
        return "{}"
    }
}
