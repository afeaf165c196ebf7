import AsyncHTTPClient
import ConclaveCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// One chat-completions request of a load test, sent with AsyncHTTPClient and judged without
/// decoding the JSON (so the load generator stays cheap next to the system it measures): a
/// streamed answer must end with `[DONE]` and carry no error event; its time to first token is
/// when the first non-empty `content` arrives.
public struct ChatLoad: Sendable {
    public typealias Outcome = ClosedLoopLoad.Outcome
    /// The chat completions URL.
    public var url: String
    /// Bearer token, if the target needs one.
    public var bearer: String?
    /// Request timeout.
    public var timeout: Duration
    private let client: HTTPClient

    /// Creates a requester with its own connection pool (one connection per virtual user).
    public init(url: String, bearer: String? = nil, timeout: Duration = .seconds(300), client: HTTPClient) {
        self.url = url
        self.bearer = bearer
        self.timeout = timeout
        self.client = client
    }

    /// A client for load: keep-alive connections, up to `connections` per host.
    public static func makeClient(connections: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        // Shorter than llama.cpp's 5 s keep-alive, so a pooled connection is not one the server closed.
        configuration.connectionPool = .init(idleTimeout: .seconds(4), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, connections))
        configuration.timeout = .init(connect: .seconds(10))
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }

    /// Sends `body` (a JSON chat request; `stream` says whether it asks for a stream).
    public func send(_ body: ByteBuffer, stream: Bool) async -> ClosedLoopLoad.Outcome {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        request.body = .bytes(body)
        let clock = ContinuousClock()
        let sent = clock.now
        do {
            let nanoseconds = timeout.inNanoseconds
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: .nanoseconds(nanoseconds))
            } catch where !(error is CancellationError)
                && (error as? HTTPClientError).map({ $0 != .deadlineExceeded && $0 != .cancelled }) ?? true {
                // As OpenAI's SDKs do, a request that got no response head at all is sent once more:
                // llama.cpp's HTTP server closes a kept-alive connection after a few requests, and
                // a request written to it meanwhile fails with "I/O on closed channel". Both
                // targets are treated alike.
                response = try await client.execute(request, timeout: .nanoseconds(nanoseconds))
            }
            guard response.status == .ok else {
                _ = try? await response.body.collect(upTo: 1 << 20)
                return .init(ok: false)
            }
            if !stream {
                let bytes = try await response.body.collect(upTo: 16 << 20)
                let view = Array(bytes.readableBytesView)
                return .init(ok: true, completionTokens: Self.integer(after: Self.completionTokensKey, in: view) ?? 0)
            }
            var firstToken: Duration?
            var tail: [UInt8] = []
            var failed = false
            do {
                for try await chunk in response.body {
                    let view = Array(chunk.readableBytesView)
                    if firstToken == nil, Self.hasContent(view) { firstToken = clock.now - sent }
                    // Across chunk boundaries too: the last bytes of the previous chunk lead.
                    if ByteSearch.contains(Array(tail.suffix(16)) + view, Self.errorEvent) { failed = true }
                    tail = Array((tail + view).suffix(512))
                }
            } catch {
                // The connection broke mid-stream: whatever arrived says how it ended.
                return .init(ok: false, streamEnd: failed ? .errorEvent : .cut)
            }
            let done = ByteSearch.contains(tail, Self.doneEvent)
            let end: Outcome.StreamEnd = failed ? .errorEvent : done ? .done : .cut
            return .init(ok: end == .done, timeToFirstToken: firstToken,
                         completionTokens: Self.integer(after: Self.completionTokensKey, in: tail) ?? 0, streamEnd: end)
        } catch {
            return .init(ok: false)
        }
    }

    static let contentKey = Array(#""content":""#.utf8)
    static let completionTokensKey = Array(#""completion_tokens":"#.utf8)
    static let errorEvent = Array(#"data: {"error""#.utf8)
    static let doneEvent = Array("data: [DONE]".utf8)

    /// Whether the bytes hold a `"content":"` followed by at least one character.
    static func hasContent(_ bytes: [UInt8]) -> Bool {
        var start = 0
        while let index = ByteSearch.firstIndex(of: contentKey, in: bytes, from: start) {
            let next = index + contentKey.count
            if next < bytes.count, bytes[next] != UInt8(ascii: "\"") { return true }
            start = next
        }
        return false
    }

    /// The integer after the last occurrence of `key`.
    static func integer(after key: [UInt8], in bytes: [UInt8]) -> Int? {
        var found: Int?
        var start = 0
        while let index = ByteSearch.firstIndex(of: key, in: bytes, from: start) {
            found = index + key.count
            start = index + 1
        }
        guard var i = found else { return nil }
        while i < bytes.count, bytes[i] == UInt8(ascii: " ") { i += 1 }
        var value = 0
        var digits = 0
        while i < bytes.count, let digit = Int(exactly: bytes[i]), (48...57).contains(digit) {
            value = value * 10 + digit - 48
            digits += 1
            i += 1
        }
        return digits > 0 ? value : nil
    }
}
