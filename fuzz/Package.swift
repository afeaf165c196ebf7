// swift-tools-version: 5.4
// The fuzz targets: one libFuzzer executable per parser that reads outside input (docs/reliability.md).
//
// Tools version 5.4 on purpose. From 5.5 on, SwiftPM renames an executable module's entry point
// to `<module>_main` and links it with `--defsym main=<module>_main`; a fuzz target has no entry
// point of its own (libFuzzer's runtime provides `main`), so that link fails. 5.4 links plainly.
//
// Build and run with `scripts/fuzz.sh` (`make fuzz`), which passes `-sanitize=fuzzer,address`.
// The targets use `@testable import` for the few internal parsers they reach (the CSV and HTML
// readers, the stream chunk scanner, the SQL guard, the PII stream filter): debug builds compile
// every module with testing enabled, and the fuzz build is always a debug build.
import PackageDescription

let conclave = "Conclave"

func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies)
}

let package = Package(
    name: "ConclaveFuzz",
    dependencies: [
        .package(name: conclave, path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Checks that abort (a libFuzzer crash), structured input, a blocking bridge to async code.
        .target(name: "FuzzSupport", dependencies: [.product(name: "ConclaveEval", package: conclave)]),
        fuzzTarget("FuzzChatRequest", [
            .product(name: "ConclaveServer", package: conclave), .product(name: "ConclaveCore", package: conclave),
        ]),
        fuzzTarget("FuzzSSEStream", [
            .product(name: "ConclaveInference", package: conclave), .product(name: "NIOCore", package: "swift-nio"),
        ]),
        fuzzTarget("FuzzConfiguration", [
            .product(name: "ConclaveServer", package: conclave), .product(name: "ConclaveCore", package: conclave),
            .product(name: "ConclaveKnowledge", package: conclave),
            .product(name: "Yams", package: "Yams"),
        ]),
        fuzzTarget("FuzzWorkflow", [
            .product(name: "ConclaveOrchestrator", package: conclave), .product(name: "ConclaveCore", package: conclave),
            .product(name: "Yams", package: "Yams"),
        ]),
        fuzzTarget("FuzzAccessPolicy", [
            .product(name: "ConclaveGovernance", package: conclave), .product(name: "ConclaveCore", package: conclave),
        ]),
        fuzzTarget("FuzzFrontMatter", [
            .product(name: "ConclaveKnowledge", package: conclave), .product(name: "Yams", package: "Yams"),
        ]),
        fuzzTarget("FuzzIngestion", [.product(name: "ConclaveKnowledge", package: conclave)]),
        fuzzTarget("FuzzPII", [
            .product(name: "ConclaveGovernance", package: conclave), .product(name: "ConclaveCore", package: conclave),
        ]),
        fuzzTarget("FuzzSQLGuard", [
            .product(name: "ConclaveKnowledge", package: conclave), .product(name: "GRDBSQLite", package: "GRDB.swift"),
        ]),
        fuzzTarget("FuzzJWT", [
            .product(name: "ConclaveGovernance", package: conclave), .product(name: "ConclaveCore", package: conclave),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ]
)
