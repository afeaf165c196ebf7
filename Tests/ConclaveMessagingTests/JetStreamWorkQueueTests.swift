import ConclaveCore
import ConclaveMessaging
import ConclaveTesting
import Foundation
import Synchronization
import Testing

/// The JetStream bus against a real `nats-server -js` on loopback.
@Suite("JetStream work queues (real nats-server)")
struct JetStreamWorkQueueTests {
    private static func queue(_ server: NATSTestServer, ackWait: Duration = .seconds(2), maxDeliver: Int = 3,
                              name: String = "test") throws -> JetStreamWorkQueue {
        let connection = try NATSConnection(url: server.url, name: name)
        return try JetStreamWorkQueue(connection: connection, configuration: WorkQueueConfiguration(
            ackWait: ackWait, maxDeliver: maxDeliver, retryDelay: .milliseconds(50)))
    }

    /// Collects what a handler saw.
    final class Seen: Sendable {
        let items = Mutex<[(payload: String, delivery: Int)]>([])
        func add(_ item: WorkItem) { items.withLock { $0.append((String(decoding: item.payload, as: UTF8.self), item.deliveryCount)) } }
        var payloads: [String] { items.withLock { $0.map(\.payload) } }
        var deliveries: [Int] { items.withLock { $0.map(\.delivery) } }
    }

    /// Runs `consume` until `until` holds (or the timeout), then cancels it.
    private static func consume(_ queue: JetStreamWorkQueue, _ name: String, timeout: Duration = .seconds(15),
                                until: @escaping @Sendable () -> Bool,
                                handler: @escaping @Sendable (WorkItem) async throws -> Void) async throws {
        let task = Task { try await queue.consume(queue: name, handler: handler) }
        let deadline = ContinuousClock.now + timeout
        while !until(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        task.cancel()
        _ = await task.result
    }

    @Test func anAcknowledgedMessageIsDeliveredOnceAndLeavesTheQueue() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let queue = try Self.queue(server)
        try queue.prepare(queue: "planner")
        #expect(try await queue.submit(to: "planner", payload: Array("step-1".utf8), id: "run1/plan/1"))
        #expect(try await queue.submit(to: "planner", payload: Array("step-2".utf8), id: "run1/plan/2"))
        // The same id again (a gateway retrying its publish) is stored once.
        #expect(try await !queue.submit(to: "planner", payload: Array("step-1".utf8), id: "run1/plan/1"))
        #expect(try queue.backlog(of: "planner") == 2)
        let seen = Seen()
        try await Self.consume(queue, "planner", until: { seen.payloads.count >= 2 }) { seen.add($0) }
        #expect(seen.payloads.sorted() == ["step-1", "step-2"])
        #expect(seen.deliveries == [1, 1])
        // Acknowledged: nothing comes back after the ack wait, and the work-queue stream is empty.
        try await Task.sleep(for: .milliseconds(2500))
        try await Self.consume(queue, "planner", timeout: .seconds(1.5), until: { false }) { seen.add($0) }
        #expect(seen.payloads.count == 2)
        #expect(try queue.connection.streamMessageCount(queue.configuration.stream) == 0)
        #expect(try queue.backlog(of: "planner") == 0)
    }

    @Test func aMessageWhoseConsumerDiesBeforeTheAckIsRedeliveredToAnother() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let producer = try Self.queue(server, ackWait: .seconds(1))
        try producer.prepare(queue: "retriever")
        try await producer.submit(to: "retriever", payload: Array("work".utf8), id: "run2/retrieve/1")

