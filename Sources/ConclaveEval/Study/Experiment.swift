import Foundation
import Yams

/// An experiment file: configurations of the server, and the load each gets.
public struct Experiment {
    /// One server configuration and the model its requests name.
    public struct Configuration {
        public var name: String
        public var model: String
        /// Configuration keys (dotted) and their values.
        public var settings: [String: Any]
        /// Load levels of this configuration alone (nil: the `load` section's).
        public var levels: [Double]?
        /// For the one-at-a-time sensitivity analysis: the one parameter in which this configuration
        /// differs from another of the same experiment (nil: not a sensitivity variant).
        public var varies: Variation?
    }

    /// One parameter changed against a baseline configuration, and its two values in words.
    public struct Variation: Codable, Sendable, Equatable {
        public var parameter: String
        /// The baseline configuration's name.
        public var of: String
        public var from: String
        public var to: String

        public init(parameter: String, of: String, from: String, to: String) {
            self.parameter = parameter
            self.of = of
            self.from = from
            self.to = to
        }
    }

    /// A malformed experiment file.
    public struct FileError: Error, CustomStringConvertible {
        public var description: String
    }

    /// What an experiment measures.
    public enum Kind: String, Sendable {
        /// Latency, throughput and availability under the `load` section's traffic.
        case load
        /// Answer quality: `conclave eval` over a sample of the task file, per configuration.
        case quality
        /// Resources per agent role: a local cluster (one worker process per role) under the
        /// `load` section's traffic; CPU time, memory, step time and model tokens per role.
        case resources
    }

    public var name: String
    public var title: String
    public var kind: Kind
    public var repetitions: Int
    /// Quality experiments: the first N tasks of each type of the task file (0: every task).
    public var tasksPerType: Int
    /// Quality experiments: tasks run at the same time.
    public var concurrency: Int
    /// The user whose development token the requests carry (nil: none).
    public var user: String?
    /// Task file whose first turns are the traffic.
    public var questions: String
    /// Settings every configuration shares.
    public var settings: [String: Any]
    public var load: LoadPlan
    public var configurations: [Configuration]

    /// Reads an experiment file.
    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw FileError(description: "cannot read \(path)") }
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw FileError(description: "\(path): not a YAML mapping") }
        func fail(_ key: String, _ expected: String) -> FileError { FileError(description: "\(path): \(key): expected \(expected)") }
        guard let name = root["name"] as? String else { throw fail("name", "a string") }
        self.name = name
        title = root["title"] as? String ?? name
        guard let kind = Kind(rawValue: root["kind"] as? String ?? "load") else { throw fail("kind", "load, quality or resources") }
        self.kind = kind
        repetitions = root["repetitions"] as? Int ?? 3
        let quality = root["quality"] as? [String: Any] ?? [:]
        tasksPerType = quality["tasks_per_type"] as? Int ?? 0
        concurrency = quality["concurrency"] as? Int ?? 2
        guard tasksPerType >= 0, concurrency >= 1 else { throw fail("quality", "tasks_per_type ≥ 0 and concurrency ≥ 1") }
        user = root["user"] as? String
        questions = root["questions"] as? String ?? "examples/meridian/eval/dev.jsonl"
        settings = root["settings"] as? [String: Any] ?? [:]
        guard let load = root["load"] as? [String: Any] ?? (kind == .quality ? ["levels": [1]] : nil) else {
            throw fail("load", "a mapping")
        }
        guard let levels = (load["levels"] as? [Any])?.compactMap({ ($0 as? Double) ?? ($0 as? Int).map(Double.init) }), !levels.isEmpty else {
            throw fail("load.levels", "a list of numbers")
        }
        guard let mode = LoadPlan.Mode(rawValue: load["mode"] as? String ?? "closed") else { throw fail("load.mode", "closed or open") }
        self.load = LoadPlan(model: "", mode: mode, levels: levels,
                             durationSeconds: (load["duration_seconds"] as? Double) ?? (load["duration_seconds"] as? Int).map(Double.init) ?? 30,
                             thinkMilliseconds: load["think_ms"] as? Int ?? 0, seed: UInt64(load["seed"] as? Int ?? 42),
                             maxTokens: load["max_tokens"] as? Int ?? 96, stream: load["stream"] as? Bool ?? false,
                             killReplicaEverySeconds: (load["kill_replica_every_seconds"] as? Double)
                                 ?? (load["kill_replica_every_seconds"] as? Int).map(Double.init) ?? 0)
        guard let list = root["configurations"] as? [[String: Any]], !list.isEmpty else { throw fail("configurations", "a list") }
        func numbers(_ value: Any?) -> [Double]? {
            (value as? [Any])?.compactMap { ($0 as? Double) ?? ($0 as? Int).map(Double.init) }
        }
        configurations = try list.enumerated().map { index, entry in
            guard let name = entry["name"] as? String, let model = entry["model"] as? String else {
                throw fail("configurations[\(index)]", "name and model")
            }
            var configuration = Configuration(name: name, model: model, settings: entry["settings"] as? [String: Any] ?? [:])
            if let value = entry["levels"] {
                guard let levels = numbers(value), !levels.isEmpty else { throw fail("configurations[\(index)].levels", "a list of numbers") }
                configuration.levels = levels
            }
            if let value = entry["varies"] {
                func text(_ key: String) -> String? {
                    guard let item = (value as? [String: Any])?[key] else { return nil }
                    return item as? String ?? "\(item)"
                }
                guard let parameter = text("parameter"), let of = text("of"), let from = text("from"), let to = text("to") else {
                    throw fail("configurations[\(index)].varies", "a mapping with parameter, of, from and to")
                }
                configuration.varies = Variation(parameter: parameter, of: of, from: from, to: to)
            }
            return configuration
        }
        let names = Set(configurations.map(\.name))
        for (index, configuration) in configurations.enumerated() {
            if let baseline = configuration.varies?.of, baseline == configuration.name || !names.contains(baseline) {
                throw fail("configurations[\(index)].varies.of", "the name of another configuration (\(names.sorted().joined(separator: ", ")))")
            }
        }
    }

    /// Every load level some configuration runs, ascending.
    public var allLevels: [Double] {
        Array(Set(load.levels + configurations.flatMap { $0.levels ?? [] })).sorted()
    }

    /// The tasks a quality experiment runs: the first `tasksPerType` of each type, in file order.
    public func sample(_ tasks: [EvalTask]) -> [EvalTask] {
        guard tasksPerType > 0 else { return tasks }
        var taken: [String: Int] = [:]
        return tasks.filter { task in
            taken[task.type, default: 0] += 1
            return taken[task.type]! <= tasksPerType
        }
    }

    /// Configuration keys as environment overrides: `inference.autoscale.enabled` → `CONCLAVE_INFERENCE__AUTOSCALE__ENABLED`.
    public static func environment(_ settings: [String: Any]) -> [String: String] {
        var environment: [String: String] = [:]
        for (key, value) in settings {
            let name = "CONCLAVE_" + key.uppercased().replacingOccurrences(of: ".", with: "__")
            switch value {
            case let text as String: environment[name] = text
            case let flag as Bool: environment[name] = flag ? "true" : "false"
            case let number as Int: environment[name] = String(number)
            case let number as Double: environment[name] = String(number)
            default: environment[name] = (try? Yams.dump(object: value)) ?? "\(value)"
            }
        }
        return environment
    }
}
