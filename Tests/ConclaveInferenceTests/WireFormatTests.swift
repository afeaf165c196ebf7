import ConclaveCore
import Foundation
import Testing

@testable import ConclaveInference

/// The hand-written wire paths agree with a JSON parser: the streamed-chunk scanner reads what
/// `JSONSerialization` reads (or declines), and the request body is valid JSON with every field.
@Suite struct WireFormatTests {
    static let tricky = ["plain", "with \"quotes\" and \\backslash\\", "new\nline\ttab\r", "ünïcødé ✓ 😀 中文",
                         "control \u{01}\u{1F}", "", "\"content\": fake key", " leading and trailing "]

    static func chunk(_ content: String?, finish: String? = nil) -> String {
        var delta: [String: Any] = [:]
        if let content { delta["content"] = content }
        let choice: [String: Any] = ["index": 0, "delta": delta, "finish_reason": finish ?? NSNull()]
        let object: [String: Any] = ["id": "c", "object": "chat.completion.chunk", "choices": [choice]]
        return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test func scannerReadsWhatAParserReads() {
        for text in Self.tricky {
            let payload = Self.chunk(text)
            #expect(StreamChunkScanner.scan(payload[...].utf8) == .init(content: text, finishReason: nil), "\(payload)")
        }
        // Escapes a parser writes differently: \u sequences, surrogate pairs, escaped slash.
        let escaped = #"{"choices":[{"index":0,"delta":{"content":"a\u00e9\/b\ud83d\ude00c"},"finish_reason":null}]}"#
        #expect(StreamChunkScanner.scan(escaped[...].utf8)?.content == "aé/b😀c")
        let finish = Self.chunk(nil, finish: "length")
        #expect(StreamChunkScanner.scan(finish[...].utf8) == .init(content: nil, finishReason: "length"))
        let roleOnly = #"{"choices":[{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}]}"#
        #expect(StreamChunkScanner.scan(roleOnly[...].utf8) == .init(content: nil, finishReason: nil))
    }

    @Test func scannerDeclinesWhatItDoesNotHandle() {
        let declined = [
            #"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
            #"{"error":{"message":"boom"}}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"x"}]},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"bad \x escape"},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"unterminated"#,
            #"{"choices":[{"index":0,"delta":{"content":42},"finish_reason":null}]}"#,
            #"{"id":"no choices"}"#,
        ]
        for payload in declined {
            #expect(StreamChunkScanner.scan(payload[...].utf8) == nil, "\(payload)")
        }
    }

    /// Found by fuzz/FuzzSSEStream: the scanner took `"content"` anywhere in the chunk for the
    /// delta's, so a key of another object became answer text that a JSON decoder never reads.
    @Test func scannerReadsContentOnlyFromTheFirstChoicesDelta() {
        let elsewhere = [
            #"{"choices":[{"index":0,"deltla":{"content":"y"}}]}"#,
            #"{"choices":[{"index":0,"delta":{},"message":{"content":"y"}}],"meta":{"finish_reason":"stop"}}"#,
            #"{"choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":{"content":"y"}}]}"#,
        ]
        for payload in elsewhere {
            let simple = StreamChunkScanner.scan(payload[...].utf8)
            #expect(simple == nil || simple == .init(content: nil, finishReason: nil), "\(payload)")
        }
        // Keys spelt with escapes are still keys; usage however it is spaced goes to the decoder.
        let escapedKey = #"{"choices":[{"index":0,"delta":{"cont\u0065nt":"x"},"finish_reason":null}]}"#
        #expect(StreamChunkScanner.scan(escapedKey[...].utf8) == .init(content: "x", finishReason: nil))
        let spacedUsage = #"{"choices":[{"index":0,"delta":{"content":"x"}}], "usage": {"prompt_tokens":3}}"#
        #expect(StreamChunkScanner.scan(spacedUsage[...].utf8) == nil)
    }

    /// A whole completion as `JSONDecoder` reads it in `completeWithRetries` (its `WireCompletion`).
    private struct DecodedCompletion: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable { var content: String? }
            var message: Message?
            var finishReason: String?
            enum CodingKeys: String, CodingKey { case message; case finishReason = "finish_reason" }
        }
        struct Usage: Decodable { var prompt_tokens: Int?; var completion_tokens: Int? }
        var choices: [Choice]
        var usage: Usage?
    }

    @Test func completionScannerAgreesWithADecoder() throws {
        var bodies: [String] = []
        for text in Self.tricky {
            let object: [String: Any] = [
                "id": "c", "object": "chat.completion", "created": 1,
                "choices": [["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": "stop"]],
                "usage": ["prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15],
            ]
            bodies.append(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
        }
        bodies += [
            #"{"choices":[{"index":0,"message":{"content":null},"finish_reason":"length"}],"usage":null}"#,
            #"{"choices":[{"index":0,"message":null,"finish_reason":null}]}"#,
            #"{"choices":[{"message":{"content":"a\u00e9\/b\ud83d\ude00c"}}],"usage":{"completion_tokens":0}}"#,
            #" { "usage" : { "prompt_tokens" : 7 , "completion_tokens" : 1 } , "choices" : [ { "message" : { "content" : "x" } } ] } "#,
        ]
        for body in bodies {
            let simple = try #require(StreamChunkScanner.scanCompletion(Array(body.utf8)), "\(body)")
            let decoded = try JSONDecoder().decode(DecodedCompletion.self, from: Data(body.utf8))
            #expect(simple.content == decoded.choices.first?.message?.content, "\(body)")
            #expect(simple.finishReason == decoded.choices.first?.finishReason, "\(body)")
            #expect(simple.promptTokens == decoded.usage?.prompt_tokens, "\(body)")
            #expect(simple.completionTokens == decoded.usage?.completion_tokens, "\(body)")
        }
        #expect(StreamChunkScanner.scanCompletion(Array(bodies[0].utf8)) == .init(content: "plain", finishReason: "stop",
                                                                                  promptTokens: 12, completionTokens: 3))
    }

    @Test func completionScannerDeclinesWhatItDoesNotHandle() {
        let declined = [
            #"{"choices":[]}"#,
            #"{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]}"#,
            #"{"choices":[{"message":{},"message":{"content":"a"}}]}"#,
            #"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":-1}}"#,
            #"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":1.5}}"#,
            #"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":"3"}}"#,
            #"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":99999999999999999999}}"#,
            #"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
            #"{"choices":[{"message":{"content":"a","tool_calls":[]}}]}"#,
            #"{"choices":[{"message":{"content":5}}]}"#,
            #"{"choices":[{"message":{"content":"unterminated}}]}"#,
            #"{"id":"no choices"}"#,
        ]
        for body in declined {
            #expect(StreamChunkScanner.scanCompletion(Array(body.utf8)) == nil, "\(body)")
        }
        // A chunk's delta is not a completion's message, and the other way round.
        #expect(StreamChunkScanner.scanCompletion(Array(Self.chunk("x").utf8))?.content == nil)
        let completion = #"{"choices":[{"message":{"content":"x"}}]}"#
        #expect(StreamChunkScanner.scan(completion[...].utf8)?.content == nil)
    }

    @Test func requestBodyIsValidJSONWithEveryField() throws {
        let model = OpenAICompatibleChatModel(pool: ReplicaPool(), configuration: .init(model: "m \"x\""))
        for text in Self.tricky {
            var request = ChatRequest(messages: [.system("sys"), .user(text)], temperature: 0.25, maxTokens: 12, seed: 7,
                                      jsonSchema: #"{"type":"object","properties":{"a":{"type":"string","maxLength":5}}}"#)
            request.stop = ["\n\n", "END"]
            let body = try model.encode(request, stream: true)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
            #expect(object["model"] as? String == "m \"x\"")
            let messages = try #require(object["messages"] as? [[String: Any]])
            #expect(messages.map { $0["content"] as? String } == ["sys", text])
            #expect(messages.map { $0["role"] as? String } == ["system", "user"])
            #expect(object["temperature"] as? Double == 0.25 && object["max_tokens"] as? Int == 12 && object["seed"] as? Int == 7)
            #expect(object["stream"] as? Bool == true && object["cache_prompt"] as? Bool == true)
            #expect(object["stop"] as? [String] == ["\n\n", "END"])
            let format = try #require(object["response_format"] as? [String: Any])
            #expect(((format["json_schema"] as? [String: Any])?["schema"] as? [String: Any])?["type"] as? String == "object")
        }
        let bad = ChatRequest(messages: [.user("x")], jsonSchema: "{not json")
        #expect(throws: ConclaveError.self) { try model.encode(bad, stream: false) }
    }
}
