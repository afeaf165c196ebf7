import ConclaveCore
import ConclaveOrchestrator
import Foundation

/// The workflows a server offers: the four built-ins plus any user files.
public struct WorkflowRegistry: Sendable {
    /// Workflows by name.
    public private(set) var workflows: [String: Workflow]
    /// Name of the workflow used when a request names none.
    public var defaultName: String

    /// The four built-in workflows shipped with Conclave.
    public static func builtIns() throws -> [Workflow] {
        guard let directory = Bundle.module.resourceURL?.appendingPathComponent("Workflows").path else {
            throw ConclaveError(.internal, "built-in workflows are missing from the bundle")
        }
        return try WorkflowLoader.loadDirectory(directory)
    }

    /// Creates a registry from the built-ins plus the workflows in `directory` (user files may
    /// replace a built-in by name).
    public init(userDirectory directory: String = "", defaultName: String = "full") throws {
        var all: [String: Workflow] = [:]
        for workflow in try Self.builtIns() { all[workflow.name] = workflow }
        if !directory.isEmpty {
            for workflow in try WorkflowLoader.loadDirectory(directory) { all[workflow.name] = workflow }
        }
        guard all[defaultName] != nil else {
            throw ConfigurationError(key: "workflows.default", value: defaultName,
                                     expected: "one of the workflows: \(all.keys.sorted().joined(separator: ", "))")
        }
        self.workflows = all
        self.defaultName = defaultName
    }

    /// Resolves a request's `model` (`conclave/full`, `full`, or nil for the default).
    public func resolve(_ model: String?) throws -> Workflow {
        guard let model, !model.isEmpty else {
            guard let workflow = workflows[defaultName] else { throw ConclaveError(.internal, "default workflow missing") }
            return workflow
        }
        let name = model.hasPrefix("conclave/") ? String(model.dropFirst("conclave/".count)) : model
        guard let workflow = workflows[name] else {
            throw ConclaveError(.modelNotFound,
                                "The model '\(model)' does not exist. Available: \(workflows.values.map(\.modelID).sorted().joined(separator: ", ")).",
                                parameter: "model")
        }
        return workflow
    }
}
