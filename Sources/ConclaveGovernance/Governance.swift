import ConclaveCore
import ConclaveStorage
import Logging

/// The governance layer as the server uses it: who is calling, what they may run, which
/// documents they may read.
public final class Governance: Sendable {
    /// The governance settings.
    public let configuration: GovernanceConfiguration
    /// Turns credentials into principals.
    public let authenticator: Authenticator
    /// The policy decision point; nil when `governance.mode` is `off`.
    public let decisions: PolicyDecisionPoint?
    private let store: any DocumentStore
    private let logger: Logger

    /// Loads keys and the policy. Logs a warning when authentication is disabled.
    public init(auth: AuthConfiguration, configuration: GovernanceConfiguration, store: any DocumentStore,
                logger: Logger) async throws {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        authenticator = try await Authenticator(configuration: auth)
        decisions = configuration.enforcesAccess ? PolicyDecisionPoint(policy: try AccessPolicy.load(path: configuration.policyFile)) : nil
        if auth.mode == .none {
            logger.warning("authentication is disabled (auth.mode: none): every caller is the anonymous principal")
        }
        if configuration.mode == .off {
            logger.warning("governance is off (governance.mode: off): no access control is applied")
        }
    }

    /// The principal behind an `Authorization` header. Failures become `unauthorized`, whose
    /// client message never says why; the reason is logged.
    public func authenticate(authorization: String?) async throws -> Principal {
        do {
            return try await authenticator.authenticate(authorization: authorization)
        } catch let failure as AuthenticationFailure {
            logger.notice("authentication failed", metadata: ["reason": "\(failure.reason)"])
            throw ConclaveError(.unauthorized, "Invalid token.", context: failure.reason)
        }
    }

    /// Throws `forbidden` when the principal may not run the workflow.
    public func authorize(workflow: String, for principal: Principal) throws {
        guard let decisions else { return }
        let decision = decisions.workflow(workflow, for: principal)
        guard decision.allowed else {
            logger.notice("workflow denied", metadata: ["user": "\(principal.userID)", "workflow": "\(workflow)", "rule": "\(decision.rule)"])
            throw ConclaveError(.forbidden, "You are not permitted to use the workflow '\(workflow)'.", parameter: "model")
        }
    }

    /// The documents the principal may read (unrestricted when governance is off).
    public func documentScope(for principal: Principal) async throws -> DocumentScope {
        guard let decisions else { return .unrestricted }
        let labels = try await store.documents().map { DocumentLabel(id: $0.id, classification: $0.classification, department: $0.department) }
        return decisions.documentScope(for: principal, documents: labels)
    }
}
