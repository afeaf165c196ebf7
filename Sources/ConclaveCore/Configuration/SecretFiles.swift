import Foundation

extension ConclaveConfiguration {
    /// The configured files that hold secrets, by key: signing keys and the API-key file.
    public var secretFiles: [(key: String, path: String)] {
        [("auth.hs256_key_file", auth.hs256KeyFile), ("auth.api_keys_file", auth.apiKeysFile),
         ("audit.signing_key_file", audit.signingKeyFile), ("server.tls_key_file", server.tlsKeyFile),
         ("messaging.tls_key_file", messaging.tlsKeyFile), ("inference.tls_key_file", inference.tlsKeyFile)].filter { !$0.path.isEmpty }
    }

    /// One warning per secret file that exists and that its group or other users may read or
    /// write (`conclave config check` prints them; `conclave serve` logs them at start).
    public func secretFileWarnings() -> [String] {
        secretFiles.compactMap { key, path in
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 else { return nil }
            return "\(key) (\(path)) is accessible to other users (mode \(String(mode & 0o777, radix: 8))); restrict it with chmod 600"
        }
    }
}
