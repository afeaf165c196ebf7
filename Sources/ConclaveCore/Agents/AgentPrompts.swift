import Foundation

/// The agents' prompts and per-role sampling, as a versioned file (`workflows.prompts_file`,
/// shipped as `config/prompts/agents.yaml`). Anything a role leaves out keeps the built-in value;
/// the built-ins are the shipped file's contents, so a deployment changes a prompt by editing the
/// file, and an evaluation names the version it ran with.
public struct AgentPrompts: Sendable, Codable, Hashable {
    /// The file's version, reported at start and in every answer's `conclave.prompts_version`.
    public var version: String
    /// Settings per role that calls a model.
    public var planner: RolePrompt
    /// The retriever calls a model only to choose a SQL template (`knowledge.sql_template_choice: model`).
    public var retriever: RolePrompt
    public var reasoner: RolePrompt
    public var validator: RolePrompt
    public var responder: RolePrompt

    /// One role's prompt and sampling. `nil` keeps the built-in value (the temperature and seed of
    /// `inference`, the role's own token bound).
    public struct RolePrompt: Sendable, Codable, Hashable {
        /// The system prompt.
        public var instructions: String?
        /// The responder's system prompt when it answers over passages (no validator ran).
        public var passageInstructions: String?
        /// Sampling temperature for this role's calls, 0 to 2.
        public var temperature: Double?
        /// Most tokens one call of this role may generate.
        public var maxTokens: Int?

        /// Creates a role's settings.
        public init(instructions: String? = nil, passageInstructions: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil) {
            self.instructions = instructions
            self.passageInstructions = passageInstructions
            self.temperature = temperature
            self.maxTokens = maxTokens
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case instructions
            case passageInstructions = "passage_instructions"
            case temperature
            case maxTokens = "max_tokens"
        }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            instructions = try c.decodeIfPresent(String.self, forKey: .instructions)
            passageInstructions = try c.decodeIfPresent(String.self, forKey: .passageInstructions)
            temperature = try c.decodeIfPresent(Double.self, forKey: .temperature)
            maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        }

        /// `self`, with `other`'s values where it sets them.
        func overridden(by other: RolePrompt) -> RolePrompt {
            RolePrompt(instructions: other.instructions ?? instructions, passageInstructions: other.passageInstructions ?? passageInstructions,
                       temperature: other.temperature ?? temperature, maxTokens: other.maxTokens ?? maxTokens)
        }
    }

    /// Creates prompts; roles left out have no overrides.
    public init(version: String, planner: RolePrompt = .init(), retriever: RolePrompt = .init(), reasoner: RolePrompt = .init(),
                validator: RolePrompt = .init(), responder: RolePrompt = .init()) {
        self.version = version
        self.planner = planner
        self.retriever = retriever
        self.reasoner = reasoner
        self.validator = validator
        self.responder = responder
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case version, planner, retriever, reasoner, validator, responder
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(String.self, forKey: .version)
        planner = try c.decodeIfPresent(RolePrompt.self, forKey: .planner) ?? .init()
        retriever = try c.decodeIfPresent(RolePrompt.self, forKey: .retriever) ?? .init()
        reasoner = try c.decodeIfPresent(RolePrompt.self, forKey: .reasoner) ?? .init()
        validator = try c.decodeIfPresent(RolePrompt.self, forKey: .validator) ?? .init()
        responder = try c.decodeIfPresent(RolePrompt.self, forKey: .responder) ?? .init()
    }

    /// `self`, with `file`'s values where it sets them, and its version.
    public func overridden(by file: AgentPrompts) -> AgentPrompts {
        AgentPrompts(version: file.version, planner: planner.overridden(by: file.planner), retriever: retriever.overridden(by: file.retriever),
                     reasoner: reasoner.overridden(by: file.reasoner),
                     validator: validator.overridden(by: file.validator), responder: responder.overridden(by: file.responder))
    }

    /// The first setting out of range, as a configuration error naming its key in the file.
    public func validate(file: String) throws {
        for (role, prompt) in [("planner", planner), ("retriever", retriever), ("reasoner", reasoner), ("validator", validator), ("responder", responder)] {
            if let t = prompt.temperature, !(0...2).contains(t) {
                throw ConfigurationError(key: "\(role).temperature", value: String(t), expected: "a number from 0 to 2", origin: file)
            }
            if let m = prompt.maxTokens, !(1...4096).contains(m) {
                throw ConfigurationError(key: "\(role).max_tokens", value: String(m), expected: "an integer from 1 to 4096", origin: file)
            }
            if let i = prompt.instructions, i.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw ConfigurationError(key: "\(role).instructions", value: "", expected: "a non-empty prompt, or the key left out", origin: file)
            }
        }
        if version.isEmpty {
            throw ConfigurationError(key: "version", value: "", expected: "a version string such as 2026-11-27", origin: file)
        }
    }
}
