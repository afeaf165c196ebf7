import ConclaveCore
import ConclaveServer
import Foundation
import Testing

@Suite struct ConfigurationTests {
    private func write(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("conclave-config-\(UUID().uuidString).yaml").path
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

    @Test func malformedYAMLIsReported() throws {
        let path = try write("server: [unclosed\n")
        let error = #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: path, environment: [:]) }
        #expect(error?.expected.hasPrefix("valid YAML") == true)
    }

    @Test func unknownDefaultWorkflowIsRejected() throws {
        let error = #expect(throws: ConfigurationError.self) { try WorkflowRegistry(defaultName: "nonexistent") }
        #expect(error?.key == "workflows.default")
    }
}
