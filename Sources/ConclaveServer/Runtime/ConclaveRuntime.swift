import AsyncHTTPClient
import ConclaveAgents
import ConclaveEmbeddings
import ConclaveCore
import ConclaveGovernance
import ConclaveInference
import ConclaveKnowledge
import ConclaveMessaging
import ConclaveOrchestrator
import ConclaveStorage
import ConclaveTelemetry
import Foundation
import Logging
import ServiceLifecycle
import Yams

/// The composition root: builds every component of a Conclave process from its configuration.
public struct ConclaveRuntime: Sendable {
    /// The configuration the runtime was built from.
    public let configuration: ConclaveConfiguration
    /// The store `storage.driver` names (SQLite embedded, PostgreSQL shared).
    public let store: any ConclaveStore
    /// The chat model every agent uses (`inference.agents_model`, by default the default model).
    public let model: any ChatModel
    /// The default model's local `llama-server` replicas (and autoscaler), when the provider is `embedded`.
    public let replicaSet: LocalReplicaSet?
    /// The local `llama-server` supervisors wanted now (one per replica).
    public var supervisors: [LlamaServerSupervisor] { replicaSet?.supervisors ?? [] }
    /// The first supervisor, if any.
    public var supervisor: LlamaServerSupervisor? { supervisors.first }
    /// The replica pool behind the default model (nil when a model is passed in, as tests do).
    public let pool: ReplicaPool?
    /// The models clients may name in `model`, by name: the default one and `inference.models`.
    public let servedModels: [String: ServedModel]
    /// Active health checks, one per pool that has them.
    public let healthCheckers: [HealthChecker]
    /// Group-commit writer of run events.
    public let eventWriter: BatchingEventWriter
    /// The in-process message bus.
    public let bus: InProcessMessageBus
    /// The workflows offered now (`live` holds them; `conclave reload` replaces them).
    public var workflows: WorkflowRegistry { live.current.workflows }
    /// What `conclave reload` and SIGHUP replace: workflows, access policy, SQL templates.
    public let live: LiveConfiguration
    /// The workflow engine.
    public let engine: WorkflowEngine
    /// Document retrieval.
    public let retriever: any Retriever
    /// The business database behind the SQL templates, when `knowledge.sql_templates_file` names one,
    /// as loaded at start (the agents reach it through a swappable source that `live` replaces).
    public let database: DatabaseConnector?
    /// The internal API connector, when `knowledge.api_file` names one.
    public let api: APIConnector?
    /// Answers of the `cached` data-access mode.
    public let answerCache: AnswerCache
    /// The in-process MiniLM embedder (`/v1/embeddings`, vector retrieval); nil when its files are missing.
    public let embedder: MiniLMEmbedder?
    /// The chunk vectors, when retrieval uses them.
    public let vectors: VectorCatalog?
    /// The agents of this process (the engine's team in embedded mode; what a worker runs).
    public let agents: AgentTeam
    /// The agents' prompts and per-role sampling (`workflows.prompts_file` over the built-ins).
    public let prompts: AgentPrompts
    /// The JetStream work queues (`messaging.driver: nats`).
    public let workQueue: JetStreamWorkQueue?
    /// Sends steps to the workers (`messaging.driver: nats`): the engine's team is its remote agents.
    public let dispatcher: StepDispatcher?
    /// Sampling settings from `inference` (a request may override them).
    public let callOptions: ModelCallOptions
    /// Logger.
    public let logger: Logger
    /// Authentication and access control.
    public let governance: Governance
    /// Rate limits and token quotas (`limits`).
    public let limiter: RateLimiter

