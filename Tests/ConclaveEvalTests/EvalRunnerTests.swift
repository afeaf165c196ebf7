import ConclaveEval
import ConclaveServer
import ConclaveTesting
import Foundation
import Testing

/// The runner against a real HTTP server (scripted test model behind it).
@Suite struct EvalRunnerTests {
    @Test func tasksRunAsConversationsOfTheirUsers() async throws {
        let all = try EvalTask.load(path: TestRuntime.repositoryRoot.appendingPathComponent("examples/meridian/eval/dev.jsonl").path)
        #expect(all.count == 145)
        let multiTurn = try #require(all.first { $0.type == "multi_turn" && $0.turns.count >= 2 })
        let fact = try #require(all.first { $0.type == "fact" })
        let runtime = try await TestRuntime.make(model: ScriptedChatModel(), documents: [TestRuntime.meridianDocs])
        try await RunningServer.with(runtime) { url in
            let outcomes = await EvalRunner(baseURL: url).run([fact, multiTurn], workflow: "full", concurrency: 2)
            #expect(outcomes.map(\.taskID) == [fact.id, multiTurn.id])
            #expect(outcomes.allSatisfy { $0.error == nil })
            let conversation = try #require(outcomes.last)
            #expect(conversation.answers.count == multiTurn.turns.count)
            #expect(conversation.latencySeconds.count == multiTurn.turns.count)
            #expect(conversation.answers.allSatisfy { !$0.isEmpty })
            // The verdict is the dataset's scoring of the final answer.
            let expected = Scorer.score(conversation.answers.last ?? "", expect: multiTurn.expect)
            #expect(conversation.verdict == expected)
        }
    }

    @Test func unreachableServerIsAnErrorNotACrash() async throws {
        let task = try #require(try EvalTask.load(path: TestRuntime.repositoryRoot.appendingPathComponent("examples/meridian/eval/dev.jsonl").path).first)
        let runner = EvalRunner(baseURL: "http://127.0.0.1:1", requestTimeout: .seconds(2))
        await #expect(throws: EvalError.self) { try await runner.checkReachable() }
        let outcome = await runner.run(task, workflow: "single")
        #expect(outcome.error != nil)
        #expect(!outcome.verdict.passed)
    }
}
