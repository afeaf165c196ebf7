import ConclaveCore
import Foundation
import Yams

/// An access policy as written in YAML (see `config/policies/meridian.yaml` and
/// docs/governance.md): roles, the document matrix and grants, tables, columns, PII types, API
/// operations and workflows. Default deny: what no rule grants is refused.
public struct AccessPolicy: Sendable, Hashable {
    /// What other roles see of a sensitive column.
    public enum ColumnFallback: String, Sendable, Hashable, Codable {
        /// No values, aggregates, ranges or rankings.
        case deny
        /// Values in the masked form of the column's PII type.
        case mask
    }

    /// How a PII value looks to a principal who may not see it.
    public enum MaskedForm: String, Sendable, Hashable, Codable {
        /// First character and the domain of an e-mail address: `b***@example.com`.
        case partial
        /// Only the last two digits: `+31 6 **** **55`.
        case lastTwo = "last_two"
        /// `[restricted]`.
        case restricted
        /// A stable token from the value's SHA-256: `[email:3f2a9c1e]`, so equal values can be
        /// correlated without being revealed.
        case hash
    }

    /// Input rules: limits and refusals decided before anything reaches a model.
    public struct InputRules: Sendable, Hashable, Codable {
        /// Longest accepted question, in characters (0: no limit).
        public var maxCharacters: Int
        /// Case-insensitive regular expressions; a matching question is refused (politely).
        public var denyPatterns: [String]
        /// Topics refused, each a list of words that must all occur (case-insensitive).
        public var denyTopics: [String: [String]]

        enum CodingKeys: String, CodingKey {
            case maxCharacters = "max_characters", denyPatterns = "deny_patterns", denyTopics = "deny_topics"
        }

        public init(maxCharacters: Int = 0, denyPatterns: [String] = [], denyTopics: [String: [String]] = [:]) {
            self.maxCharacters = maxCharacters
            self.denyPatterns = denyPatterns
            self.denyTopics = denyTopics
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxCharacters = try c.decodeIfPresent(Int.self, forKey: .maxCharacters) ?? 0
            denyPatterns = try c.decodeIfPresent([String].self, forKey: .denyPatterns) ?? []
            denyTopics = try c.decodeIfPresent([String: [String]].self, forKey: .denyTopics) ?? [:]
        }
    }

    public struct Grant: Sendable, Hashable, Codable {
        public var id: String
        public var document: String
        public var roles: [String]
    }

    public struct Column: Sendable, Hashable, Codable {
        public var unmasked: RoleSet
        public var others: ColumnFallback
        public var pii: String?
    }

    public struct PIIRule: Sendable, Hashable, Codable {
        public var unmasked: RoleSet
        public var masked: MaskedForm
    }

    public var roles: [String]
    /// role → classification → departments.
    public var matrix: [String: [String: DepartmentSet]]
    public var grants: [Grant]
    public var tables: [String: RoleSet]
    public var columns: [String: Column]
    public var pii: [String: PIIRule]
    public var api: [String: RoleSet]
    public var workflows: [String: RoleSet]
    /// E-mail domains of work addresses.
    public var emailDomains: [String] = []
    /// Input rules.
    public var input = InputRules()
    /// Case-insensitive patterns no sentence of an answer may match.
    public var outputDenyPatterns: [String] = []
    /// Roles that may use the admin routes (`/admin/...`).
    public var adminRoles = RoleSet(["admin"])
    /// Roles that may read the audit trail (`GET /admin/audit`, the console's audit browser);
    /// default: the admin roles.
    public var auditRoles = RoleSet(["admin"])
    /// Roles that may set the governance mode of their own request (for evaluations).
    public var modeOverrideRoles = RoleSet([])

