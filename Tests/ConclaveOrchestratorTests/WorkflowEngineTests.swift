import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveServer
import ConclaveStorage
import ConclaveTesting
import Foundation
import Synchronization
import Testing

/// An agent (test double) that waits, records when it ran, and can fail its first attempts.
final class ProbeAgent: Agent, Sendable {
    let role: AgentRole
    let delay: Duration
    let failures: Int
    let intervals = Mutex<[(start: ContinuousClock.Instant, end: ContinuousClock.Instant)]>([])
    let attempts = Mutex(0)

    init(_ role: AgentRole, delay: Duration = .zero, failures: Int = 0) {
        self.role = role
        self.delay = delay
        self.failures = failures
    }

    func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        let attempt = attempts.withLock { $0 += 1; return $0 }
        let start = ContinuousClock.now
        if delay > .zero { try await Task.sleep(for: delay) }
        intervals.withLock { $0.append((start, ContinuousClock.now)) }
        if attempt <= failures { throw ConclaveError(.modelUnavailable, "probe failure \(attempt)") }
        switch role {
        case .planner: return AgentResult(.plan(Plan(query: state.question, subQuestions: [])))
        case .retriever: return AgentResult(.evidence(FixedRetriever.samplePassages))
        case .reasoner: return AgentResult(.reasoning(Reasoning(answerForm: .number, entities: [], computation: .none)))
        case .validator: return AgentResult(.validation(Validation(answerable: true, facts: [], rationale: "probe")))
        case .responder:
            try await context.emitToken("done")
            return AgentResult(.answer(Answer(text: "done", citations: [])))
        }
    }
}

@Suite struct WorkflowEngineTests {
    let full: Workflow

    init() throws {
        full = try #require(try WorkflowRegistry().workflows["full"])
    }

    private func engine(_ agents: [any Agent], store: SQLiteStore? = nil, writer: BatchingEventWriter? = nil,
                        bus: any MessageBus = InProcessMessageBus()) -> WorkflowEngine {
        WorkflowEngine(team: AgentTeam(agents: agents), bus: bus, eventLog: writer)
    }

    private func probes(delay: Duration = .zero) -> [AgentRole: ProbeAgent] {
        Dictionary(uniqueKeysWithValues: AgentRole.allCases.map { ($0, ProbeAgent($0, delay: delay)) })
    }

    @Test func builtInWorkflowsAreTheFourTopologies() throws {
        let registry = try WorkflowRegistry()
        #expect(Set(registry.workflows.keys) == ["single", "planner-responder", "planner-retriever-responder", "full"])
        #expect(registry.workflows["single"]?.steps.map(\.role) == [.responder])
        let full = try #require(registry.workflows["full"])
        #expect(full.steps.first { $0.role == .validator }?.dependsOn.sorted() == ["reason", "retrieve"])
    }

    @Test func independentStepsRunConcurrently() async throws {
        let agents = probes(delay: .milliseconds(150))
        let result = try await engine(Array(agents.values)).run(full, state: WorkflowState(question: "q"))
        let retrieve = try #require(agents[.retriever]?.intervals.withLock { $0.first })
        let reason = try #require(agents[.reasoner]?.intervals.withLock { $0.first })
        // The two branches overlap in time: each starts before the other ends.
        #expect(retrieve.start < reason.end && reason.start < retrieve.end)
        let validate = try #require(agents[.validator]?.intervals.withLock { $0.first })
        #expect(validate.start >= retrieve.end && validate.start >= reason.end)
        #expect(result.trace.map(\.step).last == "respond")
        #expect(result.state.answer?.text == "done")
    }

