import CNATS
import Foundation
import Synchronization

/// A NATS or JetStream call that failed: the operation, libnats's status text and, for
/// JetStream API errors, the server's error code.
public struct NATSError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var status: String
    public var jetStreamCode: Int
    /// True for a fetch or request that simply timed out.
    public var isTimeout: Bool
    /// True when the connection was closed (by ``NATSConnection/close()``); it will not come back.
    public var isClosed: Bool = false

    public var description: String {
        "NATS \(operation) failed: \(status)" + (jetStreamCode != 0 ? " (JetStream error \(jetStreamCode))" : "")
    }

    static func check(_ status: natsStatus, _ operation: String, _ code: jsErrCode = jsErrCode(rawValue: 0)) throws {
        guard status != NATS_OK else { return }
        var detail = String(cString: natsStatus_GetText(status))
        var lastStatus = NATS_OK
        if let last = nats_GetLastError(&lastStatus) {
            let text = String(cString: last)
            if !text.isEmpty, !detail.contains(text) { detail += ": " + text }
        }
        throw NATSError(operation: operation, status: detail, jetStreamCode: Int(code.rawValue), isTimeout: status == NATS_TIMEOUT,
                        isClosed: status == NATS_CONNECTION_CLOSED)
    }
}

/// One connection to a NATS server through the C client (libnats), with its JetStream context.
/// Thread-safe (libnats is). The calls that wait for the server on the hot path (flush, a
/// persistent publish, acknowledgements, fetches) run on dispatch threads, never on Swift's
/// cooperative threads; stream and consumer setup, done once at start, waits in the caller.
public final class NATSConnection: @unchecked Sendable {
    private let connection: OpaquePointer
    private let jetStream: OpaquePointer
    private let closed = Mutex(false)
    /// The server URL it was opened with.
    public let url: String

    /// TLS to the server: the CA that signed its certificate, and for mutual TLS this client's
    /// certificate chain and key (PEM files).
    public struct TLS: Sendable, Hashable {
        public var caFile: String
        public var certFile: String
        public var keyFile: String

        public init(caFile: String, certFile: String = "", keyFile: String = "") {
            self.caFile = caFile
            self.certFile = certFile
            self.keyFile = keyFile
        }
    }

    /// Connects to `url` (`nats://host:4222`, or `tls://host:4222`), reconnecting forever with a
    /// 250 ms wait if the server goes away. With `tls` the connection is encrypted and the
    /// server's certificate verified against `tls.caFile` (and this client authenticated with
    /// its certificate when `tls.certFile` is set).
    public init(url: String, name: String, tls: TLS? = nil) throws {
        var options: OpaquePointer?
        try NATSError.check(natsOptions_Create(&options), "options")
        defer { natsOptions_Destroy(options) }
        try NATSError.check(natsOptions_SetURL(options, url), "options (url \(url))")
        if let tls {
            try NATSError.check(natsOptions_SetSecure(options, true), "options (TLS)")
            try NATSError.check(natsOptions_LoadCATrustedCertificates(options, tls.caFile), "TLS CA file \(tls.caFile)")
            if !tls.certFile.isEmpty {
                try NATSError.check(natsOptions_LoadCertificatesChain(options, tls.certFile, tls.keyFile),
                                    "TLS client certificate \(tls.certFile)")
            }
        }
        try NATSError.check(natsOptions_SetName(options, name), "options (name)")
        try NATSError.check(natsOptions_SetMaxReconnect(options, -1), "options (reconnect)")
        try NATSError.check(natsOptions_SetReconnectWait(options, 250), "options (reconnect wait)")
        var connection: OpaquePointer?
        try NATSError.check(natsConnection_Connect(&connection, options), "connect to \(url)")
        var js: OpaquePointer?
        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = 5000
        do {
            try NATSError.check(natsConnection_JetStream(&js, connection, &jsOptions), "JetStream context")
        } catch {
            natsConnection_Destroy(connection)
            throw error
        }
        self.connection = connection!
        self.jetStream = js!
        self.url = url
    }

