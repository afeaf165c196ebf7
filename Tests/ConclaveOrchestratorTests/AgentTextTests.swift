@testable import ConclaveAgents
import ConclaveCore
import ConclaveKnowledge
import Testing

/// The agents' text rules, on cases of our own.
@Suite struct AgentTextTests {
    @Test(arguments: [
        ("And for contractors?", true),
        ("What about the Rotterdam office?", true),
        ("How much does it cost per month for part-time staff?", true),
        ("Only three words", true),
        ("How many days of annual leave do full-time employees get?", false),
        ("Which documents describe the expense approval thresholds?", false),
        ("Wat kost één fiets per maand bij Meridian?", false),
    ])
    func followUpDetection(question: String, expected: Bool) {
        #expect(FollowUp.isFollowUp(question) == expected)
    }

    @Test func sentencesSplitsListsTablesAndLongLines() {
        let text = """
            ## Allowances
            - **Bicycle** allowance: EUR 35 per month.
            | Grade | Hotel cap |
            |---|:---:|
            | G5 | **EUR 180** |
            | G6 |  |
            short line
            \(String(repeating: "This clause keeps going with more words. ", count: 8))
            """
        let sentences = FactExtractor.sentences(in: text)
        #expect(sentences.contains("Bicycle allowance: EUR 35 per month."))
        #expect(sentences.contains("Grade: G5; Hotel cap: EUR 180"))
        #expect(!sentences.contains { $0.contains("**") || $0.hasPrefix("- ") || $0.contains("---") })
        #expect(!sentences.contains("short line"))
        #expect(!sentences.contains { $0.contains("G6") })  // "Grade: G6" is shorter than a fact
        let pieces = sentences.filter { $0.hasPrefix("This clause") }
        #expect(pieces.count >= 4)
        #expect(pieces.allSatisfy { $0.utf8.count <= 240 })
    }

    @Test func aWideTableRowBecomesOneFactPerCellKeyedByItsFirstCell() {
        let long = String(repeating: "a system is down for all users and nothing can be processed; ", count: 4)
        let text = """
            | Level | Definition | Respond within | Resolve within |
            |---|---|---|---|
            | L1 | \(long) | 10 minutes | 2 hours |
            """
        let sentences = FactExtractor.sentences(in: text)
        #expect(sentences.contains("Level: L1; Respond within: 10 minutes"))
        #expect(sentences.contains("Level: L1; Resolve within: 2 hours"))
        #expect(sentences.allSatisfy { $0.hasPrefix("Level: L1; ") })
    }

    @Test func aLongKeyValueRecordBecomesOneFactPerFieldKeyedByItsFirstField() {
        let notes = String(repeating: "kept in the archive room and reviewed by the records officer every quarter ", count: 3)
        let line = "record_type: Visitor badges; retention_period: 3 months; owner: Facilities; notes: \(notes)"
        let sentences = FactExtractor.sentences(in: line)
        #expect(sentences.contains("record_type: Visitor badges; retention_period: 3 months"))
        #expect(sentences.contains("record_type: Visitor badges; owner: Facilities"))
        #expect(sentences.allSatisfy { $0.hasPrefix("record_type: Visitor badges; ") })
        // Prose that merely has semicolons is split at sentence boundaries as before.
        let prose = String(repeating: "The badge is returned at reception; lost badges are reported at once. ", count: 5)
        #expect(!FactExtractor.sentences(in: prose).contains { $0.hasPrefix("The badge is returned at reception; lost") && $0.count > 240 })
    }

    @Test func aFollowUpsOwnWordsOutweighTheWordsItInherits() {
        let evidence = [
            Evidence(chunkID: "T#0", source: SourceRef(id: "T", title: "Transit times", section: "Lanes"),
                     text: "Lane: Utrecht - Lodz; Standard: 3 business days.\nLane: Utrecht - Lodz; Economy: 5 business days.",
                     score: 3, subQuestion: ""),
        ]
        let query = "What is the Standard transit time from Utrecht to Lodz? And with Economy?"
        let plain = FactExtractor().candidates(for: query, evidence: evidence, reasoning: nil)
        let emphasised = FactExtractor().candidates(for: query, evidence: evidence, reasoning: nil,
                                                    emphasis: TermSet("And with Economy?"))
        #expect(plain.first?.text.contains("Standard") == true)
        #expect(emphasised.first?.text.contains("Economy") == true)
    }

