import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import NIOCore
import ServiceLifecycle
import Synchronization

/// A test double of an OpenAI-compatible backend on a free loopback port: answers
/// `/v1/chat/completions` (whole or streamed) and `/health` as its behaviour says, and counts calls.
public final class FakeOpenAIServer: Sendable {
    /// How the fake answers a chat call.
    public enum Behaviour: Sendable {
        /// 200 with a completion whose content is the text (streamed as one chunk per word).
        case answer(String)
        /// The given HTTP status with an OpenAI error body.
        case status(Int)
        /// A stream that sends the words of the text, then closes without finishing.
        case cutStream(String)
        /// Accepts the call and never answers.
        case hang
        /// Answers like `answer` after a fixed service time.
        case delayed(String, Duration)
    }

    private let behaviour: Mutex<Behaviour>
    private let calls = Mutex(0)
    private let healthy = Mutex(true)
    private let embeddingCalls = Mutex(0)

    /// Creates a fake that behaves as `behaviour` until changed.
    public init(_ behaviour: Behaviour) {
        self.behaviour = Mutex(behaviour)
    }

    /// Chat calls received.
    public var callCount: Int { calls.withLock { $0 } }

    /// Changes the behaviour.
    public func set(_ behaviour: Behaviour) { self.behaviour.withLock { $0 = behaviour } }

    /// Makes `/health` answer 200 (true) or 503 (false).
    public func setHealthy(_ value: Bool) { healthy.withLock { $0 = value } }

    /// Embedding calls received.
    public var embeddingCallCount: Int { embeddingCalls.withLock { $0 } }

    /// The fake's embedding of a text: `[characters, words, 1]` (deterministic, so tests can check order).
    public static func embedding(of text: String) -> [Float] {
        [Float(text.count), Float(text.split(separator: " ").count), 1]
    }

    /// Runs the fake for the duration of `body`, passing its base URL (ending in `/v1`). With
    /// `tls` it serves HTTPS only, with the test CA's server certificate, and accepts only
    /// clients that present a certificate the CA signed (mutual TLS).
    public func run<T: Sendable>(tls: TestCertificates? = nil, _ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/health") { _, _ -> Response in
            let ok = self.healthy.withLock { $0 }
            return Response(status: ok ? .ok : .serviceUnavailable,
                            body: .init(byteBuffer: ByteBuffer(string: ok ? #"{"status":"ok"}"# : #"{"error":"loading"}"#)))
        }
        router.post("/v1/embeddings") { request, _ -> Response in
            self.embeddingCalls.withLock { $0 += 1 }
            let bytes = try await request.body.collect(upTo: 1 << 20)
            guard let body = try? JSONDecoder().decode(EmbeddingsBody.self, from: Data(bytes.readableBytesView)) else {
                return Response(status: .badRequest)
            }
            // Returned in reverse order with their indices, as the API allows.
            let items = body.input.enumerated().reversed().map { index, text in
                #"{"object":"embedding","index":\#(index),"embedding":[\#(Self.embedding(of: text).map { String($0) }.joined(separator: ","))]}"#
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let json = #"{"object":"list","data":[\#(items.joined(separator: ","))],"model":"fake","usage":{"prompt_tokens":\#(body.input.count * 2),"total_tokens":\#(body.input.count * 2)}}"#
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
        }
        router.post("/v1/chat/completions") { request, _ -> Response in
            self.calls.withLock { $0 += 1 }
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let stream = String(buffer: bytes).contains("\"stream\":true")
            switch self.behaviour.withLock({ $0 }) {
            case .answer(let text):
                return stream ? Self.stream(text, finish: true) : Self.completion(text)
            case .status(let code):
                var headers = HTTPFields()
                headers[.contentType] = "application/json"
                return Response(status: .init(code: code), headers: headers,
                                body: .init(byteBuffer: ByteBuffer(string: #"{"error":{"message":"fake failure","type":"server_error"}}"#)))
            case .cutStream(let text):
                return Self.stream(text, finish: false)
            case .hang:
                try await Task.sleep(for: .seconds(3600))
                return Response(status: .ok)
            case .delayed(let text, let serviceTime):
                try await Task.sleep(for: serviceTime)
                return stream ? Self.stream(text, finish: true) : Self.completion(text)
            }
        }
        var server = HTTPServerBuilder.http1()
        if let tls {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tls.serverCertFile).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.serverKeyFile, format: .pem)))
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(tls.caFile))
            configuration.certificateVerification = .noHostnameVerification
            server = try .tls(server, tlsConfiguration: configuration)
        }
        return try await LoopbackApplication.run(router: router, server: server) { port in
            try await body("\(tls == nil ? "http" : "https")://127.0.0.1:\(port)/v1")
        }
    }

    private struct EmbeddingsBody: Decodable { var input: [String] }

    private static func completion(_ text: String) -> Response {
        let escaped = text.replacingOccurrences(of: "\"", with: "\\\"")
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let json = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"\#(escaped)"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    private static func stream(_ text: String, finish: Bool) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        let words = text.split(separator: " ").map(String.init)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            for (index, word) in words.enumerated() {
                let piece = (index == 0 ? word : " " + word).replacingOccurrences(of: "\"", with: "\\\"")
                try await writer.write(ByteBuffer(string: #"data: {"choices":[{"index":0,"delta":{"content":"\#(piece)"},"finish_reason":null}]}"# + "\n\n"))
            }
            if finish {
                try await writer.write(ByteBuffer(string: #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"# + "\n\ndata: [DONE]\n\n"))
            }
            try await writer.finish(nil)
        })
    }
}
