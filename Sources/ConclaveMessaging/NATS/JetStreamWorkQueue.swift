import ConclaveCore
import Foundation
import Logging

/// Settings of the JetStream work queues that carry agent steps.
public struct WorkQueueConfiguration: Sendable, Hashable {
    /// The work-queue stream (each message is removed once a consumer acknowledges it).
    public var stream: String
    /// Queue `q` is the subject `<subjectPrefix>.<q>`; its durable consumer is `worker-<q>`.
    public var subjectPrefix: String
    /// Where messages go after their last failed delivery (a limits stream, kept for inspection).
    public var deadLetterStream: String
    public var deadLetterPrefix: String
    /// How long a delivery may go unacknowledged before the server redelivers it. A running
    /// handler keeps its message alive with progress signals every third of this.
    public var ackWait: Duration
    /// Deliveries before a failing message is moved to the dead-letter stream.
    public var maxDeliver: Int
    /// Wait before a failed message is redelivered; doubles with each delivery.
    public var retryDelay: Duration

    public init(stream: String = "CONCLAVE_STEPS", subjectPrefix: String = "conclave.steps",
                deadLetterStream: String = "CONCLAVE_DEAD", deadLetterPrefix: String = "conclave.dead",
                ackWait: Duration = .seconds(30), maxDeliver: Int = 5, retryDelay: Duration = .milliseconds(250)) {
        self.stream = stream
        self.subjectPrefix = subjectPrefix
        self.deadLetterStream = deadLetterStream
        self.deadLetterPrefix = deadLetterPrefix
        self.ackWait = ackWait
        self.maxDeliver = maxDeliver
        self.retryDelay = retryDelay
    }

    /// The subject of a queue.
    public func subject(of queue: String) -> String { "\(subjectPrefix).\(queue)" }
    /// The durable consumer of a queue.
    public func consumer(of queue: String) -> String { "worker-\(queue)" }
    /// The dead-letter subject of a queue.
    public func deadLetterSubject(of queue: String) -> String { "\(deadLetterPrefix).\(queue)" }
}

/// Thrown by a handler for a message that no retry can fix (it cannot be decoded, say): the
/// message goes to the dead-letter stream at once.
public struct UnprocessableMessage: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One delivery of a queued message.
public struct WorkItem: Sendable {
    public var payload: [UInt8]
    /// 1 on the first delivery.
    public var deliveryCount: Int
    /// True when a failure now sends the message to the dead-letter stream.
    public var isLastDelivery: Bool
    public var headers: [String: String]
    /// How long it sat in the stream before this delivery, in microseconds (server clock to this
    /// machine's clock; the same machine, or NTP-synchronised ones).
    public var queuedMicroseconds: Int64?

    public init(payload: [UInt8], deliveryCount: Int, isLastDelivery: Bool, headers: [String: String],
                queuedMicroseconds: Int64? = nil) {
        self.payload = payload
        self.deliveryCount = deliveryCount
        self.isLastDelivery = isLastDelivery
        self.headers = headers
        self.queuedMicroseconds = queuedMicroseconds
    }
}

/// At-least-once work queues on JetStream: `submit` persists a message (deduplicated by id),
/// `consume` hands each delivery to a handler and acknowledges it when the handler returns.
/// A handler that throws gets the message again after a backoff, on any consumer of the queue;
/// after `maxDeliver` deliveries it goes to the dead-letter subject with the last error. A
/// consumer that dies without acknowledging (a killed worker) loses nothing: the server
/// redelivers after `ackWait`. Handlers must therefore be idempotent.
///
/// Ordering: none is promised across messages; one queue's messages are delivered roughly in
/// publish order, but redeliveries and several consumers reorder them.
public final class JetStreamWorkQueue: Sendable {
    public let connection: NATSConnection
    public let configuration: WorkQueueConfiguration
    private let logger: Logger

    /// Creates (or updates) the work-queue and dead-letter streams.
    public init(connection: NATSConnection, configuration: WorkQueueConfiguration = .init(),
                logger: Logger = Logger(label: "conclave.messaging")) throws {
        self.connection = connection
        self.configuration = configuration
        self.logger = logger
        try connection.ensureStream(name: configuration.stream, subjects: [configuration.subjectPrefix + ".>"], workQueue: true)
        try connection.ensureStream(name: configuration.deadLetterStream, subjects: [configuration.deadLetterPrefix + ".>"],
                                    workQueue: false, maxAge: .seconds(7 * 24 * 3600))
    }

    /// Makes sure the queue's durable consumer exists (workers call it; so may a gateway that
    /// submits before any worker started, so nothing is missed).
    public func prepare(queue: String) throws {
        try connection.ensureConsumer(stream: configuration.stream, durable: configuration.consumer(of: queue),
                                      filterSubject: configuration.subject(of: queue), ackWait: configuration.ackWait,
                                      maxDeliver: configuration.maxDeliver)
    }

    /// Persists a message on `queue`. The same `id` within two minutes is stored once; returns
    /// false for such a duplicate.
    @discardableResult
    public func submit(to queue: String, payload: [UInt8], id: String, headers: [String: String] = [:]) async throws -> Bool {
        !(try await connection.publishPersistent(configuration.subject(of: queue), payload, messageID: id, headers: headers).duplicate)
    }

    /// Messages waiting on `queue` plus those delivered and not yet acknowledged (the lag KEDA
    /// scales workers on).
    public func backlog(of queue: String) throws -> Int {
        let backlog = try connection.consumerBacklog(stream: configuration.stream, durable: configuration.consumer(of: queue))
        return Int(backlog.pending) + backlog.unacknowledged
    }

