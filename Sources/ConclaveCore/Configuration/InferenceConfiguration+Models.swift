/// A model served next to the default one: one or more OpenAI-compatible endpoints (vLLM,
/// Ollama, another llama-server, a hosted API) behind one name.
///
/// ```yaml
/// inference:
///   models:
///     - name: qwen
///       endpoints: [http://10.0.0.5:8000/v1, http://10.0.0.6:8000/v1]
///       model: Qwen/Qwen2.5-7B-Instruct
///       api_key_env: QWEN_API_KEY
///       embeddings: false
/// ```
public struct NamedModelConfiguration: Sendable, Codable, Hashable {
    /// The model id clients send in `model` (and `GET /v1/models` lists).
    public var name: String
    /// Base URLs of the replicas, each including `/v1`.
    public var endpoints: [String]
    /// The model name sent upstream; empty sends `name`.
    public var model: String
    /// Name of the environment variable that holds the API key (never the key itself).
    public var apiKeyEnv: String
    /// Calls one endpoint serves at once; more wait in the pool's bounded queue. Default 8.
    public var maxInFlight: Int
    /// Path polled by the active health check, relative to the endpoint's host (`/health` for
    /// llama.cpp and vLLM); empty turns active checks off (hosted APIs). Default `/health`.
    public var healthPath: String
    /// The endpoints serve `/v1/chat/completions`. Default true.
    public var chat: Bool
    /// The endpoints serve `/v1/embeddings`, which Conclave then offers under `name`. Default false.
    public var embeddings: Bool

    /// Creates a named model.
    public init(name: String, endpoints: [String], model: String = "", apiKeyEnv: String = "", maxInFlight: Int = 8,
                healthPath: String = "/health", chat: Bool = true, embeddings: Bool = false) {
        self.name = name
        self.endpoints = endpoints
        self.model = model
        self.apiKeyEnv = apiKeyEnv
        self.maxInFlight = maxInFlight
        self.healthPath = healthPath
        self.chat = chat
        self.embeddings = embeddings
    }

    /// The model name sent upstream.
    public var upstreamModel: String { model.isEmpty ? name : model }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, endpoints, model
        case apiKeyEnv = "api_key_env"
        case maxInFlight = "max_in_flight"
        case healthPath = "health_path"
        case chat, embeddings
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NamedModelConfiguration(name: "", endpoints: [])
        name = try c.decode(String.self, forKey: .name)
        endpoints = try c.decode([String].self, forKey: .endpoints)
        model = try c.value(.model, default: d.model)
        apiKeyEnv = try c.value(.apiKeyEnv, default: d.apiKeyEnv)
        maxInFlight = try c.value(.maxInFlight, default: d.maxInFlight)
        healthPath = try c.value(.healthPath, default: d.healthPath)
        chat = try c.value(.chat, default: d.chat)
        embeddings = try c.value(.embeddings, default: d.embeddings)
    }

    func validate(at index: Int) throws {
        let key = "inference.models[\(index)]"
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:/".contains($0) }) else {
            throw ConfigurationError(key: key + ".name", value: name, expected: "a model id of letters, digits and - _ . : /")
        }
        guard !endpoints.isEmpty else {
            throw ConfigurationError(key: key + ".endpoints", value: nil, expected: "at least one base URL such as http://127.0.0.1:8000/v1")
        }
        for endpoint in endpoints where !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw ConfigurationError(key: key + ".endpoints", value: endpoint, expected: "http(s) base URLs such as http://127.0.0.1:8000/v1")
        }
        guard (1...1024).contains(maxInFlight) else {
            throw ConfigurationError(key: key + ".max_in_flight", value: String(maxInFlight), expected: "an integer from 1 to 1024")
        }
        guard healthPath.isEmpty || healthPath.hasPrefix("/") else {
            throw ConfigurationError(key: key + ".health_path", value: healthPath, expected: "a path starting with / (or empty: no active check)")
        }
        guard chat || embeddings else {
            throw ConfigurationError(key: key + ".chat", value: "false", expected: "chat or embeddings (or both) true")
        }
    }
}

