import ConclaveCore

/// A workflow: a named DAG of agent steps.
public struct Workflow: Sendable, Hashable, Codable {
    /// Name (the API's model id is `conclave/<name>`).
    public var name: String
    /// What the workflow does.
    public var description: String
    /// Steps in declaration order (validated acyclic; see ``WorkflowLoader``).
    public var steps: [WorkflowStep]
    /// Where its evidence may come from; nil uses `knowledge.data_access`.
    public var dataAccess: [DataAccessMode]?

    /// Creates a workflow; call ``validate(knownModels:)`` before running it.
    public init(name: String, description: String = "", steps: [WorkflowStep], dataAccess: [DataAccessMode]? = nil) {
        self.name = name
        self.description = description
        self.steps = steps
        self.dataAccess = dataAccess
    }

    enum CodingKeys: String, CodingKey {
        case name, description, steps
        case dataAccess = "data_access"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        steps = try c.decode([WorkflowStep].self, forKey: .steps)
        dataAccess = try c.decodeIfPresent([DataAccessMode].self, forKey: .dataAccess)
    }

    /// The longest step timeout a workflow may set: a day.
    public static let maximumStepTimeoutSeconds: Double = 86_400

    /// The API model id of this workflow.
    public var modelID: String { "conclave/\(name)" }

    /// Checks that step ids are unique, dependencies exist, the graph has no cycle, and every
    /// step's model is known. Throws ``ConclaveError`` with code `invalidWorkflow`.
    public func validate(knownModels: Set<String> = ["default"]) throws {
        func fail(_ message: String) -> ConclaveError {
            ConclaveError(.invalidWorkflow, "workflow '\(name)': \(message)")
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw fail("name must be non-empty letters, digits, '-' or '_'")
        }
        guard !steps.isEmpty else { throw fail("has no steps") }
        var ids = Set<String>()
        for step in steps {
            guard !step.id.isEmpty else { throw fail("a step has an empty id") }
            guard ids.insert(step.id).inserted else { throw fail("step id '\(step.id)' is used twice") }
        }
        for step in steps {
            for dependency in step.dependsOn where !ids.contains(dependency) {
                throw fail("step '\(step.id)' depends on '\(dependency)', which is not a step of this workflow")
            }
            if step.dependsOn.contains(step.id) { throw fail("step '\(step.id)' depends on itself") }
            guard knownModels.contains(step.model) else {
                throw fail("step '\(step.id)' uses model '\(step.model)'; known models: \(knownModels.sorted().joined(separator: ", "))")
            }
            // The engine makes a Duration of it, which cannot hold infinity, NaN or more than
            // Int64 milliseconds (fuzz/FuzzWorkflow found 3.2e18 accepted).
            if let timeout = step.timeoutSeconds, !(timeout > 0 && timeout <= Self.maximumStepTimeoutSeconds) {
                throw fail("step '\(step.id)' has timeout_seconds \(timeout); expected a positive number of seconds, "
                           + "at most \(Int(Self.maximumStepTimeoutSeconds))")
            }
            guard step.retry.maxAttempts >= 1 else {
                throw fail("step '\(step.id)' has retry.max_attempts \(step.retry.maxAttempts); expected at least 1")
            }
        }
        if let cycle = findCycle() {
            throw fail("has a dependency cycle: \(cycle.joined(separator: " -> "))")
        }
        let responders = steps.filter { $0.role == .responder }
        guard responders.count == 1 else { throw fail("needs exactly one responder step, found \(responders.count)") }
    }

    /// A cycle as a list of step ids (first repeated at the end), or nil.
    func findCycle() -> [String]? {
        let byID = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var path: [String] = []
        func visit(_ id: String) -> [String]? {
            if state[id] == 2 { return nil }
            if state[id] == 1 {
                let start = path.firstIndex(of: id) ?? 0
                return Array(path[start...]) + [id]
            }
            state[id] = 1
            path.append(id)
            for dependency in byID[id]?.dependsOn ?? [] {
                if let cycle = visit(dependency) { return cycle }
            }
            path.removeLast()
            state[id] = 2
            return nil
        }
        for step in steps {
            if let cycle = visit(step.id) { return cycle.reversed() }
        }
        return nil
    }
}

/// One step of a workflow.
public struct WorkflowStep: Sendable, Hashable, Codable {
    /// Step id, unique in the workflow.
    public var id: String
    /// The agent role that executes the step.
    public var role: AgentRole
    /// Ids of the steps that must complete first.
    public var dependsOn: [String]
    /// Step timeout; nil uses the configured default.
    public var timeoutSeconds: Double?
    /// Retry policy.
    public var retry: RetryPolicy
    /// Name of the model the step uses.
    public var model: String

    /// Creates a step.
    public init(id: String, role: AgentRole, dependsOn: [String] = [], timeoutSeconds: Double? = nil,
                retry: RetryPolicy = RetryPolicy(), model: String = "default") {
        self.id = id
        self.role = role
        self.dependsOn = dependsOn
        self.timeoutSeconds = timeoutSeconds
        self.retry = retry
        self.model = model
    }

    enum CodingKeys: String, CodingKey {
        case id, role
        case dependsOn = "depends_on"
        case timeoutSeconds = "timeout_seconds"
        case retry, model
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        let roleName = try c.decode(String.self, forKey: .role)
        guard let role = AgentRole(rawValue: roleName) else {
            throw ConclaveError(.invalidWorkflow,
                                "step '\(id)' has unknown role '\(roleName)'; expected one of \(AgentRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.role = role
        dependsOn = try c.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds)
        retry = try c.decodeIfPresent(RetryPolicy.self, forKey: .retry) ?? RetryPolicy()
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? "default"
    }
}

/// How often and how patiently a failed step is retried.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Attempts in total (1 means no retry).
    public var maxAttempts: Int
    /// Delay before the first retry, doubled for each further one.
    public var backoffMilliseconds: Int

    /// Creates a policy.
    public init(maxAttempts: Int = 1, backoffMilliseconds: Int = 100) {
        self.maxAttempts = maxAttempts
        self.backoffMilliseconds = backoffMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case maxAttempts = "max_attempts"
        case backoffMilliseconds = "backoff_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? 1
        backoffMilliseconds = try c.decodeIfPresent(Int.self, forKey: .backoffMilliseconds) ?? 100
    }
}
