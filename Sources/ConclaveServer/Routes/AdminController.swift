import ConclaveCore
import ConclaveInference
import Foundation
import Hummingbird

/// Admin routes: authenticated, and limited to the policy's admin roles.
struct AdminController: Sendable {
    let runtime: ConclaveRuntime

    struct InferenceView: Codable, Sendable {
        struct Replica: Codable, Sendable {
            var url: String
            var breaker: String
            var inFlight: Int
            var consecutiveFailures: Int

            enum CodingKeys: String, CodingKey {
                case url, breaker
                case inFlight = "in_flight"
                case consecutiveFailures = "consecutive_failures"
            }
        }

        var provider: String
        var model: String
        var replicasDesired: Int
        var replicasReady: Int
        var queueDepth: Int
        var maxInFlightPerReplica: Int
        var replicas: [Replica]

        enum CodingKeys: String, CodingKey {
            case provider, model, replicas
            case replicasDesired = "replicas_desired"
            case replicasReady = "replicas_ready"
            case queueDepth = "queue_depth"
            case maxInFlightPerReplica = "max_in_flight_per_replica"
        }
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/admin/inference") { request, _ -> Response in
            let principal = try await runtime.governance.authenticate(authorization: request.headers[.authorization])
            try await runtime.governance.authorizeAdmin(principal, route: "/admin/inference")
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: try JSONCoding.encode(view())))
        }
    }

    func view() -> InferenceView {
        let inference = runtime.configuration.inference
        let status = runtime.pool?.status ?? []
        return InferenceView(
            provider: runtime.pool == nil ? "in-process" : inference.provider.rawValue, model: inference.model,
            replicasDesired: runtime.pool == nil ? 0 : (inference.provider == .embedded ? inference.replicas : status.count),
            replicasReady: status.filter { $0.breaker != .open }.count, queueDepth: runtime.pool?.queued ?? 0,
            maxInFlightPerReplica: max(1, inference.parallelSlots),
            replicas: status.map { replica in
                InferenceView.Replica(url: replica.url, breaker: replica.breaker.rawValue, inFlight: replica.inFlight,
                                      consecutiveFailures: replica.consecutiveFailures)
            })
    }
}
