/// The whole configuration of a Conclave process, decoded from YAML plus `CONCLAVE_*` overrides.
///
/// Every key has a documented default, so an empty file (or none) gives the embedded defaults:
/// one process, SQLite under `var/`, a supervised local `llama-server` with SmolLM2-135M.
public struct ConclaveConfiguration: Sendable, Codable, Hashable {
    /// HTTP server settings.
    public var server: ServerConfiguration
    /// Database settings.
    public var storage: StorageConfiguration
    /// Model backend settings.
    public var inference: InferenceConfiguration
    /// Retrieval settings.
    public var knowledge: KnowledgeConfiguration
    /// Workflow settings.
    public var workflows: WorkflowsConfiguration
    /// Logging settings.
    public var logging: LoggingConfiguration
    /// Authentication settings.
    public var auth: AuthConfiguration
    /// Governance settings.
    public var governance: GovernanceConfiguration
    /// Audit trail settings.
    public var audit: AuditConfiguration
    /// Agent-step messaging (in-process, or NATS JetStream in distributed mode).
    public var messaging: MessagingConfiguration
    /// Rate limits and token quotas.
    public var limits: LimitsConfiguration
    /// OpenTelemetry tracing (OTLP/HTTP).
    public var tracing: TracingConfiguration
    /// The web console.
    public var console: ConsoleConfiguration

    /// Creates a configuration; every argument defaults to the embedded default.
    public init(server: ServerConfiguration = .init(), storage: StorageConfiguration = .init(),
                inference: InferenceConfiguration = .init(), knowledge: KnowledgeConfiguration = .init(),
                workflows: WorkflowsConfiguration = .init(), logging: LoggingConfiguration = .init(),
                auth: AuthConfiguration = .init(), governance: GovernanceConfiguration = .init(),
                audit: AuditConfiguration = .init(), messaging: MessagingConfiguration = .init(),
                limits: LimitsConfiguration = .init(), tracing: TracingConfiguration = .init(),
                console: ConsoleConfiguration = .init()) {
        self.server = server
        self.storage = storage
        self.inference = inference
        self.knowledge = knowledge
        self.workflows = workflows
        self.logging = logging
        self.auth = auth
        self.governance = governance
        self.audit = audit
        self.messaging = messaging
        self.limits = limits
        self.tracing = tracing
        self.console = console
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case server, storage, inference, knowledge, workflows, logging, auth, governance, audit, messaging, limits, tracing, console
    }

    /// The top-level sections, as named in YAML and in `CONCLAVE_<SECTION>__<KEY>` variables.
    public static var sectionNames: [String] { CodingKeys.allCases.map(\.stringValue) }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        server = try c.value(.server, default: .init())
        storage = try c.value(.storage, default: .init())
        inference = try c.value(.inference, default: .init())
        knowledge = try c.value(.knowledge, default: .init())
        workflows = try c.value(.workflows, default: .init())
        logging = try c.value(.logging, default: .init())
        auth = try c.value(.auth, default: .init())
        governance = try c.value(.governance, default: .init())
        audit = try c.value(.audit, default: .init())
        messaging = try c.value(.messaging, default: .init())
        limits = try c.value(.limits, default: .init())
        tracing = try c.value(.tracing, default: .init())
        console = try c.value(.console, default: .init())
    }

    /// Checks ranges and combinations that the types alone cannot express.
    public func validate() throws {
        try Self.checkDurations(self, path: "")
        try server.validate()
        try storage.validate()
        try inference.validate()
        try knowledge.validate()
        try workflows.validate()
        try auth.validate()
        try governance.validate()
        try audit.validate()
        try messaging.validate()
        try limits.validate()
        try tracing.validate()
        try console.validate()
    }

    /// Longest duration any `…_seconds` setting may hold: a year.
    public static let maximumSeconds: Double = 365 * 24 * 3600

    /// Every `…Seconds` setting becomes a `Duration` of milliseconds, which traps on infinity, NaN
    /// and values past `Int64` (fuzz/FuzzConfiguration found `.inf` and `1e300` accepted): each
    /// must be a finite number of at most ``maximumSeconds``. The sections' own checks then bound
    /// them from below.
    static func checkDurations(_ value: Any, path: String) throws {
        for (index, child) in Mirror(reflecting: value).children.enumerated() {
            let name = child.label.map(snakeCase) ?? String(index)
            let key = path.isEmpty ? name : path + "." + name
            if let seconds = child.value as? Double {
                guard name.hasSuffix("_seconds") else { continue }
                guard seconds.isFinite, abs(seconds) <= maximumSeconds else {
                    throw ConfigurationError(key: key, value: String(seconds), expected: "a finite number of seconds, at most \(Int(maximumSeconds)) (a year)")
                }
            } else if !(child.value is String || child.value is Int || child.value is Bool) {
                try checkDurations(child.value, path: key)
            }
        }
    }

    /// `cacheTTLSeconds` → `cache_ttl_seconds`, as the configuration file spells the key.
    static func snakeCase(_ name: String) -> String {
        let characters = Array(name)
        var out = ""
        for (index, character) in characters.enumerated() {
            if character.isUppercase, index > 0 {
                let previousLower = characters[index - 1].isLowercase || characters[index - 1].isNumber
                let nextLower = index + 1 < characters.count && characters[index + 1].isLowercase
                if previousLower || (characters[index - 1].isUppercase && nextLower) { out += "_" }
            }
            out += character.lowercased()
        }
        return out
    }
}

