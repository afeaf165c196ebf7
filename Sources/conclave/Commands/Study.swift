import ArgumentParser
import ConclaveCore
import ConclaveEval
import ConclaveTesting
import Foundation

/// `conclave study`: runs experiment files (YAML under `experiments/`) against real servers and
/// writes their tables and raw numbers to a report directory.
struct Study: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run experiment files (experiments/*.yaml) against real servers and write the report.",
        discussion: """
            Each configuration of an experiment gets its own `conclave serve` (the default configuration plus the \
            experiment's settings as CONCLAVE_* overrides, a fresh database, a free port), the load of the \
            experiment's `load` section, then a SIGTERM. Repetitions alternate the configurations' order. Writes \
            <name>.json (every repetition), <name>.md (the table: mean and spread over repetitions) and \
            <name>-latency.csv (latency against load per configuration, the data of the figure).
            """)

    @Argument(help: "Experiment files.")
    var experiments: [String]

    @Option(name: .long, help: "Report directory.")
    var output: String = "reports/latest"

    @Option(name: .long, help: "Override every experiment's repetitions (for a quick look).")
    var repetitions: Int?

    @Option(name: .long, help: "Override every experiment's seconds per level (for a quick look).")
    var duration: Double?

    func run() async throws {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        for path in experiments {
            var experiment = try Experiment(path: path)
            if let duration { experiment.load.durationSeconds = duration }
            print("== \(experiment.name): \(experiment.title)")
            let clock = ContinuousClock()
            let started = clock.now
            defer { print("== \(experiment.name): \(Self.seconds(clock.now - started))") }
            switch experiment.kind {
            case .load:
                let runs = try await run(experiment)
                try write(experiment, runs)
            case .quality:
                let runs = try await runQuality(experiment)
                try writeQuality(experiment, runs)
            case .resources:
                let runs = try await runResources(experiment)
                try writeResources(experiment, runs)
            }
        }
        print("wrote \(output)")
    }

    struct Run: Codable {
        var configuration: String
        var repetition: Int
        var levels: [LoadPlan.LevelResult]
    }

    /// For each repetition (the configurations' order alternating) and configuration: a fresh
    /// `conclave serve` (the experiment's and the configuration's settings plus `environment`, a new
    /// database, a free port), waited for until ready; `body` gets the configuration, the
    /// repetition, the server's URL and its environment; then the server gets SIGTERM.
    private func eachServer<T>(_ experiment: Experiment, environment extra: [String: String] = [:], detail: String = "",
                               _ body: (Experiment.Configuration, Int, String, [String: String]) async throws -> T) async throws -> [T] {
        var results: [T] = []
        let count = repetitions ?? experiment.repetitions
        var ingested: [String: URL] = [:]
        defer { for template in ingested.values { try? FileManager.default.removeItem(at: template.deletingLastPathComponent()) } }
        for repetition in 1...max(1, count) {
            let order = repetition % 2 == 1 ? experiment.configurations : experiment.configurations.reversed()
            for configuration in order {
                print("-- \(configuration.name), repetition \(repetition) of \(count)\(detail)")
                let directory = try TestRuntime.temporaryDirectory()
                defer { try? FileManager.default.removeItem(at: directory) }
                var environment = Experiment.environment(experiment.settings.merging(configuration.settings) { _, new in new })
                environment["CONCLAVE_SERVER__PORT"] = "0"
                environment.merge(extra) { _, new in new }
                let database = directory.appendingPathComponent("conclave.sqlite")
                if let template = try await Self.ingestedStore(environment, cache: &ingested) {
                    try FileManager.default.copyItem(at: template, to: database)
                }
                environment["CONCLAVE_STORAGE__PATH"] = database.path
                let clock = ContinuousClock()
                let started = clock.now
                let (server, url) = try await Self.startServer(environment)
                let ready = clock.now
                let result = try await body(configuration, repetition, url, environment)
                let measured = clock.now
                server.send(SIGTERM)
                _ = try? await server.waitForExit(timeout: .seconds(90))
                print("   server start \(Self.seconds(ready - started)), run \(Self.seconds(measured - ready)), "
                      + "stop \(Self.seconds(clock.now - measured))")
                results.append(result)
            }
        }
        return results
    }

    /// A duration for the progress lines, in seconds with one decimal.
    static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", Double(duration.inMilliseconds) / 1000)
    }

    /// `conclave serve` with `environment` (its `CONCLAVE_SERVER__PORT` 0: a free port), once it
    /// answers `/readyz`; its base URL.
    static func startServer(_ environment: [String: String]) async throws -> (ServeProcess, String) {
        let server = try ServeProcess(arguments: ["serve"], environment: environment)
        let port = try await server.waitForPort(timeout: .seconds(300))
        let url = "http://127.0.0.1:\(port)"
        try await Bench.Inference.waitForStatus200(url + "/readyz", timeout: .seconds(300))
        return (server, url)
    }

    /// A store that holds only what `knowledge.ingest_on_start` puts there (documents, chunks,
    /// embeddings), made once per distinct knowledge settings by a server that starts and stops,
    /// and copied for each measured server: its own start then finds every file ingested (content
    /// hashes match) and every chunk embedded, and is ready in under a second instead of ten. Nil
    /// when nothing is ingested at start or the store is not SQLite.
    static func ingestedStore(_ environment: [String: String], cache: inout [String: URL]) async throws -> URL? {
        guard let paths = environment["CONCLAVE_KNOWLEDGE__INGEST_ON_START"], !paths.isEmpty, paths != "[]",
              (environment["CONCLAVE_STORAGE__DRIVER"] ?? "sqlite") == "sqlite" else { return nil }
        let key = environment.filter { $0.key.hasPrefix("CONCLAVE_KNOWLEDGE__") }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        if let template = cache[key] { return template }
        let directory = try TestRuntime.temporaryDirectory()
        let template = directory.appendingPathComponent("ingested.sqlite")
        var ingesting = environment
        ingesting["CONCLAVE_STORAGE__PATH"] = template.path
        let (server, _) = try await startServer(ingesting)
        server.send(SIGTERM)
        guard try await server.waitForExit(timeout: .seconds(90)) == 0 else {
            throw ValidationFailure("the server that ingests the study's documents did not stop cleanly:\n\(server.printed.suffix(800))")
        }
        cache[key] = template
        return template
    }

    private func run(_ experiment: Experiment) async throws -> [Run] {
        let questions = try EvalTask.load(path: experiment.questions).compactMap { $0.turns.first?.user }
        return try await eachServer(experiment) { configuration, repetition, url, environment in
            let bearer = try Self.token(user: experiment.user, environment: environment)
            var plan = experiment.load
            plan.model = configuration.model
            plan.levels = configuration.levels ?? experiment.load.levels
            // One request first, not measured: the model's first prompt and the caches warm up.
            var warmUp = plan
            warmUp.mode = .closed
            warmUp.levels = [1]
            warmUp.durationSeconds = 0.001
            warmUp.killReplicaEverySeconds = 0
            _ = await warmUp.run(url: url, bearer: bearer, questions: questions, showProgress: false)
            let levels = await plan.run(url: url, bearer: bearer, questions: questions)
            return Run(configuration: configuration.name, repetition: repetition, levels: levels)
        }
    }

    struct QualityRun: Codable {
        var configuration: String
        var repetition: Int
        var summary: EvalSummary
        var outcomes: [EvalRunner.Outcome]
    }

    /// Runs a quality experiment: for each repetition and configuration, a fresh server (with the
    /// Meridian API fixture behind its API connector) and `conclave eval` over the sample, each
    /// task as its own user.
    private func runQuality(_ experiment: Experiment) async throws -> [QualityRun] {
        let tasks = experiment.sample(try EvalTask.load(path: experiment.questions))
        let api = try await MeridianAPIServer.start()
        defer { api.stop() }
        let fixture = ["CONCLAVE_KNOWLEDGE__API_BASE_URL": api.baseURL, "MERIDIAN_API_TOKEN": MeridianAPIServer.token]
        return try await eachServer(experiment, environment: fixture, detail: ": \(tasks.count) tasks") {
            configuration, repetition, url, environment in
            let cache = TokenCache()
            let runner = EvalRunner(baseURL: url, seed: 42) { user in
                if let token = cache.get(user) { return token }
                let token = try Self.token(user: user, environment: environment)
                if let token { cache.set(user, token) }
                return token
            }
            var workflow = configuration.model
            if workflow.hasPrefix("conclave/") { workflow.removeFirst("conclave/".count) }
            let interactive = Terminal.stderrIsTerminal
            let label = configuration.name
            let outcomes = await runner.run(tasks, workflow: workflow, concurrency: experiment.concurrency) { done, total in
                ProgressBar.draw(done: done, total: total, label: label, interactive: interactive)
            }
            ProgressBar.finish(interactive: interactive)
            let summary = EvalSummary(workflow: configuration.name, outcomes: outcomes,
                                      groupSimilarity: await runner.groupSimilarities(outcomes, tasks: tasks))
            print(String(format: "   accuracy %.1f%%, %d request errors", summary.accuracy.value * 100, summary.errors))
            return QualityRun(configuration: configuration.name, repetition: repetition, summary: summary, outcomes: outcomes)
        }
    }

    /// Writes a quality experiment: `<name>.json` (every repetition's summary and answers) and
    /// `<name>.md` (per configuration, the mean over repetitions with the range).
    private func writeQuality(_ experiment: Experiment, _ runs: [QualityRun]) throws {
        let base = try writeRaw(experiment, runs: runs, sample: .init(taskFile: experiment.questions, tasksPerType: experiment.tasksPerType))
        let tasks = runs.first?.summary.tasks ?? 0
        var markdown = "# \(experiment.title)\n\n"
        markdown += "\(runs.count / max(1, experiment.configurations.count)) repetitions over \(tasks) tasks of `\(experiment.questions)` "
        markdown += experiment.tasksPerType == 1 ? "(the first task of each type), "
            : experiment.tasksPerType > 1 ? "(the first \(experiment.tasksPerType) tasks of each type), " : "(all), "
        markdown += "temperature 0, seed 42, \(ProcessInfo.processInfo.activeProcessorCount) cores. "
        markdown += "Mean over repetitions, with the range (min–max) in brackets; metrics as in docs/evaluation.md.\n\n"
        markdown += "| configuration | task accuracy | context retention | consistency (groups) | consistency (per task) | answer similarity | compliance | p50 latency (s) |\n"
        markdown += "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        for configuration in experiment.configurations {
            let mine = runs.filter { $0.configuration == configuration.name }.map(\.summary)
            guard !mine.isEmpty else { continue }
            func cell(_ values: [Double], _ format: String, scale: Double = 100) -> String {
                Self.meanAndRange(values.map { $0 * scale }, format)
            }
            let consistencyTasks = mine.map { $0.accuracyByType["consistency"]?.value ?? 0 }
            markdown += "| \(configuration.name) | \(cell(mine.map(\.accuracy.value), "%.1f%%")) | "
            markdown += "\(cell(mine.map(\.contextRetention.value), "%.2f", scale: 1)) | \(cell(mine.map(\.consistency.value), "%.1f%%")) | "
            markdown += "\(cell(consistencyTasks, "%.1f%%")) | "
            let similarity = mine.filter { $0.consistencySimilarity.count > 0 }.map(\.consistencySimilarity.value)
            markdown += "\(similarity.isEmpty ? "–" : cell(similarity, "%.2f", scale: 1)) | "
            markdown += "\(cell(mine.map(\.compliance.value), "%.1f%%")) | \(cell(mine.map(\.latencyP50Seconds), "%.2f", scale: 1)) |\n"
        }
        try markdown.write(to: base.appendingPathExtension("md"), atomically: true, encoding: .utf8)
        print(markdown)
    }

    /// The JSON of a report.
    struct Raw<Runs: Encodable>: Encodable {
        var name: String
        var title: String
        var load: LoadPlan?
        var sample: Sample?
        var configurations: [ConfigurationEntry]
        var runs: Runs
        var cores: Int
        var date: String
    }

    /// A configuration as the report records it: what the analysis needs to group and compare runs.
    struct ConfigurationEntry: Encodable {
        var name: String
        var model: String
        var levels: [Double]?
        var varies: Experiment.Variation?
    }

    /// What a quality experiment scored.
    struct Sample: Encodable {
        var taskFile: String
        var tasksPerType: Int
    }

    /// Writes `<name>.json`: the experiment, its load or sample, every run, and when and where it
    /// ran. Returns the report's base path (without extension).
    func writeRaw<Runs: Encodable>(_ experiment: Experiment, runs: Runs, load: LoadPlan? = nil, sample: Sample? = nil) throws -> URL {
        let base = URL(fileURLWithPath: output).appendingPathComponent(experiment.name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let configurations = experiment.configurations.map {
            ConfigurationEntry(name: $0.name, model: $0.model, levels: $0.levels, varies: $0.varies)
        }
        try encoder.encode(Raw(name: experiment.name, title: experiment.title, load: load, sample: sample,
                               configurations: configurations, runs: runs,
                               cores: ProcessInfo.processInfo.activeProcessorCount,
                               date: ISO8601DateFormatter().string(from: Date())))
            .write(to: base.appendingPathExtension("json"))
        return base
    }

    /// `mean [min–max]` of `values`, each formatted with `format`.
    static func meanAndRange(_ values: [Double], _ format: String) -> String {
        let mean = values.reduce(0, +) / Double(max(1, values.count))
        return String(format: format, mean) + " [" + String(format: format, values.min() ?? 0) + "–"
            + String(format: format, values.max() ?? 0) + "]"
    }

    static func token(user: String?, environment: [String: String]) throws -> String? {
        guard let user else { return nil }
        return try Bench.Inference.capture([ServeProcess.binary, "token", "--user", user], environment: environment)
    }

    private func write(_ experiment: Experiment, _ runs: [Run]) throws {
        let base = try writeRaw(experiment, runs: runs, load: experiment.load)
        let unit = experiment.load.mode == .closed ? "users" : "req/s"
        var markdown = "# \(experiment.title)\n\n"
        markdown += "\(runs.count / max(1, experiment.configurations.count)) repetitions of \(Int(experiment.load.durationSeconds)) s per level, "
        markdown += "\(experiment.load.mode == .closed ? "closed-loop users" : "open-loop Poisson arrivals"), "
        markdown += "\(experiment.load.maxTokens) tokens at most per answer, \(ProcessInfo.processInfo.activeProcessorCount) cores. "
        markdown += "Mean over repetitions, with the range (min–max) in brackets.\n\n"
        markdown += "| configuration | \(unit) | avg latency (ms) | p95 latency (ms) | throughput (req/s) | availability |\n"
        markdown += "| --- | --- | --- | --- | --- | --- |\n"
        var csv = "configuration,\(unit == "users" ? "users" : "rate"),repetition,mean_ms,p95_ms,throughput,availability\n"
        for configuration in experiment.configurations {
            let mine = runs.filter { $0.configuration == configuration.name }
            for level in experiment.allLevels {
                let points = mine.compactMap { run in run.levels.first { $0.level == level } }
                guard !points.isEmpty else { continue }
                func cell(_ values: [Double], _ format: String) -> String { Self.meanAndRange(values, format) }
                markdown += "| \(configuration.name) | \(level.formatted()) | \(cell(points.map(\.meanMilliseconds), "%.0f")) | "
                markdown += "\(cell(points.map(\.p95Milliseconds), "%.0f")) | \(cell(points.map(\.throughput), "%.2f")) | "
                markdown += "\(cell(points.map { $0.availability * 100 }, "%.1f"))% |\n"
                for (index, point) in points.enumerated() {
                    csv += "\(configuration.name),\(level),\(index + 1),\(point.meanMilliseconds),\(point.p95Milliseconds),"
                    csv += "\(point.throughput),\(point.availability)\n"
                }
            }
        }
        try markdown.write(to: base.appendingPathExtension("md"), atomically: true, encoding: .utf8)
        try csv.write(to: URL(fileURLWithPath: base.path + "-latency.csv"), atomically: true, encoding: .utf8)
        print(markdown)
    }
}
