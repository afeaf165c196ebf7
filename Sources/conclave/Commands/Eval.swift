import ArgumentParser
import ConclaveCore
import ConclaveGovernance
import Synchronization
import ConclaveEval
import Foundation

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a task file (Meridian format) against a server and score it per workflow.",
        discussion: """
            Each task is one conversation, sent turn by turn as the task's user, for each workflow given. \
            Scoring follows examples/meridian/README.md: normalised case-insensitive matching, every \
            must_include group, no must_not_include string, refusal markers. Writes report.json (every \
            answer and verdict), tasks.csv and report.md into --output.
            """)

    @Option(name: .long, help: "Base URL of the server.")
    var url: String = "http://127.0.0.1:8080"

    @Option(name: .long, help: "Task file (JSONL).")
    var tasks: String = "examples/meridian/eval/dev.jsonl"

    @Option(name: .long, parsing: .upToNextOption, help: "Workflows to evaluate.")
    var workflow: [String] = ["single", "full"]

    @Option(name: .long, help: "Tasks run at the same time.")
    var concurrency: Int = 2

    @Option(name: .long, help: "Only the first N tasks (0: all).")
    var limit: Int = 0

    @Option(name: .long, help: "Only tasks of these types.", transform: { $0.split(separator: ",").map(String.init) })
    var types: [String] = []

    @Option(name: .long, help: "Directory for the reports.")
    var output: String = "var/eval"

    @Option(name: .long, help: "Configuration whose auth section signs a token for each task's user (auth.mode none: no token).")
    var config: String?

    /// Signs (and caches) one development token per task user with the configured HS256 key.
    static func tokens(config: String?) async throws -> @Sendable (String) async throws -> String? {
        let configuration = try loadConfiguration(path: config)
        guard configuration.auth.mode == .jwt else { return { _ in nil } }
        do {
            let directory = try UserDirectory(path: configuration.auth.usersFile)
            let issuer = try TokenIssuer(authenticator: try await Authenticator(configuration: configuration.auth),
                                         configuration: configuration.auth)
            let cache = TokenCache()
            return { user in
                if let token = cache.get(user) { return token }
                guard let entry = directory.user(user) else { throw EvalError("task user '\(user)' is not in \(configuration.auth.usersFile)") }
                let token = try await issuer.token(for: entry.principal, name: entry.name, lifetime: 24 * 3600)
                cache.set(user, token)
                return token
            }
        } catch let error as ConfigurationError {
            throw ValidationFailure(error.description)
        }
    }

    func run() async throws {
        var list: [EvalTask]
        do {
            list = try EvalTask.load(path: tasks)
        } catch let error as EvalError {
            throw ValidationFailure(error.description)
        }
        if !types.isEmpty { list = list.filter { types.contains($0.type) } }
        if limit > 0 { list = Array(list.prefix(limit)) }
        let runner = EvalRunner(baseURL: url, credential: try await Self.tokens(config: config))
        do {
            try await runner.checkReachable()
        } catch let error as EvalError {
            throw ValidationFailure(error.description)
        }
        var summaries: [EvalSummary] = []
        var all: [EvalRunner.Outcome] = []
        for name in workflow {
            let interactive = Terminal.stderrIsTerminal
            let outcomes = await runner.run(list, workflow: name, concurrency: concurrency) { done, total in
                ProgressBar.draw(done: done, total: total, label: name, interactive: interactive)
            }
            ProgressBar.finish(interactive: interactive)
            let summary = EvalSummary(workflow: name, outcomes: outcomes,
                                      groupSimilarity: await runner.groupSimilarities(outcomes, tasks: list))
            summaries.append(summary)
            all += outcomes
            Terminal.write(String(format: "%@: accuracy %.1f%% over %d tasks (%d request errors)\n", name,
                                  summary.accuracy.value * 100, summary.tasks, summary.errors))
        }
        try EvalReport.write(summaries: summaries, outcomes: all, taskFile: tasks, to: output)
        Terminal.write(EvalReport.markdown(summaries: summaries, taskFile: tasks, promptsVersions: EvalReport.promptsVersions(all)))
        Terminal.write("wrote \(output)/report.json, tasks.csv, report.md\n")
    }
}

/// Tokens already issued, per user.
final class TokenCache: Sendable {
    private let tokens = Mutex<[String: String]>([:])
    func get(_ user: String) -> String? { tokens.withLock { $0[user] } }
    func set(_ user: String, _ token: String) { tokens.withLock { $0[user] = token } }
}