    /// The C objects live as long as this object: subscriptions and messages keep it alive, so
    /// nothing of libnats's is used after it is destroyed.
    deinit {
        jsCtx_Destroy(jetStream)
        natsConnection_Close(connection)
        natsConnection_Destroy(connection)
    }

    /// Closes the connection: later calls fail with a closed error (`NATSError.isClosed`), and
    /// subscriptions end.
    public func close() {
        closed.withLock { $0 = true }
        natsConnection_Close(connection)
    }

    /// Runs a blocking libnats call on a dispatch thread, never on Swift's cooperative threads
    /// (a flush or a JetStream acknowledgement can wait for the server, up to seconds while it
    /// reconnects).
    func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// True while connected (false while reconnecting or after ``close()``).
    public var isConnected: Bool {
        !closed.withLock { $0 } && natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED
    }

    // MARK: - Core NATS

    /// Publishes on a core subject (at most once, no persistence).
    public func publish(_ subject: String, _ payload: [UInt8]) throws {
        try payload.withUnsafeBytes { bytes in
            try NATSError.check(natsConnection_Publish(connection, subject, bytes.baseAddress, Int32(bytes.count)), "publish \(subject)")
        }
    }

    /// Waits until the server has processed everything published so far.
    public func flush(timeout: Duration = .seconds(5)) async throws {
        try await offload { try NATSError.check(natsConnection_FlushTimeout(self.connection, timeout.inMilliseconds), "flush") }
    }

    /// Subscribes to a core subject; the stream ends when the task that iterates it is cancelled.
    public func subscribe(_ subject: String) async throws -> AsyncStream<NATSMessage> {
        var subscription: OpaquePointer?
        try NATSError.check(natsConnection_SubscribeSync(&subscription, connection, subject), "subscribe \(subject)")
        let handle = SubscriptionHandle(subscription!, connection: self)
        // The server has the interest before anything is sent to it.
        try await flush()
        let (stream, continuation) = AsyncStream.makeStream(of: NATSMessage.self, bufferingPolicy: .unbounded)
        continuation.onTermination = { _ in handle.stop() }
        let thread = Thread {
            while !handle.isStopped {
                var message: OpaquePointer?
                let status = natsSubscription_NextMsg(&message, handle.pointer, 100)
                if status == NATS_OK, let message {
                    continuation.yield(NATSMessage(taking: message))
                } else if status != NATS_TIMEOUT {
                    break
                }
            }
            continuation.finish()
            handle.stop()
        }
        thread.name = "nats-sub \(subject)"
        thread.start()
        return stream
    }

    // MARK: - JetStream

    /// Creates the stream, or updates it to `subjects` if it exists.
    public func ensureStream(name: String, subjects: [String], workQueue: Bool, maxAge: Duration? = nil) throws {
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        var code = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsStreamInfo>?
        let cSubjects = subjects.map { strdup($0) }
        defer { cSubjects.forEach { free($0) } }
        try name.withCString { cName in
            var pointers = cSubjects.map { UnsafePointer<CChar>($0) }
            try pointers.withUnsafeMutableBufferPointer { list in
                config.Name = cName
                config.Subjects = list.baseAddress
                config.SubjectsLen = Int32(list.count)
                config.Retention = workQueue ? js_WorkQueuePolicy : js_LimitsPolicy
                config.Storage = js_FileStorage
                config.Duplicates = 120 * 1_000_000_000
                if let maxAge { config.MaxAge = maxAge.inNanoseconds }
                let status = js_AddStream(&info, jetStream, &config, nil, &code)
                if status == NATS_OK {
                    jsStreamInfo_Destroy(info)
                    return
                }
                // JSStreamNameExistErr: the stream is there; bring its subjects up to date.
                guard code.rawValue == 10058 else { try NATSError.check(status, "add stream \(name)", code) ; return }
                code = jsErrCode(rawValue: 0)
                try NATSError.check(js_UpdateStream(&info, jetStream, &config, nil, &code), "update stream \(name)", code)
                jsStreamInfo_Destroy(info)
            }
        }
    }