    @Test func anchorsTheFactsDoNotNameAreReported() {
        func candidate(_ text: String, title: String = "Pay bands", section: String = "Bands") -> FactExtractor.Candidate {
            let evidence = Evidence(chunkID: "P#0", source: SourceRef(id: "P", title: title, section: section), text: text, score: 1, subQuestion: "")
            return FactExtractor.Candidate(text: text, evidence: evidence, score: 1, coverage: 0.5)
        }
        let facts = [candidate("Band B4: EUR 40,000 - 52,000 in Utrecht.")]
        let evidence = facts.map(\.evidence)
        #expect(ValidatorAgent.uncoveredAnchors(of: "What is the pay band for B4 in Utrecht?", by: facts, evidence: evidence).isEmpty)
        #expect(ValidatorAgent.uncoveredAnchors(of: "What is the pay band for B9?", by: facts, evidence: evidence) == ["b9"])
        #expect(ValidatorAgent.uncoveredAnchors(of: "What is the pay band in Vienna?", by: facts, evidence: evidence) == ["vienna"])
        // A record number is an anchor; an amount is not.
        #expect(ValidatorAgent.uncoveredAnchors(of: "Which band has employee number 4471?", by: facts, evidence: evidence) == ["4471"])
        #expect(ValidatorAgent.uncoveredAnchors(of: "Which band pays 45,000?", by: facts, evidence: evidence).isEmpty)
        // A sentence's first word is not an anchor, and the section heading counts as named.
        #expect(ValidatorAgent.uncoveredAnchors(of: "Bands? Which B4 band applies?", by: facts, evidence: evidence).isEmpty)
        // A name in half the passages or more (the company's own) is not counted.
        let passages = [candidate("Band B4 is paid EUR 40,000."), candidate("Acme closes its offices at 18:00.")]
        #expect(ValidatorAgent.uncoveredAnchors(of: "What does Acme pay for B4?", by: [passages[0]], evidence: passages.map(\.evidence)).isEmpty)
        #expect(ValidatorAgent.uncoveredAnchors(of: "What does Acme pay for B4?", by: [passages[0]],
                                                evidence: [passages[0].evidence, facts[0].evidence, facts[0].evidence]) == ["acme"])
    }

    @Test func candidatesRankTheSentenceThatAnswers() {
        let evidence = [
            Evidence(chunkID: "HR-1#0", source: SourceRef(id: "HR-1", title: "Leave policy", section: "Annual leave"),
                     text: "Full-time employees receive 27 days of annual leave.\nThe office closes at 18:00 on Fridays.",
                     score: 3, subQuestion: ""),
        ]
        let reasoning = Reasoning(answerForm: .number, entities: [], computation: .none)
        let candidates = FactExtractor().candidates(for: "How many days of annual leave do employees get?",
                                                    evidence: evidence, reasoning: reasoning)
        #expect(candidates.first?.text == "Full-time employees receive 27 days of annual leave.")
        #expect(!candidates.contains { $0.text.contains("Fridays") })
        #expect((candidates.first?.coverage ?? 0) > 0.9)
    }

    @Test func ruleBasedEntitiesAreCapitalisedWordsAndCodes() {
        let reasoning = ReasonerAgent.ruleBased("What is the hotel cap for G5 staff in Zürich, per the Travel Policy?")
        #expect(reasoning.entities == ["What", "G5", "Zürich", "Travel"])
    }

    @Test func timeOrderedIDsSortByCreation() async throws {
        let first = RandomID.makeTimeOrdered()
        try await Task.sleep(for: .milliseconds(3))
        let second = RandomID.makeTimeOrdered()
        #expect(first.count == 24 && second.count == 24)
        #expect(first < second)
        #expect(first != RandomID.makeTimeOrdered())
    }
}
