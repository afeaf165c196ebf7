import AsyncHTTPClient
import ConclaveTesting
import Foundation
import NIOCore
import Testing

/// The `conclave serve` process: startup errors, readiness and graceful shutdown.
@Suite(.serialized) struct ServeProcessTests {
    @Test func badConfigurationExitsNonZeroBeforeBinding() async throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("bad.yaml")
        try "server:\n  port: 8080\ninference:\n  max_tokens: lots\n".write(to: config, atomically: true, encoding: .utf8)
        let serve = try ServeProcess(arguments: ["serve", "--config", config.path])
        let status = try await serve.waitForExit()
        #expect(status != 0)
        #expect(serve.printed.contains("inference.max_tokens"))
        #expect(serve.printed.contains("lots"))
        #expect(serve.printed.contains("an integer"))
        #expect(!serve.printed.contains("listening"))
        let check = try ServeProcess(arguments: ["config", "check", config.path])
        #expect(try await check.waitForExit() != 0)
    }

    @Test func sigkillDuringAuditWritesLeavesAVerifiableChain() async throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("hs256.key")
        try (UUID().uuidString + UUID().uuidString).write(to: key, atomically: true, encoding: .utf8)
        let environment = [
            "CONCLAVE_STORAGE__PATH": directory.appendingPathComponent("conclave.sqlite").path,
            // No model process to orphan: an OpenAI-style endpoint nobody listens on.
            "CONCLAVE_INFERENCE__PROVIDER": "openai", "CONCLAVE_INFERENCE__ENDPOINT": "http://127.0.0.1:9/v1",
            "CONCLAVE_AUTH__HS256_KEY_FILE": key.path,
            "CONCLAVE_AUDIT__SIGNING_KEY_FILE": directory.appendingPathComponent("audit.key").path,
            "CONCLAVE_AUDIT__CHECKPOINT_EVERY": "25",
        ]
        let serve = try ServeProcess(arguments: ["serve", "--port", "0"], environment: environment)
        let base = "http://127.0.0.1:\(try await serve.waitForPort())"
        // Every rejected credential appends a denial record; eight clients keep the writer busy
        // while the process is killed.
        let clients = Task {
            await withTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        while !Task.isCancelled {
                            _ = try? await TestHTTP.send(.GET, base + "/v1/models", headers: [("Authorization", "Bearer forged-\(client)")],
                                                         timeout: .seconds(5))
                        }
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(1500))
        serve.send(SIGKILL)
        _ = try await serve.waitForExit()
        clients.cancel()
        await clients.value
        let verify = try ServeProcess(arguments: ["audit", "verify"], environment: environment)
        #expect(try await verify.waitForExit() == 0, "\(verify.printed)")
        #expect(verify.printed.contains("audit chain valid"))
        let records = Int(verify.printed.split(separator: ":").last?.split(separator: " ").first ?? "0") ?? 0
        #expect(records > 25, "\(verify.printed)")
    }

    @Test func sigtermLetsTheInFlightStreamFinishThenExitsZero() async throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let serve = try ServeProcess(arguments: ["serve", "--port", "0"], environment: [
            "CONCLAVE_STORAGE__PATH": directory.appendingPathComponent("conclave.sqlite").path,
            "CONCLAVE_KNOWLEDGE__INGEST_ON_START": "[\(TestRuntime.meridianDocs)]",
            "CONCLAVE_INFERENCE__PARALLEL_SLOTS": "2", "CONCLAVE_INFERENCE__CONTEXT_SIZE": "4096",
            // Generous, so that a slow (shared, loaded) machine still finishes the stream inside the grace period.
            "CONCLAVE_SERVER__SHUTDOWN_GRACE_SECONDS": "180",
            // This test is about the process lifecycle; authentication is tested elsewhere. Turning
            // it off must be explicit, and the server says so at start.
            "CONCLAVE_AUTH__MODE": "none", "CONCLAVE_GOVERNANCE__MODE": "off",
        ])
        let port = try await serve.waitForPort()
        #expect(serve.printed.contains("authentication is disabled"))
        let base = "http://127.0.0.1:\(port)"
        let deadline = ContinuousClock.now + .seconds(120)
        while try await TestHTTP.send(.GET, base + "/readyz").status != 200 {
            guard ContinuousClock.now < deadline else { Issue.record("never ready: \(serve.printed)"); return }
            try await Task.sleep(for: .milliseconds(100))
        }
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"model":"conclave/single","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"What are the deployment freeze windows?"}]}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        var body = ""
        var signalled = false
        for try await buffer in response.body {
            body += String(buffer: buffer)
            // Once the answer has started streaming, ask the server to stop.
            if !signalled && body.contains(#""content":""#) && body.range(of: #""content":"[^"]"#, options: .regularExpression) != nil {
                serve.send(SIGTERM)
                signalled = true
            }
        }
        #expect(signalled)
        #expect(body.hasSuffix("data: [DONE]\n\n"), "\(body.suffix(300))")
        let status = try await serve.waitForExit()
        #expect(status == 0, "\(serve.printed.suffix(2000))")
    }
}