        // The first worker takes the message and dies holding it (its connection goes away
        // without an ack or a nak).
        let doomed = try Self.queue(server, ackWait: .seconds(1), name: "doomed")
        let taken = Seen()
        let task = Task {
            try await doomed.consume(queue: "retriever") { item in
                taken.add(item)
                try await Task.sleep(for: .seconds(3600))
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while taken.payloads.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(taken.payloads == ["work"])
        doomed.connection.close()
        task.cancel()
        _ = await task.result

        // A second worker gets it after the ack wait, marked as the second delivery.
        let survivor = try Self.queue(server, ackWait: .seconds(1), name: "survivor")
        let seen = Seen()
        try await Self.consume(survivor, "retriever", until: { !seen.payloads.isEmpty }) { seen.add($0) }
        #expect(seen.payloads == ["work"])
        #expect(seen.deliveries.first ?? 0 >= 2)
        #expect(try survivor.backlog(of: "retriever") == 0)
    }

    @Test func aMessageThatKeepsFailingGoesToTheDeadLetterStreamAfterMaxDeliver() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let queue = try Self.queue(server, maxDeliver: 3)
        try queue.prepare(queue: "validator")
        try await queue.submit(to: "validator", payload: Array("poison".utf8), id: "run3/validate/1",
                         headers: ["Conclave-Run": "run3", "Conclave-Step": "validate"])
        try await queue.submit(to: "validator", payload: Array("fine".utf8), id: "run3/validate/2")
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let seen = Seen()
        // Until the poison message has been dead-lettered (not merely seen a third time: stopping
        // the consumer while that delivery is still failing would give it back instead).
        let connection = queue.connection
        let deadStream = queue.configuration.deadLetterStream
        try await Self.consume(queue, "validator", until: {
            seen.payloads.contains("fine") && ((try? connection.streamMessageCount(deadStream)) ?? 0) >= 1
        }) { item in
            seen.add(item)
            if item.payload == Array("poison".utf8) { throw Boom() }
        }
        // Let the dead-lettering of the third delivery land, then check nothing comes back.
        try await Task.sleep(for: .milliseconds(300))
        try await Self.consume(queue, "validator", timeout: .seconds(1.5), until: { false }) { seen.add($0) }
        #expect(seen.payloads.filter { $0 == "poison" }.count == 3)
        #expect(seen.payloads.filter { $0 == "fine" }.count == 1)
        let dead = try await queue.deadLetters(of: "validator")
        #expect(dead.count == 1)
        #expect(dead.first?.payload == Array("poison".utf8))
        #expect(dead.first?.deliveryCount == 3)
        #expect(dead.first?.headers["Conclave-Error"] == "boom")
        #expect(dead.first?.headers["Conclave-Run"] == "run3")
        #expect(dead.first?.headers["Conclave-Origin"] == "conclave.steps.validator")
        #expect(try queue.backlog(of: "validator") == 0)
    }

    @Test func coreSubjectsCarryMessagesToLiveSubscribersOnly() async throws {
        let server = try await NATSTestServer.start()
        defer { server.stop() }
        let connection = try NATSConnection(url: server.url, name: "core")
        try connection.publish("conclave.deltas.run9", Array("before".utf8))  // nobody listens: gone
        let stream = try await connection.subscribe("conclave.deltas.run9")
        let publisher = try NATSConnection(url: server.url, name: "publisher")
        for word in ["a", "b", "c"] { try publisher.publish("conclave.deltas.run9", Array(word.utf8)) }
        try await publisher.flush()
        var received: [String] = []
        for await message in stream {
            received.append(String(decoding: message.payload, as: UTF8.self))
            if received.count == 3 { break }
        }
        // One publisher's messages on one subject arrive in order.
        #expect(received == ["a", "b", "c"])
    }

    @Test func overMutualTLSStepsFlowAndAClientWithoutACertificateIsRefused() async throws {
        let certificates = try TestCertificates.make()
        defer { certificates.remove() }
        let server = try await NATSTestServer.start(tls: certificates)
        defer { server.stop() }
        let tls = NATSConnection.TLS(caFile: certificates.caFile, certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile)
        let queue = try JetStreamWorkQueue(connection: try NATSConnection(url: "tls://127.0.0.1:\(server.port)", name: "mtls", tls: tls),
                                           configuration: WorkQueueConfiguration(ackWait: .seconds(2), maxDeliver: 3, retryDelay: .milliseconds(50)))
        try queue.prepare(queue: "reasoner")
        #expect(try await queue.submit(to: "reasoner", payload: Array("over-tls".utf8), id: "run1/reason/1"))
        let seen = Seen()
        try await Self.consume(queue, "reasoner", until: { seen.payloads.count >= 1 }) { seen.add($0) }
        #expect(seen.payloads == ["over-tls"])
        // Without a client certificate, without the CA, or in plain text: no connection.
        for (url, refused) in [("tls://127.0.0.1:\(server.port)", NATSConnection.TLS(caFile: certificates.caFile)),
                               ("tls://127.0.0.1:\(server.port)", NATSConnection.TLS(caFile: certificates.clientCertFile,
                                                                                     certFile: certificates.clientCertFile,
                                                                                     keyFile: certificates.clientKeyFile)),
                               (server.url, nil)] as [(String, NATSConnection.TLS?)] {
            #expect(throws: NATSError.self) { _ = try NATSConnection(url: url, name: "refused", tls: refused) }
        }
    }

    @Test func connectingToNothingFailsWithAClearError() throws {
        do {
            _ = try NATSConnection(url: "nats://127.0.0.1:1", name: "nowhere")
            Issue.record("expected a connection error")
        } catch let error as NATSError {
            #expect(error.description.contains("connect to nats://127.0.0.1:1"))
        }
    }
}
