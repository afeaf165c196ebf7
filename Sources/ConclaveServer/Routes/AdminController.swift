import ConclaveCore
import ConclaveInference
import Foundation
import Hummingbird

/// Admin routes: authenticated, and limited to the policy's admin roles.
struct AdminController: Sendable {
    let runtime: ConclaveRuntime

    /// `GET /admin/inference`: the default model's pool at the top level (as before), every
    /// served model's pool under `models`, and the autoscaler.
    struct InferenceView: Codable, Sendable {
        struct Replica: Codable, Sendable {
            var url: String
            var breaker: String
            var inFlight: Int
            var consecutiveFailures: Int
            var healthy: Bool
            var draining: Bool
            /// Process id of a local `llama-server` replica (fault injection uses it).
            var pid: Int32?

            enum CodingKeys: String, CodingKey {
                case url, breaker, healthy, draining, pid
                case inFlight = "in_flight"
                case consecutiveFailures = "consecutive_failures"
            }
        }

        struct Model: Codable, Sendable {
            var name: String
            var provider: String
            var upstreamModel: String
            var chat: Bool
            var embeddings: Bool
            var replicasReady: Int
            var queueDepth: Int
            var maxInFlightPerReplica: Int
            var replicas: [Replica]

            enum CodingKeys: String, CodingKey {
                case name, provider, chat, embeddings, replicas
                case upstreamModel = "upstream_model"
                case replicasReady = "replicas_ready"
                case queueDepth = "queue_depth"
                case maxInFlightPerReplica = "max_in_flight_per_replica"
            }
        }

        struct Autoscaler: Codable, Sendable {
            var enabled: Bool
            var minReplicas: Int?
            var maxReplicas: Int?
            var targetOutstanding: Double?
            var outstanding: Int
            var events: [LocalReplicaSet.ScaleEvent]

            enum CodingKeys: String, CodingKey {
                case enabled, outstanding, events
                case minReplicas = "min_replicas"
                case maxReplicas = "max_replicas"
                case targetOutstanding = "target_outstanding"
            }
        }

        var provider: String
        var model: String
        var replicasDesired: Int
        var replicasReady: Int
        var queueDepth: Int
        var maxInFlightPerReplica: Int
        var replicas: [Replica]
        var autoscaler: Autoscaler
        var models: [Model]

        enum CodingKeys: String, CodingKey {
            case provider, model, replicas, autoscaler, models
            case replicasDesired = "replicas_desired"
            case replicasReady = "replicas_ready"
            case queueDepth = "queue_depth"
            case maxInFlightPerReplica = "max_in_flight_per_replica"
        }
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/admin/inference") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            try await runtime.governance.authorizeAdmin(principal, route: "/admin/inference")
            return try JSONCoding.response(view())
        }
        // `conclave reload`: re-reads workflows, the access policy and the SQL templates; an
        // invalid file is a 400 naming it, and the running configuration stays.
        router.post("/admin/reload") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            try await runtime.governance.authorizeAdmin(principal, route: "/admin/reload")
            let outcome: LiveConfiguration.Outcome
            do {
                outcome = try runtime.live.reload()
            } catch let error as ConfigurationError {
                runtime.logger.error("reload refused; the running configuration stays", metadata: ["error": "\(error)"])
                throw ConclaveError(.invalidRequest, "Reload refused, the running configuration stays: \(error.description)",
                                    parameter: error.key)
            }
            return try JSONCoding.response(outcome)
        }
    }

    private func replicas(_ pool: ReplicaPool?) -> [InferenceView.Replica] {
        let pids = Dictionary(runtime.supervisors.compactMap { supervisor in supervisor.url.map { ($0, supervisor.processID) } },
                              uniquingKeysWith: { a, _ in a })
        return (pool?.status ?? []).map { replica in
            InferenceView.Replica(url: replica.url, breaker: replica.breaker.rawValue, inFlight: replica.inFlight,
                                  consecutiveFailures: replica.consecutiveFailures, healthy: replica.healthy, draining: replica.draining,
                                  pid: pids[replica.url] ?? nil)
        }
    }

    func view() -> InferenceView {
        let inference = runtime.configuration.inference
        let scaler = runtime.replicaSet?.autoscale
        let models = runtime.servedModels.values.sorted { $0.name < $1.name }.map { served in
            InferenceView.Model(name: served.name, provider: served.provider, upstreamModel: served.upstreamModel, chat: served.chat != nil,
                                embeddings: served.embeddings != nil, replicasReady: served.pool?.ready.count ?? 0,
                                queueDepth: served.pool?.queued ?? 0,
                                maxInFlightPerReplica: served.pool?.configuration.maxInFlightPerReplica ?? 0,
                                replicas: replicas(served.pool))
        }
        return InferenceView(
            provider: runtime.pool == nil ? "in-process" : inference.provider.rawValue, model: inference.model,
            replicasDesired: runtime.pool == nil ? 0 : (runtime.replicaSet?.desired ?? runtime.pool?.status.count ?? 0),
            replicasReady: runtime.pool?.ready.count ?? 0, queueDepth: runtime.pool?.queued ?? 0,
            maxInFlightPerReplica: max(1, inference.parallelSlots),
            replicas: replicas(runtime.pool),
            autoscaler: .init(enabled: scaler != nil, minReplicas: scaler?.minReplicas, maxReplicas: scaler?.maxReplicas,
                              targetOutstanding: scaler?.targetOutstanding, outstanding: runtime.pool?.load.outstanding ?? 0,
                              events: runtime.replicaSet?.events ?? []),
            models: models)
    }
}
