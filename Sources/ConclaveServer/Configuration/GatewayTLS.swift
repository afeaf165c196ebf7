import ConclaveCore
import Foundation
import NIOSSL

/// The gateway's TLS settings from `server.tls_cert_file` and `server.tls_key_file` (PEM).
enum GatewayTLS {
    /// A server configuration with the certificate chain and key, checked by building a context
    /// once, so a mismatched pair fails at start with the key named, not at the first handshake.
    static func configuration(_ server: ServerConfiguration) throws -> TLSConfiguration {
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
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do {
            _ = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(key: "server.tls_key_file", value: server.tlsKeyFile, expected: "the private key of server.tls_cert_file's certificate")
        }
        return configuration
    }
}
