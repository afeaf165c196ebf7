import ConclaveCore
import Foundation

/// The local PostgreSQL server programs (Debian's `postgresql` package), for the clusters that
/// Conclave starts itself: the tests' throw-away cluster and `conclave cluster up`.
public enum PostgresBinaries {
    /// `CONCLAVE_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/N/bin` that has `postgres`.
    public static func directory() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["CONCLAVE_POSTGRES_BIN"], !explicit.isEmpty { return explicit }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/postgres") {
            return "\(root)/\(version)/bin"
        }
        throw ConclaveError(.invalidConfiguration, "PostgreSQL server programs not found under \(root): run `make setup` "
                            + "(it installs Debian's postgresql) or set CONCLAVE_POSTGRES_BIN.")
    }

    /// The account PostgreSQL runs as: nil (this user) unless this process is root, which
    /// PostgreSQL refuses; then the `postgres` account.
    public static func serviceAccount() throws -> (uid: Int, gid: Int)? {
        guard geteuid() == 0 else { return nil }
        guard let entry = getpwnam("postgres") else {
            throw ConclaveError(.invalidConfiguration, "Running as root and there is no 'postgres' user to run PostgreSQL as.")
        }
        return (Int(entry.pointee.pw_uid), Int(entry.pointee.pw_gid))
    }

    /// Makes `directory` (created if needed) belong to the service account.
    public static func prepare(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if let account = try serviceAccount() {
            try FileManager.default.setAttributes([.ownerAccountID: account.uid, .groupOwnerAccountID: account.gid],
                                                  ofItemAtPath: directory.path)
        }
    }

    /// A process running `tool` (`initdb`, `postgres`) with `arguments` as the service account;
    /// `setpriv` execs the program itself, so signals reach it directly.
    public static func process(_ tool: String, _ arguments: [String]) throws -> Process {
        let path = try directory() + "/" + tool
        let process = Process()
        if let account = try serviceAccount() {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(account.uid)", "--regid=\(account.gid)", "--init-groups", "--", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        return process
    }

    /// `initdb` arguments for a loopback cluster owned by the role `user` with trust
    /// authentication (it listens on 127.0.0.1 only).
    public static func initdbArguments(data: URL, user: String) -> [String] {
        ["-D", data.path, "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
    }

    /// `postgres` arguments for a loopback server on `port`, its socket in `socketDirectory`.
    public static func serverArguments(data: URL, port: Int, socketDirectory: URL, durable: Bool) -> [String] {
        var arguments = ["-D", data.path, "-h", "127.0.0.1", "-p", String(port), "-k", socketDirectory.path,
                         "-c", "max_connections=200", "-c", "logging_collector=off"]
        if !durable { arguments += ["-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB"] }
        return arguments
    }
}
