import Foundation
import Yams

/// `Yams.load` for YAML from outside (document front matter, configuration, API documents):
/// the same values, but input that would crash or exhaust Yams' constructor is refused with an
/// error instead.
///
/// Two inputs do that (fuzz/FuzzConfiguration and fuzz/FuzzFrontMatter found the first):
/// - a mapping key that is not a scalar (`? {a: b}: c`, `[a, b]: c`): Yams' constructor
///   force-unwraps every key as a string and traps;
/// - aliases that multiply (`a: &a [x, x]`, `b: &b [*a, *a]`, …, the "billion laughs"): the parsed
///   tree shares the repeated nodes, but constructing values copies each one, so a few hundred
///   bytes expand into billions of values.
public enum GuardedYAML {
    /// Why a YAML text was refused.
    public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Most nodes a text may expand to, counting every use of an alias (a 5 KB configuration
    /// file has a few hundred).
    public static let maximumNodes = 100_000

    /// The value of a single-document YAML text, as `Yams.load(yaml:_:)` gives it, or nil for an
    /// empty text; throws Yams' parse errors and ``Refusal``.
    public static func load(yaml: String, resolver: Resolver = .default) throws -> Any? {
        guard let node = try Yams.compose(yaml: yaml, resolver) else { return nil }
        var budget = maximumNodes
        try check(node, budget: &budget)
        return node.any
    }

    private static func check(_ node: Node, budget: inout Int) throws {
        budget -= 1
        guard budget >= 0 else {
            throw Refusal(description: "the YAML expands to more than \(maximumNodes) values (aliases used too often)")
        }
        switch node {
        case .scalar, .alias:
            return
        case .sequence(let sequence):
            for element in sequence { try check(element, budget: &budget) }
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard case .scalar = key else {
                    let line = key.mark.map { " (line \($0.line))" } ?? ""
                    throw Refusal(description: "a mapping key is not a plain value\(line); keys must be strings")
                }
                try check(value, budget: &budget)
            }
        }
    }
}
