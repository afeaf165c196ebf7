import ConclaveCore

/// A decision with the rule that made it, for the audit trail and for tests.
public struct PolicyDecision: Sendable, Hashable, CustomStringConvertible {
    public var allowed: Bool
    /// The rule that decided, e.g. `documents.matrix.manager.confidential` or `default-deny`.
    public var rule: String
    /// Human-readable reason.
    public var reason: String

    public static func allow(_ rule: String, _ reason: String) -> PolicyDecision { .init(allowed: true, rule: rule, reason: reason) }
    public static func deny(_ rule: String, _ reason: String) -> PolicyDecision { .init(allowed: false, rule: rule, reason: reason) }

    public var description: String { "\(allowed ? "allow" : "deny") [\(rule)] \(reason)" }
}

/// What a principal sees of a column or PII value.
public enum FieldAccess: Sendable, Hashable {
    case unmasked
    case masked(AccessPolicy.MaskedForm)
    case denied
}

/// Answers access questions from an ``AccessPolicy``. A principal with several roles gets the
/// union of what its roles allow. Pure and synchronous: no I/O, safe to call on every request.
public struct PolicyDecisionPoint: Sendable {
    public let policy: AccessPolicy

    public init(policy: AccessPolicy) {
        self.policy = policy
    }

    /// May `principal` read the document?
    public func document(_ document: DocumentLabel, for principal: Principal) -> PolicyDecision {
        let classification = document.classification ?? "restricted"  // unlabelled documents are treated as restricted
        for role in principal.roles {
            if let departments = policy.matrix[role]?[classification],
               departments.contains(document.department, own: principal.department) {
                return .allow("documents.matrix.\(role).\(classification)",
                              "\(role) may read \(classification) documents of \(document.department ?? "no department")")
            }
        }
        for grant in policy.grants where grant.document == document.id {
            if let role = principal.roles.first(where: grant.roles.contains) {
                return .allow("documents.grants.\(grant.id)", "grant \(grant.id) gives \(role) \(document.id)")
            }
        }
        return .deny("default-deny", "no rule lets \(principal.roles.joined(separator: "/")) read \(classification) documents of \(document.department ?? "no department")")
    }

    /// The documents among `documents` the principal may read.
    public func documentScope(for principal: Principal, documents: [DocumentLabel]) -> DocumentScope {
        var denied = Set<String>()
        var masked = Set<String>()
        for key in policy.columns.keys {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch column(parts[0], parts[1], for: principal) {
            case .unmasked: break
            case .masked: masked.insert(key)
            case .denied: denied.insert(key)
            }
        }
        return DocumentScope(
            allowedDocumentIDs: Set(documents.filter { document($0, for: principal).allowed }.map(\.id)),
            readableTables: Set(policy.tables.keys.filter { table($0, for: principal).allowed }),
            deniedColumns: denied, maskedColumns: masked,
            allowedOperations: Set(policy.api.keys.filter { apiOperation($0, for: principal).allowed }))
    }

    /// May `principal` query the table?
    public func table(_ table: String, for principal: Principal) -> PolicyDecision {
        guard let roles = policy.tables[table] else { return .deny("default-deny", "table \(table) is not in the policy") }
        if let role = principal.roles.first(where: roles.contains) {
            return .allow("tables.\(table)", "\(role) may read \(table)")
        }
        return .deny("tables.\(table)", "\(principal.roles.joined(separator: "/")) may not read \(table)")
    }

    /// What the principal sees of `table.column` (a column without a rule is visible to anyone
    /// who may read the table).
    public func column(_ table: String, _ column: String, for principal: Principal) -> FieldAccess {
        guard self.table(table, for: principal).allowed else { return .denied }
        guard let rule = policy.columns["\(table).\(column)"] else { return .unmasked }
        if principal.roles.contains(where: rule.unmasked.contains) { return .unmasked }
        switch rule.others {
        case .deny: return .denied
        case .mask: return .masked(rule.pii.flatMap { policy.pii[$0]?.masked } ?? .restricted)
        }
    }

    /// What the principal sees of a PII value of `type` in a source it may read.
    public func pii(_ type: String, for principal: Principal) -> FieldAccess {
        guard let rule = policy.pii[type] else { return .masked(.restricted) }
        return principal.roles.contains(where: rule.unmasked.contains) ? .unmasked : .masked(rule.masked)
    }

    /// May `principal` call the API operation (`"GET /vehicles"`)?
    public func apiOperation(_ operation: String, for principal: Principal) -> PolicyDecision {
        guard let roles = policy.api[operation] else { return .deny("default-deny", "operation \(operation) is not in the policy") }
        if let role = principal.roles.first(where: roles.contains) {
            return .allow("api.\(operation)", "\(role) may call \(operation)")
        }
        return .deny("api.\(operation)", "\(principal.roles.joined(separator: "/")) may not call \(operation)")
    }

    /// May `principal` run the workflow?
    public func workflow(_ name: String, for principal: Principal) -> PolicyDecision {
        let key = policy.workflows[name] != nil ? name : "*"
        guard let roles = policy.workflows[key] else { return .deny("default-deny", "workflow \(name) is not in the policy") }
        if let role = principal.roles.first(where: roles.contains) {
            return .allow("workflows.\(key)", "\(role) may run \(name)")
        }
        return .deny("workflows.\(key)", "\(principal.roles.isEmpty ? "a principal without roles" : principal.roles.joined(separator: "/")) may not run \(name)")
    }
}
