import ConclaveAgents
import ConclaveCore
import Crypto
import Foundation
import Synchronization

/// The `cached` data-access mode: answers kept per normalised question and access scope, so a
/// repeated question skips the agents. It lives at the gateway (a hit runs no workflow step) and
/// is keyed by everything that decides what a principal may see: workflow, tenant, roles,
/// department, governance mode, the other data-access modes, and the document store's generation,
/// so a re-ingest invalidates every entry. Entries also expire after a time to live, since
/// database and API records change without an ingest.
public final class AnswerCache: Sendable {
    private struct Entry {
        var answer: Answer
        var stored: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int
    private let lifetime: Duration

    /// Creates a cache of at most `capacity` answers, each kept for `lifetime`.
    public init(capacity: Int = 1000, lifetime: Duration = .seconds(600)) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
    }

    /// The key of a question asked by `principal` through `workflow`.
    public static func key(question: String, workflow: String, principal: Principal, mode: GovernanceConfiguration.Mode,
                           dataAccess: Set<DataAccessMode>, generation: Int) -> String {
        let normalised = question.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).joined(separator: " ")
        let parts = [workflow, principal.tenant, principal.roles.sorted().joined(separator: ","), principal.department ?? "",
                     mode.rawValue, dataAccess.subtracting([.cached]).map(\.rawValue).sorted().joined(separator: ","),
                     String(generation), normalised]
        return SHA256.hash(data: Data(parts.joined(separator: "\u{1F}").utf8)).hexEncoded
    }

    /// The cached answer for `key`, if it is still fresh.
    public func answer(for key: String) -> Answer? {
        entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard ContinuousClock.now - entry.stored < lifetime else {
                entries[key] = nil
                return nil
            }
            return entry.answer
        }
    }

    /// Stores `answer`; the oldest entries go first when the cache is full.
    public func store(_ answer: Answer, for key: String) {
        entries.withLock { entries in
            if entries.count >= capacity, entries[key] == nil {
                let oldest = entries.sorted { $0.value.stored < $1.value.stored }.prefix(max(1, capacity / 10)).map(\.key)
                for old in oldest { entries[old] = nil }
            }
            entries[key] = Entry(answer: answer, stored: .now)
        }
    }

    /// Number of answers held.
    public var count: Int { entries.withLock { $0.count } }
}
