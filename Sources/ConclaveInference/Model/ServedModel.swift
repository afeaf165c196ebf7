/// A model clients can name in `model`: the default model (`inference.served_model_name`) or one
/// of `inference.models`, with its pool and what it offers.
public struct ServedModel: Sendable {
    /// The id clients send.
    public let name: String
    /// `embedded` (local llama-server replicas) or `openai` (remote endpoints).
    public let provider: String
    /// The model name sent upstream.
    public let upstreamModel: String
    /// The replicas; nil for a model passed in by a test.
    public let pool: ReplicaPool?
    /// Chat completions, when the model offers them.
    public let chat: (any ChatModel)?
    /// Embeddings, when the model's endpoints offer them.
    public let embeddings: OpenAICompatibleEmbeddings?

    /// Creates a served model.
    public init(name: String, provider: String, upstreamModel: String, pool: ReplicaPool?, chat: (any ChatModel)?,
                embeddings: OpenAICompatibleEmbeddings? = nil) {
        self.name = name
        self.provider = provider
        self.upstreamModel = upstreamModel
        self.pool = pool
        self.chat = chat
        self.embeddings = embeddings
    }
}
