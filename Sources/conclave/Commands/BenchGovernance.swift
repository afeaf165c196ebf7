import ArgumentParser
import AsyncHTTPClient
import ConclaveCore
import ConclaveGovernance
import ConclaveKnowledge
import ConclaveServer
import ConclaveStorage
import ConclaveTesting
import Foundation
import Logging
import NIOCore

extension Bench {
    struct Governance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "governance",
            abstract: "Per-stage governance cost, and end-to-end latency and throughput per governance mode against off.",
            discussion: """
                Stage costs are measured in a loop, in microseconds per call: JWT verification, workflow \
                authorization and the document scope, PII masking of a request's evidence and of its streamed \
                answer, injection removal, and one audit append (SQLite file, as in production). Then the same \
                server runs in-process over HTTP with the instant test model and the Meridian documents, once \
                per mode (off, access, audit, full, alternated), at 1 and 16 concurrent clients. The instant \
                model makes governance's share as large as it can be; the report also gives it as a share of a \
                real SmolLM2 request (--model-latency-ms).
                """)

        @Option(name: .long, help: "Requests per mode and concurrency level.")
        var requests: Int = 400

        @Option(name: .long, help: "End-to-end latency of one real conclave/full request, to express the overhead against (ms).")
        var modelLatencyMs: Double = 4000

        @Option(name: .long, help: "Where to write the JSON results.")
        var output: String = "bench/results/governance.json"

        func run() async throws {
            Logging.LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
            let directory = try TestRuntime.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            var report: [String: Any] = ["benchmark": "governance", "cores": ProcessInfo.processInfo.activeProcessorCount,
                                         "model": "ScriptedChatModel (instant test double)"]
            report["stages_us"] = try await stages(directory: directory)
            let (modes, overhead) = try await endToEnd(directory: directory)
            report["modes"] = modes
            report["full_vs_off"] = overhead
            let url = URL(fileURLWithPath: output)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: url)
            print("wrote \(output)")
        }

        private func microseconds(_ iterations: Int, _ body: () async throws -> Void) async rethrows -> Double {
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<iterations { try await body() }
            return ClosedLoop.milliseconds(clock.now - start) * 1000 / Double(iterations)
        }

        private func stages(directory: URL) async throws -> [String: Double] {
            var configuration = try TestRuntime.governedConfiguration(directory: directory,
                                                                      storagePath: directory.appendingPathComponent("stages.sqlite").path)
            configuration.audit.granularity = .metadata
            let runtime = try await TestRuntime.make(model: ScriptedChatModel(recordsRequests: false), configuration: configuration,
                                                     documents: [TestRuntime.meridianDocs])
            let governance = runtime.governance
            let user = try requireUser(UserDirectory(path: configuration.auth.usersFile), "u-auditor")
            let token = try await TokenIssuer(authenticator: governance.authenticator, configuration: configuration.auth).token(for: user)
            let evidence = try await BM25Retriever(store: runtime.store)
                .retrieve("What is the mobile phone number on the platform on-call contact sheet?", limit: 4).map(\.text)
            let answer = "The on-call engineer this week is Bas Galderhorst, reachable on +31 6 8324 7555 [1]. Escalate to the SRE lead after 15 minutes [2]."
            var stages: [String: Double] = [:]
            stages["authentication_jwt"] = try await microseconds(2000) {
                _ = try await governance.authenticate(authorization: "Bearer \(token)")
            }
            stages["authorization_workflow"] = try await microseconds(20000) {
                try await governance.authorize(workflow: "full", for: user)
            }
            stages["authorization_document_scope"] = try await microseconds(2000) {
                _ = try await governance.documentScope(for: user)
            }
            let guardian = try requireGuard(governance.textGuard(for: user))
            stages["injection_and_pii_evidence"] = await microseconds(2000) {
                for passage in evidence { _ = guardian.evidence(passage) }
            }
            stages["pii_input"] = await microseconds(20000) {
                _ = guardian.masker.mask("What is the mobile phone number of Bas Galderhorst on the on-call sheet?")
            }
            stages["pii_output_stream"] = await microseconds(2000) {
                var filter = guardian.outputStream()
                for word in answer.split(separator: " ") { _ = filter.append(word + " ") }
                _ = filter.finish()
            }
            let audit = try requireAudit(governance.audit)
            stages["audit_append"] = await microseconds(2000) {
                await audit.record(AuditEntry(type: "request", user: user.userID, roles: user.roles, status: "ok", workflow: "full",
                                              sources: [.init(id: "ENG-004", classification: "confidential")],
                                              prompt: "question", answer: answer))
            }
            stages["total"] = stages.values.reduce(0, +)
            for (name, value) in stages.sorted(by: { $0.key < $1.key }) { print(String(format: "stage %-30@ %8.1f µs", name as NSString, value)) }
            return stages
        }

        private func endToEnd(directory: URL) async throws -> ([[String: Any]], [String: Any]) {
            let client = HTTPClient.shared
            var rows: [[String: Any]] = []
            var byMode: [String: [Int: (p50: Double, rate: Double)]] = [:]
            let modes: [GovernanceConfiguration.Mode] = [.off, .access, .audit, .full]
            for round in 0..<2 {
                for mode in (round == 0 ? modes : modes.reversed()) {
                    var configuration = try TestRuntime.governedConfiguration(
                        directory: directory, storagePath: directory.appendingPathComponent("e2e-\(mode)-\(round).sqlite").path)
                    configuration.governance.mode = mode
                    let runtime = try await TestRuntime.make(model: ScriptedChatModel(recordsRequests: false), configuration: configuration,
                                                             documents: [TestRuntime.meridianDocs])
                    let user = try requireUser(UserDirectory(path: configuration.auth.usersFile), "u-auditor")
                    let token = try await TokenIssuer(authenticator: runtime.governance.authenticator, configuration: configuration.auth)
                        .token(for: user)
                    let measured = try await RunningServer.with(runtime) { base -> [Int: (p50: Double, rate: Double)] in
                        _ = try await load(client, base, token: token, requests: 50, concurrency: 4)  // warm-up
                        var results: [Int: (p50: Double, rate: Double)] = [:]
                        for concurrency in [1, 16] {
                            results[concurrency] = try await load(client, base, token: token, requests: requests, concurrency: concurrency)
                        }
                        return results
                    }
                    for (concurrency, r) in measured {
                        var entry = byMode[mode.rawValue, default: [:]][concurrency] ?? (0, 0)
                        entry = (entry.p50 + r.p50 / 2, entry.rate + r.rate / 2)
                        byMode[mode.rawValue, default: [:]][concurrency] = entry
                    }
                }
            }
            for mode in modes {
                for concurrency in [1, 16] {
                    guard let m = byMode[mode.rawValue]?[concurrency] else { continue }
                    print(String(format: "mode %-6@ c=%-2d p50 %.3f ms  %.0f requests/s", mode.rawValue as NSString, concurrency, m.p50, m.rate))
                    rows.append(["mode": mode.rawValue, "concurrency": concurrency, "p50_ms": m.p50, "requests_per_second": m.rate])
                }
            }
            var overhead: [String: Any] = [:]
            if let off = byMode["off"], let full = byMode["full"], let off1 = off[1], let full1 = full[1], let off16 = off[16], let full16 = full[16] {
                let added = full1.p50 - off1.p50
                overhead = ["added_p50_ms_c1": added, "added_p50_percent_instant_model": added / off1.p50 * 100,
                            "throughput_loss_percent_c16_instant_model": (1 - full16.rate / off16.rate) * 100,
                            "model_latency_ms": modelLatencyMs, "added_percent_of_real_request": added / modelLatencyMs * 100]
                print(String(format: "full vs off: +%.3f ms p50 at c=1 (%.1f%% of an instant-model request, %.3f%% of a %.0f ms real request); throughput %.1f%% lower at c=16",
                             added, added / off1.p50 * 100, added / modelLatencyMs * 100, modelLatencyMs, (1 - full16.rate / off16.rate) * 100))
            }
            return (rows, overhead)
        }

        private func load(_ http: HTTPClient, _ base: String, token: String, requests: Int, concurrency: Int) async throws
            -> (p50: Double, rate: Double)
        {
            let questions = [
                "How many days of paid annual leave does a full-time employee get?",
                "What is the mobile phone number on the platform on-call contact sheet?",
                "What are the payment terms for subcontracted carrier invoices?",
                "What is Project Nightjar about?",
            ]
            let bodies = try questions.map { question in
                try JSONSerialization.data(withJSONObject: ["model": "conclave/full", "messages": [["role": "user", "content": question]]])
            }
            let result = try await ClosedLoop.run(clients: concurrency, perClient: max(1, requests / concurrency)) { client, iteration in
                var request = HTTPClientRequest(url: base + "/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .bytes(ByteBuffer(bytes: bodies[(client + iteration) % bodies.count]))
                let response = try await http.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .ok else { throw ValidationFailure("HTTP \(response.status.code) during the benchmark") }
            }
            return (result.percentile(0.5), result.perSecond)
        }
    }
}

private func requireUser(_ directory: UserDirectory, _ id: String) throws -> Principal {
    guard let user = directory.user(id) else { throw ValidationFailure("user \(id) not in the users file") }
    return user.principal
}

private func requireGuard(_ value: RequestGuard?) throws -> RequestGuard {
    guard let value else { throw ValidationFailure("governance full did not give a request guard") }
    return value
}

private func requireAudit(_ value: AuditLog?) throws -> AuditLog {
    guard let value else { throw ValidationFailure("governance full did not open the audit log") }
    return value
}
