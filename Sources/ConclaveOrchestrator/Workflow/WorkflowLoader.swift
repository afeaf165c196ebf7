import ConclaveCore
import Foundation
import Yams

/// Loads workflows from YAML and validates them.
public enum WorkflowLoader {
    /// Parses and validates one workflow from YAML text.
    public static func load(yaml: String, origin: String = "<string>", knownModels: Set<String> = ["default"]) throws -> Workflow {
        let workflow: Workflow
        do {
            workflow = try YAMLDecoder().decode(Workflow.self, from: yaml)
        } catch let error as ConclaveError {
            throw ConclaveError(.invalidWorkflow, "\(origin): \(error.message)")
        } catch let error as DecodingError {
            // YAMLDecoder wraps errors thrown by the workflow types' own decoding.
            if case .dataCorrupted(let context) = error, let inner = context.underlyingError as? ConclaveError {
                throw ConclaveError(.invalidWorkflow, "\(origin): \(inner.message)")
            }
            throw ConclaveError(.invalidWorkflow, "\(origin): \(error.readableDescription)")
        } catch {
            throw ConclaveError(.invalidWorkflow, "\(origin): not valid YAML (\(error))")
        }
        do {
            try workflow.validate(knownModels: knownModels)
        } catch let error as ConclaveError {
            throw ConclaveError(.invalidWorkflow, "\(origin): \(error.message)")
        }
        return workflow
    }

    /// Loads every `*.yaml`/`*.yml` file in `directory`, sorted by name.
    public static func loadDirectory(_ directory: String, knownModels: Set<String> = ["default"]) throws -> [Workflow] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw ConclaveError(.invalidWorkflow, "cannot read workflow directory '\(directory)'")
        }
        return try names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { name in
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConclaveError(.invalidWorkflow, "cannot read '\(path)'")
            }
            return try load(yaml: String(decoding: data, as: UTF8.self), origin: path, knownModels: knownModels)
        }
    }
}
