import ConclaveCore
import ConclaveServer
import Foundation
import Testing

@Suite final class ConfigurationTests {
    /// The test's configuration files, removed when the test ends.
    private let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-config-\(UUID().uuidString)")

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ yaml: String) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func noFileGivesEmbeddedDefaults() throws {
        let configuration = try ConfigurationLoader.load(path: nil, environment: [:])
        #expect(configuration == ConclaveConfiguration())
        #expect(configuration.server.port == 8080)
        #expect(configuration.inference.provider == .embedded)
        #expect(configuration.workflows.defaultWorkflow == "full")
    }

    @Test func shippedConfigurationIsTheDefault() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/conclave.yaml").path
        let configuration = try ConfigurationLoader.load(path: path, environment: [:])
        #expect(configuration == ConclaveConfiguration())
    }

    @Test func wrongTypeNamesKeyValueAndExpectation() throws {
        let path = try write("server:\n  port: eighty\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.key == "server.port")
        #expect(error?.value == "eighty")
        #expect(error?.expected == "an integer")
        #expect(error?.description.contains(path) == true)
    }

    @Test func outOfRangeValueIsRejected() throws {
        let path = try write("server:\n  port: 70000\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.key == "server.port")
        #expect(error?.value == "70000")
        #expect(error?.expected.contains("0 to 65535") == true)
    }

    @Test func unknownKeyIsNamed() throws {
        let path = try write("server:\n  prot: 9000\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.key == "server.prot")
        #expect(error?.expected.contains("port") == true)
        #expect(error?.description.contains("is not a known key") == true)
    }

    @Test func unknownEnumValueListsTheAllowedOnes() throws {
        let path = try write("inference:\n  provider: ollama-magic\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.key == "inference.provider")
        #expect(error?.expected == "one of embedded, openai")
    }

    @Test func environmentOverridesTheFile() throws {
        let path = try write("server:\n  port: 9000\nknowledge:\n  top_k: 3\n")
        let configuration = try ConfigurationLoader.load(
            path: path, environment: ["CONCLAVE_SERVER__PORT": "9100", "CONCLAVE_KNOWLEDGE__INGEST_ON_START": "[a, b]",
                                      "UNRELATED": "x", "CONCLAVE_BIN": "/usr/bin/true"])
        #expect(configuration.server.port == 9100)
        #expect(configuration.knowledge.topK == 3)
        #expect(configuration.knowledge.ingestOnStart == ["a", "b"])
    }

    @Test func authAndGovernanceHaveSafeDefaultsAndEnvironmentOverrides() throws {
        let defaults = try ConfigurationLoader.load(path: nil, environment: [:])
        #expect(defaults.auth.mode == .jwt)
        #expect(defaults.governance.mode == .full)
        let open = try ConfigurationLoader.load(
            path: nil, environment: ["CONCLAVE_AUTH__MODE": "none", "CONCLAVE_GOVERNANCE__MODE": "off"])
        #expect(open.auth.mode == .none && open.governance.mode == .off)
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: nil, environment: ["CONCLAVE_GOVERNANCE__MODE": "partial"])
        }
        #expect(error?.key == "governance.mode")
        #expect(error?.expected.contains("off, access, audit, full") == true)
        let path = try write("auth:\n  mode: jwt\n  hs256_key_file: \"\"\n")
        let missingKey = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(missingKey?.key == "auth.hs256_key_file")
    }

    @Test func badEnvironmentValueNamesTheVariable() throws {
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: nil, environment: ["CONCLAVE_INFERENCE__TEMPERATURE": "7"])
        }
        #expect(error?.key == "inference.temperature")
        #expect(error?.origin == "environment variable CONCLAVE_INFERENCE__TEMPERATURE")
    }

    @Test func openAIProviderNeedsAnEndpoint() throws {
        let path = try write("inference:\n  provider: openai\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.key == "inference.endpoint")
    }

    @Test func answerPhrasingIsReadAndABadValueNamesItsKey() throws {
        #expect(ConclaveConfiguration().workflows.answerPhrasing == .quote)
        let model = try ConfigurationLoader.load(path: try write("workflows:\n  answer_phrasing: model\n"), environment: [:])
        #expect(model.workflows.answerPhrasing == .model)
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: try write("workflows:\n  answer_phrasing: poetry\n"), environment: [:])
        }
        #expect(error?.key == "workflows.answer_phrasing")
    }

    @Test func automaticThreadsDivideTheCoresAmongTheReplicasThatMayRunAtOnce() throws {
        var inference = ConclaveConfiguration().inference
        #expect(inference.threadsPerReplica(cores: 8) == 8)
        inference.replicas = 2
        #expect(inference.threadsPerReplica(cores: 8) == 4)
        #expect(inference.threadsPerReplica(cores: 2) == 1)
        inference.replicas = 4
        #expect(inference.threadsPerReplica(cores: 2) == 1, "never below one thread")
        inference.replicas = 1
        inference.autoscale.enabled = true
        inference.autoscale.maxReplicas = 3
        #expect(inference.threadsPerReplica(cores: 12) == 4, "the autoscaler's ceiling counts")
        inference.threads = 6
        #expect(inference.threadsPerReplica(cores: 12) == 6, "an explicit setting wins")
    }

    @Test func breakerSettingsAreReadAndChecked() throws {
        let configuration = try ConfigurationLoader.load(
            path: try write("inference:\n  breaker_failures: 5\n  breaker_open_seconds: 30\n"), environment: [:])
        #expect(configuration.inference.breakerFailures == 5 && configuration.inference.breakerOpenSeconds == 30)
        #expect(ConclaveConfiguration().inference.breakerFailures == 3 && ConclaveConfiguration().inference.breakerOpenSeconds == 5)
        let zero = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: try self.write("inference:\n  breaker_failures: 0\n"), environment: [:])
        }
        #expect(zero?.key == "inference.breaker_failures")
        let negative = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: nil, environment: ["CONCLAVE_INFERENCE__BREAKER_OPEN_SECONDS": "-1"])
        }
        #expect(negative?.key == "inference.breaker_open_seconds")
    }

    @Test func namedModelsAndTheAutoscalerAreReadAndChecked() throws {
        let good = try write("""
            inference:
              autoscale: {enabled: true, min_replicas: 1, max_replicas: 3, target_outstanding: 2}
              models:
                - name: big
                  endpoints: [http://10.0.0.5:8000/v1, http://10.0.0.6:8000/v1]
                  model: Qwen/Qwen2.5-7B-Instruct
                  api_key_env: BIG_KEY
                - {name: embedder, endpoints: ["http://10.0.0.7:8000/v1"], chat: false, embeddings: true, health_path: ""}
              agents_model: big
            """)
        let configuration = try ConfigurationLoader.load(path: good, environment: [:])
        #expect(configuration.inference.models.map(\.name) == ["big", "embedder"])
        #expect(configuration.inference.models[0].upstreamModel == "Qwen/Qwen2.5-7B-Instruct")
        #expect(configuration.inference.models[1].upstreamModel == "embedder")
        #expect(configuration.inference.autoscale.maxReplicas == 3 && configuration.inference.autoscaleTarget == 2)
        #expect(configuration.inference.connectTimeoutSeconds == 5)

        let cases: [(String, String)] = [
            ("inference:\n  models:\n    - {name: smollm2, endpoints: [\"http://h/v1\"]}\n", "inference.models[0].name"),
            ("inference:\n  models:\n    - {name: a, endpoints: [\"ftp://h\"]}\n", "inference.models[0].endpoints"),
            ("inference:\n  models:\n    - {name: a, endpoints: []}\n", "inference.models[0].endpoints"),
            ("inference:\n  models:\n    - {name: a, endpoints: [\"http://h/v1\"], api_key: sk-123}\n", "inference.models[0].api_key"),
            ("inference:\n  agents_model: missing\n", "inference.agents_model"),
            ("inference:\n  autoscale: {min_replicas: 3, max_replicas: 2}\n", "inference.autoscale.max_replicas"),
            ("inference:\n  provider: openai\n  endpoint: http://h/v1\n  autoscale: {enabled: true}\n", "inference.autoscale.enabled"),
            ("inference:\n  connect_timeout_seconds: 0\n", "inference.connect_timeout_seconds"),
        ]
        for (yaml, key) in cases {
            let path = try write(yaml)
            let error = #expect(throws: ConfigurationError.self, "\(yaml)") { try ConfigurationLoader.load(path: path, environment: [:]) }
            #expect(error?.key == key, "\(yaml)")
        }
    }

    @Test func offIsAGovernanceModeInTheFileAndInTheEnvironment() throws {
        let path = try write("governance:\n  mode: off\n")
        #expect(try ConfigurationLoader.load(path: path, environment: [:]).governance.mode == .off)
        let fromEnvironment = try ConfigurationLoader.load(path: nil, environment: ["CONCLAVE_GOVERNANCE__MODE": "off"])
        #expect(fromEnvironment.governance.mode == .off)
        // Booleans are still booleans.
        let flag = try ConfigurationLoader.load(path: nil, environment: ["CONCLAVE_INFERENCE__AUTOSCALE__ENABLED": "true"])
        #expect(flag.inference.autoscale.enabled)
    }

    @Test func malformedYAMLIsReported() throws {
        let path = try write("server: [unclosed\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.expected.hasPrefix("valid YAML") == true)
    }

    /// Found by fuzz/FuzzConfiguration: both trapped in Yams' constructor or expanded without bound.
    @Test func nonScalarKeysAndMultiplyingAliasesAreRefused() throws {
        let key = try write("server:\n  [a, b]: 1\n")
        let keyError = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: key, environment: [:]) }
        #expect(keyError?.expected.contains("keys must be strings") == true)
        var laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...8 { laughs += "l\(level): &l\(level) [" + Array(repeating: level == 1 ? "*a" : "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let bomb = try write(laughs)
        let bombError = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: bomb, environment: [:]) }
        #expect(bombError?.expected.contains("more than 100000 values") == true)
    }

    /// Found by fuzz/FuzzConfiguration: every `…_seconds` value becomes a Duration, which traps on
    /// infinity, NaN and numbers past Int64.
    @Test func durationsMustBeFiniteAndAtMostAYear() throws {
        for (yaml, key) in [("server:\n  request_timeout_seconds: .inf\n", "server.request_timeout_seconds"),
                            ("knowledge:\n  cache_ttl_seconds: 1.0e+300\n", "knowledge.cache_ttl_seconds"),
                            ("inference:\n  autoscale:\n    interval_seconds: .nan\n", "inference.autoscale.interval_seconds")] {
            let path = try write(yaml)
            let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
            #expect(error?.key == key)
            #expect(error?.expected.contains("at most") == true)
        }
        let year = try ConfigurationLoader.load(path: nil, environment: ["CONCLAVE_KNOWLEDGE__CACHE_TTL_SECONDS": "31536000"])
        #expect(year.knowledge.cacheTTLSeconds == 31_536_000)
    }

    @Test func unknownDefaultWorkflowIsRejected() throws {
        let error = #expect(throws: ConfigurationError.self) { try WorkflowRegistry(defaultName: "nonexistent") }
        #expect(error?.key == "workflows.default")
    }
}
