import AsyncHTTPClient
import ConclaveCore
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Tracing

/// The HTTP clients model calls go through, one per connect timeout, living as long as the
/// process (as `HTTPClient.shared` does): a connection that is refused, or not accepted within
/// the connect timeout, fails fast, and the call is retried on another replica instead of
/// waiting for the call's whole deadline.
public enum InferenceHTTPClient {
    /// TLS to `https://` endpoints beyond the system's CAs: a private CA, and a client
    /// certificate for endpoints that verify clients (mutual TLS). PEM files.
    public struct TLS: Sendable, Hashable {
        public var caFile: String
        public var certFile: String
        public var keyFile: String

        public init(caFile: String = "", certFile: String = "", keyFile: String = "") {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }

        /// AsyncHTTPClient's client configuration; throws a `ConfigurationError` naming the key
        /// of a file that cannot be loaded.
        func configuration() throws -> TLSConfiguration {
            var tls = TLSConfiguration.makeClientConfiguration()
            if !caFile.isEmpty {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                } catch {
                    throw ConfigurationError(key: "inference.tls_ca_file", value: caFile, expected: "a readable PEM certificate file")
                }
            }
            if !certFile.isEmpty {
                do {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
                } catch {
                    throw ConfigurationError(key: "inference.tls_cert_file", value: certFile, expected: "a readable PEM certificate (chain)")
                }
                do {
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
                } catch {
                    throw ConfigurationError(key: "inference.tls_key_file", value: keyFile, expected: "a readable, unencrypted PEM private key")
                }
            }
            return tls
        }
    }

    private struct Key: Hashable {
        var milliseconds: Int64
        var tls: TLS?
    }

    private static let clients = Mutex<[Key: HTTPClient]>([:])

    /// The client whose connections time out after `connectTimeout`.
    public static func shared(connectTimeout: Duration) -> HTTPClient {
        // Without TLS settings nothing can fail.
        try! shared(connectTimeout: connectTimeout, tls: nil)
    }

    /// The client whose connections time out after `connectTimeout`, with `tls` for `https://`
    /// endpoints (nil: the system's CAs, no client certificate).
    public static func shared(connectTimeout: Duration, tls: TLS?) throws -> HTTPClient {
        let milliseconds = max(1, connectTimeout.inMilliseconds)
        let tlsConfiguration = try tls.map { try $0.configuration() }
        return clients.withLock { clients in
            let key = Key(milliseconds: milliseconds, tls: tls)
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration()
            if let tlsConfiguration { configuration.tlsConfiguration = tlsConfiguration }
            configuration.timeout = .init(connect: .milliseconds(milliseconds))
            // Idle connections are dropped before the backend drops them: llama.cpp's HTTP server
            // closes a kept-alive connection after 5 s idle, and a request written to such a
            // connection fails ("I/O on closed channel") and must be retried.
            configuration.connectionPool = .init(idleTimeout: .seconds(4), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
            // A connection that cannot be made fails its request at once: the replica pool retries
            // on another replica. With AsyncHTTPClient's own retries, requests for a killed
            // replica waited in its queue until their deadline (seen in the kill-under-load test).
            configuration.connectionPool.retryConnectionEstablishment = false
            // Without a tracer (tracing off) no client span: AsyncHTTPClient would otherwise build
            // no-op spans and their attributes for every call.
            if InstrumentationSystem.tracer is NoOpTracer { configuration.tracing.tracer = nil }
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}
