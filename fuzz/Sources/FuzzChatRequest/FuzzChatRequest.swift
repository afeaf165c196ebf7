// The body of POST /v1/chat/completions: `ChatCompletionRequest.decode`, with limits taken from the input.
//
// Properties:
// - it never crashes, and every refusal is a `ConclaveError` with code `invalid_request` (a 400;
//   anything else would reach the client as a 500);
// - an accepted request satisfies the documented limits, checked here independently: at least one
//   and at most `max_messages` messages, the last a non-empty user message, temperature in 0...2,
//   `max_tokens`/`max_completion_tokens` in 1...limit;
// - decode → encode → decode is the identity on everything the server reads.
import ConclaveCore
import ConclaveServer
import Foundation
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    var choices = FuzzChoices(Fuzz.bytes(start, count))
    let maxMessages = [1, 2, 8, 64, Int.max][choices.int(in: 0...4)]
    let maxTokens = [1, 16, 4096, Int.max][choices.int(in: 0...3)]
    let request: ChatCompletionRequest
    do {
        request = try ChatCompletionRequest.decode(data, maxMessages: maxMessages, maxTokens: maxTokens)
    } catch let error as ConclaveError {
        Fuzz.check(error.code == .invalidRequest, "refused with code \(error.code), not invalid_request: \(error)")
        Fuzz.check(!error.message.isEmpty, "refused without a message")
        return 0
    } catch {
        Fuzz.fail("refused with \(type(of: error)), not a ConclaveError: \(error)")
    }
    checkLimits(request, maxMessages: maxMessages, maxTokens: maxTokens)

    let encoded: Data
    do {
        encoded = try JSONEncoder().encode(Body(request))
    } catch {
        Fuzz.fail("an accepted request does not encode: \(error)")
    }
    do {
        let again = try ChatCompletionRequest.decode(encoded, maxMessages: maxMessages, maxTokens: maxTokens)
        Fuzz.check(Body(again) == Body(request),
                   "round trip changed the request:\n\(Body(request))\n\(Body(again))\nvia \(String(decoding: encoded, as: UTF8.self))")
    } catch {
        Fuzz.fail("the re-encoded request is refused: \(error); body \(String(decoding: encoded, as: UTF8.self))")
    }
    return 0
}

private func checkLimits(_ request: ChatCompletionRequest, maxMessages: Int, maxTokens: Int) {
    Fuzz.check(!request.messages.isEmpty, "accepted without messages")
    Fuzz.check(request.messages.count <= maxMessages, "accepted \(request.messages.count) messages, limit \(maxMessages)")
    guard let last = request.messages.last else { return }
    Fuzz.check(last.role == .user, "accepted with a last message of role \(last.role)")
    // Unicode White_Space is the set CharacterSet.whitespacesAndNewlines holds (Zs, tab, line breaks).
    Fuzz.check(last.content.unicodeScalars.contains { !$0.properties.isWhitespace }, "accepted with a blank last message")
    if let t = request.temperature {
        Fuzz.check(t >= 0 && t <= 2, "accepted temperature \(t)")
    }
    for value in [request.maxTokens, request.maxCompletionTokens].compactMap({ $0 }) {
        Fuzz.check(value >= 1 && value <= maxTokens, "accepted a token limit of \(value), server limit \(maxTokens)")
    }
    if let limit = request.completionTokenLimit {
        Fuzz.check(limit == request.maxCompletionTokens ?? request.maxTokens, "completionTokenLimit \(limit) is neither field")
    }
}

/// What the server reads of a request, in OpenAI's wire names (an independent encoder).
private struct Body: Encodable, Equatable, CustomStringConvertible {
    struct Message: Encodable, Equatable {
        var role: String
        var content: String
    }

    struct StreamOptions: Encodable, Equatable {
        var include_usage: Bool?
    }

    var model: String?
    var messages: [Message]
    var stream: Bool?
    var stream_options: StreamOptions?
    var temperature: Double?
    var max_tokens: Int?
    var max_completion_tokens: Int?
    var seed: Int?
    var user: String?
    var metadata: [String: String]?

    init(_ request: ChatCompletionRequest) {
        model = request.model
        messages = request.messages.map { Message(role: $0.role.rawValue, content: $0.content) }
        stream = request.stream
        stream_options = request.streamOptions.map { StreamOptions(include_usage: $0.includeUsage) }
        temperature = request.temperature
        max_tokens = request.maxTokens
        max_completion_tokens = request.maxCompletionTokens
        seed = request.seed
        user = request.user
        metadata = request.metadata
    }

    var description: String {
        "model=\(model.debugDescription) messages=\(messages) stream=\(stream.debugDescription) "
            + "temperature=\(temperature.debugDescription) max_tokens=\(max_tokens.debugDescription) "
            + "max_completion_tokens=\(max_completion_tokens.debugDescription) seed=\(seed.debugDescription) "
            + "user=\(user.debugDescription) metadata=\(metadata.debugDescription)"
    }
}
