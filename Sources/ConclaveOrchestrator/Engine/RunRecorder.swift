import ConclaveCore
import ConclaveMessaging
import Synchronization

/// Numbers, keeps and publishes the events of one run. Safe to call from the run's concurrent steps.
final class RunRecorder: Sendable {
    let runID: String
    private let bus: any MessageBus
    private let state = Mutex<(sequence: Int, events: [RunEvent], tokensEmitted: Set<String>)>((0, [], []))

    init(runID: String, bus: any MessageBus) {
        self.runID = runID
        self.bus = bus
    }

    func record(_ kind: RunEvent.Kind, step: WorkflowStep? = nil, attempt: Int = 1, detail: String? = nil,
                durationMilliseconds: Double? = nil, usage: TokenUsage? = nil) {
        // Published under the lock: concurrent steps must not overtake each other's sequence
        // numbers on the bus (the bus never calls back into the recorder).
        state.withLock { state in
            let event = RunEvent(runID: runID, sequence: state.sequence, kind: kind, stepID: step?.id, role: step?.role,
                                 attempt: attempt, detail: detail, durationMilliseconds: durationMilliseconds, usage: usage)
            state.sequence += 1
            state.events.append(event)
            if kind == .tokenDelta, let id = step?.id { state.tokensEmitted.insert(id) }
            bus.publish(event)
        }
    }

    /// True once the step has streamed a token (it can then no longer be retried transparently).
    func hasEmittedTokens(_ stepID: String) -> Bool {
        state.withLock { $0.tokensEmitted.contains(stepID) }
    }

    /// The events recorded so far.
    var events: [RunEvent] { state.withLock { $0.events } }

    /// The events as stored in the event log: consecutive token deltas of one step are merged into
    /// one `token_delta` event (keeping the first one's sequence number), so a 300-token answer is
    /// one row, not 300. Subscribers on the bus still receive every delta.
    var eventsForLog: [RunEvent] {
        let all = events
        var merged: [RunEvent] = []
        merged.reserveCapacity(all.count)
        for event in all {
            if event.kind == .tokenDelta, var last = merged.last, last.kind == .tokenDelta, last.stepID == event.stepID,
               last.attempt == event.attempt {
                last.detail = (last.detail ?? "") + (event.detail ?? "")
                merged[merged.count - 1] = last
            } else {
                merged.append(event)
            }
        }
        return merged
    }
}