/// HTTP server settings.
public struct ServerConfiguration: Sendable, Codable, Hashable {
    /// Address to bind. Default `127.0.0.1`.
    public var host: String
    /// Port to bind. Default `8080`.
    public var port: Int
    /// Largest accepted request body in bytes. Default 1 MiB.
    public var maxBodyBytes: Int
    /// How long SIGTERM waits for in-flight requests before cancelling them. Default 30 s.
    public var shutdownGraceSeconds: Double
    /// Upper bound on one chat request, end to end. Default 300 s.
    public var requestTimeoutSeconds: Double
    /// Most bytes of request headers (each field, and all together). Default 32 KiB.
    public var maxHeaderBytes: Int
    /// Most header fields in one request. Default 100.
    public var maxHeaderCount: Int
    /// Most messages in one chat request. Default 256.
    public var maxMessages: Int
    /// Largest `max_tokens` (or `max_completion_tokens`) a request may ask for. Default 4096.
    public var maxTokens: Int
    /// A connection that sends or receives nothing for this long is closed, which also bounds how
    /// long a client may take to send its headers. Default 60 s.
    public var idleTimeoutSeconds: Double
    /// A request body must arrive within this long of its headers, else 408. Default 30 s.
    public var bodyTimeoutSeconds: Double
    /// PEM certificate chain; with `tlsKeyFile`, the gateway speaks HTTPS only. Default none.
    public var tlsCertFile: String
    /// PEM private key of `tlsCertFile`. Default none.
    public var tlsKeyFile: String

    /// Creates server settings.
    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 1 << 20,
                shutdownGraceSeconds: Double = 30, requestTimeoutSeconds: Double = 300, maxHeaderBytes: Int = 32 * 1024,
                maxHeaderCount: Int = 100, maxMessages: Int = 256, maxTokens: Int = 4096, idleTimeoutSeconds: Double = 60,
                bodyTimeoutSeconds: Double = 30, tlsCertFile: String = "", tlsKeyFile: String = "") {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.shutdownGraceSeconds = shutdownGraceSeconds
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxMessages = maxMessages
        self.maxTokens = maxTokens
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.bodyTimeoutSeconds = bodyTimeoutSeconds
        self.tlsCertFile = tlsCertFile
        self.tlsKeyFile = tlsKeyFile
    }

    /// True when the gateway serves HTTPS.
    public var usesTLS: Bool { !tlsCertFile.isEmpty }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port
        case maxBodyBytes = "max_body_bytes"
        case shutdownGraceSeconds = "shutdown_grace_seconds"
        case requestTimeoutSeconds = "request_timeout_seconds"
        case maxHeaderBytes = "max_header_bytes"
        case maxHeaderCount = "max_header_count"
        case maxMessages = "max_messages"
        case maxTokens = "max_tokens"
        case idleTimeoutSeconds = "idle_timeout_seconds"
        case bodyTimeoutSeconds = "body_timeout_seconds"
        case tlsCertFile = "tls_cert_file"
        case tlsKeyFile = "tls_key_file"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = ServerConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.value(.host, default: d.host)
        port = try c.value(.port, default: d.port)
        maxBodyBytes = try c.value(.maxBodyBytes, default: d.maxBodyBytes)
        shutdownGraceSeconds = try c.value(.shutdownGraceSeconds, default: d.shutdownGraceSeconds)
        requestTimeoutSeconds = try c.value(.requestTimeoutSeconds, default: d.requestTimeoutSeconds)
        maxHeaderBytes = try c.value(.maxHeaderBytes, default: d.maxHeaderBytes)
        maxHeaderCount = try c.value(.maxHeaderCount, default: d.maxHeaderCount)
        maxMessages = try c.value(.maxMessages, default: d.maxMessages)
        maxTokens = try c.value(.maxTokens, default: d.maxTokens)
        idleTimeoutSeconds = try c.value(.idleTimeoutSeconds, default: d.idleTimeoutSeconds)
        bodyTimeoutSeconds = try c.value(.bodyTimeoutSeconds, default: d.bodyTimeoutSeconds)
        tlsCertFile = try c.value(.tlsCertFile, default: d.tlsCertFile)
        tlsKeyFile = try c.value(.tlsKeyFile, default: d.tlsKeyFile)
    }

    func validate() throws {
        if host.isEmpty { throw ConfigurationError(key: "server.host", value: host, expected: "a host name or IP address") }
        guard (0...65535).contains(port) else {
            throw ConfigurationError(key: "server.port", value: String(port), expected: "an integer from 0 to 65535 (0 picks a free port)")
        }
        guard maxBodyBytes > 0 else {
            throw ConfigurationError(key: "server.max_body_bytes", value: String(maxBodyBytes), expected: "a positive number of bytes")
        }
        guard shutdownGraceSeconds >= 0 else {
            throw ConfigurationError(key: "server.shutdown_grace_seconds", value: String(shutdownGraceSeconds), expected: "zero or more seconds")
        }
        guard requestTimeoutSeconds > 0 else {
            throw ConfigurationError(key: "server.request_timeout_seconds", value: String(requestTimeoutSeconds), expected: "a positive number of seconds")
        }
        guard maxHeaderBytes >= 1024 else {
            throw ConfigurationError(key: "server.max_header_bytes", value: String(maxHeaderBytes), expected: "at least 1024 bytes")
        }
        guard maxHeaderCount >= 8 else {
            throw ConfigurationError(key: "server.max_header_count", value: String(maxHeaderCount), expected: "at least 8 header fields")
        }
        guard maxMessages >= 1 else {
            throw ConfigurationError(key: "server.max_messages", value: String(maxMessages), expected: "a positive number of messages")
        }
        guard maxTokens >= 1 else {
            throw ConfigurationError(key: "server.max_tokens", value: String(maxTokens), expected: "a positive number of tokens")
        }
        guard idleTimeoutSeconds > 0 else {
            throw ConfigurationError(key: "server.idle_timeout_seconds", value: String(idleTimeoutSeconds), expected: "a positive number of seconds")
        }
        guard bodyTimeoutSeconds > 0 else {
            throw ConfigurationError(key: "server.body_timeout_seconds", value: String(bodyTimeoutSeconds), expected: "a positive number of seconds")
        }
        guard tlsCertFile.isEmpty == tlsKeyFile.isEmpty else {
            throw ConfigurationError(key: tlsCertFile.isEmpty ? "server.tls_cert_file" : "server.tls_key_file", value: nil,
                                     expected: "a PEM file path: server.tls_cert_file and server.tls_key_file go together")
        }
    }
}

