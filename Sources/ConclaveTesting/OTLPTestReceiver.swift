import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// An OTLP/HTTP traces endpoint for tests and benchmarks (`POST /v1/traces`, protobuf): keeps
/// the spans it receives, read straight from the wire format (trace id, span id, parent span id,
/// name, kind), without a protobuf library.
public final class OTLPTestReceiver: Sendable {
    /// One received span.
    public struct Span: Sendable, Hashable {
        public var traceID: String
        public var spanID: String
        public var parentSpanID: String
        public var name: String
        /// OpenTelemetry's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        public var kind: Int
    }

    private let state = Mutex<(requests: Int, bytes: Int, spans: [Span])>((0, 0, []))
    private let decoding: Mutex<Bool>

    /// A receiver that decodes what it gets (`decoding`), or only counts requests and bytes (a
    /// benchmark's receiver, which should cost the machine as little as it can).
    public init(decoding: Bool = true) {
        self.decoding = Mutex(decoding)
    }

    /// Turns decoding on or off for the requests that arrive from now on.
    public func setDecoding(_ on: Bool) { decoding.withLock { $0 = on } }

    /// Bytes of export requests received.
    public var bytes: Int { state.withLock { $0.bytes } }

    /// Export requests received.
    public var requests: Int { state.withLock { $0.requests } }
    /// Spans received, in arrival order.
    public var spans: [Span] { state.withLock { $0.spans } }
    /// How many spans were received.
    public var spanCount: Int { state.withLock { $0.spans.count } }

    /// Serves on a free loopback port while `body` runs; `body` gets the traces URL.
    public func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 64 << 20)
            let spans = self.decoding.withLock { $0 } ? Self.decode(Array(bytes.readableBytesView)) : []
            self.state.withLock { $0.requests += 1; $0.bytes += bytes.readableBytes; $0.spans += spans }
            return Response(status: .ok)
        }
        var logger = Logger(label: "otlp-test-receiver")
        logger.logLevel = .error
        return try await LoopbackApplication.run(router: router, logger: logger) { port in
            try await body("http://127.0.0.1:\(port)/v1/traces")
        }
    }

    /// The spans of an ExportTraceServiceRequest: resource_spans (1) → scope_spans (2) → spans (2).
    static func decode(_ bytes: [UInt8]) -> [Span] {
        var spans: [Span] = []
        for resource in Field.all(bytes) where resource.number == 1 {
            for scope in Field.all(resource.bytes) where scope.number == 2 {
                for span in Field.all(scope.bytes) where span.number == 2 {
                    var decoded = Span(traceID: "", spanID: "", parentSpanID: "", name: "", kind: 0)
                    for field in Field.all(span.bytes) {
                        switch field.number {
                        case 1: decoded.traceID = hex(field.bytes)
                        case 2: decoded.spanID = hex(field.bytes)
                        case 4: decoded.parentSpanID = hex(field.bytes)
                        case 5: decoded.name = String(decoding: field.bytes, as: UTF8.self)
                        case 6: decoded.kind = field.value
                        default: break
                        }
                    }
                    spans.append(decoded)
                }
            }
        }
        return spans
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// One protobuf field: a varint's value, or a length-delimited field's bytes.
    private struct Field {
        var number: Int
        var value = 0
        var bytes: [UInt8] = []

        static func all(_ bytes: [UInt8]) -> [Field] {
            var fields: [Field] = []
            var index = 0
            func varint() -> Int? {
                var value = 0, shift = 0
                while index < bytes.count, shift < 64 {
                    let byte = bytes[index]
                    index += 1
                    value |= Int(byte & 0x7f) << shift
                    if byte & 0x80 == 0 { return value }
                    shift += 7
                }
                return nil
            }
            while index < bytes.count {
                guard let key = varint() else { break }
                var field = Field(number: key >> 3)
                switch key & 7 {
                case 0:
                    guard let value = varint() else { return fields }
                    field.value = value
                case 1: index += 8
                case 5: index += 4
                case 2:
                    guard let length = varint(), length >= 0, index + length <= bytes.count else { return fields }
                    field.bytes = Array(bytes[index..<index + length])
                    index += length
                default: return fields
                }
                fields.append(field)
            }
            return fields
        }
    }
}