/// The autoscaler of local `llama-server` replicas (provider `embedded`).
///
/// It watches the same signal admission control uses: outstanding calls (in flight plus queued)
/// per ready replica. Above `target_outstanding` for a whole `scale_up_window_seconds`, it starts
/// a replica (up to `max_replicas`); when one replica fewer would still be at or under the target
/// for a whole `scale_down_cooldown_seconds`, it drains the least-loaded one and stops it (down to
/// `min_replicas`).
public struct AutoscaleConfiguration: Sendable, Codable, Hashable {
    /// Off by default: `inference.replicas` processes run.
    public var enabled: Bool
    /// Fewest replicas. Default 1.
    public var minReplicas: Int
    /// Most replicas. Default 2.
    public var maxReplicas: Int
    /// Outstanding calls per replica the autoscaler aims for. Default: `parallel_slots`.
    public var targetOutstanding: Double
    /// How long the load must stay above the target before a replica is added. Default 10 s.
    public var scaleUpWindowSeconds: Double
    /// How long the load must stay low (and since the last change) before a replica is removed. Default 60 s.
    public var scaleDownCooldownSeconds: Double
    /// How often the load is sampled. Default 0.5 s.
    public var intervalSeconds: Double

    /// Creates autoscaler settings; `targetOutstanding` 0 means `parallel_slots`.
    public init(enabled: Bool = false, minReplicas: Int = 1, maxReplicas: Int = 2, targetOutstanding: Double = 0,
                scaleUpWindowSeconds: Double = 10, scaleDownCooldownSeconds: Double = 60, intervalSeconds: Double = 0.5) {
        self.enabled = enabled
        self.minReplicas = minReplicas
        self.maxReplicas = maxReplicas
        self.targetOutstanding = targetOutstanding
        self.scaleUpWindowSeconds = scaleUpWindowSeconds
        self.scaleDownCooldownSeconds = scaleDownCooldownSeconds
        self.intervalSeconds = intervalSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case enabled
        case minReplicas = "min_replicas"
        case maxReplicas = "max_replicas"
        case targetOutstanding = "target_outstanding"
        case scaleUpWindowSeconds = "scale_up_window_seconds"
        case scaleDownCooldownSeconds = "scale_down_cooldown_seconds"
        case intervalSeconds = "interval_seconds"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoscaleConfiguration()
        enabled = try c.value(.enabled, default: d.enabled)
        minReplicas = try c.value(.minReplicas, default: d.minReplicas)
        maxReplicas = try c.value(.maxReplicas, default: d.maxReplicas)
        targetOutstanding = try c.value(.targetOutstanding, default: d.targetOutstanding)
        scaleUpWindowSeconds = try c.value(.scaleUpWindowSeconds, default: d.scaleUpWindowSeconds)
        scaleDownCooldownSeconds = try c.value(.scaleDownCooldownSeconds, default: d.scaleDownCooldownSeconds)
        intervalSeconds = try c.value(.intervalSeconds, default: d.intervalSeconds)
    }

    func validate() throws {
        guard (1...16).contains(minReplicas), (minReplicas...16).contains(maxReplicas) else {
            throw ConfigurationError(key: "inference.autoscale.max_replicas", value: "\(minReplicas)...\(maxReplicas)",
                                     expected: "1 ≤ min_replicas ≤ max_replicas ≤ 16")
        }
        guard targetOutstanding >= 0 else {
            throw ConfigurationError(key: "inference.autoscale.target_outstanding", value: String(targetOutstanding),
                                     expected: "a positive number (0: parallel_slots)")
        }
        guard scaleUpWindowSeconds >= 0, scaleDownCooldownSeconds >= 0, intervalSeconds > 0 else {
            throw ConfigurationError(key: "inference.autoscale.interval_seconds", value: String(intervalSeconds),
                                     expected: "a positive interval and non-negative window and cooldown")
        }
    }
}