/// Database settings.
public struct StorageConfiguration: Sendable, Codable, Hashable {
    /// Which database holds the state.
    public enum Driver: String, Sendable, Codable, Hashable, CaseIterable {
        /// One SQLite file (the embedded default).
        case sqlite
        /// A PostgreSQL database shared by every gateway and worker (distributed mode).
        case postgres
    }

    /// The driver. Default `sqlite`.
    public var driver: Driver
    /// SQLite database file; `:memory:` keeps everything in memory. Default `var/conclave.sqlite`.
    public var path: String
    /// PostgreSQL: `postgres://user@host:5432/database` (optional `?sslmode=require`).
    public var url: String
    /// PostgreSQL: the password; set it with `CONCLAVE_STORAGE__PASSWORD` rather than in the file.
    /// It wins over a password in `url`.
    public var password: String
    /// PostgreSQL: most pooled connections per process. Default 10.
    public var maxConnections: Int

    /// Creates storage settings.
    public init(driver: Driver = .sqlite, path: String = "var/conclave.sqlite", url: String = "", password: String = "",
                maxConnections: Int = 10) {
        self.driver = driver
        self.path = path
        self.url = url
        self.password = password
        self.maxConnections = maxConnections
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case driver, path, url, password
        case maxConnections = "max_connections"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = StorageConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        driver = try c.enumValue(.driver, default: d.driver)
        path = try c.value(.path, default: d.path)
        url = try c.value(.url, default: d.url)
        password = try c.value(.password, default: d.password)
        maxConnections = try c.value(.maxConnections, default: d.maxConnections)
    }

    func validate() throws {
        switch driver {
        case .sqlite:
            if path.isEmpty { throw ConfigurationError(key: "storage.path", value: path, expected: "a file path or ':memory:'") }
        case .postgres:
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ConfigurationError(key: "storage.url", value: url.isEmpty ? nil : url,
                                         expected: "a URL like postgres://user@host:5432/database when storage.driver is postgres")
            }
        }
        guard (1...1000).contains(maxConnections) else {
            throw ConfigurationError(key: "storage.max_connections", value: String(maxConnections), expected: "an integer from 1 to 1000")
        }
    }
}

/// Model backend settings.
public struct InferenceConfiguration: Sendable, Codable, Hashable {
    /// Where chat completions come from.
    public enum Provider: String, Sendable, Codable, Hashable, CaseIterable {
        /// A local `llama-server` started and supervised by Conclave (the default).
        case embedded
        /// Any OpenAI-compatible endpoint reached over HTTP.
        case openai
    }

    /// The provider. Default `embedded`.
    public var provider: Provider
    /// Embedded: path of `llama-server`; empty finds it in the project's `.venv`.
    public var llamaServerPath: String
    /// Embedded: path of the GGUF model; empty finds SmolLM2 in the project's `.venv`.
    public var modelPath: String
    /// Embedded: total context tokens, shared by the parallel slots. Default 8192.
    public var contextSize: Int
    /// Embedded: parallel decoding slots. Default 4.
    public var parallelSlots: Int
    /// Embedded: CPU threads per replica; 0 divides the machine's cores among the local replicas
    /// that may run at once (`replicas`, or `autoscale.max_replicas`), at least one each. Default 0.
    public var threads: Int
    /// Embedded: how long to wait for `/health` after start. Default 120 s.
    public var startupTimeoutSeconds: Double
    /// OpenAI provider: base URL including `/v1`, for example `http://127.0.0.1:8000/v1`.
    public var endpoint: String
    /// OpenAI provider: more replicas of the same model; the pool balances over `endpoint` and these.
    public var endpoints: [String] = []
    /// OpenAI provider: the model name sent to the endpoint.
    public var model: String
    /// OpenAI provider: name of the environment variable that holds the API key (never the key).
    public var apiKeyEnv: String
    /// Sampling temperature for agent calls. Default 0.
    public var temperature: Double
    /// Sampling seed, for reproducible output. Default 42.
    public var seed: Int
    /// Most tokens the responder may generate. Default 256.
    public var maxTokens: Int
    /// Upper bound of one model call. Default 120 s.
    public var requestTimeoutSeconds: Double
    /// Local `llama-server` processes (provider `embedded`), each with `context_size`,
    /// `parallel_slots` and `threads`. Default 1. `CONCLAVE_INFERENCE_REPLICAS` overrides it too.
    public var replicas: Int = 1
    /// The model id of the direct model route (`model: smollm2` skips the workflows and goes
    /// straight to the pool); empty disables the route. Default `smollm2`.
    public var servedModelName: String = "smollm2"
    /// A streamed model call that has produced no token after this many seconds is abandoned and
    /// retried on another replica. Default 60 (0: no limit).
    public var firstTokenTimeoutSeconds: Double = 60
    /// Longest wait for a TCP connection to a model endpoint; a backend that does not accept
    /// fails fast and the call is retried elsewhere. Default 5 s.
    public var connectTimeoutSeconds: Double = 5
    /// A private CA (PEM) that `https://` endpoints' certificates are checked against, instead of
    /// the system's. Default none.
    public var tlsCAFile: String = ""
    /// A client certificate chain (PEM) for endpoints that verify clients (mutual TLS). Default none.
    public var tlsCertFile: String = ""
    /// The key of `tlsCertFile` (PEM). Default none.
    public var tlsKeyFile: String = ""
    /// Active health checks: every endpoint's `/health` is polled this often, and a replica that
    /// fails 3 checks in a row gets no calls until one succeeds. Default 5 s (0: off).
    public var healthCheckIntervalSeconds: Double = 5
    /// Before a local replica is stopped (shutdown, scale-down) it gets no new calls and its calls
    /// in flight get this long to finish. Default 30 s.
    public var drainTimeoutSeconds: Double = 30
    /// Consecutive failed calls (connect errors, 5xx, timeouts) that open a replica's circuit
    /// breaker, after which it gets no calls for `breaker_open_seconds`. Default 3.
    public var breakerFailures: Int = 3
    /// How long an open breaker keeps its replica out before one probe call is let through
    /// (half-open); the probe's success closes it, its failure opens it again. Default 5 s.
    public var breakerOpenSeconds: Double = 5
    /// The autoscaler of local replicas (provider `embedded`).
    public var autoscale = AutoscaleConfiguration()
    /// Models served next to the default one, each with its own endpoints and pool.
    public var models: [NamedModelConfiguration] = []
    /// The model the agents use: empty for the default model, or the name of one of `models`.
    public var agentsModel: String = ""

