import ConclaveCore
import ConclaveServer
@testable import ConclaveTelemetry
import Foundation
import Logging
import Testing

@Suite struct LogHandlerTests {
    private func event(_ level: Logger.Level, _ message: String, source: String) -> LogEvent {
        LogEvent(level: level, message: "\(message)", metadata: nil, source: source, file: "f.swift", function: "f()", line: 1)
    }

    @Test func aJSONLineHoldsTheFixedFieldsAndTheMetadataWithTheRequestIdRenamed() throws {
        let metadata: Logger.Metadata = ["hb.request.id": "42", "conversation_id": "conv_1", "user": "u-employee",
                                         "level": "spoofed", "tags": ["a", "b"]]
        let line = ConclaveLogHandler.json(event(.notice, #"quote " and \ newline"#, source: "ConclaveServer"), label: "conclave",
                                           metadata: metadata, now: Date(timeIntervalSince1970: 0))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["time"] == "1970-01-01T00:00:00.000Z")
        #expect(object["level"] == "notice" && object["module"] == "ConclaveServer" && object["label"] == "conclave")
        #expect(object["message"] == #"quote " and \ newline"#)
        #expect(object["request_id"] == "42" && object["conversation_id"] == "conv_1" && object["user"] == "u-employee")
        #expect(object["hb.request.id"] == nil)
        // Metadata cannot overwrite a fixed field.
        #expect(object["tags"] == "[a, b]")
        #expect(!line.contains("\n"))
    }

    @Test func moduleLevelsOverrideTheLevelBothWays() {
        let handler = ConclaveLogHandler(label: "conclave", configuration: LoggingConfiguration(
            level: .info, format: .json, modules: ["ConclaveInference": .debug, "ConclaveKnowledge": .error]))
        // The Logger must let debug through for the one module that wants it.
        #expect(handler.logLevel == .debug)
        #expect(handler.writes(.debug, module: "ConclaveInference"))
        #expect(!handler.writes(.debug, module: "ConclaveServer"))
        #expect(handler.writes(.info, module: "ConclaveServer"))
        #expect(!handler.writes(.warning, module: "ConclaveKnowledge"))
        #expect(handler.writes(.error, module: "ConclaveKnowledge"))
    }

    @Test func anUnknownModuleLevelIsAConfigurationErrorNamingTheKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("logging-\(RandomID.make()).yaml")
        try "logging:\n  format: json\n  modules:\n    ConclaveInference: loud\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let error = try #require(throws: ConfigurationError.self) { try ConfigurationLoader.load(path: file.path, environment: [:]) }
        #expect(error.description.contains("logging.modules.ConclaveInference"))
    }
}
