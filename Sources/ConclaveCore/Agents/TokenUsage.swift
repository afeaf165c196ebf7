/// Prompt and completion token counts of one or more model calls.
public struct TokenUsage: Sendable, Codable, Hashable {
    /// Tokens in the prompt.
    public var promptTokens: Int
    /// Tokens generated.
    public var completionTokens: Int

    /// Creates a usage record.
    public init(promptTokens: Int = 0, completionTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    /// Sum of prompt and completion tokens.
    public var totalTokens: Int { promptTokens + completionTokens }

    /// Adds another usage record to this one.
    public static func += (lhs: inout TokenUsage, rhs: TokenUsage) {
        lhs.promptTokens += rhs.promptTokens
        lhs.completionTokens += rhs.completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }
}