    /// Creates inference settings.
    public init(provider: Provider = .embedded, llamaServerPath: String = "", modelPath: String = "",
                contextSize: Int = 8192, parallelSlots: Int = 4, threads: Int = 0,
                startupTimeoutSeconds: Double = 120, endpoint: String = "", model: String = "default",
                apiKeyEnv: String = "", temperature: Double = 0, seed: Int = 42, maxTokens: Int = 256,
                requestTimeoutSeconds: Double = 120) {
        self.provider = provider
        self.llamaServerPath = llamaServerPath
        self.modelPath = modelPath
        self.contextSize = contextSize
        self.parallelSlots = parallelSlots
        self.threads = threads
        self.startupTimeoutSeconds = startupTimeoutSeconds
        self.endpoint = endpoint
        self.model = model
        self.apiKeyEnv = apiKeyEnv
        self.temperature = temperature
        self.seed = seed
        self.maxTokens = maxTokens
        self.requestTimeoutSeconds = requestTimeoutSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case provider
        case llamaServerPath = "llama_server_path"
        case modelPath = "model_path"
        case contextSize = "context_size"
        case parallelSlots = "parallel_slots"
        case threads
        case startupTimeoutSeconds = "startup_timeout_seconds"
        case endpoint, endpoints, model
        case apiKeyEnv = "api_key_env"
        case temperature, seed
        case maxTokens = "max_tokens"
        case requestTimeoutSeconds = "request_timeout_seconds"
        case replicas
        case servedModelName = "served_model_name"
        case firstTokenTimeoutSeconds = "first_token_timeout_seconds"
        case connectTimeoutSeconds = "connect_timeout_seconds"
        case tlsCAFile = "tls_ca_file"
        case tlsCertFile = "tls_cert_file"
        case tlsKeyFile = "tls_key_file"
        case healthCheckIntervalSeconds = "health_check_interval_seconds"
        case drainTimeoutSeconds = "drain_timeout_seconds"
        case breakerFailures = "breaker_failures"
        case breakerOpenSeconds = "breaker_open_seconds"
        case autoscale, models
        case agentsModel = "agents_model"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = InferenceConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        provider = try c.enumValue(.provider, default: d.provider)
        llamaServerPath = try c.value(.llamaServerPath, default: d.llamaServerPath)
        modelPath = try c.value(.modelPath, default: d.modelPath)
        contextSize = try c.value(.contextSize, default: d.contextSize)
        parallelSlots = try c.value(.parallelSlots, default: d.parallelSlots)
        threads = try c.value(.threads, default: d.threads)
        startupTimeoutSeconds = try c.value(.startupTimeoutSeconds, default: d.startupTimeoutSeconds)
        endpoint = try c.value(.endpoint, default: d.endpoint)
        endpoints = try c.value(.endpoints, default: d.endpoints)
        model = try c.value(.model, default: d.model)
        apiKeyEnv = try c.value(.apiKeyEnv, default: d.apiKeyEnv)
        temperature = try c.value(.temperature, default: d.temperature)
        seed = try c.value(.seed, default: d.seed)
        maxTokens = try c.value(.maxTokens, default: d.maxTokens)
        requestTimeoutSeconds = try c.value(.requestTimeoutSeconds, default: d.requestTimeoutSeconds)
        replicas = try c.value(.replicas, default: d.replicas)
        servedModelName = try c.value(.servedModelName, default: d.servedModelName)
        firstTokenTimeoutSeconds = try c.value(.firstTokenTimeoutSeconds, default: d.firstTokenTimeoutSeconds)
        connectTimeoutSeconds = try c.value(.connectTimeoutSeconds, default: d.connectTimeoutSeconds)
        tlsCAFile = try c.value(.tlsCAFile, default: d.tlsCAFile)
        tlsCertFile = try c.value(.tlsCertFile, default: d.tlsCertFile)
        tlsKeyFile = try c.value(.tlsKeyFile, default: d.tlsKeyFile)
        healthCheckIntervalSeconds = try c.value(.healthCheckIntervalSeconds, default: d.healthCheckIntervalSeconds)
        drainTimeoutSeconds = try c.value(.drainTimeoutSeconds, default: d.drainTimeoutSeconds)
        breakerFailures = try c.value(.breakerFailures, default: d.breakerFailures)
        breakerOpenSeconds = try c.value(.breakerOpenSeconds, default: d.breakerOpenSeconds)
        autoscale = try c.value(.autoscale, default: d.autoscale)
        models = try c.value(.models, default: d.models)
        agentsModel = try c.value(.agentsModel, default: d.agentsModel)
    }

