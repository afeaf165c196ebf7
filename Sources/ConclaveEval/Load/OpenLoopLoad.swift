import Foundation
import Synchronization

/// Open-loop load: requests arrive as a Poisson process at `rate` per second, whether or not
/// earlier ones have finished, for `duration`. Each latency counts from the request's scheduled
/// arrival, so a server that falls behind is charged for the wait (no coordinated omission).
/// Arrivals come from a seeded generator: the same seed gives the same schedule.
public enum OpenLoopLoad {
    /// Runs the arrivals; at most `maxInFlight` requests run at once, and an arrival beyond that
    /// is counted as sent and failed (the client gave up), as a saturated real client would.
    public static func run(rate: Double, duration: Duration, seed: UInt64 = 42, maxInFlight: Int = 1024,
                           recorder: LoadRecorder = LoadRecorder(),
                           _ request: @escaping @Sendable (_ index: Int) async -> ClosedLoopLoad.Outcome) async -> ClosedLoopLoad.Result {
        let clock = ContinuousClock()
        let start = clock.now
        let inFlight = InFlight()
        await withDiscardingTaskGroup { group in
            for (index, offset) in arrivals(rate: rate, duration: duration, seed: seed).enumerated() {
                let due = start + offset
                if clock.now < due { try? await Task.sleep(until: due, clock: clock) }
                let admitted = inFlight.count.withLock { count -> Bool in
                    guard count < maxInFlight else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    recorder.record(.init(ok: false), latency: .zero)
                    continue
                }
                group.addTask {
                    let outcome = await request(index)
                    recorder.record(outcome, latency: clock.now - due)
                    inFlight.count.withLock { $0 -= 1 }
                }
            }
        }
        var result = recorder.result
        result.elapsed = max(duration, clock.now - start)
        return result
    }

    private final class InFlight: Sendable {
        let count = Mutex(0)
    }

    /// Arrival offsets of a Poisson process at `rate` per second over `duration`.
    public static func arrivals(rate: Double, duration: Duration, seed: UInt64) -> [Duration] {
        guard rate > 0 else { return [] }
        var generator = SplitMix64(seed: seed)
        let limit = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        var offsets: [Duration] = []
        var time = 0.0
        while true {
            // Exponential inter-arrival time with mean 1/rate.
            time += -log(Double.random(in: Double.ulpOfOne..<1, using: &generator)) / rate
            guard time < limit else { return offsets }
            offsets.append(.nanoseconds(Int64(time * 1e9)))
        }
    }
}

/// Results shared by the tasks of a load, readable while it runs (the live progress line).
public final class LoadRecorder: Sendable {
    private let state = Mutex(ClosedLoopLoad.Result())

    /// Creates an empty recorder.
    public init() {}

    /// Counts one finished request with its latency.
    public func record(_ outcome: ClosedLoopLoad.Outcome, latency: Duration) {
        state.withLock { $0.record(outcome, latency: latency) }
    }

    /// Everything recorded so far.
    public var result: ClosedLoopLoad.Result { state.withLock { $0 } }

    /// Requests finished, failed so far, and the median latency of the successes (ms).
    public var snapshot: (sent: Int, errors: Int, p50: Double) {
        state.withLock { ($0.sent, $0.errors, $0.latency.milliseconds(atPercentile: 50)) }
    }
}
