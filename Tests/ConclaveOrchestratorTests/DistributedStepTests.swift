import ConclaveAgents
import ConclaveCore
import ConclaveMessaging
@testable import ConclaveOrchestrator
import ConclaveStorage
import ConclaveTesting
import Foundation
import Synchronization
import Testing

/// The gateway's ``StepDispatcher`` and the worker's ``StepWorker`` over a real nats-server, with
/// agents that are test doubles (the model-backed path runs in `DistributedModeTests`).
@Suite("Distributed steps over JetStream", .serialized)
struct DistributedStepTests {
    /// A responder double: streams fixed pieces of text, then answers with their concatenation.
    struct StreamingAgent: Agent {
        let role: AgentRole = .responder
        let pieces: [String]
        let runs: Counter

        final class Counter: Sendable {
            let value = Mutex(0)
            var count: Int { value.withLock { $0 } }
        }

        func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
            runs.value.withLock { $0 += 1 }
            for piece in pieces { try await context.emitToken(piece) }
            // The worker rebuilt the request's state, guard included.
            let guarded = state.textGuard.map { $0.evidence("call 555-0100") } ?? "no guard"
            return AgentResult(.answer(Answer(text: pieces.joined() + " | " + guarded, citations: [])),
                               usage: TokenUsage(promptTokens: 7, completionTokens: pieces.count))
        }
    }

    /// A guard double that masks one phone number and counts what it masked.
    final class CountingGuard: TransferableTextGuard {
        let masked = Mutex(0)
        let pseudonyms: [String: GuardTransfer.Pseudonym]
        init(pseudonyms: [String: GuardTransfer.Pseudonym] = [:]) { self.pseudonyms = pseudonyms }
        func evidence(_ text: String) -> String {
            masked.withLock { $0 += 1 }
            return text.replacingOccurrences(of: "555-0100", with: "[phone]")
        }
        func outputStream() -> any OutputStreamFilter { PassThrough() }
        func transfer() -> GuardTransfer { GuardTransfer(pseudonyms: pseudonyms) }
        var activity: GuardActivity { GuardActivity(removedInstructions: 0, maskedCounts: ["phone": masked.withLock { $0 }]) }
        func absorb(_ activity: GuardActivity) { masked.withLock { $0 += activity.maskedCounts["phone", default: 0] } }
        struct PassThrough: OutputStreamFilter {
            mutating func append(_ text: String) -> String { text }
            mutating func finish() -> String { "" }
        }
    }

    final class Taken: Sendable {
        let request = Mutex<StepRequest?>(nil)
    }

    final class Tokens: Sendable {
        let text = Mutex("")
        func add(_ piece: String) { text.withLock { $0 += piece } }
        var value: String { text.withLock { $0 } }
    }

    private static func queue(_ server: NATSTestServer, name: String, ackWait: Duration = .seconds(2)) throws -> JetStreamWorkQueue {
        try JetStreamWorkQueue(connection: try NATSConnection(url: server.url, name: name),
                               configuration: WorkQueueConfiguration(ackWait: ackWait, maxDeliver: 3, retryDelay: .milliseconds(50)))
    }

    private static func context(_ tokens: Tokens) -> AgentContext {
        AgentContext(deadline: ContinuousClock.now + .seconds(30), runID: "run_test", stepID: "respond") { tokens.add($0) }
    }

    @Test func aStepRunsOnAWorkerWithItsStateAndGuardAndItsTextStreamsBack() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let runs = StreamingAgent.Counter()
        let workerGuard = CountingGuard()
        let worker = StepWorker(role: .responder, agent: StreamingAgent(pieces: ["Annual ", "leave ", "is 25 days."], runs: runs),
                                queue: try Self.queue(server, name: "worker"), results: try SQLiteStore(path: ":memory:"),
                                guardFactory: { principal, transfer in
                                    #expect(principal.userID == "u-employee")
                                    #expect(transfer.pseudonyms["PHONE_1"]?.value == "555-0199")
                                    return workerGuard
                                })
        let working = Task { try await worker.run() }
        defer { working.cancel() }
        let dispatcher = try StepDispatcher(queue: try Self.queue(server, name: "gateway"))
        let gatewayGuard = CountingGuard(pseudonyms: ["PHONE_1": .init(value: "555-0199", type: "phone")])
        var state = WorkflowState(question: "How much annual leave?", principal: Principal(userID: "u-employee", roles: ["employee"]),
                                  textGuard: gatewayGuard)
        state.conversationID = "conv_1"
        let tokens = Tokens()
        let result = try await dispatcher.team().agent(for: .responder)!.run(state, context: Self.context(tokens))
        #expect(tokens.value == "Annual leave is 25 days.")
        guard case .answer(let answer) = result.output else {
            Issue.record("expected an answer, got \(result.output)")
            return
        }
        #expect(answer.text == "Annual leave is 25 days. | call [phone]")
        #expect(result.usage == TokenUsage(promptTokens: 7, completionTokens: 3))
        // What the worker's guard masked is counted by the gateway's guard (for the audit record).
        #expect(gatewayGuard.masked.withLock { $0 } == 1)
        #expect(runs.count == 1)
    }

    @Test func aRedeliveredStepIsAnsweredFromTheStoreWithoutRunningTheAgentAgain() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let runs = StreamingAgent.Counter()
        let store = try SQLiteStore(path: ":memory:")
        let connection = try NATSConnection(url: server.url, name: "replay")
        let worker = StepWorker(role: .responder, agent: StreamingAgent(pieces: ["once"], runs: runs),
                                queue: try JetStreamWorkQueue(connection: connection), results: store)
        let request = StepRequest(runID: "run_r", stepID: "respond", role: .responder, dispatchID: "d1",
                                  replySubject: "conclave.replies.test.d1", remainingMilliseconds: 10_000, options: ModelCallOptions(),
                                  affinityKey: nil, state: PortableState(WorkflowState(question: "q")))
        let frames = try await connection.subscribe(request.replySubject)
        let item = WorkItem(payload: try BusCoding.encode(request), deliveryCount: 1, isLastDelivery: false, headers: [:])
        try await worker.handle(item)
        // The same message again (the first worker died after answering, before its ack).
        try await worker.handle(WorkItem(payload: item.payload, deliveryCount: 2, isLastDelivery: false, headers: [:]))
        #expect(runs.count == 1)
        var results: [StepOutcome] = []
        for await message in frames {
            if case .result(let outcome) = try BusCoding.decode(StepFrame.self, from: message.payload) { results.append(outcome) }
            if results.count == 2 { break }
        }
        #expect(results.count == 2)
        #expect(results.allSatisfy { $0.output != nil && $0.error == nil })
        #expect(try await store.stepResult(key: request.key) != nil)
    }

    @Test func textAlreadyForwardedIsNotRepeatedWhenARedeliveryStreamsItAgain() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let dispatcher = try StepDispatcher(queue: try Self.queue(server, name: "gateway", ackWait: .seconds(1)))
        let tokens = Tokens()
        let dispatched = Task {
            try await dispatcher.team().agent(for: .responder)!.run(WorkflowState(question: "q"), context: Self.context(tokens))
        }
        // A hand-driven worker: the first delivery streams part of the answer and dies (no ack,
        // connection gone); the redelivery streams the whole answer from the start and answers.
        let first = try Self.queue(server, name: "first", ackWait: .seconds(1))
        let taken = Taken()
        let firstTask = Task {
            try await first.consume(queue: "responder") { item in
                let request = try BusCoding.decode(StepRequest.self, from: item.payload)
                taken.request.withLock { $0 = request }
                for (offset, piece) in [(0, "Annual "), (7, "lea")] {
                    try first.connection.publish(request.replySubject,
                                                 try BusCoding.encode(StepFrame.token(text: piece, offset: offset, delivery: 1)))
                }
                try await first.connection.flush()
                try await Task.sleep(for: .seconds(3600))
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while tokens.value != "Annual lea", ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(tokens.value == "Annual lea")
        first.connection.close()
        firstTask.cancel()
        let second = try Self.queue(server, name: "second", ackWait: .seconds(1))
        let secondTask = Task {
            try await second.consume(queue: "responder") { item in
                let request = try BusCoding.decode(StepRequest.self, from: item.payload)
                #expect(item.deliveryCount >= 2)
                #expect(request.key == taken.request.withLock { $0 }?.key)
                for (offset, piece) in [(0, "Annual "), (7, "leave "), (13, "is 25 days.")] {
                    try second.connection.publish(request.replySubject,
                                                  try BusCoding.encode(StepFrame.token(text: piece, offset: offset, delivery: item.deliveryCount)))
                }
                let outcome = StepOutcome(output: .answer(Answer(text: "Annual leave is 25 days.", citations: [])), error: nil,
                                          usage: TokenUsage(), guardActivity: nil, worker: "second")
                try second.connection.publish(request.replySubject, try BusCoding.encode(StepFrame.result(outcome)))
                try await second.connection.flush()
            }
        }
        defer { secondTask.cancel() }
        let result = try await dispatched.value
        #expect(tokens.value == "Annual leave is 25 days.")
        if case .answer(let answer) = result.output { #expect(answer.text == tokens.value) } else { Issue.record("no answer") }
    }

    @Test func natsMessagingNeedsAServerURLAndSaneLimits() throws {
        #expect(throws: ConfigurationError.self) {
            try ConclaveConfiguration(messaging: MessagingConfiguration(driver: .nats)).validate()
        }
        #expect(throws: ConfigurationError.self) {
            try ConclaveConfiguration(messaging: MessagingConfiguration(driver: .nats, url: "nats://h:4222", maxDeliver: 0)).validate()
        }
        try ConclaveConfiguration(messaging: MessagingConfiguration(driver: .nats, url: "nats://h:4222")).validate()
        try ConclaveConfiguration().validate()
    }

    @Test func aWorkerErrorReachesTheGatewayWithItsCode() async throws {
        struct Failing: Agent {
            let role: AgentRole = .planner
            func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
                throw ConclaveError(.modelUnavailable, "No healthy model backend.")
            }
        }
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let worker = StepWorker(role: .planner, agent: Failing(), queue: try Self.queue(server, name: "worker"), results: nil)
        let working = Task { try await worker.run() }
        defer { working.cancel() }
        let dispatcher = try StepDispatcher(queue: try Self.queue(server, name: "gateway"))
        do {
            _ = try await dispatcher.team().agent(for: .planner)!.run(WorkflowState(question: "q"), context: Self.context(Tokens()))
            Issue.record("expected the worker's error")
        } catch let error as ConclaveError {
            // The same code as in one process, so the engine's retry rules and the API mapping apply.
            #expect(error.code == .modelUnavailable)
        }
    }
}
