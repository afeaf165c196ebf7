import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-read workflows, the access policy and the SQL templates of a running server.",
        discussion: """
            Calls POST /admin/reload (an admin role is needed). The server validates every file first: if one is \
            invalid it keeps the running configuration and the error names the file. Prints the version in force \
            afterwards. `--pid` sends SIGHUP to a local process instead (a gateway or a worker), which does the same \
            and logs the outcome. See docs/operations.md.
            """)

    @Option(name: .long, help: "Base URL of the server.")
    var url: String = "http://127.0.0.1:8080"

    @Option(name: .long, help: "Bearer token of an admin.")
    var token: String?

    @Option(name: .long, help: "Sign a development token for this user of auth.users_file (e.g. u-admin) instead of --token.")
    var user: String?

    @Option(name: .long, help: "Configuration whose auth section signs the --user token.")
    var config: String?

    @Option(name: .long, help: "Send SIGHUP to this local process id instead of calling the server.")
    var pid: Int32?

    func run() async throws {
        if let pid {
            guard kill(pid, SIGHUP) == 0 else { throw ValidationFailure("cannot signal process \(pid): \(String(cString: strerror(errno)))") }
            print("sent SIGHUP to \(pid); the process logs the outcome")
            return
        }
        var bearer = token
        if bearer == nil, let user { bearer = try await Eval.tokens(config: config)(user) }
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        var request = HTTPClientRequest(url: base + "/admin/reload")
        request.method = .POST
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        } catch {
            throw ValidationFailure("cannot reach \(base): \(error)")
        }
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else {
            let message = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
                .flatMap { $0["error"] as? [String: Any] }.flatMap { $0["message"] as? String } ?? body
            FileHandle.standardError.write(Data("reload failed (HTTP \(response.status.code)): \(message)\n".utf8))
            throw ExitCode(1)
        }
        print(body)
    }
}
