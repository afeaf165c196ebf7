import ConclaveAgents
import ConclaveCore
import ConclaveTesting
import Foundation
import Testing

@testable import ConclaveServer

/// The agents' prompts file (`workflows.prompts_file`): the shipped file, its errors, and a prompt
/// and temperature from it reaching the model.
@Suite struct AgentPromptsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func write(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("prompts-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theShippedFileIsTheBuiltInPrompts() throws {
        let shipped = try ConclaveRuntime.loadPrompts(Self.root.appendingPathComponent("config/prompts/agents.yaml").path)
        #expect(shipped == AgentPrompts.builtIn)
        #expect(try ConclaveRuntime.loadPrompts("") == AgentPrompts.builtIn)
    }

    @Test func aFileOverridesOnlyWhatItSets() throws {
        let path = try write("version: test-2\nvalidator:\n  temperature: 0.3\n  instructions: Pick the facts.\n")
        let prompts = try ConclaveRuntime.loadPrompts(path)
        #expect(prompts.version == "test-2")
        #expect(prompts.validator.instructions == "Pick the facts.")
        #expect(prompts.validator.temperature == 0.3)
        #expect(prompts.validator.maxTokens == AgentPrompts.builtIn.validator.maxTokens)
        #expect(prompts.planner == AgentPrompts.builtIn.planner)
    }

    @Test(arguments: [
        ("version: v\nplanner:\n  temperature: 3\n", "planner.temperature"),
        ("version: v\nreasoner:\n  max_tokens: 0\n", "reasoner.max_tokens"),
        ("version: v\nresponder:\n  instructions: \"  \"\n", "responder.instructions"),
        ("version: v\nplanner:\n  prompt: hi\n", "planner.prompt"),
        ("version: v\nsummariser: {}\n", "summariser"),
    ])
    func badSettingsNameTheirKeyAndFile(yaml: String, key: String) throws {
        let path = try write(yaml)
        let error = #expect(throws: ConfigurationError.self) { try ConclaveRuntime.loadPrompts(path) }
        #expect(error?.key == key)
        #expect(error?.origin == path)
    }

    @Test func aMissingOrMalformedFileIsAConfigurationError() throws {
        let missing = #expect(throws: ConfigurationError.self) { try ConclaveRuntime.loadPrompts("/nonexistent/prompts.yaml") }
        #expect(missing?.key == "workflows.prompts_file")
        let unversioned = #expect(throws: ConfigurationError.self) { try ConclaveRuntime.loadPrompts(try write("planner: {}\n")) }
        #expect(unversioned?.key == "workflows.prompts_file")
    }

    @Test func aRolesPromptAndTemperatureReachTheModel() async throws {
        let model = ScriptedChatModel()
        let prompts = AgentPrompts.builtIn.overridden(by: AgentPrompts(
            version: "t", planner: .init(instructions: "Rewrite the question.", temperature: 0.7, maxTokens: 50)))
        let team = AgentTeam(model: model, retriever: FixedRetriever(), prompts: prompts)
        let planner = try #require(team.agent(for: .planner))
        _ = try await planner.run(WorkflowState(question: "How many days of leave?"), context: AgentContext())
        let request = try #require(model.requests.first)
        #expect(request.messages.first?.content == "Rewrite the question.")
        #expect(request.temperature == 0.7)
        #expect(request.maxTokens == 50)
        // The other roles keep the run's sampling.
        let reasoner = try #require(team.agent(for: .reasoner))
        _ = try await reasoner.run(WorkflowState(question: "How many days of leave?"), context: AgentContext(options: ModelCallOptions(temperature: 0)))
        #expect(model.requests.last?.temperature == 0)
        #expect(model.requests.last?.messages.first?.content == AgentPrompts.builtIn.reasoner.instructions)
    }
}