    @Test func stepTimeoutFires() async throws {
        var agents = probes()
        agents[.planner] = ProbeAgent(.planner, delay: .seconds(120))
        let workflow = try WorkflowLoader.load(yaml: """
            name: slow
            steps:
              - {id: plan, role: planner, timeout_seconds: 0.1}
              - {id: respond, role: responder, depends_on: [plan]}
            """)
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: ConclaveError.self) {
            try await engine(Array(agents.values)).run(workflow, state: WorkflowState(question: "q"))
        }
        #expect(error?.code == .timeout)
        // Well under the planner's 120 s: the timeout ended the run. The margin absorbs a machine
        // whose cores the other suites (index builds, the embedder) keep busy.
        #expect(clock.now - start < .seconds(60))
        // The timeout stops the run's steps, not the caller, which must still be able to record
        // the failure and answer its client.
        #expect(!Task.isCancelled)
    }

    @Test func failedStepIsRetriedUpToItsPolicy() async throws {
        var agents = probes()
        let flaky = ProbeAgent(.planner, failures: 2)
        agents[.planner] = flaky
        let workflow = try WorkflowLoader.load(yaml: """
            name: flaky
            steps:
              - {id: plan, role: planner, retry: {max_attempts: 3, backoff_ms: 1}}
              - {id: respond, role: responder, depends_on: [plan]}
            """)
        let result = try await engine(Array(agents.values)).run(workflow, state: WorkflowState(question: "q"))
        #expect(flaky.attempts.withLock { $0 } == 3)
        #expect(result.trace.first { $0.step == "plan" }?.attempts == 3)
    }

    @Test func exhaustedRetriesFailTheRun() async throws {
        var agents = probes()
        agents[.planner] = ProbeAgent(.planner, failures: 5)
        let workflow = try WorkflowLoader.load(yaml: """
            name: broken
            steps:
              - {id: plan, role: planner, retry: {max_attempts: 2, backoff_ms: 1}}
              - {id: respond, role: responder, depends_on: [plan]}
            """)
        let error = await #expect(throws: ConclaveError.self) {
            try await engine(Array(agents.values)).run(workflow, state: WorkflowState(question: "q"))
        }
        #expect(error?.code == .modelUnavailable)
        #expect(agents[.planner]?.attempts.withLock { $0 } == 2)
    }

    @Test func eventsArePublishedAndPersistedInOrder() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let writer = BatchingEventWriter(store: store)
        let bus = InProcessMessageBus()
        let runID = "run_events_test"
        let subscription = bus.subscribe(toRun: runID)
        let model = ScriptedChatModel()
        // The model words the answer, so it streams in several deltas.
        let team = AgentTeam(model: model, retriever: FixedRetriever(), answerPhrasing: .model)
        let engine = WorkflowEngine(team: team, bus: bus, eventLog: writer)
        _ = try await engine.run(full, state: WorkflowState(question: "How many days of annual leave?"), runID: runID)
        try await writer.flush()
        let stored = try await store.events(ofRun: runID)
        var published: [RunEvent] = []
        for await event in subscription { published.append(event) }
        #expect(published.map(\.sequence) == Array(0..<published.count))
        #expect(stored.first?.kind == .runStarted)
        #expect(stored.last?.kind == .runCompleted)
        // The log keeps every event except that a step's consecutive token deltas become one.
        let storedKinds: [RunEvent.Kind] = stored.map(\.kind).filter { $0 != .tokenDelta }
        let publishedKinds: [RunEvent.Kind] = published.map(\.kind).filter { $0 != .tokenDelta }
        #expect(storedKinds == publishedKinds)
        let storedTokens = stored.filter { $0.kind == .tokenDelta }
        #expect(storedTokens.count == 1)
        let publishedTokens: [RunEvent] = published.filter { $0.kind == .tokenDelta }
        let publishedText: String = publishedTokens.compactMap(\.detail).joined()
        #expect(storedTokens.first?.detail == publishedText)
        #expect(publishedTokens.count > 1)
        let sequences: [Int] = stored.map(\.sequence)
        #expect(sequences == sequences.sorted())
        let completed = stored.filter { $0.kind == .stepCompleted }.compactMap(\.stepID)
        #expect(Set(completed) == ["plan", "retrieve", "reason", "validate", "respond"])
        #expect(stored.contains { $0.kind == .tokenDelta && $0.role == .responder })
        #expect(bus.subscribedRunCount == 0)
    }

    @Test func cancellingTheCallerCancelsTheRunAndLogsIt() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let writer = BatchingEventWriter(store: store)
        var agents = probes()
        let slow = ProbeAgent(.planner, delay: .seconds(30))
        agents[.planner] = slow
        let engine = engine(Array(agents.values), writer: writer)
        let runID = "run_cancel_test"
        let task = Task { try await engine.run(full, state: WorkflowState(question: "q"), runID: runID) }
        // Wait until the slow step has started, then cancel.
        while slow.attempts.withLock({ $0 }) == 0 { await Task.yield() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        try await writer.flush()
        let events = try await store.events(ofRun: runID)
        #expect(events.last?.kind == .runFailed)
        #expect(events.last?.detail == "cancelled")
        #expect(agents[.responder]?.attempts.withLock { $0 } == 0)
    }

    @Test func scriptedFullRunProducesCitedAnswer() async throws {
        let model = ScriptedChatModel()
        let engine = WorkflowEngine(team: AgentTeam(model: model, retriever: FixedRetriever()), bus: InProcessMessageBus(),
                                    eventLog: nil)
        let result = try await engine.run(full, state: WorkflowState(question: "How many days of paid annual leave do employees get?"))
        let answer = try #require(result.state.answer)
        #expect(!answer.citations.isEmpty)
        #expect(answer.citations.allSatisfy { $0.sourceID == "DOC-1" })
        #expect(answer.text.contains("[1]"))
        #expect(result.state.validation?.answerable == true)
        // Planner, reasoner and validator called the model; the retriever did not, and the
        // responder quoted the validated fact (the default phrasing) without a model call.
        #expect(model.requests.count == 3)
        #expect(model.requests.allSatisfy { $0.jsonSchema != nil })
    }

    @Test func unsupportedQuestionGetsNotFoundWithoutCallingTheResponderModel() async throws {
        let model = ScriptedChatModel()
        let engine = WorkflowEngine(team: AgentTeam(model: model, retriever: FixedRetriever()), bus: InProcessMessageBus(),
                                    eventLog: nil)
        let result = try await engine.run(full, state: WorkflowState(question: "Who won the football cup in 1954?"))
        #expect(result.state.answer?.isNotFound == true)
        #expect(result.state.answer?.citations.isEmpty == true)
        #expect(model.requests.allSatisfy { $0.jsonSchema != nil })
    }
}
