import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Small HTTP helpers for tests that talk to a server like any client.
public enum TestHTTP {
    /// A response: status, headers and body text.
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: String

        /// The first header value named `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        /// The body parsed as a JSON object.
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }

        /// The `data:` payloads of an SSE body, in order.
        public var sseData: [String] {
            body.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        }
    }

    /// Sends a request and collects the whole reply.
    public static func send(_ method: HTTPMethod = .GET, _ url: String, json: String? = nil,
                            headers: [(String, String)] = [], timeout: TimeAmount = .seconds(300)) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                     body: String(buffer: body))
    }

    /// A JSON string literal for `text`.
    public static func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
