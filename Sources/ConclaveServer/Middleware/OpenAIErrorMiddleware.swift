import ConclaveCore
import Hummingbird
import Logging

/// Turns every error a route throws into an OpenAI-shaped JSON error with the right status code,
/// and logs internals server-side only.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // A documented path with another method: 405 and the methods it has. (A documented
            // method that is not served, such as the console turned off, stays 404.)
            if let allowed = APIContract.methods(matching: request.uri.path), !allowed.contains(request.method.rawValue) {
                var response = Self.response(for: OpenAIError.from(HTTPError(.methodNotAllowed)))
                response.headers[.allow] = allowed.joined(separator: ", ")
                return response
            }
            return Self.response(for: OpenAIError.from(error))
        } catch {
            let mapped = OpenAIError.from(error)
            if mapped.status.code >= 500 {
                context.logger.error("request failed", metadata: ["error": "\(error)", "status": "\(mapped.status.code)"])
            } else {
                context.logger.debug("request rejected", metadata: ["error": "\(error)", "status": "\(mapped.status.code)"])
            }
            return Self.response(for: mapped)
        }
    }

    static func response(for error: OpenAIError) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        let body = (try? JSONCoding.encode(error)) ?? ByteBuffer(string: #"{"error":{"message":"error","type":"server_error","code":null,"param":null}}"#)
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: body))
    }
}
