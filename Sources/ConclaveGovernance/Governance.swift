import ConclaveCore
import ConclaveStorage
import Logging
import Metrics
import Synchronization
import Tracing

/// The governance layer as the server uses it: who is calling, what they may run, which
/// documents they may read.
public final class Governance: Sendable {
    /// The governance settings.
    public let configuration: GovernanceConfiguration
    /// Turns credentials into principals.
    public let authenticator: Authenticator
    /// The policy decision point; nil when `governance.mode` is `off`. `replacePolicy` swaps it
    /// (`conclave reload`); a request evaluates it when it starts.
    public var decisions: PolicyDecisionPoint? { policy.withLock { $0.decisions } }
    /// The access policy in use and how many times it was replaced.
    private let policy: Mutex<(version: Int, decisions: PolicyDecisionPoint?)>
    /// The audit trail; nil unless `governance.mode` is `audit` or `full` and granularity is not `none`.
    public let audit: AuditLog?
    private let store: any DocumentStore
    private let logger: Logger
    private let counters = DecisionCounters()
    /// Document labels and scopes per role set, reloaded when the documents change in this
    /// process (ingestion) and at least every `labelLifetime` (ingestion by another process).
    private let cache = Mutex<LabelCache>(LabelCache())
    static let labelLifetime: Duration = .seconds(2)

    private struct LabelCache {
        var policyVersion = 0
        var loaded: ContinuousClock.Instant?
        var generation = -1
        var classifications: [String: String] = [:]
        var labels: [DocumentLabel] = []
        var scopes: [ScopeKey: DocumentScope] = [:]
    }

    private struct ScopeKey: Hashable {
        var roles: [String]
        var department: String?
    }

    /// Loads keys and the policy. Logs a warning when authentication is disabled.
    public init(auth: AuthConfiguration, configuration: GovernanceConfiguration, audit auditConfiguration: AuditConfiguration = .init(),
                store: any DocumentStore & AuditStore, logger: Logger) async throws {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        audit = configuration.keepsAudit && auditConfiguration.granularity != .none
            ? try AuditLog(store: store, configuration: auditConfiguration, logger: logger) : nil
        authenticator = try await Authenticator(configuration: auth)
        policy = Mutex((0, try Self.loadPolicy(configuration)))
        if auth.mode == .none {
            logger.warning("authentication is disabled (auth.mode: none): every caller is the anonymous principal")
        }
        if configuration.mode == .off {
            logger.warning("governance is off (governance.mode: off): no access control is applied")
        }
    }

    /// The decision point for `governance.policy_file`, read and validated now; nil when
    /// `governance.mode` does not enforce access. Throws `ConfigurationError` naming the file.
    public static func loadPolicy(_ configuration: GovernanceConfiguration) throws -> PolicyDecisionPoint? {
        configuration.enforcesAccess ? PolicyDecisionPoint(policy: try AccessPolicy.load(path: configuration.policyFile)) : nil
    }

    /// Swaps in another access policy (from ``loadPolicy(_:)``): requests that start from now on
    /// are decided by it; the document scopes computed under the old one are dropped.
    public func replacePolicy(_ decisions: PolicyDecisionPoint?) {
        policy.withLock { $0 = ($0.version + 1, decisions) }
        // The labels stay (the audit of requests in flight reads their classifications); the
        // scopes are recomputed, as the cache's policy version no longer matches.
        cache.withLock { $0.scopes = [:] }
    }

    /// The principal behind an `Authorization` header. Failures become `unauthorized`, whose
    /// client message never says why; the reason is logged.
    public func authenticate(authorization: String?) async throws -> Principal {
        do {
            let principal = try await authenticator.authenticate(authorization: authorization)
            counters.count(.authentication, allowed: true)
            return principal
        } catch let failure as AuthenticationFailure {
            counters.count(.authentication, allowed: false)
            logger.notice("authentication failed", metadata: ["reason": "\(failure.reason)"])
            await audit?.record(AuditEntry(
                type: "denial", user: "unauthenticated", status: "401",
                decisions: [.init(point: "authentication", allowed: false, rule: "auth", reason: failure.reason)]))
            throw ConclaveError(.unauthorized, "Invalid token.", context: failure.reason)
        }
    }