    /// Builds a runtime. `model` replaces the configured provider (tests pass a scripted model).
    /// `retrieves: false` (a worker of a role that never searches: planner, reasoner, validator)
    /// skips the embedding model and the vector index, about 90 MB per process.
    public init(configuration: ConclaveConfiguration, model overrideModel: (any ChatModel)? = nil, retrieves: Bool = true,
                logger: Logger = Logger(label: "conclave")) async throws {
        self.configuration = configuration
        self.logger = logger
        store = try await StoreFactory.open(configuration.storage, logger: logger)
        let inference = configuration.inference
        let tls = inference.tlsCAFile.isEmpty && inference.tlsCertFile.isEmpty ? nil
            : InferenceHTTPClient.TLS(caFile: inference.tlsCAFile, certFile: inference.tlsCertFile, keyFile: inference.tlsKeyFile)
        let client = try InferenceHTTPClient.shared(connectTimeout: .milliseconds(Int64(inference.connectTimeoutSeconds * 1000)), tls: tls)
        let timeout = Duration.milliseconds(Int64(inference.requestTimeoutSeconds * 1000))
        let healthInterval = Duration.milliseconds(Int64(inference.healthCheckIntervalSeconds * 1000))
        var served: [String: ServedModel] = [:]
        var checkers: [HealthChecker] = []
        let defaultName = inference.servedModelName.isEmpty ? "default" : inference.servedModelName
        let defaultModel: any ChatModel
        if let overrideModel {
            defaultModel = overrideModel
            replicaSet = nil
            pool = nil
            served[defaultName] = ServedModel(name: defaultName, provider: "in-process", upstreamModel: inference.model, pool: nil,
                                              chat: overrideModel)
        } else {
            let replicas = ReplicaPool(configuration: inference.poolConfiguration(maxInFlight: max(1, inference.parallelSlots)),
                                       model: defaultName)
            switch inference.provider {
            case .embedded:
                let root = EmbeddedModelLocator.projectRoot()
                let serverPath = inference.llamaServerPath.isEmpty ? EmbeddedModelLocator.llamaServer(root: root) : inference.llamaServerPath
                let modelPath = inference.modelPath.isEmpty ? EmbeddedModelLocator.smolLM2(root: root) : inference.modelPath
                guard let serverPath else {
                    throw ConfigurationError(key: "inference.llama_server_path", value: nil,
                                             expected: "the path of llama-server (none found in .venv; run `make setup`)")
                }
                guard let modelPath else {
                    throw ConfigurationError(key: "inference.model_path", value: nil,
                                             expected: "the path of a GGUF model (SmolLM2 not found in .venv; run `make setup`)")
                }
                let logDirectory = URL(fileURLWithPath: configuration.storage.path == ":memory:" ? "var" : configuration.storage.path)
                    .deletingLastPathComponent()
                try? FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
                let scale = inference.autoscale
                let threads = inference.threadsPerReplica(cores: ProcessInfo.processInfo.activeProcessorCount)
                replicaSet = try LocalReplicaSet(
                    replicas: inference.replicas, pool: replicas,
                    autoscale: scale.enabled
                        ? Autoscaler.Configuration(minReplicas: scale.minReplicas, maxReplicas: scale.maxReplicas,
                                                   targetOutstanding: inference.autoscaleTarget,
                                                   scaleUpWindow: .milliseconds(Int64(scale.scaleUpWindowSeconds * 1000)),
                                                   scaleDownCooldown: .milliseconds(Int64(scale.scaleDownCooldownSeconds * 1000)))
                        : nil,
                    interval: .milliseconds(Int64(scale.intervalSeconds * 1000)),
                    configuration: { index in
                        var replica = LlamaServerSupervisor.Configuration(
                            serverPath: serverPath, modelPath: modelPath, contextSize: inference.contextSize,
                            parallelSlots: inference.parallelSlots, threads: threads,
                            startupTimeout: .milliseconds(Int64(inference.startupTimeoutSeconds * 1000)),
                            logPath: logDirectory.appendingPathComponent(
                                index == 0 ? "llama-server.log" : "llama-server-\(index + 1).log").path)
                        replica.drainTimeout = .milliseconds(Int64(inference.drainTimeoutSeconds * 1000))
                        return replica
                    },
                    logger: logger)
            case .openai:
                for endpoint in [inference.endpoint] + inference.endpoints {
                    var base = endpoint
                    while base.hasSuffix("/") { base.removeLast() }
                    replicas.add(base)
                }
                replicaSet = nil
            }
            pool = replicas
            if healthInterval > .zero {
                checkers.append(HealthChecker(pool: replicas, interval: healthInterval, client: client, logger: logger))
            }
            let apiKey = inference.apiKeyEnv.isEmpty ? nil : ProcessInfo.processInfo.environment[inference.apiKeyEnv]
            defaultModel = OpenAICompatibleChatModel(
                pool: replicas, client: client,
                configuration: .init(model: inference.model, apiKey: apiKey, timeout: timeout,
                                     firstTokenTimeout: inference.firstTokenTimeoutSeconds > 0
                                         ? .milliseconds(Int64(inference.firstTokenTimeoutSeconds * 1000)) : nil),
                logger: logger)
            served[defaultName] = ServedModel(name: defaultName, provider: inference.provider.rawValue, upstreamModel: inference.model,
                                              pool: replicas, chat: defaultModel)
        }
        for named in inference.models {
            let namedPool = ReplicaPool(named.endpoints.map { endpoint in
                var base = endpoint
                while base.hasSuffix("/") { base.removeLast() }
                return base
            }, configuration: inference.poolConfiguration(maxInFlight: named.maxInFlight), model: named.name)
            if healthInterval > .zero, !named.healthPath.isEmpty {
                checkers.append(HealthChecker(pool: namedPool, path: named.healthPath, interval: healthInterval, client: client,
                                              logger: logger))
            }
            let apiKey = named.apiKeyEnv.isEmpty ? nil : ProcessInfo.processInfo.environment[named.apiKeyEnv]
            if !named.apiKeyEnv.isEmpty, apiKey == nil {
                logger.warning("the API key variable of a model is not set; calls go without a key",
                               metadata: ["model": "\(named.name)", "api_key_env": "\(named.apiKeyEnv)"])
            }
            let chat = named.chat
                ? OpenAICompatibleChatModel(pool: namedPool, client: client,
                                            configuration: .init(model: named.upstreamModel, apiKey: apiKey, timeout: timeout,
                                                                 cachePrompt: false,
                                                                 firstTokenTimeout: inference.firstTokenTimeoutSeconds > 0
                                                                     ? .milliseconds(Int64(inference.firstTokenTimeoutSeconds * 1000)) : nil),
                                            logger: logger)
                : nil
            let embeddings = named.embeddings
                ? OpenAICompatibleEmbeddings(pool: namedPool, model: named.upstreamModel, apiKey: apiKey, timeout: timeout, client: client,
                                             logger: logger)
                : nil
            served[named.name] = ServedModel(name: named.name, provider: "openai", upstreamModel: named.upstreamModel, pool: namedPool,
                                             chat: chat, embeddings: embeddings)
        }
        servedModels = served
        healthCheckers = checkers
        if !inference.agentsModel.isEmpty, let chat = served[inference.agentsModel]?.chat, overrideModel == nil {
            model = chat
        } else {
            model = defaultModel
        }
        governance = try await Governance(auth: configuration.auth, configuration: configuration.governance,
                                          audit: configuration.audit, store: store, logger: logger)
        limiter = RateLimiter(configuration: configuration.limits, store: store, logger: logger)
        eventWriter = BatchingEventWriter(store: store, logger: logger)
        bus = InProcessMessageBus()
        let workflows = try WorkflowRegistry(userDirectory: configuration.workflows.directory,
                                             defaultName: configuration.workflows.defaultWorkflow)
        // The embedder: an explicit path must load; the default (found in .venv) may be missing,
        // and then retrieval falls back to BM25 with a warning.
        let knowledge = configuration.knowledge
        var loaded: MiniLMEmbedder?
        if retrieves {
            do {
                // Reading and preparing 90 MB of weights takes seconds of CPU: off the cooperative
                // pool, so that starting a runtime cannot stall the process's other tasks.
                let directory = knowledge.embeddingModelPath, threads = knowledge.embeddingThreads
                let root = EmbeddedModelLocator.projectRoot().path
                loaded = try await runBlocking { try EmbeddingModel.load(directory: directory, projectRoot: root, threads: threads) }
                if let loaded {
                    logger.info("embedding model loaded", metadata: ["kernels": "\(loaded.backendDescription)"])
                }
            } catch let error as EmbeddingModel.EmbeddingModelNotFound where knowledge.embeddingModelPath.isEmpty {
                logger.warning("no embedding model: /v1/embeddings is off and retrieval uses BM25 only", metadata: ["reason": "\(error.message)"])
            } catch {
                throw ConfigurationError(key: "knowledge.embedding_model_path", value: knowledge.embeddingModelPath,
                                         expected: "a directory with all-MiniLM-L6-v2's model.safetensors and vocab.txt (\(error))")
            }
        }
        embedder = loaded
        // Retrieval's vectors: the in-process MiniLM, or a named model's /v1/embeddings.
        var provider: (provider: any EmbeddingProvider, model: String)?
        if knowledge.embeddingModel.isEmpty || knowledge.embeddingModel == EmbeddingModel.name {
            provider = loaded.map { (LocalEmbeddings($0), EmbeddingModel.name) }
        } else if let remote = served[knowledge.embeddingModel]?.embeddings {
            provider = (RemoteEmbeddings(remote), knowledge.embeddingModel)
            logger.info("retrieval embeds with a named model", metadata: ["model": "\(knowledge.embeddingModel)"])
        } else {
            throw ConfigurationError(key: "knowledge.embedding_model", value: knowledge.embeddingModel,
                                     expected: "\(EmbeddingModel.name), or the name of an inference.models entry with embeddings: true")
        }
        if let provider, knowledge.retrieval != "bm25", retrieves {
            let catalog = VectorCatalog(store: store, provider: provider.provider, model: provider.model, logger: logger)
            vectors = catalog
            retriever = HybridRetriever(store: store, provider: provider.provider, catalog: catalog,
                                        mode: HybridRetriever.Mode(rawValue: knowledge.retrieval) ?? .hybrid)
        } else {
            vectors = nil
            retriever = BM25Retriever(store: store)
        }
        database = try LiveConfiguration.loadDatabase(configuration.knowledge, logger: logger)
        if configuration.knowledge.apiFile.isEmpty {
            api = nil
        } else {
            do {
                let connector = try APIConnector(path: configuration.knowledge.apiFile, baseURL: configuration.knowledge.apiBaseURL,
                                                 logger: logger)
                if !connector.hasToken, let name = connector.settings.tokenEnv {
                    logger.warning("the API connector has no token: calls will be unauthorised", metadata: ["token_env": "\(name)"])
                }
                api = connector
            } catch let error as APIConnectorError {
                throw ConfigurationError(key: "knowledge.api_file", value: configuration.knowledge.apiFile,
                                         expected: "a valid API connector file (\(error.message))")
            }
        }
        answerCache = AnswerCache(capacity: configuration.knowledge.cacheCapacity,
                                  lifetime: .milliseconds(Int64(configuration.knowledge.cacheTTLSeconds * 1000)))
        var sources: [any EvidenceSource] = []
        // The database connector sits behind a swappable source, so a reload can replace its templates.
        let swappableDatabase = database.map { SwappableSource($0) }
        if let swappableDatabase { sources.append(swappableDatabase) }
        if let api { sources.append(api) }
        live = LiveConfiguration(configuration: configuration, workflows: workflows, governance: governance,
                                 database: swappableDatabase, logger: logger)
        callOptions = ModelCallOptions(temperature: inference.temperature, seed: inference.seed, maxTokens: inference.maxTokens)
        prompts = try Self.loadPrompts(configuration.workflows.promptsFile)
        logger.info("agent prompts", metadata: ["version": "\(prompts.version)",
                                                "file": "\(configuration.workflows.promptsFile.isEmpty ? "built-in" : configuration.workflows.promptsFile)"])
        agents = AgentTeam(model: model, retriever: retriever, sources: sources, topK: configuration.knowledge.topK,
                           answerPhrasing: configuration.workflows.answerPhrasing, prompts: prompts,
                           modelChoosesTemplates: configuration.knowledge.sqlTemplateChoice == "model")
        let messaging = configuration.messaging
        switch messaging.driver {
        case .inprocess:
            workQueue = nil
            dispatcher = nil
        case .nats:
            do {
                let tls = messaging.tlsCAFile.isEmpty ? nil
                    : NATSConnection.TLS(caFile: messaging.tlsCAFile, certFile: messaging.tlsCertFile, keyFile: messaging.tlsKeyFile)
                let connection = try NATSConnection(url: messaging.url, name: "conclave-\(getpid())", tls: tls)
                let queue = try JetStreamWorkQueue(
                    connection: connection,
                    configuration: WorkQueueConfiguration(ackWait: .milliseconds(Int64(messaging.ackWaitSeconds * 1000)),
                                                          maxDeliver: messaging.maxDeliver),
                    logger: logger)
                workQueue = queue
                dispatcher = try StepDispatcher(queue: queue, results: store, logger: logger)
            } catch let error as NATSError {
                throw ConclaveError(.unavailable, "Cannot use the NATS server at '\(messaging.url)'.", context: error.description)
            }
        }
        engine = WorkflowEngine(
            team: dispatcher?.team() ?? agents, bus: bus, eventLog: eventWriter,
            configuration: .init(defaultStepTimeout: .milliseconds(Int64(configuration.workflows.stepTimeoutSeconds * 1000)),
                                 options: callOptions),
            logger: logger)
    }

