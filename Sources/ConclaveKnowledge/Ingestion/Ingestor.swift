import ConclaveCore
import ConclaveStorage
import Crypto
import Foundation
import Logging

/// Reads documents from files and directories, splits them into chunks and stores them,
/// skipping files whose content has not changed since the last ingest.
public struct Ingestor: Sendable {
    /// What happened to one file.
    public enum Outcome: String, Sendable, Hashable {
        case added, updated, unchanged, skipped, failed
    }

    /// Progress after each file.
    public struct Progress: Sendable, Hashable {
        /// Files handled so far.
        public var done: Int
        /// Files in total.
        public var total: Int
        /// The file just handled.
        public var path: String
        /// What happened to it.
        public var outcome: Outcome
        /// Why, when it failed or was skipped.
        public var message: String?
    }

    /// Totals of an ingest run.
    public struct Summary: Sendable, Hashable, CustomStringConvertible {
        /// Counts per outcome.
        public var counts: [Outcome: Int] = [:]
        /// Chunks written.
        public var chunksWritten = 0
        /// Failures with their reasons.
        public var failures: [(path: String, message: String)] = []

        public static func == (lhs: Summary, rhs: Summary) -> Bool {
            lhs.counts == rhs.counts && lhs.chunksWritten == rhs.chunksWritten && lhs.failures.map(\.path) == rhs.failures.map(\.path)
        }
        public func hash(into hasher: inout Hasher) { hasher.combine(counts); hasher.combine(chunksWritten) }

        public var description: String {
            let order: [Outcome] = [.added, .updated, .unchanged, .skipped, .failed]
            return order.map { "\(counts[$0, default: 0]) \($0.rawValue)" }.joined(separator: ", ") + "; \(chunksWritten) chunks written"
        }
    }

    private let store: any DocumentStore
    private let chunker: Chunker
    private let logger: Logger

    /// Creates an ingestor writing to `store`.
    public init(store: any DocumentStore, chunker: Chunker = Chunker(), logger: Logger = Logger(label: "conclave.ingest")) {
        self.store = store
        self.chunker = chunker
        self.logger = logger
    }

    /// The ingestible files at `paths` (directories are walked recursively), sorted.
    public static func files(at paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ConclaveError(.ingestion, "No such file or directory: '\(path)'.")
            }
            if isDirectory.boolValue {
                let enumerator = FileManager.default.enumerator(atPath: path)
                while let relative = enumerator?.nextObject() as? String {
                    let full = (path as NSString).appendingPathComponent(relative)
                    if DocumentFormat(path: full) != nil, !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                        files.append(full)
                    }
                }
            } else {
                files.append(path)
            }
        }
        return files.sorted()
    }

    /// Ingests the files at `paths`, reporting progress after each file.
    @discardableResult
    public func ingest(paths: [String], progress: @Sendable (Progress) -> Void = { _ in }) async throws -> Summary {
        let files = try Self.files(at: paths)
        var summary = Summary()
        for (index, path) in files.enumerated() {
            var message: String?
            let outcome: Outcome
            do {
                let (result, chunks) = try await ingest(file: path)
                outcome = result
                summary.chunksWritten += chunks
            } catch {
                outcome = DocumentFormat(path: path) == nil ? .skipped : .failed
                message = (error as? ConclaveError)?.message ?? "\(error)"
                summary.failures.append((path, message ?? ""))
                logger.warning("ingest failed", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            summary.counts[outcome, default: 0] += 1
            progress(Progress(done: index + 1, total: files.count, path: path, outcome: outcome, message: message))
        }
        return summary
    }

    /// Deletes the stored documents with these ids (their chunks go with them); returns the ids
    /// that were stored.
    @discardableResult
    public func delete(ids: [String]) async throws -> [String] {
        let stored = Set(try await store.documents().map(\.id))
        let present = ids.filter(stored.contains)
        for id in present { try await store.deleteDocument(id: id) }
        return present
    }

    /// Deletes the stored documents that came from files under `directories` that no longer exist
    /// (a directory ingested with `--sync` mirrors its files); returns their ids.
    @discardableResult
    public func prune(under directories: [String]) async throws -> [String] {
        let roots = directories.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        var removed: [String] = []
        for document in try await store.documents() {
            let path = document.path
            guard !path.isEmpty else { continue }
            let full = URL(fileURLWithPath: path).standardizedFileURL.path
            guard roots.contains(where: { full.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }),
                  !FileManager.default.fileExists(atPath: path) else { continue }
            try await store.deleteDocument(id: document.id)
            removed.append(document.id)
        }
        return removed
    }

    /// Ingests one file; returns what happened and how many chunks were written.
    public func ingest(file path: String) async throws -> (Outcome, Int) {
        guard let format = DocumentFormat(path: path) else {
            throw ConclaveError(.ingestion, "Unsupported file type: '\(path)'.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConclaveError(.ingestion, "Cannot read '\(path)'.")
        }
        let text = format == .pdf ? try PDFText.extract(path) : String(decoding: data, as: UTF8.self)
        let hash = SHA256.hash(data: data).hexEncoded
        let frontMatter = try FrontMatter.parse(text)
        let fileName = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let id = frontMatter.fields["id"].flatMap { $0.isEmpty ? nil : $0 } ?? fileName
        let previous = try await store.contentHash(ofDocument: id)
        if previous == hash { return (.unchanged, 0) }

        let normalized = format.normalize(frontMatter.body)
        let title = frontMatter.fields["title"] ?? Self.firstHeading(normalized) ?? fileName
        let pieces = chunker.chunk(normalized, title: title)
        let chunks = pieces.enumerated().map { index, piece in
            ChunkRecord(id: "\(id)#\(index)", documentID: id, position: index, section: piece.section, text: piece.text)
        }
        let record = DocumentRecord(
            id: id, title: title, department: frontMatter.fields["department"],
            classification: frontMatter.fields["classification"], effectiveDate: frontMatter.fields["effective_date"],
            supersedes: frontMatter.fields["supersedes"].flatMap { $0.isEmpty ? nil : $0 }, path: path,
            contentHash: hash, metadata: frontMatter.fields)
        try await store.replaceDocument(record, chunks: chunks)
        return (previous == nil ? .added : .updated, chunks.count)
    }

    private static func firstHeading(_ text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix("# ") }.map { $0.dropFirst(2).trimmingCharacters(in: .whitespaces) }
    }
}
