import ConclaveCore
import ConclaveEval
import ConclaveTesting
import Foundation

/// Table 4: resources per agent role, measured on a local cluster where each role is a process
/// of its own (`conclave cluster up`), under the experiment's load.
extension Study {
    /// What one process of the cluster used during the measured load.
    struct RoleUsage: Codable {
        /// `gateway` or an agent role.
        var role: String
        var cpuSeconds: Double
        var residentMegabytes: Double
        var stepSeconds: Double
        var steps: Double
        var tokens: Double
    }

    struct ResourceRun: Codable {
        var configuration: String
        var repetition: Int
        var load: LoadPlan.LevelResult?
        var usage: [RoleUsage]
    }

    /// For each repetition and configuration: `cluster up` (the experiment's settings reach every
    /// gateway and worker through the environment), one warm-up request, the counters of every
    /// process, the load at the first level, the counters again, `cluster down`.
    func runResources(_ experiment: Experiment) async throws -> [ResourceRun] {
        let questions = try EvalTask.load(path: experiment.questions).compactMap { $0.turns.first?.user }
        var runs: [ResourceRun] = []
        let count = repetitions ?? experiment.repetitions
        for repetition in 1...max(1, count) {
            for configuration in experiment.configurations {
                print("-- \(configuration.name), repetition \(repetition) of \(count)")
                let directory = try TestRuntime.temporaryDirectory()
                defer { try? FileManager.default.removeItem(at: directory) }
                let spec = directory.appendingPathComponent("cluster.yaml")
                try """
                    directory: \(directory.appendingPathComponent("cluster").path)
                    gateways: 1
                    inference: {replicas: 1, parallel_slots: 4, context_size: 8192}
                    ingest: [\(TestRuntime.meridianDocs)]
                    """.write(to: spec, atomically: true, encoding: .utf8)
                let environment = Experiment.environment(experiment.settings.merging(configuration.settings) { _, new in new })
                    .filter { $0.key != "CONCLAVE_KNOWLEDGE__INGEST_ON_START" }
                let up = try ServeProcess(arguments: ["cluster", "up", "--config", spec.path], environment: environment)
                guard try await up.waitForExit(timeout: .seconds(600)) == 0 else {
                    throw ValidationFailure("cluster up failed:\n\(up.printed.suffix(2000))")
                }
                do {
                    let state = try JSONDecoder().decode(Cluster.State.self,
                                                         from: Data(contentsOf: directory.appendingPathComponent("cluster/cluster.json")))
                    let members = state.members.compactMap { member -> Member? in
                        if member.name.hasPrefix("llama-server") { return Member(role: "model (llama-server)", source: .proc(member.pid)) }
                        guard let url = member.url else { return nil }
                        if member.name.hasPrefix("gateway-") { return Member(role: "gateway", source: .metrics(url)) }
                        if member.name.hasPrefix("worker-") {
                            return Member(role: String(member.name.split(separator: "-")[1]), source: .metrics(url))
                        }
                        return nil
                    }
                    let bearer = try Self.token(user: experiment.user, environment: [:])
                    var plan = experiment.load
                    plan.model = configuration.model
                    var warmUp = plan
                    warmUp.mode = .closed
                    warmUp.levels = [1]
                    warmUp.durationSeconds = 0.001
                    _ = await warmUp.run(url: state.gateways.joined(separator: ","), bearer: bearer, questions: questions, showProgress: false)
                    let before = try await Self.samples(members)
                    plan.levels = [plan.levels[0]]
                    let levels = await plan.run(url: state.gateways.joined(separator: ","), bearer: bearer, questions: questions)
                    let after = try await Self.samples(members)
                    var usage: [String: RoleUsage] = [:]
                    for (index, member) in members.enumerated() {
                        var entry = usage[member.role] ?? RoleUsage(role: member.role, cpuSeconds: 0, residentMegabytes: 0, stepSeconds: 0,
                                                                    steps: 0, tokens: 0)
                        entry.cpuSeconds += after[index].cpuSeconds - before[index].cpuSeconds
                        entry.residentMegabytes += after[index].residentBytes / 1_048_576
                        entry.stepSeconds += after[index].stepSeconds - before[index].stepSeconds
                        entry.steps += after[index].steps - before[index].steps
                        entry.tokens += after[index].tokens - before[index].tokens
                        usage[member.role] = entry
                    }
                    let order = ["gateway"] + AgentRole.allCases.map(\.rawValue) + ["model (llama-server)"]
                    runs.append(ResourceRun(configuration: configuration.name, repetition: repetition, load: levels.first,
                                            usage: order.compactMap { usage[$0] }))
                } catch {
                    _ = try? await ServeProcess(arguments: ["cluster", "down", "--config", spec.path]).waitForExit(timeout: .seconds(120))
                    throw error
                }
                let down = try ServeProcess(arguments: ["cluster", "down", "--config", spec.path])
                _ = try await down.waitForExit(timeout: .seconds(120))
            }
        }
        return runs
    }

