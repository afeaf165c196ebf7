/// Token buckets for rate limits and token quotas, kept in the database so that every gateway
/// sharing it shares the buckets. Each take is atomic: concurrent takes from one bucket, from one
/// process or several, never spend the same capacity twice.
public protocol RateLimitStore: Sendable {
    /// Takes `request.cost` from the bucket `key` after refilling it for the time since its last
    /// use (a bucket seen for the first time starts full). See ``TokenBucket`` for the rules.
    func take(from key: String, _ request: TokenBucket.Take, now: Double) async throws -> TokenBucket.Outcome
}

/// The token-bucket arithmetic both stores apply inside their transactions.
public enum TokenBucket {
    /// One take from a bucket.
    public struct Take: Sendable, Hashable {
        /// Most the bucket holds (the burst).
        public var capacity: Double
        /// Refill per second.
        public var refillPerSecond: Double
        /// What this take costs.
        public var cost: Double
        /// `admit`: take only when the bucket holds at least `cost` (a cost of 0 asks whether the
        /// balance is positive). `charge`: take `cost` whatever the balance (it may go negative,
        /// which delays the next admission): usage known only afterwards, such as tokens. A
        /// negative `charge` refunds, up to the capacity.
        public var mode: Mode

        public enum Mode: String, Sendable, Hashable { case admit, charge }

        public init(capacity: Double, refillPerSecond: Double, cost: Double, mode: Mode) {
            self.capacity = capacity
            self.refillPerSecond = refillPerSecond
            self.cost = cost
            self.mode = mode
        }
    }

    /// What a take did.
    public struct Outcome: Sendable, Hashable {
        /// False when an `admit` was refused.
        public var allowed: Bool
        /// The balance after the take.
        public var level: Double
        /// Seconds until an equal `admit` would succeed (0 when allowed).
        public var retryAfter: Double
    }

    /// Applies `take` to a bucket that held `level` at `updated` (nil: a new bucket), at `now`.
    /// Returns the outcome and the level to store.
    public static func apply(_ take: Take, level stored: Double?, updated: Double?, now: Double) -> Outcome {
        let elapsed = max(0, now - (updated ?? now))
        let level = min(take.capacity, (stored ?? take.capacity) + elapsed * take.refillPerSecond)
        switch take.mode {
        case .charge:
            // A negative cost refunds (an admission that a later limit refused), up to the capacity.
            return Outcome(allowed: true, level: min(take.capacity, level - take.cost), retryAfter: 0)
        case .admit:
            let enough = take.cost > 0 ? level >= take.cost : level > 0
            if enough { return Outcome(allowed: true, level: level - take.cost, retryAfter: 0) }
            // The time until the level reaches the cost (or just above 0 for a balance check).
            let missing = take.cost > 0 ? take.cost - level : -level + 1e-9
            let wait = take.refillPerSecond > 0 ? missing / take.refillPerSecond : .infinity
            return Outcome(allowed: false, level: level, retryAfter: wait)
        }
    }
}
