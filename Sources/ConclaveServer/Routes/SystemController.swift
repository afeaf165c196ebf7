import ConclaveCore
import ConclaveKnowledge
import ConclaveTelemetry
import Foundation
import Hummingbird

/// Health, readiness, metrics and the model list.
struct SystemController: Sendable {
    let runtime: ConclaveRuntime
    let started = Int(Date().timeIntervalSince1970)

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in
            Self.json(#"{"status":"ok"}"#)
        }
        router.get("/readyz") { _, _ -> Response in
            let storeReady = await runtime.store.isHealthy()
            let modelReady = await runtime.model.isReady()
            // Distributed mode: steps need the bus as much as the model.
            let busReady = runtime.workQueue?.connection.isConnected ?? true
            let ready = storeReady && modelReady && busReady
            let bus = runtime.workQueue == nil ? "" : #","bus":\#(busReady)"#
            let body = #"{"status":"\#(ready ? "ready" : "not_ready")","store":\#(storeReady),"model":\#(modelReady)\#(bus)}"#
            var response = Self.json(body)
            if !ready {
                response.status = .serviceUnavailable
                response.headers[.retryAfter] = "2"
            }
            return response
        }
        router.get("/metrics") { _, _ in Self.metrics(role: "gateway") }
        router.get("/openapi.json") { _, _ -> Response in
            guard let document = APIContract.document else {
                throw ConclaveError(.internal, "the OpenAPI document is missing from the bundle")
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: document)))
        }
        router.get("/v1/models") { request, _ -> Response in
            let principal = try await runtime.admit(authorization: request.headers[.authorization])
            let permitted = runtime.workflows.workflows.values.filter {
                runtime.governance.mayRun(workflow: $0.name, principal: principal)
            }
            var entries = permitted.sorted { $0.name < $1.name }.map {
                ModelList.Entry(id: $0.modelID, created: started, description: $0.description)
            }
            for served in runtime.servedModels.values.sorted(by: { $0.name < $1.name })
            where runtime.directModel(named: served.name) != nil && runtime.governance.mayRun(workflow: served.name, principal: principal) {
                let offers = [served.chat == nil ? nil : "chat", served.embeddings == nil ? nil : "embeddings"].compactMap { $0 }
                entries.append(ModelList.Entry(id: served.name, created: started,
                                               description: "The model itself, without a workflow (direct route to its replica pool; "
                                                   + offers.joined(separator: " and ") + ")."))
            }
            if runtime.embedder != nil {
                entries.append(ModelList.Entry(id: EmbeddingModel.name, created: started,
                                               description: "all-MiniLM-L6-v2 sentence embeddings (384 dimensions), in process: POST /v1/embeddings."))
            }
            return try JSONCoding.response(ModelList(data: entries))
        }
    }

    /// Prometheus text: the registry's series and this process's CPU time and memory, labelled
    /// with its `role` (`gateway`, or a worker's agent role).
    static func metrics(role: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4"
        let text = (Telemetry.registry?.emitToString() ?? "") + ProcessStats.current().prometheusText(role: role)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
