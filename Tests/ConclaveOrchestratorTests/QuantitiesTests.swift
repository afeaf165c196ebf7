import Testing
@testable import ConclaveAgents
import ConclaveCore
import ConclaveKnowledge

@Suite struct QuantitiesTests {
    @Test func amountsAreReadWithSeparatorsAndScalesButNotYearsOrIdentifiers() {
        #expect(Quantities.amounts(in: "Who signs off a lease worth EUR 80,000?") == [80_000])
        #expect(Quantities.amounts(in: "A client books 3,500 crates a year.") == [3_500])
        #expect(Quantities.amounts(in: "What about projects above three million euros?") == [3_000_000])
        #expect(Quantities.amounts(in: "And for 1.5 million?") == [1_500_000])
        #expect(Quantities.amounts(in: "What changed in 2024 for order 55731?").isEmpty)
        #expect(Quantities.amounts(in: "How many of the 12 drivers work nights?").isEmpty)  // too small to be a band's amount
        // A scaled amount that opens the text has no word before it (this read out of range).
        #expect(Quantities.amounts(in: "2 million euros: who approves that?") == [2_000_000])
        #expect(Quantities.scaledAmountsInDigits("Two million euros: who approves that?") == ["2,000,000"])
    }

    @Test func bandsAreReadFromTheFirstCellOfARow() {
        #expect(Quantities.band(ofRow: "Order value: EUR 10,000 - 49,999; Signed by: Team lead") == .init(lower: 10_000, upper: 49_999))
        #expect(Quantities.band(ofRow: "Crates per year: 1,000 to 4,999; Rebate: 3%") == .init(lower: 1_000, upper: 4_999))
        #expect(Quantities.band(ofRow: "Order value: Below EUR 10,000; Signed by: Anyone")?.contains(9_999) == true)
        #expect(Quantities.band(ofRow: "Order value: Below EUR 10,000; Signed by: Anyone")?.contains(10_000) == false)
        #expect(Quantities.band(ofRow: "Crates per year: 50,000 or more; Rebate: 9%")?.contains(1_000_000) == true)
        #expect(Quantities.band(ofRow: "Order value: EUR 1,000,000 and above; Signed by: Board")?.contains(1_000_000) == true)
        #expect(Quantities.band(ofRow: "Grade: G1 - G4; Limit: EUR 150") == nil)
        #expect(Quantities.band(ofRow: "The rebate is paid yearly") == nil)
    }

    @Test func theRowWhoseBandHoldsTheAskedAmountLeads() {
        let table = """
            | Order value | Signed by | Bids |
            |---|---|---|
            | Below EUR 10,000 | Team lead | 1 bid |
            | EUR 10,000 - 49,999 | Head of unit | 2 bids |
            | EUR 50,000 - 249,999 | Head of unit and treasurer | 3 bids |
            | EUR 250,000 or more | Management board | Open call |
            """
        let evidence = [Evidence(chunkID: "P#0", source: SourceRef(id: "P", title: "Purchasing rules", section: "Sign-off"),
                                 text: table, score: 2, subQuestion: "")]
        let question = "Who signs off a purchase of EUR 80,000 and how many bids are needed?"
        let ranked = FactExtractor().candidates(for: question, evidence: evidence, reasoning: nil,
                                                amounts: Quantities.amounts(in: question))
        #expect(ranked.first?.text.contains("50,000 - 249,999") == true)
        #expect(ranked.last?.text.contains("50,000 - 249,999") == false)
        // Without an amount the rows rank by shared words alone.
        let plain = FactExtractor().candidates(for: "Who signs off purchases?", evidence: evidence, reasoning: nil)
        #expect(plain.count == 4)
    }
}
