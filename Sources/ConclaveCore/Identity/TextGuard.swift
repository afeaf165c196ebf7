import Synchronization

/// What a request's principal may see of text, applied where text enters and leaves the agents:
/// evidence before any agent or model reads it, and the answer as it streams out. The governance
/// layer implements it (PII masking by the access policy); agents only call it.
public protocol TextGuard: Sendable {
    /// Evidence text with what the principal may not see masked.
    func evidence(_ text: String) -> String
    /// A stream filter for one answer: masks across chunk boundaries, holding back only a
    /// suffix that could still become personal data.
    func outputStream() -> any OutputStreamFilter
    /// Other text shown to the client beside the answer (citation snippets), filtered as the
    /// answer is.
    func shown(_ text: String) -> String
}

extension TextGuard {
    public func shown(_ text: String) -> String {
        var filter = outputStream()
        return filter.append(text) + filter.finish()
    }
}

/// How masked values read: the governance layer writes it, agents recognise it.
public enum MaskedValue {
    /// A value the principal may not see at all.
    public static let restricted = "[restricted]"
}

/// Filters one streamed answer.
public protocol OutputStreamFilter: Sendable {
    /// Adds generated text; returns what can be released now.
    mutating func append(_ text: String) -> String
    /// Releases the rest at the end of the stream.
    mutating func finish() -> String
}

/// One answer's output filter shared between a streaming callback and the code that finishes the
/// answer: releases text as the filter allows and keeps everything released. Without a filter,
/// text passes unchanged.
public final class SharedOutputFilter: Sendable {
    private let state: Mutex<(filter: (any OutputStreamFilter)?, released: String)>

    public init(_ filter: (any OutputStreamFilter)?) {
        state = Mutex((filter, ""))
    }

    /// Adds generated text; returns what can be released now.
    public func append(_ text: String) -> String {
        state.withLock { state in
            let out = state.filter == nil ? text : state.filter!.append(text)
            state.released += out
            return out
        }
    }

    /// Releases the rest at the end of the answer.
    public func finish() -> String {
        state.withLock { state in
            let out = state.filter == nil ? "" : state.filter!.finish()
            state.released += out
            return out
        }
    }

    /// Everything released so far.
    public var released: String { state.withLock { $0.released } }
}

/// A text guard that can travel to another process (distributed mode: an agent step runs in a
/// worker). The gateway sends ``transfer()`` with the step; the worker's governance layer builds
/// an equivalent guard from it; the worker sends back what its guard did (``activity``), and the
/// gateway's guard ``absorb(_:)``s it, so the audit record counts everything.
public protocol TransferableTextGuard: TextGuard {
    /// What another process needs to rebuild this guard for the same principal.
    func transfer() -> GuardTransfer
    /// What this guard has masked and removed so far.
    var activity: GuardActivity { get }
    /// Adds what a remote copy of this guard did.
    func absorb(_ activity: GuardActivity)
}

/// The state of a text guard that is not derived from the principal and the policy: the
/// conversation's pseudonyms (token → original value and its type).
public struct GuardTransfer: Sendable, Codable, Hashable {
    public struct Pseudonym: Sendable, Codable, Hashable {
        public var value: String
        public var type: String
        public init(value: String, type: String) {
            self.value = value
            self.type = type
        }
    }

    public var pseudonyms: [String: Pseudonym]

    public init(pseudonyms: [String: Pseudonym] = [:]) {
        self.pseudonyms = pseudonyms
    }
}

/// What a text guard did: instruction-like passages removed from evidence, values masked by type.
public struct GuardActivity: Sendable, Codable, Hashable {
    public var removedInstructions: Int
    public var maskedCounts: [String: Int]

    public init(removedInstructions: Int = 0, maskedCounts: [String: Int] = [:]) {
        self.removedInstructions = removedInstructions
        self.maskedCounts = maskedCounts
    }
}