    /// The server's delivery limit for a consumer whose messages the platform dead-letters itself
    /// after `maxDeliver` deliveries: a few above, so a failed dead-lettering is tried again.
    static func serverMaxDeliver(_ maxDeliver: Int) -> Int64 { Int64(maxDeliver + 3) }

    /// Creates the durable pull consumer (explicit acks), or brings an existing one's ack wait
    /// and delivery limit up to these (a configuration change must reach the server, or long
    /// steps would be redelivered while running).
    public func ensureConsumer(stream: String, durable: String, filterSubject: String, ackWait: Duration, maxDeliver: Int) throws {
        var code = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var exists = false
        if js_GetConsumerInfo(&info, jetStream, stream, durable, nil, &code) == NATS_OK, let current = info {
            exists = true
            let config = current.pointee.Config.pointee
            let upToDate = config.AckWait == ackWait.inNanoseconds && config.MaxDeliver == Self.serverMaxDeliver(maxDeliver)
            jsConsumerInfo_Destroy(info)
            if upToDate { return }
        }
        var config = jsConsumerConfig()
        jsConsumerConfig_Init(&config)
        code = jsErrCode(rawValue: 0)
        try durable.withCString { cDurable in
            try filterSubject.withCString { cFilter in
                config.Durable = cDurable
                config.AckPolicy = js_AckExplicit
                config.AckWait = ackWait.inNanoseconds
                config.MaxDeliver = Self.serverMaxDeliver(maxDeliver)
                config.FilterSubject = cFilter
                config.MaxAckPending = 10_000
                if exists {
                    try NATSError.check(js_UpdateConsumer(&info, jetStream, stream, &config, nil, &code), "update consumer \(durable)", code)
                    jsConsumerInfo_Destroy(info)
                    return
                }
                let status = js_AddConsumer(&info, jetStream, stream, &config, nil, &code)
                // JSConsumerNameExistErr / JSConsumerExistingActiveErr: another process made it meanwhile.
                if status != NATS_OK, code.rawValue == 10013 || code.rawValue == 10105 { return }
                try NATSError.check(status, "add consumer \(durable)", code)
                jsConsumerInfo_Destroy(info)
            }
        }
    }

    /// Deletes a durable consumer.
    public func deleteConsumer(stream: String, durable: String) throws {
        var code = jsErrCode(rawValue: 0)
        try NATSError.check(js_DeleteConsumer(jetStream, stream, durable, nil, &code), "delete consumer \(durable)", code)
    }

    /// A consumer's backlog: messages not yet delivered, and delivered but not acknowledged.
    public func consumerBacklog(stream: String, durable: String) throws -> (pending: UInt64, unacknowledged: Int, redelivered: Int) {
        var code = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        try NATSError.check(js_GetConsumerInfo(&info, jetStream, stream, durable, nil, &code), "consumer info \(durable)", code)
        defer { jsConsumerInfo_Destroy(info) }
        let value = info!.pointee
        return (value.NumPending, Int(value.NumAckPending), Int(value.NumRedelivered))
    }

    /// Number of messages a stream holds.
    public func streamMessageCount(_ stream: String) throws -> UInt64 {
        var code = jsErrCode(rawValue: 0)
        var info: UnsafeMutablePointer<jsStreamInfo>?
        try NATSError.check(js_GetStreamInfo(&info, jetStream, stream, nil, &code), "stream info \(stream)", code)
        defer { jsStreamInfo_Destroy(info) }
        return info!.pointee.State.Msgs
    }