    /// Outstanding calls per replica the autoscaler aims for.
    public var autoscaleTarget: Double {
        autoscale.targetOutstanding > 0 ? autoscale.targetOutstanding : Double(parallelSlots)
    }

    /// CPU threads each local replica gets on a machine with `cores` cores: `threads` when set,
    /// otherwise the cores divided among the replicas that may run at once. llama.cpp's compute
    /// threads spin while they wait for each other, so replicas whose threads together outnumber
    /// the cores slow each other down far more than they add (on a 2-core CI machine, the
    /// kill-and-restart test with two replicas of two threads each saw calls stall to their deadline).
    public func threadsPerReplica(cores: Int) -> Int {
        if threads > 0 { return threads }
        let replicasAtOnce = max(replicas, autoscale.enabled ? autoscale.maxReplicas : 1, 1)
        return max(1, cores / replicasAtOnce)
    }

    func validate() throws {
        guard firstTokenTimeoutSeconds >= 0 else {
            throw ConfigurationError(key: "inference.first_token_timeout_seconds", value: String(firstTokenTimeoutSeconds),
                                     expected: "zero (no limit) or a positive number of seconds")
        }
        guard tlsCertFile.isEmpty == tlsKeyFile.isEmpty else {
            throw ConfigurationError(key: tlsCertFile.isEmpty ? "inference.tls_cert_file" : "inference.tls_key_file", value: nil,
                                     expected: "a PEM file path: inference.tls_cert_file and inference.tls_key_file go together")
        }
        guard (1...16).contains(replicas) else {
            throw ConfigurationError(key: "inference.replicas", value: String(replicas), expected: "an integer from 1 to 16")
        }
        guard contextSize >= 512 else {
            throw ConfigurationError(key: "inference.context_size", value: String(contextSize), expected: "at least 512 tokens")
        }
        guard (1...64).contains(parallelSlots) else {
            throw ConfigurationError(key: "inference.parallel_slots", value: String(parallelSlots), expected: "an integer from 1 to 64")
        }
        guard contextSize / parallelSlots >= 1024 else {
            throw ConfigurationError(key: "inference.parallel_slots", value: String(parallelSlots),
                                     expected: "few enough slots that each gets 1024 tokens of inference.context_size (\(contextSize))")
        }
        guard threads >= 0 else {
            throw ConfigurationError(key: "inference.threads", value: String(threads), expected: "0 (automatic) or a positive integer")
        }
        guard (0...2).contains(temperature) else {
            throw ConfigurationError(key: "inference.temperature", value: String(temperature), expected: "a number from 0 to 2")
        }
        guard maxTokens > 0 else {
            throw ConfigurationError(key: "inference.max_tokens", value: String(maxTokens), expected: "a positive integer")
        }
        guard startupTimeoutSeconds > 0, requestTimeoutSeconds > 0 else {
            throw ConfigurationError(key: "inference.request_timeout_seconds", value: String(requestTimeoutSeconds), expected: "positive timeouts")
        }
        guard connectTimeoutSeconds > 0 else {
            throw ConfigurationError(key: "inference.connect_timeout_seconds", value: String(connectTimeoutSeconds),
                                     expected: "a positive number of seconds")
        }
        guard healthCheckIntervalSeconds >= 0 else {
            throw ConfigurationError(key: "inference.health_check_interval_seconds", value: String(healthCheckIntervalSeconds),
                                     expected: "zero (off) or a positive number of seconds")
        }
        guard drainTimeoutSeconds >= 0 else {
            throw ConfigurationError(key: "inference.drain_timeout_seconds", value: String(drainTimeoutSeconds),
                                     expected: "a non-negative number of seconds")
        }
        guard breakerFailures >= 1 else {
            throw ConfigurationError(key: "inference.breaker_failures", value: String(breakerFailures),
                                     expected: "a positive number of consecutive failures")
        }
        guard breakerOpenSeconds > 0 else {
            throw ConfigurationError(key: "inference.breaker_open_seconds", value: String(breakerOpenSeconds),
                                     expected: "a positive number of seconds")
        }
        try autoscale.validate()
        if autoscale.enabled && provider != .embedded {
            throw ConfigurationError(key: "inference.autoscale.enabled", value: "true",
                                     expected: "false unless provider is embedded (the autoscaler starts local llama-server replicas)")
        }
        var names: Set<String> = [servedModelName]
        for (index, named) in models.enumerated() {
            try named.validate(at: index)
            guard names.insert(named.name).inserted else {
                throw ConfigurationError(key: "inference.models[\(index)].name", value: named.name,
                                         expected: "a name used once (and not the default model's served_model_name)")
            }
        }
        if !agentsModel.isEmpty {
            guard let named = models.first(where: { $0.name == agentsModel }), named.chat else {
                throw ConfigurationError(key: "inference.agents_model", value: agentsModel,
                                         expected: "empty (the default model) or the name of a chat model in inference.models: "
                                             + models.filter(\.chat).map(\.name).joined(separator: ", "))
            }
        }
        if provider == .openai {
            guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
                throw ConfigurationError(key: "inference.endpoint", value: endpoint,
                                         expected: "an http(s) base URL such as http://127.0.0.1:8000/v1 when provider is openai")
            }
            for extra in endpoints where !(extra.hasPrefix("http://") || extra.hasPrefix("https://")) {
                throw ConfigurationError(key: "inference.endpoints", value: extra, expected: "http(s) base URLs such as http://127.0.0.1:8001/v1")
            }
        }
    }
}

