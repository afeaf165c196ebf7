import ConclaveCore
import Synchronization

/// The embedded ``MessageBus``: subscribers are in-process async streams, keyed by run id.
public final class InProcessMessageBus: MessageBus {
    private struct Subscriber {
        var id: Int
        var continuation: AsyncStream<RunEvent>.Continuation
    }

    private let subscribers = Mutex<(nextID: Int, byRun: [String: [Subscriber]])>((0, [:]))

    /// Creates an empty bus.
    public init() {}

    public func publish(_ event: RunEvent) {
        let targets = subscribers.withLock { state -> [Subscriber] in
            guard let list = state.byRun[event.runID] else { return [] }
            if event.kind == .runCompleted || event.kind == .runFailed { state.byRun[event.runID] = nil }
            return list
        }
        for subscriber in targets {
            subscriber.continuation.yield(event)
            if event.kind == .runCompleted || event.kind == .runFailed { subscriber.continuation.finish() }
        }
    }

    public func subscribe(toRun runID: String) -> AsyncStream<RunEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: RunEvent.self, bufferingPolicy: .unbounded)
        let id = subscribers.withLock { state -> Int in
            state.nextID += 1
            state.byRun[runID, default: []].append(Subscriber(id: state.nextID, continuation: continuation))
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { state in
                state.byRun[runID]?.removeAll { $0.id == id }
                if state.byRun[runID]?.isEmpty == true { state.byRun[runID] = nil }
            }
        }
        return stream
    }

    /// Number of runs with live subscribers (for tests and metrics).
    public var subscribedRunCount: Int { subscribers.withLock { $0.byRun.count } }
}