    /// Publishes into a stream and waits for the server's acknowledgement. A `messageID` seen in
    /// the stream's duplicate window (2 minutes) is stored once.
    @discardableResult
    public func publishPersistent(_ subject: String, _ payload: [UInt8], messageID: String? = nil,
                                  headers: [String: String] = [:]) async throws -> (sequence: UInt64, duplicate: Bool) {
        try await offload { try self.publishPersistentNow(subject, payload, messageID: messageID, headers: headers) }
    }

    private func publishPersistentNow(_ subject: String, _ payload: [UInt8], messageID: String?,
                                      headers: [String: String]) throws -> (sequence: UInt64, duplicate: Bool) {
        var message: OpaquePointer?
        try payload.withUnsafeBytes { bytes in
            try NATSError.check(natsMsg_Create(&message, subject, nil, bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                                               Int32(bytes.count)), "message \(subject)")
        }
        defer { natsMsg_Destroy(message) }
        for (key, value) in headers {
            try NATSError.check(natsMsgHeader_Set(message, key, value), "header \(key)")
        }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        var ack: UnsafeMutablePointer<jsPubAck>?
        var code = jsErrCode(rawValue: 0)
        let status: natsStatus = if let messageID {
            messageID.withCString { id in
                options.MsgId = id
                return js_PublishMsg(&ack, jetStream, message, &options, &code)
            }
        } else {
            js_PublishMsg(&ack, jetStream, message, &options, &code)
        }
        try NATSError.check(status, "JetStream publish \(subject)", code)
        defer { jsPubAck_Destroy(ack) }
        return (ack!.pointee.Sequence, ack!.pointee.Duplicate)
    }

    /// Binds to an existing durable pull consumer.
    public func pullSubscription(stream: String, durable: String, filterSubject: String) throws -> PullSubscription {
        var options = jsSubOptions()
        jsSubOptions_Init(&options)
        var subscription: OpaquePointer?
        var code = jsErrCode(rawValue: 0)
        try stream.withCString { cStream in
            try durable.withCString { cDurable in
                options.Stream = cStream
                options.Consumer = cDurable
                options.ManualAck = true
                try NATSError.check(js_PullSubscribe(&subscription, jetStream, filterSubject, cDurable, nil, &options, &code),
                                    "pull subscribe \(durable)", code)
            }
        }
        return PullSubscription(SubscriptionHandle(subscription!, connection: self), name: durable)
    }
}

/// A message from a core subscription (copied out of libnats).
public struct NATSMessage: Sendable {
    public var subject: String
    public var payload: [UInt8]

    init(taking message: OpaquePointer) {
        subject = String(cString: natsMsg_GetSubject(message))
        let count = Int(natsMsg_GetDataLength(message))
        payload = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: natsMsg_GetData(message), count: count))
        natsMsg_Destroy(message)
    }
}

/// A libnats subscription shared by the thread that reads it, whoever stops it, and the
/// messages it delivered (an acknowledgement goes through the message's subscription). The C
/// object is destroyed when the last of them lets go; it keeps its connection alive until then.
final class SubscriptionHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    private let connection: NATSConnection
    private let state = Mutex((stopped: false, unsubscribed: false))

    init(_ pointer: OpaquePointer, connection: NATSConnection) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit {
        stop()
        natsSubscription_Destroy(pointer)
    }

    var isStopped: Bool { state.withLock { $0.stopped } }

    /// Ends the interest (no more messages); the object stays valid for messages still held.
    func stop() {
        let first = state.withLock { s -> Bool in
            defer { s.stopped = true; s.unsubscribed = true }
            return !s.unsubscribed
        }
        if first { natsSubscription_Unsubscribe(pointer) }
    }
}

/// A durable pull consumer: fetch batches, then acknowledge each message.
public final class PullSubscription: @unchecked Sendable {
    private let handle: SubscriptionHandle
    private let queue: DispatchQueue

    init(_ handle: SubscriptionHandle, name: String) {
        self.handle = handle
        queue = DispatchQueue(label: "nats-pull \(name)")
    }