    /// Ingests the configured `knowledge.ingest_on_start` paths, then embeds whatever chunks
    /// have no vector yet (documents ingested by `conclave ingest` included).
    public func ingestOnStart() async throws {
        if !configuration.knowledge.ingestOnStart.isEmpty {
            let ingestor = Ingestor(store: store, chunker: Chunker(maxTokens: configuration.knowledge.chunkTokens,
                                                                   overlapTokens: configuration.knowledge.chunkOverlapTokens),
                                    logger: logger)
            let summary = try await ingestor.ingest(paths: configuration.knowledge.ingestOnStart)
            logger.info("ingested on start", metadata: ["summary": "\(summary)"])
        }
        try await prepareVectors()
    }

    /// Embeds the chunks that have no vector yet and loads the vector index (before the first question needs it).
    public func prepareVectors() async throws {
        _ = try await vectors?.current()
    }

    /// The served model a request's `model` names for the direct route, if any (the default
    /// model only when `inference.served_model_name` is set).
    public func directModel(named name: String) -> ServedModel? {
        if name == "default" && configuration.inference.servedModelName.isEmpty { return nil }
        return servedModels[name]
    }

    /// The caller behind an `Authorization` header, admitted by the rate limits and token quotas:
    /// every API route starts here (401 or 429 otherwise).
    public func admit(authorization: String?) async throws -> Principal {
        let principal = try await governance.authenticate(authorization: authorization)
        try await limiter.admit(principal)
        return principal
    }