    /// True when the principal may run the workflow.
    public func mayRun(workflow: String, principal: Principal) -> Bool {
        decisions?.workflow(workflow, for: principal).allowed ?? true
    }

    /// Throws `forbidden` (and audits the denial) when the principal may not run the workflow.
    public func authorize(workflow: String, for principal: Principal) async throws {
        guard let decisions else { return }
        let decision = decisions.workflow(workflow, for: principal)
        counters.count(.workflow, allowed: decision.allowed)
        guard decision.allowed else {
            logger.notice("workflow denied", metadata: ["user": "\(principal.userID)", "workflow": "\(workflow)", "rule": "\(decision.rule)"])
            await audit?.record(AuditEntry(
                type: "denial", user: principal.userID, tenant: principal.tenant, roles: principal.roles, status: "403", workflow: workflow,
                decisions: [.init(point: "workflow", allowed: false, rule: decision.rule, reason: decision.reason)]))
            throw ConclaveError(.forbidden, "You are not permitted to use the workflow '\(workflow)'.", parameter: "model")
        }
    }

    /// The evidence and output guard for one request (governance `full` only): injection removal
    /// and PII masking.
    public func textGuard(for principal: Principal, mode: GovernanceConfiguration.Mode? = nil,
                          conversation: String? = nil) -> RequestGuard? {
        guard (mode ?? configuration.mode) == .full else { return nil }
        return makeGuard(for: principal, vault: conversation.map(vault(for:)) ?? PseudonymVault())
    }

    /// The guard a worker applies in a step of a `full`-mode request: the principal's masking
    /// rules and a copy of the gateway's pseudonyms.
    public func textGuard(for principal: Principal, transfer: GuardTransfer) -> RequestGuard? {
        makeGuard(for: principal, vault: PseudonymVault(transfer))
    }

    private func makeGuard(for principal: Principal, vault: PseudonymVault) -> RequestGuard? {
        guard let decisions else { return nil }
        return RequestGuard(masker: PIIMasker(detector: PIIDetector(workDomains: decisions.policy.emailDomains), decisions: decisions,
                                              principal: principal),
                            vault: vault, outputDenyPatterns: decisions.policy.outputDenyPatterns)
    }

    /// Pseudonym vaults of recent conversations, in memory (at most `maximumVaults`; the oldest
    /// goes first). A restarted process starts new vaults: pseudonyms are per process lifetime.
    private let vaults = Mutex<(byConversation: [String: PseudonymVault], order: [String])>(([:], []))
    static let maximumVaults = 10_000

    func vault(for conversation: String) -> PseudonymVault {
        vaults.withLock { state in
            if let vault = state.byConversation[conversation] { return vault }
            let vault = PseudonymVault()
            state.byConversation[conversation] = vault
            state.order.append(conversation)
            if state.order.count > Self.maximumVaults {
                state.byConversation[state.order.removeFirst()] = nil
            }
            return vault
        }
    }