    /// Up to `batch` messages, waiting at most `timeout` for the first; empty on timeout.
    public func fetch(batch: Int, timeout: Duration) async throws -> [JetStreamMessage] {
        let handle = handle
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                var list = natsMsgList()
                var code = jsErrCode(rawValue: 0)
                let status = natsSubscription_Fetch(&list, handle.pointer, Int32(batch), timeout.inMilliseconds, &code)
                if status == NATS_TIMEOUT {
                    continuation.resume(returning: [])
                    return
                }
                do {
                    try NATSError.check(status, "fetch", code)
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                var messages: [JetStreamMessage] = []
                for index in 0..<Int(list.Count) {
                    if let message = list.Msgs[index] {
                        messages.append(JetStreamMessage(taking: message, subscription: handle))
                        list.Msgs[index] = nil
                    }
                }
                natsMsgList_Destroy(&list)
                continuation.resume(returning: messages)
            }
        }
    }

    /// Stops the subscription (the durable consumer stays on the server). Messages already
    /// fetched can still be acknowledged.
    public func close() { handle.stop() }
}

/// A message delivered by a pull consumer; acknowledge it once. Its acknowledgements are
/// serialised (libnats keeps the message's state in the message) and run off Swift's
/// cooperative threads.
public final class JetStreamMessage: @unchecked Sendable {
    private let message: OpaquePointer
    private let subscription: SubscriptionHandle
    private let lock = Mutex(())
    public let subject: String
    public let payload: [UInt8]
    /// How many times the server has delivered this message (1 on the first delivery).
    public let deliveryCount: Int
    /// When the server stored it (nanoseconds since 1970, the server's clock).
    public let storedAtNanoseconds: Int64?
    /// The message's headers that the platform sets.
    public let headers: [String: String]

    init(taking message: OpaquePointer, subscription: SubscriptionHandle) {
        self.message = message
        self.subscription = subscription
        subject = String(cString: natsMsg_GetSubject(message))
        let count = Int(natsMsg_GetDataLength(message))
        payload = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: natsMsg_GetData(message), count: count))
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        if natsMsg_GetMetaData(&meta, message) == NATS_OK, let meta {
            deliveryCount = Int(meta.pointee.NumDelivered)
            storedAtNanoseconds = meta.pointee.Timestamp
            jsMsgMetaData_Destroy(meta)
        } else {
            deliveryCount = 1
            storedAtNanoseconds = nil
        }
        var found: [String: String] = [:]
        for key in ["Conclave-Run", "Conclave-Step", "Conclave-Origin", "Conclave-Deliveries", "Conclave-Error"] {
            var value: UnsafePointer<CChar>?
            if natsMsgHeader_Get(message, key, &value) == NATS_OK, let value { found[key] = String(cString: value) }
        }
        headers = found
    }

    deinit { natsMsg_Destroy(message) }

    private func perform(_ operation: String, _ call: @escaping @Sendable (OpaquePointer) -> natsStatus) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.lock.withLock { _ in try NATSError.check(call(self.message), operation) } })
            }
        }
    }

    /// Done: the server deletes it from a work-queue stream (waits for the server's confirmation).
    public func ack() async throws { try await perform("ack") { natsMsg_AckSync($0, nil, nil) } }

    /// Not done: redeliver after `delay`.
    public func nak(delay: Duration = .zero) async throws {
        let milliseconds = delay.inMilliseconds
        try await perform("nak") { milliseconds > 0 ? natsMsg_NakWithDelay($0, milliseconds, nil) : natsMsg_Nak($0, nil) }
    }

    /// Never redeliver.
    public func term() async throws { try await perform("term") { natsMsg_Term($0, nil) } }

    /// Still working: restarts the server's ack-wait timer.
    public func inProgress() async throws { try await perform("in progress") { natsMsg_InProgress($0, nil) } }
}