    /// Parses a policy; errors name the file and what is wrong.
    public static func load(yaml: String, origin: String = "(policy)") throws -> AccessPolicy {
        let file: File
        do {
            file = try YAMLDecoder().decode(File.self, from: yaml)
        } catch {
            throw ConfigurationError(key: "governance.policy_file", value: origin, expected: "a valid access policy (\(error))")
        }
        var policy = AccessPolicy(
            roles: file.roles, matrix: file.documents.matrix, grants: file.documents.grants ?? [], tables: file.tables ?? [:],
            columns: file.columns ?? [:], pii: file.pii ?? [:], api: file.api ?? [:], workflows: file.workflows ?? [:])
        policy.emailDomains = file.organisation?.emailDomains ?? []
        policy.input = file.rules?.input ?? InputRules()
        policy.modeOverrideRoles = file.rules?.modeOverrideRoles ?? RoleSet([])
        policy.outputDenyPatterns = file.rules?.output?.denyPatterns ?? []
        policy.adminRoles = file.rules?.adminRoles ?? RoleSet(["admin"])
        policy.auditRoles = file.rules?.auditRoles ?? policy.adminRoles
        for pattern in policy.input.denyPatterns + policy.outputDenyPatterns where (try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive])) == nil {
            throw ConfigurationError(key: "governance.policy_file", value: origin, expected: "valid regular expressions in rules.input.deny_patterns; '\(pattern)' is not")
        }
        try policy.check(origin: origin, declaredRules: file.rules)
        return policy
    }

    /// Reads and parses a policy file.
    public static func load(path: String) throws -> AccessPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: "governance.policy_file", value: path, expected: "a readable policy YAML file")
        }
        return try load(yaml: text, origin: path)
    }

    /// Every role a rule names must be declared, so a typo cannot silently deny (or allow).
    private func check(origin: String, declaredRules: File.Rules? = nil) throws {
        let known = Set(roles)
        func verify(_ names: [String], _ place: String) throws {
            for name in names {
                let role = name.hasPrefix("!") ? String(name.dropFirst()) : name
                guard role == "*" || known.contains(role) else {
                    throw ConfigurationError(key: "governance.policy_file", value: origin,
                                             expected: "only declared roles in \(place); '\(role)' is not one of \(roles.joined(separator: ", "))")
                }
            }
        }
        try verify(Array(matrix.keys), "documents.matrix")
        for grant in grants { try verify(grant.roles, "documents.grants \(grant.id)") }
        for (table, set) in tables { try verify(set.entries, "tables.\(table)") }
        for (column, rule) in columns { try verify(rule.unmasked.entries, "columns.\(column)") }
        for (type, rule) in pii { try verify(rule.unmasked.entries, "pii.\(type)") }
        for (operation, set) in api { try verify(set.entries, "api.\(operation)") }
        for (workflow, set) in workflows { try verify(set.entries, "workflows.\(workflow)") }
        // The role lists of `rules` as the file writes them (the default admin role need not be declared).
        try verify(declaredRules?.adminRoles?.entries ?? [], "rules.admin_roles")
        try verify(declaredRules?.modeOverrideRoles?.entries ?? [], "rules.mode_override_roles")
        try verify(declaredRules?.auditRoles?.entries ?? [], "rules.audit_roles")
        for (role, row) in matrix {
            for classification in row.keys where !DocumentLabel.classifications.contains(classification) {
                throw ConfigurationError(key: "governance.policy_file", value: origin,
                                         expected: "classifications \(DocumentLabel.classifications.joined(separator: ", ")) in documents.matrix.\(role); got '\(classification)'")
            }
        }
    }

    private struct File: Decodable {
        struct Documents: Decodable {
            var matrix: [String: [String: DepartmentSet]]
            var grants: [Grant]?
        }
        var version: Int?
        var roles: [String]
        var documents: Documents
        var tables: [String: RoleSet]?
        var columns: [String: Column]?
        var pii: [String: PIIRule]?
        var api: [String: RoleSet]?
        var workflows: [String: RoleSet]?
        var organisation: Organisation?
        var rules: Rules?

        struct Rules: Decodable {
            var input: InputRules?
            var output: OutputRules?
            var modeOverrideRoles: RoleSet?
            var adminRoles: RoleSet?
            var auditRoles: RoleSet?
            enum CodingKeys: String, CodingKey {
                case input, output, modeOverrideRoles = "mode_override_roles", adminRoles = "admin_roles", auditRoles = "audit_roles"
            }

            struct OutputRules: Decodable {
                var denyPatterns: [String]?
                enum CodingKeys: String, CodingKey { case denyPatterns = "deny_patterns" }
            }
        }

        struct Organisation: Decodable {
            var emailDomains: [String]?
            enum CodingKeys: String, CodingKey { case emailDomains = "email_domains" }
        }
    }
}

/// A policy list written in YAML as a plain list of strings.
public protocol PolicyList: Codable {
    var entries: [String] { get }
    init(_ entries: [String])
}

extension PolicyList {
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode([String].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(entries)
    }
}

/// A list of roles: names, `*` for all, `!name` to exclude.
public struct RoleSet: Sendable, Hashable, PolicyList {
    public var entries: [String]

    public init(_ entries: [String]) {
        self.entries = entries
    }

    /// True when `role` is included and not excluded.
    public func contains(_ role: String) -> Bool {
        guard !entries.contains("!" + role) else { return false }
        return entries.contains("*") || entries.contains(role)
    }
}

/// A list of departments: names, `*` for all, `!name` to exclude, `own` for the user's own.
public struct DepartmentSet: Sendable, Hashable, PolicyList {
    public var entries: [String]

    public init(_ entries: [String]) {
        self.entries = entries
    }

    /// True when a document of `department` is included for a user of `own` department.
    public func contains(_ department: String?, own: String?) -> Bool {
        let department = department ?? ""
        guard !entries.contains("!" + department) else { return false }
        if entries.contains("*") || entries.contains(department) { return true }
        if entries.contains("own"), let own, !own.isEmpty, own == department { return true }
        return false
    }
}

/// What the policy needs to know about a document.
public struct DocumentLabel: Sendable, Hashable {
    /// Classifications from least to most sensitive.
    public static let classifications = ["public", "internal", "confidential", "restricted"]

    public var id: String
    public var classification: String?
    public var department: String?

    public init(id: String, classification: String?, department: String?) {
        self.id = id
        self.classification = classification
        self.department = department
    }
}
