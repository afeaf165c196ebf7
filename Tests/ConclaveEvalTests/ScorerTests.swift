import ConclaveEval
import Foundation
import Testing

@Suite struct ScorerTests {
    private func expectation(_ json: String) throws -> EvalTask.Expectation {
        try JSONDecoder().decode(EvalTask.Expectation.self, from: Data(json.utf8))
    }

    @Test func normalisationFollowsTheDatasetRules() {
        #expect(Scorer.normalize("Total:  EUR 1,234,567.89\u{00A0}due") == "total: eur 1234567.89 due")
        #expect(Scorer.normalize("3\u{2009}500 units – don\u{2019}t") == "3500 units - don't")
        // A comma that is not a thousands separator stays.
        #expect(Scorer.normalize("1,23 and 1,2345") == "1,23 and 1,2345")
    }

    @Test func everyGroupMustMatchAndNothingForbiddenMayAppear() throws {
        let expect = try expectation(#"{"must_include":[["EUR 190","€190"],["night"]],"must_not_include":["165"],"refusal":false}"#)
        #expect(Scorer.score("The limit is €190 per night.", expect: expect).passed)
        #expect(!Scorer.score("The limit is €190.", expect: expect).passed)
        let forbidden = Scorer.score("EUR 190 per night (was 165)", expect: expect)
        #expect(!forbidden.passed)
        #expect(forbidden.reasons == ["contains forbidden '165'"])
    }

    @Test func refusalsAreRecognisedByMarkers() throws {
        let expect = try expectation(#"{"must_include":[],"must_not_include":["Nightjar"],"refusal":true}"#)
        #expect(Scorer.score("Sorry, that memo is restricted to the board.", expect: expect).passed)
        #expect(!Scorer.score("The project is called Nightjar, but it is restricted.", expect: expect).passed)
        #expect(!Scorer.score("Here it is.", expect: expect).passed)
    }

    @Test func taskFileErrorsNameTheLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tasks-\(UUID()).jsonl").path
        try "{\"id\":\"a\",\"type\":\"fact\",\"user\":\"u\",\"turns\":[{\"user\":\"q\"}],\"expect\":{}}\n{broken\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: EvalError.self) { try EvalTask.load(path: path) }
        do { _ = try EvalTask.load(path: path) } catch let error as EvalError { #expect(error.description.contains(":2:")) }
    }

    @Test func summaryComputesConsistencyRetentionAndDeclines() {
        func outcome(_ id: String, _ type: String, _ passed: Bool, group: String? = nil, turns: [Bool] = [],
                     answer: String = "x", refusal: Bool = false) -> EvalRunner.Outcome {
            EvalRunner.Outcome(taskID: id, type: type, workflow: "full", group: group, answers: [answer],
                               verdict: Verdict(passed: passed, reasons: []), turnPasses: turns, citedSources: ["A-1"],
                               expectedSources: ["A-1", "db:employees"], refused: Scorer.isRefusal(answer),
                               saidNotAvailable: false, expectedRefusal: refusal, latencySeconds: [1], error: nil)
        }
        let summary = EvalSummary(workflow: "full", outcomes: [
            outcome("c1", "consistency", true, group: "G1"), outcome("c2", "consistency", true, group: "G1"),
            outcome("c3", "consistency", true, group: "G2"), outcome("c4", "consistency", false, group: "G2"),
            outcome("m1", "multi_turn", true, turns: [true, false]),
            outcome("f1", "fact", false, answer: "I could not find this information."),
            outcome("r1", "access_control", true, answer: "That is restricted.", refusal: true),
        ])
        #expect(summary.consistency.value == 0.5)
        #expect(summary.contextRetention.value == 0.5)
        #expect(summary.refusalRecall.value == 1)
        #expect(summary.refusalPrecision.value == 1)
        #expect(summary.answerableWronglyDeclined.count == 6)
        #expect(abs(summary.answerableWronglyDeclined.value - 1.0 / 6.0) < 1e-9)
        #expect(summary.citationRecall.value == 1)
        #expect(summary.accuracyByType["consistency"]?.value == 0.75)
        #expect(summary.consistencySimilarity.count == 0)  // not measured without a server
        let measured = EvalSummary(workflow: "full", outcomes: [
            outcome("c1", "consistency", true, group: "G1"), outcome("c2", "consistency", true, group: "G1"),
            outcome("c3", "consistency", true, group: "G2"), outcome("c4", "consistency", false, group: "G2"),
        ], groupSimilarity: ["G1": 0.9, "G2": 0.5])
        #expect(measured.consistencySimilarity.count == 2)
        #expect(abs(measured.consistencySimilarity.value - 0.7) < 1e-9)
        // The report names the agents' prompts version the server reported.
        var versioned = outcome("f2", "fact", true)
        versioned.promptsVersion = "p-7"
        #expect(EvalReport.promptsVersions([versioned, outcome("f3", "fact", true), versioned]) == ["p-7"])
        #expect(EvalReport.markdown(summaries: [summary], taskFile: "t.jsonl", promptsVersions: ["p-7"])
            .contains("Agents' prompts version: `p-7`."))
    }

    @Test func meanPairwiseCosineAveragesEveryPair() {
        // Identical answers are 1; orthogonal ones 0; three vectors give three pairs.
        #expect(EvalSummary.meanPairwiseCosine([[1, 0], [2, 0]]) == 1)
        #expect(EvalSummary.meanPairwiseCosine([[1, 0], [0, 3]]) == 0)
        let three = EvalSummary.meanPairwiseCosine([[1, 0], [1, 0], [0, 1]]) ?? -1
        #expect(abs(three - 1.0 / 3.0) < 1e-9)
        #expect(EvalSummary.meanPairwiseCosine([[1, 0]]) == nil)
    }
}
