import AsyncHTTPClient
import NIOCore
import NIOPosix
import Synchronization

/// The HTTP clients model calls go through, one per connect timeout, living as long as the
/// process (as `HTTPClient.shared` does): a connection that is refused, or not accepted within
/// the connect timeout, fails fast, and the call is retried on another replica instead of
/// waiting for the call's whole deadline.
public enum InferenceHTTPClient {
    private static let clients = Mutex<[Int64: HTTPClient]>([:])

    /// The client whose connections time out after `connectTimeout`.
    public static func shared(connectTimeout: Duration) -> HTTPClient {
        let milliseconds = max(1, connectTimeout.inMilliseconds)
        return clients.withLock { clients in
            if let client = clients[milliseconds] { return client }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .milliseconds(milliseconds))
            // Idle connections are dropped before the backend drops them: llama.cpp's HTTP server
            // closes a kept-alive connection after 5 s idle, and a request written to such a
            // connection fails ("I/O on closed channel") and must be retried.
            configuration.connectionPool = .init(idleTimeout: .seconds(4), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
            // A connection that cannot be made fails its request at once: the replica pool retries
            // on another replica. With AsyncHTTPClient's own retries, requests for a killed
            // replica waited in its queue until their deadline (seen in the kill-under-load test).
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[milliseconds] = client
            return client
        }
    }
}
