/// The scaling rule of local replicas, as a value: fed the pool's load at each tick, it says
/// whether to add a replica, remove one, or hold. It uses the signal admission control uses,
/// outstanding calls (in flight plus queued) per replica.
///
/// - Up: outstanding above `targetOutstanding × replicas` for a whole `scaleUpWindow`, and fewer
///   than `maxReplicas`.
/// - Down: one replica fewer would still be at or under the target (outstanding ≤
///   `targetOutstanding × (replicas − 1)`) for a whole `scaleDownCooldown`, the last change is at
///   least that long ago, and more than `minReplicas`.
public struct Autoscaler: Sendable {
    /// Scaling settings.
    public struct Configuration: Sendable, Hashable {
        /// Fewest replicas.
        public var minReplicas: Int
        /// Most replicas.
        public var maxReplicas: Int
        /// Outstanding calls per replica aimed for.
        public var targetOutstanding: Double
        /// How long the load must stay above target before scaling up.
        public var scaleUpWindow: Duration
        /// How long the load must stay low, and the last change be ago, before scaling down.
        public var scaleDownCooldown: Duration

        /// Creates settings.
        public init(minReplicas: Int = 1, maxReplicas: Int = 2, targetOutstanding: Double = 4,
                    scaleUpWindow: Duration = .seconds(10), scaleDownCooldown: Duration = .seconds(60)) {
            self.minReplicas = minReplicas
            self.maxReplicas = maxReplicas
            self.targetOutstanding = targetOutstanding
            self.scaleUpWindow = scaleUpWindow
            self.scaleDownCooldown = scaleDownCooldown
        }
    }

    /// What to do now.
    public enum Decision: String, Sendable, Hashable, Codable {
        case hold
        case scaleUp = "scale_up"
        case scaleDown = "scale_down"
    }

    /// The settings.
    public let configuration: Configuration
    private var highSince: ContinuousClock.Instant?
    private var lowSince: ContinuousClock.Instant?
    private var lastChange: ContinuousClock.Instant?

    /// Creates a scaler; `started` is when the current replicas were started (the first cooldown
    /// counts from it).
    public init(configuration: Configuration, started: ContinuousClock.Instant = .now) {
        self.configuration = configuration
        lastChange = started
    }

    /// Observes `outstanding` calls over `replicas` (desired replicas, counting those still
    /// starting, so one burst does not start several) at `now`.
    public mutating func observe(outstanding: Int, replicas: Int, now: ContinuousClock.Instant = .now) -> Decision {
        let target = configuration.targetOutstanding
        if replicas < configuration.minReplicas { return record(.scaleUp, now) }
        if replicas > configuration.maxReplicas { return record(.scaleDown, now) }
        if replicas < configuration.maxReplicas, Double(outstanding) > target * Double(replicas) {
            lowSince = nil
            let since = highSince ?? now
            highSince = since
            return now - since >= configuration.scaleUpWindow ? record(.scaleUp, now) : .hold
        }
        highSince = nil
        if replicas > configuration.minReplicas, Double(outstanding) <= target * Double(replicas - 1) {
            let since = lowSince ?? now
            lowSince = since
            let quietLongEnough = now - since >= configuration.scaleDownCooldown
            let changedLongAgo = lastChange.map { now - $0 >= configuration.scaleDownCooldown } ?? true
            return quietLongEnough && changedLongAgo ? record(.scaleDown, now) : .hold
        }
        lowSince = nil
        return .hold
    }

    private mutating func record(_ decision: Decision, _ now: ContinuousClock.Instant) -> Decision {
        highSince = nil
        lowSince = nil
        lastChange = now
        return decision
    }
}
