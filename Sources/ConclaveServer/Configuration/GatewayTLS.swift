import ConclaveCore
import Foundation
import NIOSSL
import Synchronization

/// The gateway's TLS settings from `server.tls_cert_file` and `server.tls_key_file` (PEM).
enum GatewayTLS {
    /// The certificate chain and key, checked by building a context once, so a mismatched pair
    /// fails with the key named (at start, or at a reload), not at the first handshake.
    static func load(_ server: ServerConfiguration) throws -> GatewayCertificate.Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(server.tlsCertFile)
        } catch {
            throw ConfigurationError(key: "server.tls_cert_file", value: server.tlsCertFile, expected: "a readable PEM certificate (chain)")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(key: "server.tls_cert_file", value: server.tlsCertFile, expected: "a PEM file with at least one certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: server.tlsKeyFile, format: .pem)
        } catch {
            throw ConfigurationError(key: "server.tls_key_file", value: server.tlsKeyFile, expected: "a readable, unencrypted PEM private key")
        }
        let pair = GatewayCertificate.Pair(chain: chain, key: key)
        do {
            _ = try NIOSSLContext(configuration: serverConfiguration(pair))
        } catch {
            throw ConfigurationError(key: "server.tls_key_file", value: server.tlsKeyFile, expected: "the private key of server.tls_cert_file's certificate")
        }
        return pair
    }

    /// A server configuration that presents `certificate`'s current pair at every handshake, so
    /// a reload that replaces it applies to the connections opened afterwards.
    static func configuration(_ certificate: GatewayCertificate) -> TLSConfiguration {
        var configuration = serverConfiguration(certificate.current)
        configuration.sslContextCallback = { _, promise in
            let pair = certificate.current
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = pair.chain.map { .certificate($0) }
            override.privateKey = .privateKey(pair.key)
            promise.succeed(override)
        }
        return configuration
    }

    /// A server configuration with the chain and key (TLS 1.2 or later).
    private static func serverConfiguration(_ pair: GatewayCertificate.Pair) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: pair.chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(pair.key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }
}

/// The certificate and key the gateway presents; `conclave reload` replaces them (new
/// connections get the new pair, open ones keep theirs).
public final class GatewayCertificate: Sendable {
    /// A certificate chain and its private key.
    public struct Pair: Sendable {
        public var chain: [NIOSSLCertificate]
        public var key: NIOSSLPrivateKey
    }

    private let pair: Mutex<Pair>

    init(_ pair: Pair) {
        self.pair = Mutex(pair)
    }

    /// The pair in use.
    public var current: Pair { pair.withLock { $0 } }

    /// Swaps in another pair (already checked by `GatewayTLS.load`).
    func replace(with pair: Pair) {
        self.pair.withLock { $0 = pair }
    }
}