    /// The governance mode of one request: the configured one, or `requested` (from the request's
    /// `metadata.governance_mode`) when the principal holds a role the policy lets choose it.
    public func mode(requested: String?, for principal: Principal) async throws -> GovernanceConfiguration.Mode {
        guard let requested, !requested.isEmpty else { return configuration.mode }
        guard let mode = GovernanceConfiguration.Mode(rawValue: requested) else {
            throw ConclaveError(.invalidRequest, "metadata.governance_mode must be one of off, access, audit, full.",
                                parameter: "metadata.governance_mode")
        }
        let refused = !configuration.allowModeOverride || decisions.map({ !principal.roles.contains(where: $0.policy.modeOverrideRoles.contains) }) ?? false
        counters.count(.governanceMode, allowed: !refused)
        if refused {
            await audit?.record(AuditEntry(
                type: "denial", user: principal.userID, tenant: principal.tenant, roles: principal.roles, status: "403",
                decisions: [.init(point: "governance_mode", allowed: false, rule: "rules.mode_override_roles",
                                  reason: "may not choose governance mode \(requested)")]))
            throw ConclaveError(.forbidden, "You are not permitted to choose the governance mode.", parameter: "metadata.governance_mode")
        }
        // Every accepted override is audited under the configured mode.
        await audit?.record(AuditEntry(
            type: "override", user: principal.userID, tenant: principal.tenant, roles: principal.roles, status: "ok",
            decisions: [.init(point: "governance_mode", allowed: true, rule: "rules.mode_override_roles",
                              reason: "request runs with governance mode \(mode.rawValue) instead of \(configuration.mode.rawValue)")]))
        return mode
    }

    /// The input rules' verdict on a request's user messages, in order: every one is checked,
    /// since earlier messages reach the models as history. The first refusal decides; a message
    /// that is too long throws `invalidRequest`.
    public func checkInput(_ messages: [String], mode: GovernanceConfiguration.Mode) throws -> InputVerdict {
        guard mode == .full, let decisions else { return .allowed }
        for message in messages {
            let verdict = try decisions.policy.input.check(message)
            if case .refused = verdict {
                counters.count(.input, allowed: false)
                return verdict
            }
        }
        counters.count(.input, allowed: true)
        return .allowed
    }

    /// Throws `forbidden` (audited) unless the principal may use the admin routes. Without access
    /// control (governance off) every authenticated caller may.
    public func authorizeAdmin(_ principal: Principal, route: String) async throws {
        try await authorizeRole(principal, allowed: mayAdminister(principal), point: .admin, rule: "rules.admin_roles", route: route,
                                refusal: "You are not permitted to use the admin routes.")
    }

    /// Throws `forbidden` (audited) unless the principal may read the audit trail.
    public func authorizeAuditRead(_ principal: Principal, route: String) async throws {
        try await authorizeRole(principal, allowed: mayReadAudit(principal), point: .audit, rule: "rules.audit_roles", route: route,
                                refusal: "You are not permitted to read the audit trail.")
    }

    /// True when the principal may use the admin routes (`rules.admin_roles`).
    public func mayAdminister(_ principal: Principal) -> Bool {
        guard let decisions else { return true }
        return principal.roles.contains(where: decisions.policy.adminRoles.contains)
    }

    /// True when the principal may read the audit trail (`rules.audit_roles`; everyone
    /// authenticated when access is not enforced, as for the admin routes).
    public func mayReadAudit(_ principal: Principal) -> Bool {
        guard let decisions else { return true }
        return principal.roles.contains(where: decisions.policy.auditRoles.contains)
    }

    /// Counts a role decision on a route and, when it refuses, audits the denial and throws
    /// `forbidden` with `refusal`. Nothing is decided without access control.
    private func authorizeRole(_ principal: Principal, allowed: Bool, point: DecisionCounters.Point, rule: String, route: String,
                               refusal: String) async throws {
        guard decisions != nil else { return }
        counters.count(point, allowed: allowed)
        guard allowed else {
            await audit?.record(AuditEntry(
                type: "denial", user: principal.userID, tenant: principal.tenant, roles: principal.roles, status: "403",
                decisions: [.init(point: point.rawValue, allowed: false, rule: rule, reason: "may not use \(route)")]))
            throw ConclaveError(.forbidden, refusal)
        }
    }

