// The upstream stream parser of `OpenAICompatibleChatModel`: `SSELineSplitter` (SSE framing) and
// `StreamChunkScanner` (the decoder-free fast path for `data:` chunks). The input is a raw
// response body as an upstream server could send it.
//
// Properties:
// - the lines do not depend on how the body is cut into network buffers (cut points from the
//   input), and equal an independent splitter's (LF-terminated, one trailing CR dropped, a last
//   line without LF held back);
// - for every `data:` payload that is valid JSON, the fast path agrees with `JSONDecoder` on the
//   delta text and the finish reason whenever it claims the chunk (returns non-nil), and it never
//   claims a chunk that carries usage (which only the decoder reports);
// - read as a whole completion, the input gets the same answer, finish reason and token counts
//   from the completion fast path as from `JSONDecoder` whenever the fast path claims it.
@testable import ConclaveInference
import Foundation
import FuzzSupport
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Fuzz.bytes(start, count)
    var choices = FuzzChoices(bytes)

    var whole = SSELineSplitter()
    let lines = whole.append(ByteBuffer(bytes: bytes))
    let expected = referenceLines(bytes)
    Fuzz.check(lines == expected, "SSELineSplitter gave \(lines), expected \(expected)")

    var pieces = SSELineSplitter()
    var pieced: [String] = []
    var from = 0
    for cut in choices.cuts(bytes.count, count: choices.int(in: 1...8)) + [bytes.count] {
        pieced += pieces.append(ByteBuffer(bytes: bytes[from..<cut]))
        from = cut
    }
    Fuzz.check(pieced == lines, "lines depend on the buffer boundaries: \(pieced) vs \(lines)")

    for line in lines where line.hasPrefix("data:") {
        // The payload as `streamAttempt` cuts it.
        var payload = line.dropFirst(5)
        while payload.first == " " { payload = payload.dropFirst() }
        while payload.last == " " { payload = payload.dropLast() }
        guard payload != "[DONE]", let simple = StreamChunkScanner.scan(payload.utf8) else { continue }
        guard let chunk = try? JSONDecoder().decode(Chunk.self, from: Data(payload.utf8)) else { continue }
        Fuzz.check(chunk.usage == nil, "fast path claimed a chunk with usage, which it cannot report: \(payload)")
        let choice = chunk.choices.first
        Fuzz.check(simple.content == choice?.delta?.content,
                   "fast path read content \(simple.content.debugDescription), JSONDecoder \(String(describing: choice?.delta?.content)) in \(payload)")
        Fuzz.check(simple.finishReason == choice?.finishReason,
                   "fast path read finish_reason \(simple.finishReason.debugDescription), JSONDecoder \(String(describing: choice?.finishReason)) in \(payload)")
    }
    // The same body as a whole (non-streamed) completion.
    if let simple = StreamChunkScanner.scanCompletion(bytes),
       let completion = try? JSONDecoder().decode(Completion.self, from: Data(bytes)) {
        let choice = completion.choices.first
        Fuzz.check(simple.content == choice?.message?.content && simple.finishReason == choice?.finishReason
                   && simple.promptTokens == completion.usage?.prompt_tokens && simple.completionTokens == completion.usage?.completion_tokens,
                   "completion fast path read \(simple), JSONDecoder \(completion)")
    }
    return 0
}

/// A whole completion as `completeWithRetries` decodes it (its `WireCompletion`).
private struct Completion: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable { var content: String? }
        var message: Message?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case message
            case finishReason = "finish_reason"
        }
    }

    var choices: [Choice]
    var usage: Chunk.Usage?
}

/// Complete lines of `bytes`: each ends with LF, loses one CR before it, and is decoded as UTF-8.
private func referenceLines(_ bytes: [UInt8]) -> [String] {
    var lines: [String] = []
    var line: [UInt8] = []
    for byte in bytes {
        if byte == 0x0A {
            if line.last == 0x0D { line.removeLast() }
            lines.append(String(decoding: line, as: UTF8.self))
            line = []
        } else {
            line.append(byte)
        }
    }
    return lines
}

/// A streamed chunk as the full decoding path of `streamAttempt` reads it (its `WireChunk`).
private struct Chunk: Decodable {
    struct Choice: Decodable {
        struct Delta: Decodable { var content: String? }
        var delta: Delta?
        var finishReason: String?
        enum CodingKeys: String, CodingKey {
            case delta
            case finishReason = "finish_reason"
        }
    }

    struct Usage: Decodable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
    }

    var choices: [Choice]
    var usage: Usage?
}
