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
import Foundation
import Logging
import ServiceLifecycle

/// The composition root: builds every component of a Conclave process from its configuration.
public struct ConclaveRuntime: Sendable {
    /// The configuration the runtime was built from.
    public let configuration: ConclaveConfiguration
    /// The embedded store.
    public let store: SQLiteStore
    /// The chat model every agent uses.
    public let model: any ChatModel
    /// The local `llama-server` supervisors (one per replica), when the provider is `embedded`.
    public let supervisors: [LlamaServerSupervisor]
    /// The first supervisor, if any.
    public var supervisor: LlamaServerSupervisor? { supervisors.first }
    /// The replica pool behind the model (nil when a model is passed in, as tests do).
    public let pool: ReplicaPool?
    /// Group-commit writer of run events.
    public let eventWriter: BatchingEventWriter
    /// The in-process message bus.
    public let bus: InProcessMessageBus
    /// The workflows offered.
    public let workflows: WorkflowRegistry
    /// The workflow engine.
    public let engine: WorkflowEngine
    /// Document retrieval.
    public let retriever: any Retriever
    /// The business database behind the SQL templates, when `knowledge.sql_templates_file` names one.
    public let database: DatabaseConnector?
    /// The internal API connector, when `knowledge.api_file` names one.
    public let api: APIConnector?
    /// Answers of the `cached` data-access mode.
    public let answerCache: AnswerCache
    /// The in-process MiniLM embedder (`/v1/embeddings`, vector retrieval); nil when its files are missing.
    public let embedder: MiniLMEmbedder?
    /// The chunk vectors, when retrieval uses them.
    public let vectors: VectorCatalog?
    /// Sampling settings from `inference` (a request may override them).
    public let callOptions: ModelCallOptions
    /// Logger.
    public let logger: Logger
    /// Authentication and access control.
    public let governance: Governance

    /// Builds a runtime. `model` replaces the configured provider (tests pass a scripted model).
    public init(configuration: ConclaveConfiguration, model overrideModel: (any ChatModel)? = nil,
                logger: Logger = Logger(label: "conclave")) async throws {
        self.configuration = configuration
        self.logger = logger
        store = try SQLiteStore(path: configuration.storage.path)
        let inference = configuration.inference
        if let overrideModel {
            model = overrideModel
            supervisors = []
            pool = nil
        } else {
            let replicas = ReplicaPool(configuration: .init(maxInFlightPerReplica: max(1, inference.parallelSlots)))
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
                supervisors = try (0..<inference.replicas).map { index in
                    try LlamaServerSupervisor(
                        configuration: .init(serverPath: serverPath, modelPath: modelPath, contextSize: inference.contextSize,
                                             parallelSlots: inference.parallelSlots, threads: inference.threads,
                                             startupTimeout: .milliseconds(Int64(inference.startupTimeoutSeconds * 1000)),
                                             logPath: logDirectory.appendingPathComponent(
                                                 index == 0 ? "llama-server.log" : "llama-server-\(index + 1).log").path),
                        replicas: replicas, logger: logger)
                }
            case .openai:
                var base = inference.endpoint
                while base.hasSuffix("/") { base.removeLast() }
                replicas.add(base)
                supervisors = []
            }
            pool = replicas
            let apiKey = inference.apiKeyEnv.isEmpty ? nil : ProcessInfo.processInfo.environment[inference.apiKeyEnv]
            model = OpenAICompatibleChatModel(
                pool: replicas,
                configuration: .init(model: inference.model, apiKey: apiKey,
                                     timeout: .milliseconds(Int64(inference.requestTimeoutSeconds * 1000)),
                                     firstTokenTimeout: inference.firstTokenTimeoutSeconds > 0
                                         ? .milliseconds(Int64(inference.firstTokenTimeoutSeconds * 1000)) : nil),
                logger: logger)
        }
        governance = try await Governance(auth: configuration.auth, configuration: configuration.governance,
                                          audit: configuration.audit, store: store, logger: logger)
        eventWriter = BatchingEventWriter(store: store, logger: logger)
        bus = InProcessMessageBus()
        workflows = try WorkflowRegistry(userDirectory: configuration.workflows.directory,
                                         defaultName: configuration.workflows.defaultWorkflow)
        // The embedder: an explicit path must load; the default (found in .venv) may be missing,
        // and then retrieval falls back to BM25 with a warning.
        let knowledge = configuration.knowledge
        var loaded: MiniLMEmbedder?
        do {
            loaded = try EmbeddingModel.load(directory: knowledge.embeddingModelPath, projectRoot: EmbeddedModelLocator.projectRoot().path,
                                             threads: knowledge.embeddingThreads)
        } catch let error as EmbeddingModel.EmbeddingModelNotFound where knowledge.embeddingModelPath.isEmpty {
            logger.warning("no embedding model: /v1/embeddings is off and retrieval uses BM25 only", metadata: ["reason": "\(error.message)"])
        } catch {
            throw ConfigurationError(key: "knowledge.embedding_model_path", value: knowledge.embeddingModelPath,
                                     expected: "a directory with all-MiniLM-L6-v2's model.safetensors and vocab.txt (\(error))")
        }
        embedder = loaded
        if let loaded, knowledge.retrieval != "bm25" {
            let catalog = VectorCatalog(store: store, embedder: loaded, model: EmbeddingModel.name, logger: logger)
            vectors = catalog
            retriever = HybridRetriever(store: store, embedder: loaded, catalog: catalog,
                                        mode: HybridRetriever.Mode(rawValue: knowledge.retrieval) ?? .hybrid)
        } else {
            vectors = nil
            retriever = BM25Retriever(store: store)
        }
        if configuration.knowledge.sqlTemplatesFile.isEmpty {
            database = nil
        } else {
            do {
                database = try DatabaseConnector(path: configuration.knowledge.sqlTemplatesFile, logger: logger)
            } catch let error as TemplateError {
                throw ConfigurationError(key: "knowledge.sql_templates_file", value: configuration.knowledge.sqlTemplatesFile,
                                         expected: "a valid SQL template file (\(error.message))")
            }
        }
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
        if let database { sources.append(database) }
        if let api { sources.append(api) }
        callOptions = ModelCallOptions(temperature: inference.temperature, seed: inference.seed, maxTokens: inference.maxTokens)
        let team = AgentTeam(model: model, retriever: retriever, sources: sources, topK: configuration.knowledge.topK)
        engine = WorkflowEngine(
            team: team, bus: bus, eventLog: eventWriter,
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

    /// Background services that must run beside the HTTP server (model supervisor, event writer).
    public var backgroundServices: [any Service] {
        var services: [any Service] = []
        services += supervisors.map { $0 as any Service }
        services.append(eventWriter)
        if let audit = governance.audit { services.append(audit) }
        return services
    }
}
