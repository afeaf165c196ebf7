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

    @Test func plainTextTablesAndHardWrappedSentencesAreReadWhole() {
        let text = """
            KEY HANDOVER
            ============
            Keys are handed over at the gate lodge; a lost key must be reported to
            facilities within two hours of noticing.

              Key         | Held by          | Spare kept at
              ------------+------------------+--------------
              Gate        | Security desk    | Site office
              Archive     | Records officer  | Head office safe

            Next heading line without a full stop
            Another Capitalised line
            """
        let sentences = FactExtractor.sentences(in: text)
        #expect(sentences.contains("Keys are handed over at the gate lodge; a lost key must be reported to facilities within two hours of noticing."))
        #expect(sentences.contains("Key: Archive; Held by: Records officer; Spare kept at: Head office safe"))
        #expect(!sentences.contains { $0.contains("====") || $0.contains("----") || $0.contains("KEY HANDOVER") })
        // A capitalised line starts a sentence of its own; a `key: value` record line is never joined.
        #expect(sentences.contains("Another Capitalised line"))
        let records = FactExtractor.sentences(in: "lane_code: RTM-GDN; express_days: 2; notes: twice weekly\nlane_code: RTM-MIL; express_days: 3; notes: daily")
        #expect(records.count == 2)
    }

    @Test func aListItemIsReadUnderItsLeadInAndAFullyNamedRowKeyWins() {
        let text = """
            Members can borrow tools for longer with the **Workshop Pass**:

            - Loan period: 21 days per tool.
            - Deposit: EUR 40 per tool.

            Free loans for students are limited to 7 days per tool.
            """
        let evidence = [Evidence(chunkID: "L#0", source: SourceRef(id: "L", title: "Library rules", section: nil), text: text, score: 1, subQuestion: "")]
        let ranked = FactExtractor().candidates(for: "How long can members borrow a tool with the Workshop Pass?", evidence: evidence, reasoning: nil)
        #expect(ranked.first?.text == "Loan period: 21 days per tool.")
        #expect(FactExtractor.leadIns(in: text)["Loan period: 21 days per tool."] == "Members can borrow tools for longer with the Workshop Pass:")

        let table = "| Role | Bonus |\n|---|---|\n| Senior Desk Clerk | 12% |\n| Desk Clerk | 8% |"
        let rows = [Evidence(chunkID: "B#0", source: SourceRef(id: "B", title: "Bonus plan", section: nil), text: table, score: 1, subQuestion: "")]
        #expect(FactExtractor().candidates(for: "What bonus do Desk Clerks get?", evidence: rows, reasoning: nil).first?.text == "Role: Desk Clerk; Bonus: 8%")
    }

    @Test func aDocumentsSentenceAboutItselfAndAColonLeadInAreNoAnswers() {
        // Our own bulletin: its purpose sentence shares the question's words, its content answers.
        let text = """
            This monthly bulletin summarises the depot's deliveries, complaints and anything unusual.

            - 2 unusual deliveries were refused at the gate (wrong seals).

            The refusal letter is reproduced below so that drivers recognise the pattern:

            Drivers must report broken seals to the depot office before unloading.
            """
        let evidence = [Evidence(chunkID: "BUL#0", source: SourceRef(id: "BUL", title: "Depot bulletin, March", section: nil),
                                 text: text, score: 1, subQuestion: "")]
        let extractor = FactExtractor()
        let unusual = extractor.candidates(for: "Was there anything unusual in the March depot bulletin?", evidence: evidence, reasoning: nil)
        #expect(unusual.first?.text.hasPrefix("2 unusual deliveries") == true, "\(unusual.map(\.text))")
        let drivers = extractor.candidates(for: "What should drivers do about broken seals?", evidence: evidence, reasoning: nil)
        #expect(!drivers.contains { $0.text.hasSuffix(":") })
        // Asked what the bulletin is about, its sentence about itself is the answer.
        let about = extractor.candidates(for: "What is the March depot bulletin about?", evidence: evidence, reasoning: nil)
        #expect(about.first?.text.hasPrefix("This monthly bulletin summarises") == true, "\(about.map(\.text))")
    }

    @Test(arguments: [
        ("This weekly digest summarises the e-mails of the week.", true),
        ("This procedure explains how claims are paid.", true),
        ("This policy applies to all employees.", false),
        ("This plan applies from 1 April 2025.", false),
        ("The digest summarises the week.", false),
    ])
    func sentencesAboutTheirDocument(sentence: String, expected: Bool) {
        #expect(FactExtractor.describesItsDocument(sentence) == expected)
    }

    @Test func aBareNumberTakesTheUnitItsHeaderNames() {
        let text = "| Reminder | Days after due date | Fee (EUR) | Grace (business days) |\n|---|---|---|---|\n| Second | 30 | 25 | 5 |"
        #expect(FactExtractor.sentences(in: text) == ["Reminder: Second; Days after due date: 30 days; Fee (EUR): 25; Grace (business days): 5 business days"])
    }

    @Test func aBareNumberTakesTheUnitItsSectionNamesWhenItsHeaderNamesNone() {
        let table = "| Route | Fast | Slow |\n|---|---|---|\n| Utrecht - Lodz | 2 | 6 |\n| 4 | 1 | 3 |"
        let section = "Courier terms > 3. Delivery times (working days)"
        #expect(FactExtractor.bracketedUnit(section) == "working days")
        #expect(FactExtractor.bracketedUnit("Courier terms > 3. Delivery fees (EUR)") == nil)
        #expect(FactExtractor.bracketedUnit(nil) == nil)
        let rows = FactExtractor.sentences(FactExtractor.logicalLines(table), sectionUnit: FactExtractor.bracketedUnit(section))
        // The row key (first column) is a name, not a quantity: it keeps its number bare.
        #expect(rows == ["Route: Utrecht - Lodz; Fast: 2 working days; Slow: 6 working days", "Route: 4; Fast: 1 working days; Slow: 3 working days"])
        // A header's own unit wins over the section's.
        #expect(FactExtractor.withUnit("30", from: "Notice (months)", otherwise: "days") == "30 months")
        // The ranking reads the unit from the passage's section.
        let evidence = [Evidence(chunkID: "C#0", source: SourceRef(id: "C", title: "Courier terms", section: section), text: table,
                                 score: 1, subQuestion: "")]
        let best = FactExtractor().candidates(for: "How long does Slow delivery take from Utrecht to Lodz?", evidence: evidence, reasoning: nil).first
        #expect(best?.text.contains("Slow: 6 working days") == true)
    }

    @Test func aFollowUpOfAFollowUpCarriesTheQuestionThatStoodAlone() {
        let earlier = ["Which depot ships parcel 88412?", "Why is it late?"]
        #expect(FollowUp.contextualize("When will it arrive?", previous: earlier)
                == "Which depot ships parcel 88412? Why is it late? When will it arrive?")
        // One follow-up needs only the question before it; a standalone question needs none.
        #expect(FollowUp.contextualize("And the fee?", previous: ["Who approves refunds?"]) == "Who approves refunds? And the fee?")
        #expect(FollowUp.contextualize("Which depot ships parcel 88412?", previous: earlier) == "Which depot ships parcel 88412?")
        // After several follow-ups: the question that stood alone and the latest one.
        let long = ["Who runs the Lodz depot?", "And its phone?", "And its fax?", "And its e-mail?"]
        #expect(FollowUp.contextualize("And its address?", previous: long) == "Who runs the Lodz depot? And its e-mail? And its address?")
        // Only follow-ups within reach: nothing stood alone, so the previous question alone.
        #expect(FollowUp.contextualize("And its address?", previous: ["And its phone?", "And its fax?"]) == "And its fax? And its address?")
    }

    @Test func longLinesAreNotSplitAtADecimalPoint() {
        let line = "Because a single repayment would cause hardship, a plan of 4 monthly instalments of EUR 212.45 was agreed with the employee in writing. "
            + "The first instalment is due in October, the last in January, and each is deducted from the net salary of that month by payroll."
        let sentences = FactExtractor.sentences(in: line)
        #expect(sentences.first?.contains("EUR 212.45 was agreed") == true)
    }

    @Test func durationsWrittenInWordsAreDurations() {
        #expect(FactExtractor.matches("Claims are settled within one month of receipt.", form: .duration))
        #expect(FactExtractor.matches("It may be extended by up to two further months.", form: .duration))
        #expect(FactExtractor.matches("Renew the badge within a year.", form: .duration))
        #expect(!FactExtractor.matches("Claims are settled by a clerk at the desk.", form: .duration))
        #expect(!FactExtractor.matches("One of the team signs a form each day.", form: .duration))  // no unit right after a number word
        #expect(FactExtractor.matches("Loan period: 21 days per tool.", form: .duration))
        #expect(!FactExtractor.matches("Deposit: EUR 40 per tool.", form: .duration))  // a number, but no unit of time
    }

    @Test func aSummaryQuestionTakesTheDocumentsOwnSummary() {
        let text = """
            QUARTERLY DEPOT REVIEW - Q2
            Prepared by the depot office for the regional meeting.

            SUMMARY
            - 41 inbound trailers in Q2, 6 fewer than in Q1.
            - Two forklift incidents, both without injury.

            DETAILS
            The Q2 review covers every trailer received at the depot in the quarter.
            """
        let evidence = [Evidence(chunkID: "D#0", source: SourceRef(id: "D", title: "Quarterly depot review Q2", section: nil),
                                 text: text, score: 2, subQuestion: "")]
        let ranked = FactExtractor().candidates(for: "Give me a short summary of the Q2 depot review.", evidence: evidence, reasoning: nil)
        #expect(ranked.first?.text.hasPrefix("41 inbound trailers") == true || ranked.first?.text.hasPrefix("Two forklift") == true)
        #expect(FactExtractor.summarySentences(in: text).count == 2)
        // Without the word the summary has no precedence.
        let plain = FactExtractor().candidates(for: "Which trailers does the Q2 depot review cover?", evidence: evidence, reasoning: nil)
        #expect(plain.first?.text.hasPrefix("The Q2 review covers") == true)
    }

    @Test func aLabelledNameBridgesToTheFactAboutThatName() throws {
        let rota = "Night: 3; Lead: Ana Voss; Backup: Ben Okafor. [1]"
        #expect(SlotBridge.names(in: rota, labelledBy: "Who is the backup that night?") == ["Ben Okafor"])
        #expect(SlotBridge.names(in: rota, labelledBy: "Which night is it?").isEmpty)  // "Night: 3" is no name
        #expect(SlotBridge.names(in: rota, labelledBy: "Is Ben Okafor the backup?").isEmpty)  // already named
        #expect(SlotBridge.secondPart(of: "Who leads night 3, and what is their desk phone?") == "what is their desk phone?")
        #expect(SlotBridge.secondPart(of: "Who leads nights and weekends?") == nil)

        let table = """
            | Night | Lead | Backup |
            |---|---|---|
            | 3 | Ana Voss | Ben Okafor |
            | 4 | Ben Okafor | Cas Reyes |

            | Name | Desk phone |
            |---|---|
            | Ana Voss | 4410 |
            | Ben Okafor | 4420 |
            """
        let evidence = [Evidence(chunkID: "R#0", source: SourceRef(id: "R", title: "Night rota", section: nil), text: table, score: 2, subQuestion: "")]
        let extractor = FactExtractor()
        // Within one question: the lead of night 3 is named by the first fact; their phone is the bridge.
        let question = "Who is the lead on night 3, and what is their desk phone?"
        let top = try #require(extractor.candidates(for: question, evidence: evidence, reasoning: nil).first)
        #expect(top.text.contains("Lead: Ana Voss"))
        let within = try #require(ValidatorAgent.bridge(WorkflowState(question: question), top: top, evidence: evidence, extractor: extractor))
        #expect(within.fact.text == "Name: Ana Voss; Desk phone: 4410" && !within.carried)
        // Across turns: "the backup's" names the previous answer's Backup field.
        let followUp = WorkflowState(question: "What is the backup's desk phone?",
                                     history: [.user("Who is the backup on night 3?"), .assistant(rota)])
        let carried = try #require(ValidatorAgent.bridge(followUp, top: nil, evidence: evidence, extractor: extractor))
        #expect(carried.fact.text == "Name: Ben Okafor; Desk phone: 4420" && carried.carried)
        // Asking who fills a field asks for the name the previous answer states: nothing is carried.
        let who = WorkflowState(question: "Who is the backup that night?", history: [.user("Who leads night 3?"), .assistant(rota)])
        #expect(who.carriedNames.isEmpty && who.carriedQuery == nil)
        #expect(ValidatorAgent.bridge(WorkflowState(question: "What is the desk phone of reception?"), top: top,
                                      evidence: evidence, extractor: extractor) == nil)
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
        // A plural name is named by its singular.
        #expect(ValidatorAgent.uncoveredAnchors(of: "What is the pay band in Utrechts?", by: facts, evidence: evidence).isEmpty)
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

    @Test func countAndMoneyQuestionsNeedAFactOfThatForm() {
        func candidates(_ text: String, question: String, section: String = "Visiting us") -> [FactExtractor.Candidate] {
            let evidence = Evidence(chunkID: "V#0", source: SourceRef(id: "V", title: "Sites", section: section), text: text, score: 1, subQuestion: "")
            return FactExtractor().candidates(for: question, evidence: [evidence], reasoning: nil)
        }
        #expect(ValidatorAgent.countedNoun("How many loading bays are there at the Leeds depot?") == "bays")
        #expect(ValidatorAgent.countedNoun("For how many weeks is the badge valid?") == "weeks")
        #expect(ValidatorAgent.countedNoun("How many of the staff were hired in 2023?") == nil)
        #expect(ValidatorAgent.countedNoun("What is the badge fee?") == nil)
        let bays = "How many loading bays are there at the Leeds depot?"
        let list = "- Leeds: 10 minutes from the ring road; the depot gate is on Mill Lane.\n- Hull: 14 loading bays, two with ramps."
        // Leeds is named but its bays are not counted; Hull's bays are not Leeds's.
        let facts = candidates(list, question: bays)
        #expect(ValidatorAgent.unmetForm(of: bays, by: facts, evidence: facts.map(\.evidence)) == "no fact states a number of bays")
        // A record is keyed by its field labels, not by a name.
        let record = candidates("| Code | Depot | Loading bays |\n|---|---|---|\n| LDS | Leeds | 12 |\n| HUL | Hull | 14 |", question: bays)
        #expect(ValidatorAgent.unmetForm(of: bays, by: record, evidence: record.map(\.evidence)) == nil)
        let counted = candidates("- Leeds: 12 loading bays and a staff car park.", question: bays)
        #expect(ValidatorAgent.unmetForm(of: bays, by: counted, evidence: counted.map(\.evidence)) == nil)
        // The counted noun may be in the heading, the number spelled out.
        let headed = candidates("The Leeds depot has twelve, all with dock levellers.", question: bays, section: "Loading bays")
        #expect(ValidatorAgent.unmetForm(of: bays, by: headed, evidence: headed.map(\.evidence)) == nil)
        let bonus = "How much is the summer bonus?"
        let dates = candidates("The summer bonus is paid with the June payroll on 25 June.", question: bonus)
        #expect(ValidatorAgent.unmetForm(of: bonus, by: dates, evidence: dates.map(\.evidence)) == "no fact states an amount of money")
        let paid = candidates("The summer bonus is EUR 400 for full-time staff.", question: bonus)
        #expect(ValidatorAgent.unmetForm(of: bonus, by: paid, evidence: paid.map(\.evidence)) == nil)
        // "How much" asking for time is not asking for money; two-part questions are not gated.
        #expect(!ValidatorAgent.asksForMoney("How much notice must I give?"))
        #expect(!ValidatorAgent.asksForMoney("By how much can the review deadline be extended?"))
        #expect(ValidatorAgent.asksForMoney("How much is the night shift allowance?"))
        #expect(ValidatorAgent.unmetForm(of: "How much is the summer bonus, and when is it paid?", by: dates,
                                         evidence: dates.map(\.evidence)) == nil)
    }

    @Test func aWithheldDocumentRefusesOnlyWhenItCoversMoreThanTheReadableFacts() {
        let sheet = WithheldSource(documentID: "S", department: "ops", coverage: 0.7)
        // The usual rule: 60 % of the question, and a quarter more than the best readable fact.
        #expect(ValidatorAgent.restricted([sheet], bestReadableCoverage: 0.5) == nil)
        #expect(ValidatorAgent.restricted([sheet], bestReadableCoverage: 0.4) == [sheet])
        // When the readable facts cannot give the kind of answer asked for, any margin will do, but
        // a withheld document covering no more than they do ("Christmas" and "2025" in both) does not.
        #expect(ValidatorAgent.restricted([sheet], bestReadableCoverage: 0.5, margin: 0.01) == [sheet])
        #expect(ValidatorAgent.restricted([sheet], bestReadableCoverage: 0.7, margin: 0.01) == nil)
    }

    @Test func contactDataAskedForMustBeStated() {
        let evidence = Evidence(chunkID: "R#0", source: SourceRef(id: "R", title: "Rota", section: nil),
                                text: "Every night has a lead and a backup engineer.", score: 1, subQuestion: "")
        let facts = FactExtractor().candidates(for: "What is the e-mail address of the night lead?", evidence: [evidence], reasoning: nil)
        #expect(ValidatorAgent.unmetForm(of: "What is the e-mail address of the night lead?", by: facts, evidence: [evidence])
                == "no fact states an e-mail address")
        #expect(ValidatorAgent.unmetForm(of: "What is the phone number of the night lead?", by: facts, evidence: [evidence])
                == "no fact states a phone number")
        // Words that are not a request for contact data do not count.
        #expect(ValidatorAgent.unmetForm(of: "How do I install the mobile app for the night desk?", by: facts, evidence: [evidence]) == nil)
        #expect(ValidatorAgent.containsPhoneNumber("Mobile: +44 7700 900123"))
        #expect(ValidatorAgent.containsPhoneNumber("call 010-555 0199"))
        #expect(!ValidatorAgent.containsPhoneNumber("Shift start: 10 Nov 2025, 10:00"))
    }

    @Test func aMaskedValueTheQuestionAsksForIsFoundEvenWhenItMatchesWeakly() {
        let note = Evidence(chunkID: "N#0", source: SourceRef(id: "N", title: "Case note - Pat Reyes", section: "Employee"),
                            text: "| Field | Value |\n|---|---|\n| Salary account | [restricted] |\n| Grade | G4 |", score: 1, subQuestion: "")
        let question = "What is the bank account (IBAN) in the case note on Pat Reyes?"
        #expect(ValidatorAgent.maskedValue(askedBy: question, query: question, evidence: [note], extractor: FactExtractor())?.text
                == "Field: Salary account; Value: [restricted]")
        // Not for a question that asks for no personal data, nor for another case's note.
        #expect(ValidatorAgent.maskedValue(askedBy: "What grade is recorded in the case note on Pat Reyes?", query: "grade case note Pat Reyes",
                                           evidence: [note], extractor: FactExtractor()) == nil)
        #expect(ValidatorAgent.maskedValue(askedBy: "What is the bank account (IBAN) in the case note on Sam Ortiz?", query: question,
                                           evidence: [note], extractor: FactExtractor()) == nil)
    }

    @Test func anAcronymIsNamedByTheDocumentThatSpellsItOut() {
        let defined = Evidence(chunkID: "L#0", source: SourceRef(id: "L", title: "Records requests", section: nil),
                               text: "A request for a copy of one's records (RCR) is answered within one month.", score: 1, subQuestion: "")
        let rule = Evidence(chunkID: "L#1", source: SourceRef(id: "L", title: "Records requests", section: "Deadlines"),
                            text: "The deadline may be extended by two further months.", score: 1, subQuestion: "")
        let other = Evidence(chunkID: "M#0", source: SourceRef(id: "M", title: "Meetings", section: nil),
                             text: "Meetings end on time.", score: 1, subQuestion: "")
        let fact = FactExtractor.Candidate(text: "The deadline may be extended by two further months.", evidence: rule, score: 1, coverage: 0.5)
        #expect(ValidatorAgent.uncoveredAnchors(of: "How far can an RCR deadline be extended?", by: [fact],
                                                evidence: [defined, rule, other, other]).isEmpty)
        // Not when the acronym is not the facts' document's.
        let elsewhere = FactExtractor.Candidate(text: "Meetings end on time.", evidence: other, score: 1, coverage: 0.5)
        #expect(ValidatorAgent.uncoveredAnchors(of: "How far can an RCR deadline be extended?", by: [elsewhere],
                                                evidence: [defined, rule, other, other]) == ["rcr"])
    }

    @Test func aRecordsFieldNameMatchesOnlyAsAWhole() {
        let terms = TermSet("What is the dress code for the Leeds depot?")
        #expect(FactExtractor.withoutUnaskedFieldNames("depot: Leeds; site_code: LDS; region_name: North", query: terms)
                == "depot: Leeds;  : LDS;  : North")
        #expect(FactExtractor.withoutUnaskedFieldNames("depot_code: LDS", query: TermSet("What is the depot code of Leeds?"))
                == "depot_code: LDS")
    }

    @Test func theSecondPartOfATwoPartQuestionGetsItsOwnFact() {
        let text = "The weekly report lists every parcel that arrived damaged and anything unusual.\n"
            + "Crews must photograph a damaged parcel before it is moved."
        let evidence = [Evidence(chunkID: "R#0", source: SourceRef(id: "R", title: "Weekly report", section: nil), text: text, score: 1, subQuestion: "")]
        let question = "Was anything unusual in the weekly report, and what must crews do about damaged parcels?"
        #expect(ValidatorAgent.secondPartFact(of: question, evidence: evidence, extractor: FactExtractor())?.text
                == "Crews must photograph a damaged parcel before it is moved.")
        #expect(ValidatorAgent.secondPartFact(of: "Was anything unusual in the weekly report?", evidence: evidence, extractor: FactExtractor()) == nil)
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

    @Test(arguments: [
        ("By how much can the landlord extend the notice period?", Reasoning.AnswerForm.duration),
        ("How much longer does a refund take in December?", .duration),
        ("How much does a parking permit cost?", .money),
        ("How much is the deposit for a locker?", .money),
    ])
    func howMuchAsksForMoneyUnlessItAsksHowMuchLonger(question: String, form: Reasoning.AnswerForm) {
        #expect(ReasonerAgent.ruleBased(question).answerForm == form)
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

/// Ranking of list items and bounds, and amounts in words, on cases of our own.
@Suite struct FactRankingTests {
    static let parking = """
        Staff can park at the depot free of charge with a **Park Pass** permit:

        - Fee: **EUR 0**, renewed every January.
        - Maximum parking time: **14 hours** per day.
        - Must be shown behind the windscreen at all times.
        - Night-shift drivers may park with a Park Pass for up to 16 hours per day, Weekend drivers up to 10 hours (FLEET-9).
        """

    static func ranked(_ question: String) -> [String] {
        let evidence = [Evidence(chunkID: "P#0", source: SourceRef(id: "FAC-9", title: "Depot facilities", section: "Depot facilities > Parking"),
                                 text: parking, score: 1, subQuestion: "")]
        return FactExtractor().candidates(for: question, evidence: evidence, reasoning: ReasonerAgent.ruleBased(question)).map(\.text)
    }

    @Test(arguments: [
        "Up to how many hours a day can staff park with a Park Pass?",
        "What's the Park Pass cap on parking time per day?",
        "What is the maximum parking time per day with a Park Pass?",
    ])
    func theUnqualifiedBoundOutranksAnItemForNamedGroups(question: String) {
        #expect(Self.ranked(question).first == "Maximum parking time: 14 hours per day.")
    }

    @Test func anItemThatOnlyRepeatsItsLeadInGainsNothing() {
        // Every item states the lead-in ("Staff can park … with a Park Pass"); the one that says
        // "Park Pass" again ranks no higher for it.
        let ranked = Self.ranked("How long can staff park per day with a Park Pass?")
        #expect(ranked.first == "Maximum parking time: 14 hours per day.")
    }

    @Test func boundQuestionsAndStatements() {
        #expect(FactExtractor.asksForBound("What is the cap on hotel costs?"))
        #expect(FactExtractor.asksForBound("Up to what amount can I claim?"))
        #expect(!FactExtractor.asksForBound("What is the capital of the region?"))
        #expect(FactExtractor.boundWeight("Claims must not exceed EUR 200.") == 1)
        #expect(FactExtractor.boundWeight("Claims of up to EUR 200 are paid at once.") == 0.5)
        #expect(FactExtractor.boundWeight("Claims are paid monthly.") == 0)
    }

    @Test func scaledAmountsAreWrittenInDigits() {
        #expect(Quantities.scaledAmountsInDigits("a lease above three million euros") == ["3,000,000"])
        #expect(Quantities.scaledAmountsInDigits("a grant of EUR 1.5 million") == ["1,500,000"])
        #expect(Quantities.scaledAmountsInDigits("forty thousand? no: 40 thousand pallets") == ["40,000"])
        #expect(Quantities.scaledAmountsInDigits("a budget of EUR 60,000 for two years").isEmpty)
    }
}
