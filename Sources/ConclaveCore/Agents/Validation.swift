/// A fact the validator accepted: relevant, permitted, and of the expected form.
public struct ValidatedFact: Sendable, Codable, Hashable {
    /// The fact as a sentence taken from the evidence.
    public var text: String
    /// Where it came from.
    public var source: SourceRef
    /// The chunk it was taken from.
    public var chunkID: String
    /// True for a record from a connector (a governed query's result, an API response): it is
    /// stated as it is rather than rephrased by a model.
    public var isRecord: Bool

    /// Creates a validated fact.
    public init(text: String, source: SourceRef, chunkID: String, isRecord: Bool = false) {
        self.text = text
        self.source = source
        self.chunkID = chunkID
        self.isRecord = isRecord
    }
}

extension Evidence {
    /// True when the evidence is a connector's record (`db:` or `api:` source) rather than a document passage.
    public var isRecord: Bool { source.id.hasPrefix("db:") || source.id.hasPrefix("api:") }
}

/// The validator's verdict over the evidence and the reasoning.
public struct Validation: Sendable, Codable, Hashable {
    /// True when the facts support an answer.
    public var answerable: Bool
    /// Accepted facts, most relevant first.
    public var facts: [ValidatedFact]
    /// Why the verdict is what it is (for the trace).
    public var rationale: String
    /// True when the verdict came from the fallback rather than the model.
    public var isFallback: Bool
    /// Documents the principal may not read that would answer the question (set only when the
    /// answer is therefore refused as restricted).
    public var withheld: [WithheldSource]
    /// For a yes/no question, the word its claim turns on ("waived" in "have the invoices been
    /// waived?") when no accepted fact states it; nil otherwise. The answer then says so first.
    public var unsupportedClaim: String?

    /// Creates a validation result.
    public init(answerable: Bool, facts: [ValidatedFact], rationale: String, isFallback: Bool = false,
                withheld: [WithheldSource] = []) {
        self.answerable = answerable
        self.facts = facts
        self.rationale = rationale
        self.isFallback = isFallback
        self.withheld = withheld
    }

    /// True when the question is refused because the answer lies in documents the principal may
    /// not read.
    public var isRestricted: Bool { !answerable && !withheld.isEmpty }
}