    /// A process of the cluster and where its counters come from.
    struct Member {
        enum Source { case metrics(String), proc(Int32) }
        var role: String
        var source: Source
    }

    static func samples(_ members: [Member]) async throws -> [ProcessSample] {
        var samples: [ProcessSample] = []
        for member in members {
            switch member.source {
            case .metrics(let url):
                samples.append(ProcessSample.parse(try await TestHTTP.send(.GET, url + "/metrics", timeout: .seconds(10)).body))
            case .proc(let pid):
                samples.append(ProcessSample.proc(pid: pid))
            }
        }
        return samples
    }

    func writeResources(_ experiment: Experiment, _ runs: [ResourceRun]) throws {
        let base = try writeRaw(experiment, runs: runs, load: experiment.load)
        var markdown = "# \(experiment.title)\n\n"
        markdown += "A local cluster (`conclave cluster up`: PostgreSQL, NATS JetStream, one llama-server replica with 4 slots, "
        markdown += "one gateway, one worker process per role) under \(Int(experiment.load.levels[0])) closed-loop users for "
        markdown += "\(Int(experiment.load.durationSeconds)) s, \(runs.count / max(1, experiment.configurations.count)) repetitions, "
        markdown += "\(ProcessInfo.processInfo.activeProcessorCount) cores. CPU is each process's user + system time during the load; "
        markdown += "memory its resident set at the end; step time the agent's time on the worker (model calls included); model "
        markdown += "tokens the prompt + completion tokens of the role's model calls. The model (llama-server) is a process of its "
        markdown += "own; the roles' token shares divide its work. Mean over repetitions, range in brackets.\n\n"
        for configuration in experiment.configurations {
            let mine = runs.filter { $0.configuration == configuration.name }
            guard !mine.isEmpty else { continue }
            if experiment.configurations.count > 1 { markdown += "## \(configuration.name)\n\n" }
            markdown += "| process | CPU (s) | CPU share | memory (MB) | steps | step time share | model-token share |\n"
            markdown += "| --- | --- | --- | --- | --- | --- | --- |\n"
            for role in mine[0].usage.map(\.role) {
                func values(_ pick: (RoleUsage, [RoleUsage]) -> Double) -> [Double] {
                    mine.compactMap { run in run.usage.first { $0.role == role }.map { pick($0, run.usage) } }
                }
                let cpu = values { usage, _ in usage.cpuSeconds }
                let cpuShare = values { usage, all in 100 * usage.cpuSeconds / max(1e-9, all.map(\.cpuSeconds).reduce(0, +)) }
                let memory = values { usage, _ in usage.residentMegabytes }
                let steps = values { usage, _ in usage.steps }
                let timeShare = values { usage, all in 100 * usage.stepSeconds / max(1e-9, all.map(\.stepSeconds).reduce(0, +)) }
                let tokenShare = values { usage, all in 100 * usage.tokens / max(1e-9, all.map(\.tokens).reduce(0, +)) }
                let agent = AgentRole(rawValue: role) != nil
                markdown += "| \(role) | \(Self.meanAndRange(cpu, "%.1f")) | \(Self.meanAndRange(cpuShare, "%.0f"))% | "
                markdown += "\(Self.meanAndRange(memory, "%.0f")) | \(agent ? Self.meanAndRange(steps, "%.0f") : "–") | "
                markdown += "\(agent ? Self.meanAndRange(timeShare, "%.0f") + "%" : "–") | "
                markdown += "\(agent ? Self.meanAndRange(tokenShare, "%.0f") + "%" : "–") |\n"
            }
            if let load = mine.first?.load {
                markdown += "\nLoad (first repetition): \(load.sent) requests, \(String(format: "%.2f", load.throughput)) req/s, "
                markdown += "p95 \(String(format: "%.0f", load.p95Milliseconds)) ms, availability \(String(format: "%.1f", 100 * load.availability))%.\n\n"
            }
        }
        try markdown.write(to: base.appendingPathExtension("md"), atomically: true, encoding: .utf8)
        print(markdown)
    }
}
