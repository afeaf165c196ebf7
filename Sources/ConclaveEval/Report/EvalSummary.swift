import Foundation

/// Aggregate scores of one workflow over a task set.
public struct EvalSummary: Sendable, Codable {
    public struct Rate: Sendable, Codable {
        public var value: Double
        public var count: Int
        public var low: Double?
        public var high: Double?
    }

    public var workflow: String
    public var tasks: Int
    public var accuracy: Rate
    public var accuracyByType: [String: Rate]
    public var contextRetention: Rate
    public var consistency: Rate
    /// Mean over consistency groups of the mean pairwise cosine similarity of the group's final
    /// answers (all-MiniLM-L6-v2 vectors from the server's `/v1/embeddings`); count 0 when not measured.
    public var consistencySimilarity: Rate
    public var compliance: Rate
    public var refusalPrecision: Rate
    public var refusalRecall: Rate
    public var unanswerableNotFound: Rate
    public var answerableWronglyDeclined: Rate
    public var citationRecall: Rate
    public var latencyMeanSeconds: Double
    public var latencyP50Seconds: Double
    public var latencyP95Seconds: Double
    public var errors: Int

    enum CodingKeys: String, CodingKey {
        case workflow, tasks, accuracy, errors
        case accuracyByType = "accuracy_by_type", contextRetention = "context_retention", consistency, compliance
        case consistencySimilarity = "consistency_similarity"
        case refusalPrecision = "refusal_precision", refusalRecall = "refusal_recall"
        case unanswerableNotFound = "unanswerable_not_found", answerableWronglyDeclined = "answerable_wrongly_declined"
        case citationRecall = "citation_recall", latencyMeanSeconds = "latency_mean_s", latencyP50Seconds = "latency_p50_s"
        case latencyP95Seconds = "latency_p95_s"
    }

    /// Phrases by which an answer declines (a refusal or "not found").
    static let declineMarkers = ["could not find", "couldn't find", "cannot find", "can't find", "not available",
                                 "no information", "not found"]

    /// Summarises `outcomes` of one workflow, with bootstrap 95% intervals (fixed seed) on rates.
    /// `groupSimilarity` is each consistency group's mean pairwise answer similarity
    /// (``EvalRunner/groupSimilarities(_:tasks:)``), when it was measured.
    public init(workflow: String, outcomes: [EvalRunner.Outcome], groupSimilarity: [String: Double] = [:], seed: UInt64 = 42) {
        var rng = SplitMix64(seed: seed)
        func rate(_ values: [Bool]) -> Rate {
            guard !values.isEmpty else { return Rate(value: 0, count: 0) }
            let mean = Double(values.filter { $0 }.count) / Double(values.count)
            let (low, high) = Self.bootstrap(values.map { $0 ? 1.0 : 0.0 }, rng: &rng)
            return Rate(value: mean, count: values.count, low: low, high: high)
        }
        func meanRate(_ values: [Double]) -> Rate {
            guard !values.isEmpty else { return Rate(value: 0, count: 0) }
            let (low, high) = Self.bootstrap(values, rng: &rng)
            return Rate(value: values.reduce(0, +) / Double(values.count), count: values.count, low: low, high: high)
        }
        self.workflow = workflow
        tasks = outcomes.count
        errors = outcomes.filter { $0.error != nil }.count
        accuracy = rate(outcomes.map(\.verdict.passed))
        var byType: [String: Rate] = [:]
        for type in Set(outcomes.map(\.type)) {
            byType[type] = rate(outcomes.filter { $0.type == type }.map(\.verdict.passed))
        }
        accuracyByType = byType
        let retention = outcomes.filter { $0.type == "multi_turn" && !$0.turnPasses.isEmpty }.map { outcome in
            Double(outcome.turnPasses.filter { $0 }.count) / Double(outcome.turnPasses.count)
        }
        contextRetention = meanRate(retention)
        let groups = Dictionary(grouping: outcomes.filter { $0.type == "consistency" && $0.group != nil }, by: { $0.group ?? "" })
        consistency = rate(groups.values.map { $0.allSatisfy(\.verdict.passed) })
        consistencySimilarity = meanRate(groups.keys.sorted().compactMap { groupSimilarity[$0] })
        compliance = rate(outcomes.filter { ["access_control", "pii", "injection"].contains($0.type) }.map(\.verdict.passed))
        let refused = outcomes.filter(\.refused)
        refusalPrecision = rate(refused.map(\.expectedRefusal))
        refusalRecall = rate(outcomes.filter(\.expectedRefusal).map(\.refused))
        unanswerableNotFound = rate(outcomes.filter { $0.type == "unanswerable" }.map(\.verdict.passed))
        let answerable = outcomes.filter { !$0.expectedRefusal && $0.type != "unanswerable" }
        answerableWronglyDeclined = rate(answerable.map { outcome in
            let n = Scorer.normalize(outcome.answers.last ?? "")
            return outcome.refused || Self.declineMarkers.contains { n.contains($0) }
        })
        let recall = outcomes.compactMap { outcome -> Double? in
            let documents = outcome.expectedSources.filter { !$0.hasPrefix("db:") && !$0.hasPrefix("api:") }
            guard !documents.isEmpty, !outcome.expectedRefusal else { return nil }
            return Double(documents.filter(outcome.citedSources.contains).count) / Double(documents.count)
        }
        citationRecall = meanRate(recall)
        let latencies = outcomes.flatMap(\.latencySeconds).sorted()
        latencyMeanSeconds = latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count)
        latencyP50Seconds = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, latencies.count / 2)]
        latencyP95Seconds = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.95))]
    }

    /// Percentile bootstrap (1,000 resamples) of the mean.
    static func bootstrap(_ values: [Double], rng: inout SplitMix64) -> (Double, Double) {
        guard values.count > 1 else { return (values.first ?? 0, values.first ?? 0) }
        var means: [Double] = []
        means.reserveCapacity(1000)
        for _ in 0..<1000 {
            var sum = 0.0
            for _ in 0..<values.count { sum += values[Int(rng.next() % UInt64(values.count))] }
            means.append(sum / Double(values.count))
        }
        means.sort()
        return (means[25], means[974])
    }

    /// Mean cosine similarity over every pair of `vectors` (nil for fewer than two).
    public static func meanPairwiseCosine(_ vectors: [[Double]]) -> Double? {
        guard vectors.count > 1 else { return nil }
        func cosine(_ a: [Double], _ b: [Double]) -> Double {
            let dot = zip(a, b).map(*).reduce(0, +)
            let norms = (a.map { $0 * $0 }.reduce(0, +) * b.map { $0 * $0 }.reduce(0, +)).squareRoot()
            return norms > 0 ? dot / norms : 0
        }
        var total = 0.0
        var pairs = 0
        for i in vectors.indices {
            for j in vectors.indices where j > i {
                total += cosine(vectors[i], vectors[j])
                pairs += 1
            }
        }
        return total / Double(pairs)
    }
}
