import ConclaveCore
import ConclaveKnowledge
import Foundation
import Yams

/// Reads ``ConclaveConfiguration`` from a YAML file and `CONCLAVE_*` environment variables.
///
/// An environment variable names a key path with `__` between levels:
/// `CONCLAVE_SERVER__PORT=9000` sets `server.port`, `CONCLAVE_INFERENCE__PROVIDER=openai` sets
/// `inference.provider`. Its value is read as YAML, so `9000` is a number and `[a, b]` a list.
/// Environment values win over the file. Only variables whose first segment names a section
/// (`SERVER`, `STORAGE`, `INFERENCE`, `KNOWLEDGE`, `WORKFLOWS`, `LOGGING`) are configuration;
/// others such as `CONCLAVE_HOME` are left alone.
public enum ConfigurationLoader {
    /// YAML 1.1 reads `on`, `off`, `yes` and `no` as booleans, which turned `governance.mode: off`
    /// (and `CONCLAVE_GOVERNANCE__MODE=off`) into `false`. Here only `true` and `false` are booleans.
    static let resolver: Resolver = (try? Resolver.default.removing(.bool)
        .appending(.bool, "^(?:true|True|TRUE|false|False|FALSE)$")) ?? .default

    /// Environment variable prefix.
    public static let prefix = "CONCLAVE_"

    /// Loads and validates configuration from `path` (nil: defaults only) and `environment`.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> ConclaveConfiguration
    {
        var tree: [String: Any] = [:]
        var origins: [String: String] = [:]
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError(key: "(file)", value: path, expected: "a readable YAML file")
            }
            let text = String(decoding: data, as: UTF8.self)
            let loaded: Any?
            do {
                // GuardedYAML: a non-scalar key or aliases that multiply are refused, not a trap or a
                // hang in Yams' constructor (found by fuzz/FuzzConfiguration).
                loaded = try GuardedYAML.load(yaml: text, resolver: Self.resolver)
            } catch {
                throw ConfigurationError(key: "(file)", value: path, expected: "valid YAML (\(error))")
            }
            if let mapping = loaded as? [String: Any] {
                tree = mapping
            } else if loaded != nil {
                throw ConfigurationError(key: "(file)", value: path, expected: "a YAML mapping at the top level")
            }
        }
        let sections = Set(ConclaveConfiguration.sectionNames)
        // Aliases with a single underscore, as deployment manifests commonly spell them.
        let aliases = ["CONCLAVE_INFERENCE_REPLICAS": "CONCLAVE_INFERENCE__REPLICAS"]
        for (name, raw) in environment where name.hasPrefix(prefix) {
            let canonical = aliases[name] ?? name
            let path = canonical.dropFirst(prefix.count).lowercased().components(separatedBy: "__").filter { !$0.isEmpty }
            guard let section = path.first, sections.contains(section) else { continue }
            let value: Any = (try? GuardedYAML.load(yaml: raw, resolver: Self.resolver)).flatMap { $0 } ?? raw
            set(&tree, path: path, value: value)
            origins[path.joined(separator: ".")] = "environment variable \(name)"
        }
        let configuration: ConclaveConfiguration
        do {
            let yaml = try Yams.dump(object: tree)
            configuration = try YAMLDecoder().decode(ConclaveConfiguration.self, from: yaml)
        } catch var error as ConfigurationError {
            error.origin = origins[error.key] ?? path
            throw error
        } catch let error as DecodingError {
            // YAMLDecoder wraps errors thrown by the configuration types' own decoding.
            if case .dataCorrupted(let context) = error, var inner = context.underlyingError as? ConfigurationError {
                inner.origin = origins[inner.key] ?? path
                throw inner
            }
            throw describe(error, tree: tree, origins: origins, file: path)
        } catch {
            throw ConfigurationError(key: "(file)", value: path, expected: "valid configuration (\(error))")
        }
        do {
            try configuration.validate()
        } catch var error as ConfigurationError {
            error.origin = origins[error.key] ?? path
            throw error
        }
        return configuration
    }

    private static func set(_ tree: inout [String: Any], path: [String], value: Any) {
        guard let head = path.first else { return }
        if path.count == 1 {
            tree[head] = value
            return
        }
        var child = tree[head] as? [String: Any] ?? [:]
        set(&child, path: Array(path.dropFirst()), value: value)
        tree[head] = child
    }

    private static func lookup(_ tree: [String: Any], path: [String]) -> Any? {
        var node: Any? = tree
        for key in path {
            node = (node as? [String: Any])?[key]
        }
        return node
    }

    private static func describe(_ error: DecodingError, tree: [String: Any], origins: [String: String], file: String?)
        -> ConfigurationError
    {
        func path(_ keys: [any CodingKey]) -> [String] { keys.map(\.stringValue) }
        switch error {
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let keys = path(context.codingPath)
            let key = keys.joined(separator: ".")
            let value = lookup(tree, path: keys).map { "\($0)" }
            return ConfigurationError(key: key, value: value, expected: expectedName(type), origin: origins[key] ?? file)
        case .keyNotFound(let codingKey, let context):
            let key = (path(context.codingPath) + [codingKey.stringValue]).joined(separator: ".")
            return ConfigurationError(key: key, value: nil, expected: "a value", origin: origins[key] ?? file)
        case .dataCorrupted(let context):
            let keys = path(context.codingPath)
            let key = keys.joined(separator: ".")
            let value = lookup(tree, path: keys).map { "\($0)" }
            return ConfigurationError(key: key.isEmpty ? "(file)" : key, value: value,
                                      expected: context.debugDescription, origin: origins[key] ?? file)
        @unknown default:
            return ConfigurationError(key: "(file)", value: file, expected: "valid configuration")
        }
    }

    private static func expectedName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        default:
            let name = "\(type)"
            return name.hasPrefix("Dictionary") || name.contains("Configuration") ? "a mapping" : "a value of type \(name)"
        }
    }
}