/// Retrieval settings.
public struct KnowledgeConfiguration: Sendable, Codable, Hashable {
    /// Passages returned per sub-question. Default 4.
    public var topK: Int
    /// Target chunk size in (approximate) tokens. Default 200.
    public var chunkTokens: Int
    /// Tokens shared between neighbouring chunks of one section. Default 30.
    public var chunkOverlapTokens: Int
    /// Paths ingested when the server starts (incremental: unchanged documents are skipped).
    public var ingestOnStart: [String]
    /// SQL query templates and the database they run against; "" disables the database connector.
    public var sqlTemplatesFile: String
    /// Who chooses and fills a SQL template: `rules` (the deterministic matcher, default) or
    /// `model` (the workflow's model, by JSON-schema constrained output, validated like the
    /// rules' values; the rules serve whenever its choice is unusable).
    public var sqlTemplateChoice: String
    /// Evidence sources of workflows that do not choose their own (`rag`, `database`, `api`, `cached`).
    public var dataAccess: [DataAccessMode]
    /// The internal API connector file (OpenAPI document and vocabulary); "" disables it.
    public var apiFile: String
    /// Overrides the API connector's base URL ("" keeps the file's or the document's).
    public var apiBaseURL: String
    /// How long a cached answer (data-access mode `cached`) stays valid.
    public var cacheTTLSeconds: Double
    /// Most answers the cache holds.
    public var cacheCapacity: Int
    /// How documents are ranked: `bm25`, `vector` or `hybrid` (both, fused by reciprocal rank).
    public var retrieval: String
    /// Directory of the MiniLM model (`model.safetensors`, `vocab.txt`); "" finds it in `.venv`.
    public var embeddingModelPath: String
    /// The model whose vectors retrieval uses: "" or `minilm` for the in-process MiniLM, or the
    /// name of an `inference.models` entry with `embeddings: true` (any OpenAI-compatible endpoint).
    public var embeddingModel: String
    /// Threads the embedder uses (0: every core).
    public var embeddingThreads: Int

    /// Creates retrieval settings.
    public init(topK: Int = 6, chunkTokens: Int = 200, chunkOverlapTokens: Int = 30, ingestOnStart: [String] = [],
                sqlTemplatesFile: String = "config/connectors/meridian-sql.yaml", sqlTemplateChoice: String = "rules",
                dataAccess: [DataAccessMode] = [.rag, .database, .api],
                apiFile: String = "config/connectors/meridian-api.yaml", apiBaseURL: String = "",
                cacheTTLSeconds: Double = 600, cacheCapacity: Int = 1000, retrieval: String = "hybrid",
                embeddingModelPath: String = "", embeddingModel: String = "", embeddingThreads: Int = 0) {
        self.topK = topK
        self.chunkTokens = chunkTokens
        self.chunkOverlapTokens = chunkOverlapTokens
        self.ingestOnStart = ingestOnStart
        self.sqlTemplatesFile = sqlTemplatesFile
        self.sqlTemplateChoice = sqlTemplateChoice
        self.dataAccess = dataAccess
        self.apiFile = apiFile
        self.apiBaseURL = apiBaseURL
        self.cacheTTLSeconds = cacheTTLSeconds
        self.cacheCapacity = cacheCapacity
        self.retrieval = retrieval
        self.embeddingModelPath = embeddingModelPath
        self.embeddingModel = embeddingModel
        self.embeddingThreads = embeddingThreads
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case topK = "top_k"
        case chunkTokens = "chunk_tokens"
        case chunkOverlapTokens = "chunk_overlap_tokens"
        case ingestOnStart = "ingest_on_start"
        case sqlTemplatesFile = "sql_templates_file"
        case sqlTemplateChoice = "sql_template_choice"
        case dataAccess = "data_access"
        case apiFile = "api_file"
        case apiBaseURL = "api_base_url"
        case cacheTTLSeconds = "cache_ttl_seconds"
        case cacheCapacity = "cache_capacity"
        case retrieval
        case embeddingModelPath = "embedding_model_path"
        case embeddingModel = "embedding_model"
        case embeddingThreads = "embedding_threads"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = KnowledgeConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        topK = try c.value(.topK, default: d.topK)
        chunkTokens = try c.value(.chunkTokens, default: d.chunkTokens)
        chunkOverlapTokens = try c.value(.chunkOverlapTokens, default: d.chunkOverlapTokens)
        ingestOnStart = try c.value(.ingestOnStart, default: d.ingestOnStart)
        sqlTemplatesFile = try c.value(.sqlTemplatesFile, default: d.sqlTemplatesFile)
        sqlTemplateChoice = try c.value(.sqlTemplateChoice, default: d.sqlTemplateChoice)
        dataAccess = try c.value(.dataAccess, default: d.dataAccess)
        apiFile = try c.value(.apiFile, default: d.apiFile)
        apiBaseURL = try c.value(.apiBaseURL, default: d.apiBaseURL)
        cacheTTLSeconds = try c.value(.cacheTTLSeconds, default: d.cacheTTLSeconds)
        cacheCapacity = try c.value(.cacheCapacity, default: d.cacheCapacity)
        retrieval = try c.value(.retrieval, default: d.retrieval)
        embeddingModelPath = try c.value(.embeddingModelPath, default: d.embeddingModelPath)
        embeddingModel = try c.value(.embeddingModel, default: d.embeddingModel)
        embeddingThreads = try c.value(.embeddingThreads, default: d.embeddingThreads)
    }

