import Tracing

/// Carries the W3C trace context (`traceparent`, `tracestate`) of the current span in a step
/// request over the bus, and back out on the worker.
enum TraceContextCarrier {
    /// The current span's context as headers; nil when there is none to carry (tracing off).
    static func current() -> [String: String]? {
        guard let context = ServiceContext.current else { return nil }
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: DictionaryInjector())
        return headers.isEmpty ? nil : headers
    }

    /// The context the headers carry, to parent the worker's span; a fresh top-level context
    /// when there are none.
    static func context(_ headers: [String: String]?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let headers { InstrumentationSystem.instrument.extract(headers, into: &context, using: DictionaryExtractor()) }
        return context
    }

    private struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key] = value
        }
    }

    private struct DictionaryExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? {
            carrier[key]
        }
    }
}
