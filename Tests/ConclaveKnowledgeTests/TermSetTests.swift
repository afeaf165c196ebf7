import ConclaveKnowledge
import Testing

/// `TermSet` must mean exactly what the string-based term extraction means: the agents' overlap
/// scores moved from `Set<String>` to it for speed, not to change an answer.
@Suite struct TermSetTests {
    /// Reference: the string path it replaced.
    private func reference(_ text: String, stemmed: Bool = true, includeNumbers: Bool = true) -> Set<UInt64> {
        Set(QueryTerms.extract(from: text)
            .filter { includeNumbers || !$0.allSatisfy(\.isNumber) }
            .map { stemmed ? TermSet.stem($0) : $0 }
            .map(TextWords.hash))
    }

    @Test(arguments: [
        "How many days of annual leave do full-time employees get?",
        "The G5 hotel cap is EUR 180 per night; receipts are required within 30 days.",
        "Travelling, travelled, policies and studies: the stemming rules' edge cases (bus, ties).",
        "Ünïcode Straße — Café prices in Zürich, 12 €",
        "a I x 7 of the and",
        String(repeating: "supercalifragilistic", count: 5) + " words after a very long one",
        "",
    ])
    func matchesTheStringPath(text: String) {
        #expect(Set(TermSet(text).hashes) == reference(text))
        #expect(Set(TermSet(text, stemmed: false).hashes) == reference(text, stemmed: false))
        #expect(Set(TermSet(text, includeNumbers: false).hashes) == reference(text, includeNumbers: false))
    }

    @Test func hashesAreSortedAndUnique() {
        let set = TermSet("travel travels Travel trip trips TRIP")
        #expect(set.hashes == set.hashes.sorted())
        #expect(set.count == 2)  // travel, trip
    }

    @Test func setOperationsAgreeWithSetOfHashes() {
        let a = TermSet("annual leave days for employees in the Amsterdam office")
        let b = TermSet("employees receive 25 days of leave; contractors receive none")
        let sa = Set(a.hashes)
        let sb = Set(b.hashes)
        #expect(a.intersectionCount(b) == sa.intersection(sb).count)
        #expect(Set(a.intersection(b).hashes) == sa.intersection(sb))
        #expect(Set(a.subtracting(b).hashes) == sa.subtracting(sb))
        #expect(Set(a.union(b).hashes) == sa.union(sb))
        #expect(a.intersection(b).isSubset(of: a))
        #expect(!a.isSubset(of: b))
        #expect(a.isDisjoint(with: TermSet("quarterly revenue forecast")))
        #expect(TermSet.empty.isSubset(of: a))
    }

    @Test func stemming() {
        #expect(TermSet.stem("travelling") == "travell")
        #expect(TermSet.stem("policies") == "policy")
        #expect(TermSet.stem("days") == "days")  // too short to stem
        #expect(TermSet.stem("employees") == "employe")  // crude: "es" goes before "s"
        #expect(TermSet("travels").hashes == TermSet("travel").hashes)
        #expect(TermSet("policies").hashes == TermSet("policy").hashes)
        // A final "e" goes too, so a verb meets its past tense and a noun its plural.
        #expect(TermSet("acknowledged").hashes == TermSet("Acknowledge").hashes)
        #expect(TermSet("employees").hashes == TermSet("employee").hashes)
        #expect(TermSet("approved").hashes == TermSet("approve").hashes)
        #expect(TermSet.stem("date") == "date")  // too short to lose its "e"
    }
}