    /// Hands deliveries of `queue` to `handler`, up to `concurrency` at once, until the calling
    /// task is cancelled or `stop` returns true. After `stop`, deliveries already running finish
    /// (a drain); a delivery still running at cancellation is given back (nak) so another
    /// consumer takes it at once.
    public func consume(queue: String, concurrency: Int = 1, until stop: @escaping @Sendable () -> Bool = { false },
                        handler: @escaping @Sendable (WorkItem) async throws -> Void) async throws {
        try prepare(queue: queue)
        let subscription = try connection.pullSubscription(stream: configuration.stream, durable: configuration.consumer(of: queue),
                                                           filterSubject: configuration.subject(of: queue))
        defer { subscription.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            while !Task.isCancelled && !stop() {
                if running >= max(1, concurrency) {
                    _ = try await group.next()
                    running -= 1
                }
                let messages: [JetStreamMessage]
                do {
                    messages = try await subscription.fetch(batch: max(1, concurrency) - running, timeout: .seconds(1))
                } catch let error as NATSError where !error.isClosed {
                    // The connection is reconnecting: wait and try again.
                    logger.warning("messaging: fetch failed", metadata: ["queue": "\(queue)", "error": "\(error)"])
                    try await Task.sleep(for: .milliseconds(250))
                    continue
                }
                for message in messages {
                    running += 1
                    group.addTask { [self] in await self.deliver(message, queue: queue, handler: handler) }
                }
            }
            if Task.isCancelled { group.cancelAll() }
            try await group.waitForAll()
        }
    }

    private func deliver(_ message: JetStreamMessage, queue: String, handler: @Sendable (WorkItem) async throws -> Void) async {
        let item = WorkItem(payload: message.payload, deliveryCount: message.deliveryCount,
                            isLastDelivery: message.deliveryCount >= configuration.maxDeliver, headers: message.headers,
                            queuedMicroseconds: message.storedAtNanoseconds.map {
                                max(0, Int64(Date().timeIntervalSince1970 * 1_000_000) - $0 / 1000)
                            })
        let interval = configuration.ackWait / 3
        let heartbeat = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                try? await message.inProgress()
            }
        }
        let outcome: Result<Void, any Error>
        do {
            try await handler(item)
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        // No progress signal may race the final acknowledgement.
        heartbeat.cancel()
        _ = await heartbeat.result
        switch outcome {
        case .success:
            do {
                try await message.ack()
            } catch {
                logger.warning("messaging: ack failed; the message will be redelivered", metadata: ["queue": "\(queue)", "error": "\(error)"])
            }
        case .failure(let error):
            if Task.isCancelled {
                try? await message.nak()
            } else if item.isLastDelivery || error is UnprocessableMessage {
                await deadLetter(message, queue: queue, error: error)
            } else {
                let delay = configuration.retryDelay * (1 << min(6, message.deliveryCount - 1))
                logger.warning("messaging: delivery failed, will retry",
                               metadata: ["queue": "\(queue)", "delivery": "\(message.deliveryCount)", "error": "\(error)"])
                try? await message.nak(delay: delay)
            }
        }
    }

    private func deadLetter(_ message: JetStreamMessage, queue: String, error: any Error) async {
        var headers = message.headers
        headers["Conclave-Origin"] = message.subject
        headers["Conclave-Deliveries"] = String(message.deliveryCount)
        headers["Conclave-Error"] = String(String(describing: error).prefix(500))
        do {
            // One dead letter per message, even if this is tried again after a failed term.
            let id = "dead/\(message.subject)/\(message.storedAtNanoseconds ?? 0)/\(message.payload.count)"
            try await connection.publishPersistent(configuration.deadLetterSubject(of: queue), message.payload, messageID: id,
                                                   headers: headers)
            try await message.term()
            logger.error("messaging: moved to the dead-letter stream",
                         metadata: ["queue": "\(queue)", "deliveries": "\(message.deliveryCount)", "error": "\(error)"])
        } catch {
            // Not dead-lettered: the server delivers it again (its limit is a few above ours).
            logger.error("messaging: dead-lettering failed", metadata: ["queue": "\(queue)", "error": "\(error)"])
            try? await message.nak(delay: configuration.retryDelay)
        }
    }

    /// Reads the dead-letter stream's messages of `queue` (for operators and tests) through a
    /// temporary consumer.
    public func deadLetters(of queue: String, timeout: Duration = .seconds(1)) async throws -> [WorkItem] {
        let durable = "inspect-\(RandomID.make())"
        try connection.ensureConsumer(stream: configuration.deadLetterStream, durable: durable,
                                      filterSubject: configuration.deadLetterSubject(of: queue), ackWait: .seconds(30), maxDeliver: 1)
        let subscription = try connection.pullSubscription(stream: configuration.deadLetterStream, durable: durable,
                                                           filterSubject: configuration.deadLetterSubject(of: queue))
        defer {
            subscription.close()
            try? connection.deleteConsumer(stream: configuration.deadLetterStream, durable: durable)
        }
        var items: [WorkItem] = []
        while true {
            let batch = try await subscription.fetch(batch: 100, timeout: timeout)
            if batch.isEmpty { return items }
            items += batch.map { WorkItem(payload: $0.payload, deliveryCount: Int($0.headers["Conclave-Deliveries"] ?? "") ?? 0,
                                          isLastDelivery: true, headers: $0.headers) }
        }
    }
}