    func validate() throws {
        guard ["bm25", "vector", "hybrid"].contains(retrieval) else {
            throw ConfigurationError(key: "knowledge.retrieval", value: retrieval, expected: "bm25, vector or hybrid")
        }
        guard ["rules", "model"].contains(sqlTemplateChoice) else {
            throw ConfigurationError(key: "knowledge.sql_template_choice", value: sqlTemplateChoice, expected: "rules or model")
        }
        guard embeddingThreads >= 0 else {
            throw ConfigurationError(key: "knowledge.embedding_threads", value: String(embeddingThreads), expected: "0 (every core) or a positive integer")
        }
        guard cacheTTLSeconds > 0 else {
            throw ConfigurationError(key: "knowledge.cache_ttl_seconds", value: String(cacheTTLSeconds), expected: "a positive number of seconds")
        }
        guard cacheCapacity >= 1 else {
            throw ConfigurationError(key: "knowledge.cache_capacity", value: String(cacheCapacity), expected: "an integer of at least 1")
        }
        guard (1...50).contains(topK) else {
            throw ConfigurationError(key: "knowledge.top_k", value: String(topK), expected: "an integer from 1 to 50")
        }
        guard (32...2000).contains(chunkTokens) else {
            throw ConfigurationError(key: "knowledge.chunk_tokens", value: String(chunkTokens), expected: "an integer from 32 to 2000")
        }
        guard chunkOverlapTokens >= 0, chunkOverlapTokens < chunkTokens else {
            throw ConfigurationError(key: "knowledge.chunk_overlap_tokens", value: String(chunkOverlapTokens),
                                     expected: "zero or more and less than knowledge.chunk_tokens (\(chunkTokens))")
        }
    }
}

/// Workflow settings.
public struct WorkflowsConfiguration: Sendable, Codable, Hashable {
    /// Workflow used when a request names none. Default `full`.
    public var defaultWorkflow: String
    /// Directory of user workflow YAML files loaded beside the built-ins; empty for none.
    public var directory: String
    /// Default per-step timeout in seconds when a workflow step sets none. Default 60.
    public var stepTimeoutSeconds: Double
    /// How the responder words answers from validated document facts (after a validator). Default `quote`.
    public var answerPhrasing: AnswerPhrasing = .quote
    /// YAML file of the agents' prompts and per-role sampling (versioned); empty for the built-ins.
    /// Default `config/prompts/agents.yaml`.
    public var promptsFile: String = "config/prompts/agents.yaml"

    /// How the responder words an answer from validated document facts.
    public enum AnswerPhrasing: String, Sendable, Codable, Hashable, CaseIterable {
        /// States the facts as the documents word them, each with its citation: no model call, and
        /// no number, date or name the sources do not hold.
        case quote
        /// Has the model word the answer over the numbered facts, keeping only the sentences the
        /// facts support (for models strong enough to reword without changing values).
        case model
    }

    /// Creates workflow settings.
    public init(defaultWorkflow: String = "full", directory: String = "", stepTimeoutSeconds: Double = 60) {
        self.defaultWorkflow = defaultWorkflow
        self.directory = directory
        self.stepTimeoutSeconds = stepTimeoutSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case defaultWorkflow = "default"
        case directory
        case stepTimeoutSeconds = "step_timeout_seconds"
        case answerPhrasing = "answer_phrasing"
        case promptsFile = "prompts_file"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = WorkflowsConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        defaultWorkflow = try c.value(.defaultWorkflow, default: d.defaultWorkflow)
        directory = try c.value(.directory, default: d.directory)
        stepTimeoutSeconds = try c.value(.stepTimeoutSeconds, default: d.stepTimeoutSeconds)
        answerPhrasing = try c.enumValue(.answerPhrasing, default: d.answerPhrasing)
        promptsFile = try c.value(.promptsFile, default: d.promptsFile)
    }

    func validate() throws {
        guard stepTimeoutSeconds > 0 else {
            throw ConfigurationError(key: "workflows.step_timeout_seconds", value: String(stepTimeoutSeconds), expected: "a positive number of seconds")
        }
        if defaultWorkflow.isEmpty {
            throw ConfigurationError(key: "workflows.default", value: defaultWorkflow, expected: "a workflow name such as full")
        }
    }
}

/// Logging settings.
public struct LoggingConfiguration: Sendable, Codable, Hashable {
    /// Log levels, as swift-log names them.
    public enum Level: String, Sendable, Codable, Hashable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    /// How a line is written.
    public enum Format: String, Sendable, Codable, Hashable, CaseIterable {
        /// swift-log's readable line: time, level, label, metadata, `[module]`, message.
        case text
        /// One JSON object per line, for log collectors.
        case json
    }

    /// Minimum level written. Default `info`.
    public var level: Level
    /// Default `text`.
    public var format: Format
    /// Levels of single modules (the `[module]` of a line, e.g. `ConclaveInference`), overriding
    /// `level` for them, both ways. Default none.
    public var modules: [String: Level]

