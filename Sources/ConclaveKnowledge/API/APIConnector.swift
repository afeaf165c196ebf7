import AsyncHTTPClient
import ConclaveCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Yams

/// Answers questions from an internal HTTP API described by an OpenAPI 3 document.
///
/// Every GET operation is a tool with typed parameters. For a question the connector picks the
/// operation whose resource the question names and whose required parameters it can fill (values
/// matching a parameter's pattern or enum, numbers named after their resource: "shipment 101461",
/// and value aliases from the connector file), checks the principal may call it, calls it with a
/// bearer token from the environment, a timeout and a response size cap, and returns the response
/// as evidence cited `api:/path`. A 404 becomes "no record" evidence; other failures leave the
/// question to the documents.
public final class APIConnector: Sendable {
    /// The connector file.
    public struct Settings: Sendable, Decodable {
        /// Per-operation vocabulary, keyed by operationId.
        public struct OperationSettings: Sendable, Decodable {
            /// Words naming the resource (default: the path's literal segments).
            public var subject: [String]?
            /// The department that owns the data (named in refusals).
            public var owner: String?
            /// Aliases of parameter values: parameter → phrase → value ("hamburg" → HAM).
            public var values: [String: [String: String]]?
            /// Words that, just before a number, name it as this parameter ("shipment 101461").
            public var cues: [String: [String]]?
            /// A sentence introducing the response ("Tracking of shipment {id}").
            public var title: String?
        }

        /// The OpenAPI document, relative to the working directory.
        public var openapi: String
        /// Base URL; default the document's first server.
        public var baseURL: String?
        /// Name of the environment variable holding the bearer token.
        public var tokenEnv: String?
        public var timeoutSeconds: Double?
        public var maxResponseBytes: Int?
        public var operations: [String: OperationSettings]?

        /// Parses a connector file; errors name the file and the key.
        public static func load(yaml: String, origin: String) throws -> Settings {
            do {
                return try YAMLDecoder().decode(Settings.self, from: yaml)
            } catch let error as DecodingError {
                throw APIConnectorError("\(origin): \(error.readableDescription)")
            } catch {
                throw APIConnectorError("\(origin): \(error)")
            }
        }

        enum CodingKeys: String, CodingKey {
            case openapi, operations
            case baseURL = "base_url"
            case tokenEnv = "token_env"
            case timeoutSeconds = "timeout_seconds"
            case maxResponseBytes = "max_response_bytes"
        }
    }

    /// An operation chosen for a question, with its arguments.
    public struct Match: Sendable {
        public var operation: OpenAPIDocument.Operation
        public var arguments: [String: String]
        public var score: Double
    }

    public let document: OpenAPIDocument
    public let settings: Settings
    public let baseURL: String
    private let token: String?
    private let client: HTTPClient
    private let logger: Logger

    /// Creates a connector from its settings; `baseURL` overrides the file's and the document's.
    public init(settings: Settings, baseURL: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                client: HTTPClient = .shared, logger: Logger = Logger(label: "conclave.knowledge.api")) throws {
        self.settings = settings
        document = try OpenAPIDocument.load(path: settings.openapi)
        guard var base = baseURL.flatMap({ $0.isEmpty ? nil : $0 }) ?? settings.baseURL ?? document.servers.first else {
            throw APIConnectorError("\(settings.openapi): no base_url and the document names no server")
        }
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        token = settings.tokenEnv.flatMap { environment[$0] }.flatMap { $0.isEmpty ? nil : $0 }
        for id in (settings.operations ?? [:]).keys where !document.operations.contains(where: { $0.id == id }) {
            throw APIConnectorError("\(settings.openapi): the connector file names operation \(id), which is not a GET operation of the document")
        }
        self.client = client
        self.logger = logger
    }