    /// Decides whether the principal may open a stored document (outside an answer: the console
    /// opening a citation's source) as retrieval would decide it, and audits the read: a
    /// `document` record naming it when allowed, a `denial` and `forbidden` when not.
    public func authorizeDocumentRead(_ documentID: String, classification: String?, for principal: Principal) async throws {
        let allowed = try await documentScope(for: principal).allows(documentID)
        await audit?.record(AuditEntry(
            type: allowed ? "document" : "denial", user: principal.userID, tenant: principal.tenant, roles: principal.roles,
            status: allowed ? "200" : "403",
            decisions: [.init(point: "documents", allowed: allowed, rule: "documents",
                              reason: "may\(allowed ? "" : " not") read \(documentID)")],
            sources: allowed ? [.init(id: documentID, classification: classification)] : [], withheld: allowed ? [] : [documentID]))
        guard allowed else { throw ConclaveError(.forbidden, "You are not permitted to read the document '\(documentID)'.") }
    }

    /// The classification of a stored document, as last seen.
    public func classification(of documentID: String) -> String? {
        cache.withLock { $0.classifications[documentID] }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The documents the principal may read (unrestricted when governance is off).
    public func documentScope(for principal: Principal, mode: GovernanceConfiguration.Mode? = nil) async throws -> DocumentScope {
        let (policyVersion, current) = policy.withLock { $0 }
        guard let decisions = current, (mode ?? configuration.mode) != .off else { return .unrestricted }
        let span = startSpan("policy documents", ofKind: .internal)
        span.attributes["conclave.policy.point"] = "documents"
        defer { span.end() }
        let key = ScopeKey(roles: principal.roles.sorted(), department: principal.department)
        let now = ContinuousClock.now
        let generation = store.documentsGeneration
        let cached = cache.withLock { cache -> DocumentScope? in
            guard cache.policyVersion == policyVersion, let loaded = cache.loaded, now - loaded < Self.labelLifetime,
                  cache.generation == generation else { return nil }
            return cache.scopes[key]
        }
        if let cached { return cached }
        let labels = try await store.documents().map { DocumentLabel(id: $0.id, classification: $0.classification, department: $0.department) }
        let scope = decisions.documentScope(for: principal, documents: labels)
        cache.withLock { cache in
            // A scope computed under a policy replaced meanwhile is returned to this request
            // (which started under it) but not kept.
            guard policyVersion == self.policy.withLock({ $0.version }) else { return }
            if cache.policyVersion != policyVersion || cache.generation != generation
                || cache.loaded.map({ now - $0 >= Self.labelLifetime }) ?? true {
                cache = LabelCache(policyVersion: policyVersion, loaded: now, generation: generation,
                                   classifications: Dictionary(labels.map { ($0.id, $0.classification ?? "") }, uniquingKeysWith: { a, _ in a }),
                                   labels: labels, scopes: [:])
            }
            cache.scopes[key] = scope
        }
        return scope
    }
}

/// `conclave_governance_decisions_total{point, decision}`: one count per enforcement decision the
/// gateway makes on a request (who is calling, which workflow, admin routes, the input rules, a
/// governance-mode override). Document, table and API decisions are not counted one by one: they
/// are made for a whole scope at once (see `docs/observability.md`).
struct DecisionCounters: Sendable {
    enum Point: String, CaseIterable, Sendable {
        case authentication, workflow, admin, audit, input
        case governanceMode = "governance_mode"
    }

    private let allow: [Point: Counter]
    private let deny: [Point: Counter]

    init() {
        func counters(_ decision: String) -> [Point: Counter] {
            Dictionary(uniqueKeysWithValues: Point.allCases.map {
                ($0, Counter(label: "conclave_governance_decisions_total", dimensions: [("point", $0.rawValue), ("decision", decision)]))
            })
        }
        allow = counters("allow")
        deny = counters("deny")
    }

    /// Counts a decision; it is also a span (`policy POINT`) in the request's trace.
    func count(_ point: Point, allowed: Bool) {
        (allowed ? allow : deny)[point]?.increment()
        withSpan("policy \(point.rawValue)", ofKind: .internal) { span in
            // Building the attributes costs even on the no-op span of a process without tracing.
            guard span.isRecording else { return }
            span.attributes["conclave.policy.point"] = point.rawValue
            span.attributes["conclave.policy.decision"] = allowed ? "allow" : "deny"
        }
    }
}
