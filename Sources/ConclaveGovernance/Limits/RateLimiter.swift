import ConclaveCore
import ConclaveStorage
import Foundation
import Logging
import Metrics

/// Rate limits and token quotas (`limits`) per user and per tenant, as token buckets in the store
/// (shared by every gateway on one PostgreSQL database).
///
/// Before a request: both token quotas must have a positive balance, then the tenant's and the
/// user's request buckets must each give one request; the first that cannot answers 429 with
/// `Retry-After`, and what the limits before it took is given back. After a request: its model tokens are charged to both quotas (a balance may go
/// negative, which holds back the next requests until it refills). A store failure admits the
/// request and logs an error: an outage of the limiter must not become an outage of the API.
public struct RateLimiter: Sendable {
    public let configuration: LimitsConfiguration
    private let store: any RateLimitStore
    private let logger: Logger
    private let now: @Sendable () -> Double
    private let refusals: [String: Counter]

    public init(configuration: LimitsConfiguration, store: any RateLimitStore, logger: Logger,
                now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.now = now
        var refusals: [String: Counter] = [:]
        for scope in ["user", "tenant"] {
            for kind in ["requests", "tokens"] {
                refusals["\(scope).\(kind)"] = Counter(label: "conclave_rate_limited_total", dimensions: [("scope", scope), ("limit", kind)])
            }
        }
        self.refusals = refusals
    }

    private struct Bucket {
        var key: String
        var scope: String
        var kind: String
        var perSecond: Double
        var capacity: Double
        var description: String
    }

    private func buckets(for principal: Principal) -> (quotas: [Bucket], requests: [Bucket]) {
        let user = "\(principal.tenant)/\(principal.userID)"
        var quotas: [Bucket] = []
        var requests: [Bucket] = []
        let c = configuration
        if c.tokensPerDay > 0 {
            quotas.append(Bucket(key: "tokens:user:\(user)", scope: "user", kind: "tokens", perSecond: c.tokensPerDay / 86400,
                                 capacity: c.tokensPerDay, description: "\(c.tokensPerDay.formatted()) tokens per day for each user"))
        }
        if c.tenantTokensPerDay > 0 {
            quotas.append(Bucket(key: "tokens:tenant:\(principal.tenant)", scope: "tenant", kind: "tokens",
                                 perSecond: c.tenantTokensPerDay / 86400, capacity: c.tenantTokensPerDay,
                                 description: "\(c.tenantTokensPerDay.formatted()) tokens per day for the tenant"))
        }
        if c.tenantRequestsPerMinute > 0 {
            requests.append(Bucket(key: "requests:tenant:\(principal.tenant)", scope: "tenant", kind: "requests",
                                   perSecond: c.tenantRequestsPerMinute / 60, capacity: c.tenantRequestsPerMinute,
                                   description: "\(c.tenantRequestsPerMinute.formatted()) requests per minute for the tenant"))
        }
        if c.requestsPerMinute > 0 {
            requests.append(Bucket(key: "requests:user:\(user)", scope: "user", kind: "requests", perSecond: c.requestsPerMinute / 60,
                                   capacity: c.requestsPerMinute,
                                   description: "\(c.requestsPerMinute.formatted()) requests per minute for each user"))
        }
        return (quotas, requests)
    }

    /// Throws `rateLimited` (429, with the seconds until a retry can succeed) when a limit is spent.
    public func admit(_ principal: Principal) async throws {
        guard configuration.isEnabled else { return }
        let (quotas, requests) = buckets(for: principal)
        for bucket in quotas {
            try await take(bucket, cost: 0, principal: principal)
        }
        var taken: [Bucket] = []
        do {
            for bucket in requests {
                try await take(bucket, cost: 1, principal: principal)
                taken.append(bucket)
            }
        } catch {
            // A refused request costs nothing: give back what the limits before it took.
            for bucket in taken { await charge(bucket, -1) }
            throw error
        }
    }

    /// Charges the tokens a request used to the user's and the tenant's quotas.
    public func charge(_ principal: Principal, tokens: Int) async {
        guard tokens > 0, configuration.tokensPerDay > 0 || configuration.tenantTokensPerDay > 0 else { return }
        for bucket in buckets(for: principal).quotas { await charge(bucket, Double(tokens)) }
    }

    private func charge(_ bucket: Bucket, _ cost: Double) async {
        do {
            _ = try await store.take(from: bucket.key, .init(capacity: bucket.capacity, refillPerSecond: bucket.perSecond, cost: cost,
                                                             mode: .charge), now: now())
        } catch {
            logger.error("rate limit bucket could not be charged", metadata: ["key": "\(bucket.key)", "cost": "\(cost)", "error": "\(error)"])
        }
    }

    private func take(_ bucket: Bucket, cost: Double, principal: Principal) async throws {
        let outcome: TokenBucket.Outcome
        do {
            outcome = try await store.take(from: bucket.key, .init(capacity: bucket.capacity, refillPerSecond: bucket.perSecond,
                                                                   cost: cost, mode: .admit), now: now())
        } catch {
            logger.error("rate limit could not be checked; the request is admitted", metadata: ["key": "\(bucket.key)", "error": "\(error)"])
            return
        }
        guard !outcome.allowed else { return }
        refusals["\(bucket.scope).\(bucket.kind)"]?.increment()
        let seconds = Int(min(outcome.retryAfter.rounded(.up), 86400))
        logger.notice("rate limited", metadata: ["user": "\(principal.userID)", "tenant": "\(principal.tenant)", "limit": "\(bucket.key)",
                                                 "retry_after": "\(seconds)"])
        let what = bucket.kind == "tokens" ? "Token quota exhausted" : "Rate limit reached"
        throw ConclaveError(.rateLimited, "\(what): \(bucket.description). Retry after \(max(1, seconds)) seconds.",
                            retryAfterSeconds: max(1, seconds))
    }
}
