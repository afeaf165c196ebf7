import HTTPTypes
import Hummingbird
import Tracing

/// Returns the request's trace context to the client (`traceparent`, W3C), so a caller can find
/// its request's trace; runs inside Hummingbird's `TracingMiddleware`, whose server span (which
/// continues a `traceparent` the client sent) is the current one here. Nothing is added when
/// tracing is off.
struct TraceResponseMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if let current = ServiceContext.current {
            InstrumentationSystem.instrument.inject(current, into: &response.headers, using: FieldsInjector())
        }
        return response
    }

    private struct FieldsInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout HTTPFields) {
            guard let name = HTTPField.Name(key) else { return }
            carrier[name] = value
        }
    }
}
