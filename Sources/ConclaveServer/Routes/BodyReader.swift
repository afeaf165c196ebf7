import ConclaveCore
import Hummingbird
import NIOCore

/// Reads a request body within the server's limits: at most `server.max_body_bytes` (else 413)
/// and all of it within `server.body_timeout_seconds` of the headers (else 408, and the
/// connection is closed), so a client that trickles its body cannot hold a request open.
enum BodyReader {
    static func collect(_ request: inout Request, server: ServerConfiguration) async throws -> ByteBuffer {
        let limit = server.maxBodyBytes
        let seconds = server.bodyTimeoutSeconds
        let body = request.body
        do {
            let buffer = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await body.collect(upTo: limit) }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else {
                    throw ConclaveError(.requestTimeout, "The request body did not arrive within \(seconds.formatted()) seconds.")
                }
                return buffer
            }
            request.body = .init(buffer: buffer)
            return buffer
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw ConclaveError(.payloadTooLarge, "The request body is larger than \(limit) bytes.")
        }
    }
}
