import ArgumentParser
import ConclaveCore
import ConclaveKnowledge
import ConclaveStorage
import Foundation

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest documents (Markdown, HTML, text, CSV, PDF) into the store, skipping unchanged files.",
        discussion: """
            Re-ingesting is incremental: a file whose content hash is unchanged is skipped, a changed one replaces \
            its chunks. --sync also deletes the stored documents whose files under the given directories are gone; \
            --delete removes documents by id. PDFs are read with pdftotext (poppler-utils).
            """)

    @Argument(help: "Files or directories to ingest.")
    var paths: [String] = []

    @Option(name: .long, parsing: .upToNextOption, help: "Delete these document ids from the store.")
    var delete: [String] = []

    @Flag(name: .long, help: "Delete stored documents whose files under the given directories no longer exist.")
    var sync = false

    @Option(name: .long, help: "YAML configuration file (for storage and chunking).")
    var config: String?

    func run() async throws {
        let configuration = try loadConfiguration(path: config)
        let store: any ConclaveStore
        do {
            store = try await StoreFactory.open(configuration.storage)
        } catch let error as ConclaveError {
            throw ValidationFailure(error.description)
        }
        let ingestor = Ingestor(store: store, chunker: Chunker(maxTokens: configuration.knowledge.chunkTokens,
                                                               overlapTokens: configuration.knowledge.chunkOverlapTokens))
        if !delete.isEmpty {
            let removed = try await ingestor.delete(ids: delete)
            print("deleted \(removed.count) document(s)" + (removed.isEmpty ? "" : ": " + removed.joined(separator: ", ")))
            for id in delete where !removed.contains(id) { print("  not stored: \(id)") }
            if paths.isEmpty { return }
        }
        guard !paths.isEmpty else { throw ValidationFailure("give files or directories to ingest, or --delete ID") }
        if sync {
            let removed = try await ingestor.prune(under: paths)
            if !removed.isEmpty { print("deleted \(removed.count) document(s) whose files are gone: " + removed.joined(separator: ", ")) }
        }
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
