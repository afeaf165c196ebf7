// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Conclave",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "conclave", targets: ["conclave"]),
        .library(name: "ConclaveCore", targets: ["ConclaveCore"]),
        .library(name: "ConclaveInference", targets: ["ConclaveInference"]),
        .library(name: "ConclaveStorage", targets: ["ConclaveStorage"]),
        .library(name: "ConclaveKnowledge", targets: ["ConclaveKnowledge"]),
        .library(name: "ConclaveVectors", targets: ["ConclaveVectors"]),
        .library(name: "ConclaveEmbeddings", targets: ["ConclaveEmbeddings"]),
        .library(name: "ConclaveMessaging", targets: ["ConclaveMessaging"]),
        .library(name: "ConclaveGovernance", targets: ["ConclaveGovernance"]),
        .library(name: "ConclaveAgents", targets: ["ConclaveAgents"]),
        .library(name: "ConclaveOrchestrator", targets: ["ConclaveOrchestrator"]),
        .library(name: "ConclaveTelemetry", targets: ["ConclaveTelemetry"]),
        .library(name: "ConclaveServer", targets: ["ConclaveServer"]),
        .library(name: "ConclaveTesting", targets: ["ConclaveTesting"]),
        .library(name: "ConclaveEval", targets: ["ConclaveEval"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP/HTTP only: the gRPC exporter's dependencies would add minutes to every clean build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.4.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(
            name: "ConclaveCore",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "ConclaveTelemetry",
            dependencies: [
                "ConclaveCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ConclaveInference",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ConclaveCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ConclaveStorage",
            dependencies: [
                "ConclaveCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Vector search: exact (int8 pre-scan with a proven bound, then Float32) and HNSW. The C
        // target holds AVX-512 / AVX2 dot-product kernels chosen at run time by CPUID, so a plain
        // build is fast on any x86-64; other CPUs use the Swift SIMD kernels (docs/knowledge.md).
        .target(name: "CVectorKernels"),
        .target(name: "ConclaveVectors", dependencies: ["CVectorKernels"]),
        .executableTarget(name: "vector-bench", dependencies: ["ConclaveVectors"]),
        // all-MiniLM-L6-v2 in Swift: safetensors, WordPiece, the BERT encoder. Matrix products go
        // through OpenBLAS loaded at run time (dlopen), falling back to Swift SIMD without it. The
        // kernels are built optimised in debug too: at -Onone the model tests take minutes.
        // bfloat16 GEMMs on Intel AMX (Sapphire Rapids and later), chosen at run time like the
        // vector kernels; everything else keeps the float32 paths (docs/knowledge.md). Optimised
        // in debug too, like the encoder (at -O0 the intrinsics run at a third of the speed).
        .target(name: "CMatrixKernels", cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(
            name: "ConclaveEmbeddings",
            dependencies: ["CMatrixKernels"],
            swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))],
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .executableTarget(name: "embed-bench", dependencies: ["ConclaveEmbeddings"]),
        .target(
            name: "ConclaveKnowledge",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ConclaveCore", "ConclaveStorage", "ConclaveInference", "ConclaveVectors", "ConclaveEmbeddings", "CLibPQ",
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // PostgreSQL's C client (Debian's libpq-dev), for the SQL connector's read-only connections.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // The NATS C client (Debian's libnats-dev), JetStream included, for distributed mode's bus.
        .systemLibrary(name: "CNATS", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .target(
            name: "ConclaveMessaging",
            dependencies: [
                "ConclaveCore", "ConclaveStorage", "CNATS",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ConclaveGovernance",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ConclaveCore", "ConclaveStorage",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ConclaveAgents",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ConclaveCore", "ConclaveInference", "ConclaveKnowledge",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ConclaveOrchestrator",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ConclaveCore", "ConclaveAgents", "ConclaveMessaging", "ConclaveStorage",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ConclaveServer",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ConclaveCore", "ConclaveOrchestrator", "ConclaveStorage", "ConclaveInference",
                "ConclaveKnowledge", "ConclaveAgents", "ConclaveMessaging", "ConclaveTelemetry", "ConclaveGovernance",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Resources/Workflows"), .copy("Resources/OpenAPI")]
        ),
        .target(
            name: "ConclaveTesting",
            dependencies: [
                "ConclaveCore", "ConclaveInference", "ConclaveStorage", "ConclaveServer", "ConclaveKnowledge",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "ConclaveEval",
            dependencies: [
                "ConclaveCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "conclave",
            dependencies: [
                "ConclaveCore", "ConclaveServer", "ConclaveKnowledge", "ConclaveStorage",
                "ConclaveInference", "ConclaveOrchestrator", "ConclaveTelemetry", "ConclaveTesting", "ConclaveEval",
                "ConclaveGovernance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ConclaveCoreTests",
            dependencies: ["ConclaveCore", "ConclaveServer", "ConclaveTesting"]
        ),
        .testTarget(
            name: "ConclaveOrchestratorTests",
            dependencies: ["ConclaveOrchestrator", "ConclaveAgents", "ConclaveTesting", "ConclaveStorage", "ConclaveMessaging"]
        ),
        .testTarget(
            name: "ConclaveGovernanceTests",
            dependencies: ["ConclaveGovernance", "ConclaveCore", "ConclaveStorage", .product(name: "JWTKit", package: "jwt-kit"),
                           .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(name: "ConclaveVectorsTests", dependencies: ["ConclaveVectors"]),
        .testTarget(
            name: "ConclaveMessagingTests",
            dependencies: ["ConclaveMessaging", "ConclaveCore", "ConclaveTesting"]
        ),
        .testTarget(
            name: "ConclaveStorageTests",
            dependencies: ["ConclaveStorage", "ConclaveCore", "ConclaveTesting", "ConclaveInference"]
        ),
        .testTarget(name: "ConclaveEmbeddingsTests", dependencies: ["ConclaveEmbeddings", "CMatrixKernels"]),
        .testTarget(
            name: "ConclaveKnowledgeTests",
            dependencies: ["ConclaveKnowledge", "ConclaveStorage", "ConclaveTesting"]
        ),
        .testTarget(
            name: "ConclaveServerTests",
            dependencies: [
                "ConclaveServer", "ConclaveTesting", "ConclaveGovernance",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "ConclaveInferenceTests",
            dependencies: ["ConclaveInference", "ConclaveTesting"]
        ),
        .testTarget(
            name: "ConclaveEvalTests",
            dependencies: ["ConclaveEval", "ConclaveServer", "ConclaveOrchestrator", "ConclaveTesting"]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ConclaveServer", "ConclaveTesting", "ConclaveInference", "ConclaveAgents", "ConclaveStorage", "ConclaveCore", "ConclaveKnowledge",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
