import AsyncHTTPClient
import ConclaveCore
import Logging
import NIOCore
import NIOHTTP1

/// One request to an OpenAI-compatible endpoint, and the one mapping of its failures to
/// ``ConclaveError``: the replica's faults (unreachable, 502/503/504, timeouts) become
/// `modelUnavailable` or `timeout`, which the pool retries elsewhere; anything else is the
/// request's fault.
enum Upstream {
    /// The message of a call that failed on a pooled connection the backend had closed.
    static let staleConnection = "The model backend had closed the pooled connection."

    /// POSTs a JSON body to `url` with a bearer key, bounded by `timeout`.
    static func post(_ body: ByteBuffer, to url: String, apiKey: String?, timeout: Duration, client: HTTPClient,
                     logger: Logger) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        // No `traceparent` here: AsyncHTTPClient (whose configuration takes the tracer bootstrapped
        // before the runtime builds its clients) wraps the request in its own span and sends that.
        request.body = .bytes(body)
        do {
            let nanoseconds = timeout.inNanoseconds
            return try await client.execute(request, timeout: .nanoseconds(max(1_000_000, nanoseconds)))
        } catch {
            throw mapTransportError(error, logger: logger)
        }
    }

    /// Maps a transport error: deadlines to `timeout`, anything else to `modelUnavailable`.
    static func mapTransportError(_ error: any Error, logger: Logger) -> any Error {
        if error is CancellationError { return error }
        if let error = error as? ConclaveError { return error }
        if let error = error as? ChannelError, error == .ioOnClosedChannel {
            // A pooled connection the backend had closed: the request never reached it.
            return ConclaveError(.modelUnavailable, Upstream.staleConnection, context: "\(error)")
        }
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout {
                return ConclaveError(.timeout, "The model backend did not answer in time.", context: "\(error)")
            }
            if error == .connectTimeout {
                return ConclaveError(.modelUnavailable, "The model backend did not accept the connection in time.", context: "\(error)")
            }
            if error == .cancelled { return CancellationError() }
        }
        logger.warning("model transport error", metadata: ["error": "\(error)"])
        return ConclaveError(.modelUnavailable, "The model backend is unreachable.", context: "\(error)")
    }

    /// Maps a non-200 answer: 502/503/504 are the replica's fault, the rest the request's.
    static func backendError(_ status: HTTPResponseStatus, body: ByteBuffer) -> ConclaveError {
        let text = String(buffer: body).prefix(500).description
        switch status.code {
        case 502, 503, 504:
            return ConclaveError(.modelUnavailable, "The model backend is not ready.", context: text)
        default:
            return ConclaveError(.modelFailed, "The model backend answered HTTP \(status.code).", context: text)
        }
    }
}