    /// Creates logging settings.
    public init(level: Level = .info, format: Format = .text, modules: [String: Level] = [:]) {
        self.level = level
        self.format = format
        self.modules = modules
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case level, format, modules }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        level = try c.enumValue(.level, default: .info)
        format = try c.enumValue(.format, default: .text)
        let names: [String: String] = try c.value(.modules, default: [:])
        var modules: [String: Level] = [:]
        for (module, name) in names {
            guard let level = Level(rawValue: name) else {
                throw ConfigurationError(key: "logging.modules.\(module)", value: name,
                                         expected: "one of \(Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            modules[module] = level
        }
        self.modules = modules
    }
}

/// How agent steps travel.
public struct MessagingConfiguration: Sendable, Codable, Hashable {
    /// The bus.
    public enum Driver: String, Sendable, Codable, Hashable, CaseIterable {
        /// Steps run inside the gateway process (the embedded default).
        case inprocess
        /// Steps go over NATS JetStream to `conclave worker --role R` processes (distributed mode).
        case nats
    }

    /// The driver. Default `inprocess`.
    public var driver: Driver
    /// NATS: the server URL, for example `nats://127.0.0.1:4222`.
    public var url: String
    /// NATS: how long a step may go unacknowledged before JetStream gives it to another worker
    /// (a running step renews it every third of this). Default 30 s.
    public var ackWaitSeconds: Double
    /// NATS: deliveries of a step before it goes to the dead-letter stream. Default 5.
    public var maxDeliver: Int
    /// NATS: steps one worker process runs at once. Default 4.
    public var workerConcurrency: Int
    /// NATS: the CA file (PEM) that signed the server's certificate; set, the connection uses
    /// TLS (as does a `tls://` URL). Default none.
    public var tlsCAFile: String
    /// NATS: this client's certificate chain (PEM), for servers that verify clients (mutual TLS).
    public var tlsCertFile: String
    /// NATS: the key of `tlsCertFile` (PEM).
    public var tlsKeyFile: String

    /// Creates messaging settings.
    public init(driver: Driver = .inprocess, url: String = "", ackWaitSeconds: Double = 30, maxDeliver: Int = 5,
                workerConcurrency: Int = 4, tlsCAFile: String = "", tlsCertFile: String = "", tlsKeyFile: String = "") {
        self.driver = driver
        self.url = url
        self.ackWaitSeconds = ackWaitSeconds
        self.maxDeliver = maxDeliver
        self.workerConcurrency = workerConcurrency
        self.tlsCAFile = tlsCAFile
        self.tlsCertFile = tlsCertFile
        self.tlsKeyFile = tlsKeyFile
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case driver, url
        case ackWaitSeconds = "ack_wait_seconds"
        case maxDeliver = "max_deliver"
        case workerConcurrency = "worker_concurrency"
        case tlsCAFile = "tls_ca_file"
        case tlsCertFile = "tls_cert_file"
        case tlsKeyFile = "tls_key_file"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let d = MessagingConfiguration()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        driver = try c.enumValue(.driver, default: d.driver)
        url = try c.value(.url, default: d.url)
        ackWaitSeconds = try c.value(.ackWaitSeconds, default: d.ackWaitSeconds)
        maxDeliver = try c.value(.maxDeliver, default: d.maxDeliver)
        workerConcurrency = try c.value(.workerConcurrency, default: d.workerConcurrency)
        tlsCAFile = try c.value(.tlsCAFile, default: d.tlsCAFile)
        tlsCertFile = try c.value(.tlsCertFile, default: d.tlsCertFile)
        tlsKeyFile = try c.value(.tlsKeyFile, default: d.tlsKeyFile)
    }

    func validate() throws {
        if driver == .nats, !(url.hasPrefix("nats://") || url.hasPrefix("tls://")) {
            throw ConfigurationError(key: "messaging.url", value: url.isEmpty ? nil : url,
                                     expected: "a URL like nats://127.0.0.1:4222 when messaging.driver is nats")
        }
        guard ackWaitSeconds >= 1 else {
            throw ConfigurationError(key: "messaging.ack_wait_seconds", value: String(ackWaitSeconds), expected: "at least 1 second")
        }
        guard (1...100).contains(maxDeliver) else {
            throw ConfigurationError(key: "messaging.max_deliver", value: String(maxDeliver), expected: "an integer from 1 to 100")
        }
        guard tlsCertFile.isEmpty == tlsKeyFile.isEmpty else {
            throw ConfigurationError(key: tlsCertFile.isEmpty ? "messaging.tls_cert_file" : "messaging.tls_key_file", value: nil,
                                     expected: "a PEM file path: messaging.tls_cert_file and messaging.tls_key_file go together")
        }
        guard tlsCertFile.isEmpty || !tlsCAFile.isEmpty else {
            throw ConfigurationError(key: "messaging.tls_ca_file", value: nil,
                                     expected: "the CA file of the NATS server's certificate, with a client certificate")
        }
        guard !url.hasPrefix("tls://") || !tlsCAFile.isEmpty || driver != .nats else {
            throw ConfigurationError(key: "messaging.tls_ca_file", value: nil,
                                     expected: "the CA file of the NATS server's certificate, with a tls:// URL")
        }
        guard (1...256).contains(workerConcurrency) else {
            throw ConfigurationError(key: "messaging.worker_concurrency", value: String(workerConcurrency),
                                     expected: "an integer from 1 to 256")
        }
    }
}
