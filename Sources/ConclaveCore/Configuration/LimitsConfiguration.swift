/// Rate limits and token quotas (`limits`), per principal (user) and per tenant. Each is a token
/// bucket kept in the store, so every gateway sharing a PostgreSQL database shares the buckets.
/// 0 turns a limit off; all are off by default.
public struct LimitsConfiguration: Sendable, Codable, Hashable {
    /// Requests one user may make per minute (bursts up to this many). Default 0 (off).
    public var requestsPerMinute: Double
    /// Requests one tenant's users together may make per minute. Default 0 (off).
    public var tenantRequestsPerMinute: Double
    /// Model tokens (prompt plus completion) one user may use per day, refilled continuously.
    /// A request is admitted while the balance is positive and charged what it used. Default 0 (off).
    public var tokensPerDay: Double
    /// Model tokens one tenant's users together may use per day. Default 0 (off).
    public var tenantTokensPerDay: Double

    /// Creates limit settings.
    public init(requestsPerMinute: Double = 0, tenantRequestsPerMinute: Double = 0, tokensPerDay: Double = 0,
                tenantTokensPerDay: Double = 0) {
        self.requestsPerMinute = requestsPerMinute
        self.tenantRequestsPerMinute = tenantRequestsPerMinute
        self.tokensPerDay = tokensPerDay
        self.tenantTokensPerDay = tenantTokensPerDay
    }

    /// True when any limit is on.
    public var isEnabled: Bool {
        requestsPerMinute > 0 || tenantRequestsPerMinute > 0 || tokensPerDay > 0 || tenantTokensPerDay > 0
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case requestsPerMinute = "requests_per_minute"
        case tenantRequestsPerMinute = "tenant_requests_per_minute"
        case tokensPerDay = "tokens_per_day"
        case tenantTokensPerDay = "tenant_tokens_per_day"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = LimitsConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestsPerMinute = try c.value(.requestsPerMinute, default: d.requestsPerMinute)
        tenantRequestsPerMinute = try c.value(.tenantRequestsPerMinute, default: d.tenantRequestsPerMinute)
        tokensPerDay = try c.value(.tokensPerDay, default: d.tokensPerDay)
        tenantTokensPerDay = try c.value(.tenantTokensPerDay, default: d.tenantTokensPerDay)
    }

    func validate() throws {
        for key in CodingKeys.allCases {
            let value: Double = switch key {
            case .requestsPerMinute: requestsPerMinute
            case .tenantRequestsPerMinute: tenantRequestsPerMinute
            case .tokensPerDay: tokensPerDay
            case .tenantTokensPerDay: tenantTokensPerDay
            }
            guard value >= 0, value.isFinite else {
                throw ConfigurationError(key: "limits.\(key.stringValue)", value: String(value), expected: "0 (off) or a positive number")
            }
        }
    }
}