    /// Loads the connector file at `path`.
    public convenience init(path: String, baseURL: String? = nil, logger: Logger = Logger(label: "conclave.knowledge.api")) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw APIConnectorError("cannot read the API connector file \(path)")
        }
        var settings = try Settings.load(yaml: text, origin: path)
        settings.openapi = TemplateCatalog.resolve(settings.openapi, from: path)
        try self.init(settings: settings, baseURL: baseURL, logger: logger)
    }

    /// True when a bearer token was found in the environment.
    public var hasToken: Bool { token != nil }

    // MARK: Choosing an operation

    /// The operation that serves `question`, or nil.
    public func match(_ question: String) -> Match? {
        let text = QuestionText(question)
        var best: Match?
        for operation in document.operations where !operation.isPublic {
            let extra = settings.operations?[operation.id]
            let subject = extra?.subject ?? operation.literalSegments.flatMap { [$0, OpenAPIDocument.singular($0)] }
            guard text.containsAny(subject) else { continue }
            guard let arguments = fill(operation, from: text, settings: extra) else { continue }
            let pathFilled = operation.parameters.filter { $0.location == "path" }.count
            let queryFilled = arguments.count - pathFilled
            let intents = text.intents(subject: subject)
            // A collection without filters answers only a question that lists or counts it.
            guard pathFilled > 0 || queryFilled > 0 || !intents.isDisjoint(with: [.list, .count]) else { continue }
            // The question must ask about something the response holds ("occupancy", "dock doors",
            // "delivered"), not merely name the resource ("a hotel near the Milan hub").
            let subjectWords = Set(subject.flatMap { QuestionText.phrase($0) }.map(OpenAPIDocument.singular))
            let asked = Set(text.words.map(OpenAPIDocument.singular)).subtracting(subjectWords)
            guard queryFilled > 0 || !asked.isDisjoint(with: operation.vocabulary) else { continue }
            let score = 2 + 2 * Double(pathFilled) + Double(queryFilled)
            if best == nil || score > best!.score { best = Match(operation: operation, arguments: arguments, score: score) }
        }
        return best
    }

    /// Arguments for the operation's parameters read off the question; nil when a required one is missing.
    func fill(_ operation: OpenAPIDocument.Operation, from text: QuestionText,
              settings: Settings.OperationSettings?) -> [String: String]? {
        var arguments: [String: String] = [:]
        for p in operation.parameters {
            if let value = value(for: p, operation: operation, text: text, settings: settings) {
                arguments[p.name] = value
            } else if p.required {
                return nil
            }
        }
        return arguments
    }

    private func value(for p: OpenAPIDocument.Parameter, operation: OpenAPIDocument.Operation, text: QuestionText,
                       settings: Settings.OperationSettings?) -> String? {
        // Aliases from the connector file, then the schema's enum values (underscores read as spaces).
        var phrases: [(phrase: [String], value: String)] = []
        for (phrase, value) in settings?.values?[p.name] ?? [:] { phrases.append((QuestionText.phrase(phrase), value)) }
        for value in p.schema.enumValues where value.count > 2 || value == value.uppercased() {
            phrases.append((QuestionText.phrase(value), value))
        }
        for entry in phrases.sorted(by: { $0.phrase.count > $1.phrase.count }) where !text.occurrences(of: entry.phrase).isEmpty {
            if entry.phrase.count == 1, entry.phrase[0].count <= 3,
               let at = text.occurrences(of: entry.phrase).first, text.typedWord(at) != text.typedWord(at).uppercased(),
               settings?.values?[p.name]?[entry.value] == nil, !(settings?.values?[p.name]?.keys.contains { $0.lowercased() == entry.phrase[0] } ?? false) {
                continue  // short codes ("ham", "mil") count only when typed as codes
            }
            return entry.value
        }
        // A pattern: the first word of the question that matches it.
        if let pattern = p.schema.pattern, let regex = try? NSRegularExpression(pattern: pattern) {
            for word in text.original.split(whereSeparator: { $0.isWhitespace || ",.;:?!()\"'".contains($0) }) {
                let candidate = String(word)
                if regex.firstMatch(in: candidate, range: NSRange(candidate.startIndex..., in: candidate)) != nil { return candidate }
            }
        }
        // A number named after its resource ("shipment 101461") or a cue word.
        if p.schema.type == "integer" || p.schema.type == "number" {
            let resource = operation.path.components(separatedBy: "/{\(p.name)}").first?.split(separator: "/").last.map(String.init) ?? ""
            let cues = Set((settings?.cues?[p.name] ?? []).map { $0.lowercased() } + [resource, OpenAPIDocument.singular(resource)].filter { !$0.isEmpty })
            for (i, word) in text.words.enumerated() where i > 0 && cues.contains(text.words[i - 1]) {
                if word.allSatisfy(\.isNumber), !word.isEmpty { return word }
                if ["number", "no", "id", "nr"].contains(word), i + 1 < text.words.count, text.words[i + 1].allSatisfy(\.isNumber) {
                    return text.words[i + 1]
                }
            }
        }
        return nil
    }

    // MARK: Calling

    /// The response of one call.
    public struct CallResult: Sendable {
        public var status: Int
        public var body: Data
        public var path: String
    }

    /// Calls `operation` with `arguments` (checked against the parameters' types, patterns and enums).
    public func call(_ operation: OpenAPIDocument.Operation, arguments: [String: String]) async throws -> CallResult {
        var path = operation.path
        var query: [String] = []
        for p in operation.parameters {
            guard let value = arguments[p.name] else {
                if p.required { throw APIConnectorError("\(operation.id): parameter \(p.name) is required") }
                continue
            }
            try Self.check(value, p, operation: operation)
            let encoded = value.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#&="))) ?? value
            if p.location == "path" { path = path.replacingOccurrences(of: "{\(p.name)}", with: encoded) } else { query.append("\(p.name)=\(encoded)") }
        }
        var request = HTTPClientRequest(url: baseURL + path + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let timeout = TimeAmount.milliseconds(Int64((settings.timeoutSeconds ?? 5) * 1000))
        let limit = settings.maxResponseBytes ?? 1_048_576
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: timeout)
        } catch {
            throw APIConnectorError("\(operation.id): the API at \(baseURL) did not answer: \(error)")
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: limit)
        } catch {
            throw APIConnectorError("\(operation.id): the response is larger than \(limit) bytes", status: Int(response.status.code))
        }
        return CallResult(status: Int(response.status.code), body: Data(body.readableBytesView), path: path)
    }

    static func check(_ value: String, _ p: OpenAPIDocument.Parameter, operation: OpenAPIDocument.Operation) throws {
        let where_ = "parameter \(p.name) of \(operation.id)"
        if !p.schema.enumValues.isEmpty, !p.schema.enumValues.contains(value) {
            throw APIConnectorError("\(where_) must be one of \(p.schema.enumValues.joined(separator: ", ")), got \(value.prefix(40))")
        }
        if p.schema.type == "integer", Int64(value) == nil { throw APIConnectorError("\(where_) must be an integer, got \(value.prefix(40))") }
        if let pattern = p.schema.pattern, let regex = try? NSRegularExpression(pattern: pattern),
           regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) == nil {
            throw APIConnectorError("\(where_) must match \(pattern), got \(value.prefix(40))")
        }
    }

    /// Evidence for `question` within `scope`: the chosen operation's response, "no record" for a
    /// 404, the operation withheld when the principal may not call it; nothing when no operation
    /// serves the question or the API fails (logged).
    public func evidence(for question: String, scope: DocumentScope) async -> Retrieval {
        guard let match = match(question) else { return Retrieval(evidence: []) }
        let operation = match.operation
        let owner = settings.operations?[operation.id]?.owner
        guard scope.allows(operation: operation.policyName) else {
            return Retrieval(evidence: [], withheld: [WithheldSource(documentID: "api:" + operation.path, department: owner, coverage: 1)])
        }
        do {
            let result = try await call(operation, arguments: match.arguments)
            let id = "api:" + result.path
            let title = settings.operations?[operation.id]?.title.map { Self.substitute($0, match.arguments) } ?? operation.summary
            let text: String
            switch result.status {
            case 200..<300:
                let json = try JSONSerialization.jsonObject(with: result.body, options: [.fragmentsAllowed])
                text = title + ": " + Self.render(json, question: QuestionText(question)) + "."
            case 404:
                let what = match.arguments.values.sorted().joined(separator: " ")
                text = "\(title): the API has no record of \(what) (not found)."
            default:
                logger.warning("api call failed", metadata: ["operation": "\(operation.id)", "status": "\(result.status)"])
                return Retrieval(evidence: [])
            }
            let evidence = Evidence(chunkID: id, source: SourceRef(id: id, title: document.title, section: operation.summary),
                                    text: text, score: 10 + match.score, subQuestion: question)
            return Retrieval(evidence: [evidence])
        } catch {
            logger.warning("api call failed", metadata: ["operation": "\(operation.id)", "error": "\(error)"])
            return Retrieval(evidence: [])
        }
    }

    static func substitute(_ template: String, _ arguments: [String: String]) -> String {
        var out = template
        for (name, value) in arguments { out = out.replacingOccurrences(of: "{\(name)}", with: value) }
        return out
    }

    // MARK: Rendering

    /// A JSON response as "field: value" clauses: scalars and lists of scalars in full, nested
    /// objects flattened one level, lists of objects as their count with the most recent item
    /// (the last) in full, or, for collections, one short entry per item.
    static func render(_ json: Any, question: QuestionText) -> String {
        guard let object = json as? [String: Any] else { return scalar(json) ?? "" }
        var clauses: [String] = []
        for key in object.keys.sorted(by: { (order($0, in: object), $0) < (order($1, in: object), $1) }) {
            let label = key.replacingOccurrences(of: "_", with: " ")
            let value = object[key]
            if let text = scalar(value) {
                clauses.append("\(label): \(text)")
            } else if let list = value as? [Any], list.allSatisfy({ scalar($0) != nil }) {
                clauses.append("\(label): \(list.isEmpty ? "none" : list.compactMap(scalar).joined(separator: ", "))")
            } else if let nested = value as? [String: Any] {
                for (k, v) in nested.sorted(by: { $0.key < $1.key }) {
                    if let text = scalar(v) { clauses.append("\(label) \(k.replacingOccurrences(of: "_", with: " ")): \(text)") }
                }
            } else if let list = value as? [[String: Any]] {
                if list.count > 3 || object.count <= 2 {
                    // A collection: one short entry per item.
                    let entries = list.map { item -> String in
                        let fields = item.keys.sorted(by: { (order($0, in: item), $0) < (order($1, in: item), $1) })
                            .compactMap { k -> String? in scalar(item[k]).map { "\(k.replacingOccurrences(of: "_", with: " ")) \($0)" } }
                        return fields.prefix(6).joined(separator: ", ")
                    }
                    clauses.append("\(label) (\(list.count)): " + entries.joined(separator: "; "))
                } else {
                    for (index, item) in list.enumerated() {
                        let fields = item.sorted { $0.key < $1.key }.compactMap { k, v in scalar(v).map { "\(k.replacingOccurrences(of: "_", with: " ")) \($0)" } }
                        clauses.append("\(label) \(index + 1): " + fields.joined(separator: ", "))
                    }
                }
                if list.count > 3 && object.count > 2, let last = list.last {
                    let fields = last.sorted { $0.key < $1.key }.compactMap { k, v in scalar(v).map { "\(k.replacingOccurrences(of: "_", with: " ")) \($0)" } }
                    clauses.append("latest \(label.hasSuffix("s") ? String(label.dropLast()) : label): " + fields.joined(separator: ", "))
                }
            }
        }
        return clauses.joined(separator: "; ")
    }

    /// Keeps a response's own field order where JSON parsing lost it: ids and status first.
    private static func order(_ key: String, in object: [String: Any]) -> Int {
        if key == "id" || key.hasSuffix("_id") && !key.contains("manager") { return 0 }
        if key == "status" || key == "count" { return 1 }
        return 2 + (object[key] is [Any] ? 1 : 0)
    }

    private static func scalar(_ value: Any?) -> String? {
        switch value {
        case let s as String: return s.replacingOccurrences(of: "_", with: " ")
        case let n as NSNumber:
            // Foundation on Linux parses true/false as a boolean NSNumber of objCType "c".
            if String(cString: n.objCType) == "c" { return n.boolValue ? "yes" : "no" }
            return n.stringValue
        case is NSNull: return "none"
        default: return nil
        }
    }
}

extension APIConnector: EvidenceSource {
    public var mode: DataAccessMode { .api }

    public func lookup(_ question: String, scope: DocumentScope) async throws -> Retrieval {
        await evidence(for: question, scope: scope)
    }
}

