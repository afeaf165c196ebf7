import Foundation

/// Writes an evaluation's JSON (every answer and verdict), CSV and Markdown report.
public enum EvalReport {
    /// Writes `report.json`, `tasks.csv` and `report.md` into `directory`.
    public static func write(summaries: [EvalSummary], outcomes: [EvalRunner.Outcome], taskFile: String,
                             to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        struct Document: Encodable {
            var taskFile: String
            var summaries: [EvalSummary]
            var outcomes: [EvalRunner.Outcome]
            enum CodingKeys: String, CodingKey { case taskFile = "task_file", summaries, outcomes }
        }
        try encoder.encode(Document(taskFile: taskFile, summaries: summaries, outcomes: outcomes))
            .write(to: URL(fileURLWithPath: directory).appendingPathComponent("report.json"))
        var csv = "workflow,task_id,type,passed,refused,latency_s,reasons\n"
        for o in outcomes {
            let reasons = o.verdict.reasons.joined(separator: "; ").replacingOccurrences(of: "\"", with: "\"\"")
            csv += "\(o.workflow),\(o.taskID),\(o.type),\(o.verdict.passed),\(o.refused),"
                + String(format: "%.2f", o.latencySeconds.reduce(0, +)) + ",\"\(reasons)\"\n"
        }
        try csv.write(toFile: (directory as NSString).appendingPathComponent("tasks.csv"), atomically: true, encoding: .utf8)
        try markdown(summaries: summaries, taskFile: taskFile, promptsVersions: promptsVersions(outcomes))
            .write(toFile: (directory as NSString).appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
    }

    /// The distinct agents' prompts versions the server reported, sorted.
    public static func promptsVersions(_ outcomes: [EvalRunner.Outcome]) -> [String] {
        Array(Set(outcomes.compactMap(\.promptsVersion))).sorted()
    }

    /// The Markdown report: one column per workflow.
    public static func markdown(summaries: [EvalSummary], taskFile: String, promptsVersions: [String] = []) -> String {
        func pct(_ r: EvalSummary.Rate) -> String {
            guard r.count > 0 else { return "n/a" }
            var s = String(format: "%.1f%%", r.value * 100)
            if let low = r.low, let high = r.high { s += String(format: " [%.0f–%.0f]", low * 100, high * 100) }
            return s + " (n=\(r.count))"
        }
        func ratio(_ r: EvalSummary.Rate) -> String {
            r.count > 0 ? String(format: "%.2f", r.value) + " (n=\(r.count))" : "n/a"
        }
        var lines = ["# Evaluation report", "", "Task file: `\(taskFile)`. Intervals are bootstrap 95% (1,000 resamples, seed 42)."]
        if !promptsVersions.isEmpty {
            lines.append("Agents' prompts version: " + promptsVersions.map { "`\($0)`" }.joined(separator: ", ") + ".")
        }
        lines.append("")
        lines.append("| metric | " + summaries.map { "`conclave/\($0.workflow)`" }.joined(separator: " | ") + " |")
        lines.append("|---|" + summaries.map { _ in "---" }.joined(separator: "|") + "|")
        func row(_ name: String, _ value: (EvalSummary) -> String) {
            lines.append("| \(name) | " + summaries.map(value).joined(separator: " | ") + " |")
        }
        row("task accuracy") { pct($0.accuracy) }
        row("context retention (multi_turn, per turn)") { ratio($0.contextRetention) }
        row("response consistency (groups all passing)") { pct($0.consistency) }
        row("response consistency (mean answer similarity, MiniLM)") { $0.consistencySimilarity.count == 0 ? "–" : ratio($0.consistencySimilarity) }
        row("compliance (access_control, pii, injection)") { pct($0.compliance) }
        row("refusal precision") { pct($0.refusalPrecision) }
        row("refusal recall") { pct($0.refusalRecall) }
        row("unanswerable → not found") { pct($0.unanswerableNotFound) }
        row("answerable wrongly declined") { pct($0.answerableWronglyDeclined) }
        row("citation recall (documents)") { ratio($0.citationRecall) }
        row("latency per turn mean / p50 / p95 (s)") { String(format: "%.2f / %.2f / %.2f", $0.latencyMeanSeconds, $0.latencyP50Seconds, $0.latencyP95Seconds) }
        row("request errors") { "\($0.errors)" }
        lines += ["", "## Accuracy by task type", ""]
        let types = Array(Set(summaries.flatMap { $0.accuracyByType.keys })).sorted()
        lines.append("| type | " + summaries.map { "`\($0.workflow)`" }.joined(separator: " | ") + " |")
        lines.append("|---|" + summaries.map { _ in "---" }.joined(separator: "|") + "|")
        for type in types {
            lines.append("| \(type) | " + summaries.map { s in s.accuracyByType[type].map(pct) ?? "n/a" }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
