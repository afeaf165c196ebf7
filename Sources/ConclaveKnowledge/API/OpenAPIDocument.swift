import Foundation
import Yams

/// The GET operations of an OpenAPI 3 document, as tools with typed parameters. Only what the
/// connector needs is read: paths, operation ids, summaries, parameters with their schemas
/// (`$ref`s into `components` resolved) and the first server URL.
public struct OpenAPIDocument: Sendable {
    /// A parameter's type and constraints.
    public struct Schema: Sendable, Hashable {
        public var type: String
        public var enumValues: [String]
        public var pattern: String?
    }

    /// A path or query parameter.
    public struct Parameter: Sendable, Hashable {
        public var name: String
        public var location: String
        public var required: Bool
        public var description: String
        public var schema: Schema
    }

    /// A GET operation.
    public struct Operation: Sendable, Hashable {
        public var id: String
        public var path: String
        public var summary: String
        public var parameters: [Parameter]
        /// True when the operation needs no authentication (`security: []`).
        public var isPublic: Bool
        /// Words of the success response's field names and of the summary (singular, lower case):
        /// what a question must ask about for the operation to answer it.
        public var vocabulary: Set<String>

        /// The policy's name for it: `GET /path`.
        public var policyName: String { "GET \(path)" }

        /// The literal path segments (`/shipments/{id}/tracking` → shipments, tracking).
        public var literalSegments: [String] {
            path.split(separator: "/").map(String.init).filter { !$0.hasPrefix("{") }
        }
    }

    public var title: String
    public var servers: [String]
    public var operations: [Operation]

    /// Parses a document; errors name the file and what is missing.
    public static func load(path: String) throws -> OpenAPIDocument {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw APIConnectorError("cannot read the OpenAPI document \(path)")
        }
        return try parse(yaml: text, origin: path)
    }

    /// Parses OpenAPI YAML or JSON text.
    public static func parse(yaml: String, origin: String) throws -> OpenAPIDocument {
        let root: [String: Any]
        do {
            guard let loaded = try GuardedYAML.load(yaml: yaml) as? [String: Any] else {
                throw APIConnectorError("\(origin): not an OpenAPI document (expected a mapping at the top)")
            }
            root = loaded
        } catch let error as APIConnectorError {
            throw error
        } catch {
            throw APIConnectorError("\(origin): not valid YAML or JSON: \(error)")
        }
        guard let version = root["openapi"] as? String, version.hasPrefix("3.") else {
            throw APIConnectorError("\(origin): only OpenAPI 3 documents are supported (no openapi: 3.x key)")
        }
        guard let paths = root["paths"] as? [String: Any] else { throw APIConnectorError("\(origin): the document has no paths") }
        let components = root["components"] as? [String: Any] ?? [:]
        let title = (root["info"] as? [String: Any])?["title"] as? String ?? origin
        let servers = (root["servers"] as? [[String: Any]] ?? []).compactMap { $0["url"] as? String }
        let globalSecurity = root["security"] as? [Any]

        func resolve(_ node: Any?, depth: Int = 0) -> [String: Any] {
            guard let dict = node as? [String: Any] else { return [:] }
            guard let ref = dict["$ref"] as? String, depth < 8 else {
                if let all = dict["allOf"] as? [Any], let first = all.first { return resolve(first, depth: depth + 1) }
                return dict
            }
            // "#/components/schemas/HubCode"
            let parts = ref.split(separator: "/").dropFirst().map(String.init)
            guard parts.first == "components" else { return [:] }
            var current: Any? = components
            for part in parts.dropFirst() { current = (current as? [String: Any])?[part] }
            return resolve(current, depth: depth + 1)
        }

        var operations: [Operation] = []
        for (path, item) in paths.sorted(by: { $0.key < $1.key }) {
            guard let item = item as? [String: Any], let get = item["get"] as? [String: Any] else { continue }
            let shared = item["parameters"] as? [Any] ?? []
            var parameters: [Parameter] = []
            for raw in shared + (get["parameters"] as? [Any] ?? []) {
                let p = resolve(raw)
                guard let name = p["name"] as? String, let location = p["in"] as? String, ["path", "query"].contains(location) else { continue }
                let schema = resolve(p["schema"])
                let enumValues = (schema["enum"] as? [Any] ?? []).map { "\($0)" }
                parameters.append(Parameter(
                    name: name, location: location, required: (p["required"] as? Bool) ?? (location == "path"),
                    description: p["description"] as? String ?? "",
                    schema: Schema(type: schema["type"] as? String ?? "string", enumValues: enumValues, pattern: schema["pattern"] as? String)))
            }
            let id = get["operationId"] as? String ?? "GET \(path)"
            let security = get["security"] as? [Any] ?? globalSecurity
            let summary = get["summary"] as? String ?? ""
            // Field names of the 200 response (two levels deep), split into words.
            var names: [String] = []
            func collect(_ schema: [String: Any], depth: Int) {
                guard depth < 3 else { return }
                if let items = schema["items"] { collect(resolve(items), depth: depth + 1) }
                for (name, property) in schema["properties"] as? [String: Any] ?? [:] {
                    names.append(name)
                    collect(resolve(property), depth: depth + 1)
                }
            }
            let ok = ((get["responses"] as? [String: Any])?["200"]).map { resolve($0) } ?? [:]
            let json = ((ok["content"] as? [String: Any])?["application/json"] as? [String: Any]) ?? [:]
            collect(resolve(json["schema"]), depth: 0)
            let vocabulary = Set((names + [summary]).flatMap { text in
                text.lowercased().split(whereSeparator: { !$0.isLetter }).map { Self.singular(String($0)) }
            }.filter { $0.count > 2 && !Self.stopWords.contains($0) })
            operations.append(Operation(id: id, path: path, summary: summary, parameters: parameters,
                                        isPublic: security?.isEmpty ?? true, vocabulary: vocabulary))
        }
        return OpenAPIDocument(title: title, servers: servers, operations: operations)
    }
}

extension OpenAPIDocument {
    static let stopWords: Set<String> = ["the", "and", "for", "get", "one", "all", "list", "with", "from", "our", "its", "any"]

    /// A word without its plural ending ("doors" → "door", "cutoffs" → "cutoff", "categories" → "category").
    public static func singular(_ word: String) -> String {
        if word.count > 4, word.hasSuffix("ies") { return String(word.dropLast(3)) + "y" }
        if word.count > 3, word.hasSuffix("s"), !word.hasSuffix("ss"), !word.hasSuffix("us") { return String(word.dropLast()) }
        return word
    }
}

/// A failure of the API connector (configuration, transport or the upstream's answer).
public struct APIConnectorError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// The upstream's HTTP status, when it answered.
    public var status: Int?
    public init(_ message: String, status: Int? = nil) {
        self.message = message
        self.status = status
    }
    public var description: String { message }
}
