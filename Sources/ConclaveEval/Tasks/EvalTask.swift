import Foundation

/// One evaluation task in the Meridian format (see `examples/meridian/README.md`).
public struct EvalTask: Sendable, Codable, Hashable {
    /// A user turn, with optional per-turn expectations (multi-turn tasks).
    public struct Turn: Sendable, Codable, Hashable {
        public var user: String
        public var expect: TurnExpectation?
    }

    /// Per-turn expectations (diagnostic).
    public struct TurnExpectation: Sendable, Codable, Hashable {
        public var mustInclude: [[String]]?
        enum CodingKeys: String, CodingKey { case mustInclude = "must_include" }
    }

    /// What the final answer must (not) contain.
    public struct Expectation: Sendable, Codable, Hashable {
        public var mustInclude: [[String]]
        public var mustNotInclude: [String]
        public var refusal: Bool
        public var sources: [String]

        enum CodingKeys: String, CodingKey {
            case mustInclude = "must_include"
            case mustNotInclude = "must_not_include"
            case refusal, sources
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            mustInclude = try c.decodeIfPresent([[String]].self, forKey: .mustInclude) ?? []
            mustNotInclude = try c.decodeIfPresent([String].self, forKey: .mustNotInclude) ?? []
            refusal = try c.decodeIfPresent(Bool.self, forKey: .refusal) ?? false
            sources = try c.decodeIfPresent([String].self, forKey: .sources) ?? []
        }
    }

    public var id: String
    public var type: String
    public var user: String
    public var turns: [Turn]
    public var expect: Expectation
    public var group: String?

    /// Reads a JSONL task file; errors name the line.
    public static func load(path: String) throws -> [EvalTask] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvalError("cannot read task file '\(path)'")
        }
        let decoder = JSONDecoder()
        var tasks: [EvalTask] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty else { continue }
            do {
                tasks.append(try decoder.decode(EvalTask.self, from: Data(trimmed.utf8)))
            } catch {
                throw EvalError("\(path):\(number + 1): not a valid task (\(error))")
            }
        }
        return tasks
    }
}

/// An evaluation failure with a message for the user.
public struct EvalError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