    /// Background services that must run beside the HTTP server (model supervisor, event writer).
    public var backgroundServices: [any Service] {
        var services: [any Service] = []
        // First, so that it stops last (a service group stops in reverse order) and exports the
        // spans of the drain.
        if let tracing = Telemetry.tracingService { services.append(tracing) }
        if let replicaSet { services.append(replicaSet) }
        services += healthCheckers.map { $0 as any Service }
        services.append(eventWriter)
        if let audit = governance.audit { services.append(audit) }
        services.append(ReloadOnHangup(live: live, logger: logger))
        return services
    }
}

extension ConclaveRuntime {
    /// The agents' prompts: the built-in ones, with `path`'s values where it sets them (`""`:
    /// the built-ins alone). Errors name the file and the key.
    static func loadPrompts(_ path: String) throws -> AgentPrompts {
        guard !path.isEmpty else { return .builtIn }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: "workflows.prompts_file", value: path, expected: "a readable prompts YAML file")
        }
        let file: AgentPrompts
        do {
            file = try YAMLDecoder().decode(AgentPrompts.self, from: text)
        } catch var error as ConfigurationError {
            error.origin = path
            throw error
        } catch DecodingError.dataCorrupted(let context) where context.underlyingError is ConfigurationError {
            // Yams wraps an error thrown while decoding (an unknown key) as corrupted data.
            var error = context.underlyingError as! ConfigurationError
            error.origin = path
            throw error
        } catch let error as DecodingError {
            throw ConfigurationError(key: "workflows.prompts_file", value: path, expected: "a prompts file: \(error.readableDescription)")
        } catch {
            throw ConfigurationError(key: "workflows.prompts_file", value: path, expected: "a prompts file (\(error))")
        }
        try file.validate(file: path)
        return AgentPrompts.builtIn.overridden(by: file)
    }
}
