import ArgumentParser

/// The `conclave` command-line tool.
@main
struct Conclave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conclave",
        abstract: "Multi-agent conversational AI platform: an OpenAI-compatible API over a team of agents.",
        subcommands: [Serve.self, Worker.self, Cluster.self, Ingest.self, Chat.self, Eval.self, ConfigCommand.self, Token.self, Reload.self, Audit.self, Bench.self, Query.self, Study.self])
}
