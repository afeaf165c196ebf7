import ArgumentParser
import ConclaveCore
import ConclaveKnowledge
import ConclaveStorage
import Foundation

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest documents (Markdown, HTML, text, CSV) into the store, skipping unchanged files.")

    @Argument(help: "Files or directories to ingest.")
    var paths: [String]

    @Option(name: .long, help: "YAML configuration file (for storage.path and chunking).")
    var config: String?

    func run() async throws {
        let configuration = try loadConfiguration(path: config)
        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: configuration.storage.path)
        } catch let error as ConclaveError {
            throw ValidationFailure(error.description)
        }
        let ingestor = Ingestor(store: store, chunker: Chunker(maxTokens: configuration.knowledge.chunkTokens,
                                                               overlapTokens: configuration.knowledge.chunkOverlapTokens))
        let interactive = Terminal.stderrIsTerminal
        let summary: Ingestor.Summary
        do {
            summary = try await ingestor.ingest(paths: paths) { progress in
                ProgressBar.draw(done: progress.done, total: progress.total,
                                 label: "\(progress.outcome.rawValue) \(URL(fileURLWithPath: progress.path).lastPathComponent)",
                                 interactive: interactive)
            }
        } catch let error as ConclaveError {
            throw ValidationFailure(error.message)
        }
        ProgressBar.finish(interactive: interactive)
        print("ingested into \(configuration.storage.path): \(summary)")
        for failure in summary.failures {
            print("  failed: \(failure.path): \(failure.message)")
        }
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}

/// A one-line terminal progress bar on stderr.
enum ProgressBar {
    static func draw(done: Int, total: Int, label: String, interactive: Bool) {
        let width = 30
        let filled = total == 0 ? width : done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = "[\(bar)] \(done)/\(total) \(label.prefix(50))"
        if interactive {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else if done == total || done % 10 == 0 {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    static func finish(interactive: Bool) {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
