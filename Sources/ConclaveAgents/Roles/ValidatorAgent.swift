import ConclaveCore
import ConclaveInference
import ConclaveKnowledge
import Foundation

/// Joins the retriever's evidence and the reasoner's analysis into checked facts.
///
/// Code proposes candidate sentences (relevant to the question, of the expected form); the model
/// gives a JSON-schema verdict choosing which candidates answer the question. The verdict is
/// bounded by code: the model can pick among candidates and decline, but cannot add a fact, and a
/// question none of whose candidates cover enough of it is reported as not answerable.
public struct ValidatorAgent: Agent {
    public var role: AgentRole { .validator }
    private let model: any ChatModel
    private let extractor = FactExtractor()
    /// Least share of the question's content words a fact (with its heading) must cover.
    private let minimumCoverage: Double

    private let prompt: AgentPrompts.RolePrompt

    /// Creates a validator using `model`, with `prompt`'s instructions and sampling where it sets them.
    public init(model: any ChatModel, minimumCoverage: Double = 0.25, prompt: AgentPrompts.RolePrompt = .init()) {
        self.model = model
        self.minimumCoverage = minimumCoverage
        self.prompt = prompt
    }

    struct Output: Decodable, Sendable {
        var answerable: Bool
        var facts: [Int]?
    }

    static let schema = """
        {"type":"object","properties":{"answerable":{"type":"boolean"},\
        "facts":{"type":"array","maxItems":3,"items":{"type":"integer","minimum":1,"maximum":8}}},\
        "required":["answerable","facts"],"additionalProperties":false}
        """

    static let instructions = """
        You check evidence before a question is answered. Given a question and numbered facts, say whether the \
        facts answer the question and which fact numbers do. Reply with JSON only, for example:
        {"answerable":true,"facts":[2]}
        """

    public func run(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        var result = try await validate(state, context: context)
        if case .validation(var validation) = result.output, validation.answerable {
            validation.unsupportedClaim = Self.unsupportedClaim(of: state.question, facts: validation.facts)
            if let claim = validation.unsupportedClaim { validation.rationale += "; no fact says \"\(claim)\"" }
            result.output = .validation(validation)
        }
        return result
    }

    /// The claim of a yes/no question in the perfect passive ("have the invoices been *waived*?",
    /// "has the request been approved?") when none of `facts` states it, or nil. Retrieved text that
    /// made the claim as an instruction has been removed before this point, so a claim only an
    /// injected message made is reported as unsupported rather than confirmed.
    static func unsupportedClaim(of question: String, facts: [ValidatedFact]) -> String? {
        let words = lowercaseWords(question)
        guard let first = words.first, ["have", "has", "had"].contains(first),
              let been = words.firstIndex(of: "been"), been + 1 < words.count else { return nil }
        let claim = words[been + 1]
        guard claim.count >= 4 else { return nil }
        let stated = TermSet(facts.map(\.text).joined(separator: " "))
        return TermSet(claim).isSubset(of: stated) ? nil : claim
    }

    private func validate(_ state: WorkflowState, context: AgentContext) async throws -> AgentResult {
        if state.inputRefusal != nil {
            return AgentResult(.validation(Validation(answerable: false, facts: [], rationale: "refused by an input rule")))
        }
        if let kind = state.plan?.conversational {
            return AgentResult(.validation(Validation(answerable: false, facts: [], rationale: "a conversational turn (\(kind.rawValue)), no question for the sources")))
        }
        let evidence = state.evidence ?? []
        // The key values of the records the question names (a customer's tier) rank the facts
        // keyed by them, as they widened the document search.
        let keys = RetrieverAgent.lookupKeys(evidence)
        let query = keys.isEmpty ? state.searchQuery : state.searchQuery + " " + keys.joined(separator: " ")
        // A follow-up's own words say what changed ("and with Economy?"): they weigh more than
        // the words it inherits from the previous question.
        let followUp = FollowUp.isFollowUp(state.question) && !state.previousQuestions.isEmpty
        let emphasis = followUp
            ? TermSet(state.question).subtracting(TermSet(state.previousQuestions.joined(separator: " "))) : .empty
        // The amount a follow-up names replaces the one it inherits ("what if it's EUR 150,000 instead?").
        var amounts = Quantities.amounts(in: state.question)
        if amounts.isEmpty { amounts = Quantities.amounts(in: state.contextualQuestion) }
        let candidates = extractor.candidates(for: query, evidence: evidence, reasoning: state.reasoning, limit: 6,
                                              emphasis: emphasis, amounts: amounts)
        // A fact must name something the question asks about besides its names: one that shares
        // only "Lyon" with "what is the dress code for the Lyon office?" says nothing about it.
        let asked = TermSet(query).subtracting(TermSet(Self.anchors(of: state.contextualQuestion).joined(separator: " ")))
        let strong = candidates.filter { candidate in
            candidate.coverage >= minimumCoverage && (asked.isEmpty || !candidate.matched.isDisjoint(with: asked))
        }
        let bestCoverage = strong.map(\.coverage).max() ?? 0
        if let restricted = Self.restricted(state.withheld, bestReadableCoverage: bestCoverage) {
            let validation = Validation(answerable: false, facts: [], rationale: "the answer lies in documents outside the principal's scope",
                                        withheld: restricted)
            return AgentResult(.validation(validation))
        }
        let records = evidence.filter { $0.isRecord && !$0.isLookup }
        if !records.isEmpty {
            // A connector's record answers the question its template was chosen for; document facts
            // join it only when the question asks for more than one thing.
            var facts = records.map { ValidatedFact(text: $0.text, source: $0.source, chunkID: $0.chunkID, isRecord: true) }
            if Self.asksSeveralThings(state.question) {
                facts += strong.filter { !$0.evidence.isRecord }.prefix(2)
                    .map { ValidatedFact(text: $0.text, source: $0.evidence.source, chunkID: $0.evidence.chunkID) }
            }
            return AgentResult(.validation(Validation(answerable: true, facts: facts, rationale: "answered by a governed query")))
        }
        if let masked = strong.prefix(3).first(where: { Self.asksForMaskedValue(state.question, best: $0) }) {
            // A best fact holds the asked-for personal data only in masked form: the answer is
            // restricted. Checked before lookups and anchors: a record the question names does not
            // make masked data an answer, and a masked value names nothing.
            return AgentResult(.validation(Self.maskedRefusal(masked)))
        }
        let lookups = evidence.filter(\.isLookup)
        if !lookups.isEmpty {
            // The records the question names, stated as they are, then the document facts their
            // keys led to (a customer's tier, then the tier's terms); the records alone when no
            // document adds to them ("which tier is X in?").
            var facts = lookups.map { ValidatedFact(text: $0.text, source: $0.source, chunkID: $0.chunkID, isRecord: true) }
            facts += strong.filter { !$0.evidence.isRecord }.prefix(2)
                .map { ValidatedFact(text: $0.text, source: $0.evidence.source, chunkID: $0.evidence.chunkID) }
            return AgentResult(.validation(Validation(answerable: true, facts: facts,
                                                      rationale: "records the question names, and the facts their keys lead to")))
        }
        let bridge = Self.bridge(state, top: strong.first, evidence: evidence, extractor: extractor)
        if strong.isEmpty, let bridge {
            let fact = ValidatedFact(text: bridge.fact.text, source: bridge.fact.evidence.source, chunkID: bridge.fact.evidence.chunkID)
            return AgentResult(.validation(Validation(answerable: true, facts: [fact], rationale: "the fact of a name carried from the previous answer")))
        }
        guard !strong.isEmpty else {
            let validation = Validation(answerable: false, facts: [],
                                        rationale: "no passage covers enough of the question", isFallback: false)
            return AgentResult(.validation(validation))
        }
        let missing = Self.uncoveredAnchors(of: state.contextualQuestion,
                                            by: Array(strong.prefix(3)), evidence: evidence)
        if !missing.isEmpty, let masked = Self.maskedValue(askedBy: state.question, query: query, evidence: evidence, extractor: extractor) {
            // The best facts do not answer, but a weaker one holds the asked-for personal data
            // masked ("Salary account: [restricted]" for "the IBAN recorded in case …"): the value
            // exists and this user may not see it, which is a refusal rather than "not found".
            return AgentResult(.validation(Self.maskedRefusal(masked)))
        }
        if !missing.isEmpty {
            let validation = Validation(answerable: false, facts: [],
                                        rationale: "no fact names \(missing.count) of the question's names or codes", isFallback: false)
            return AgentResult(.validation(validation))
        }
        if let unmet = Self.unmetForm(of: state.contextualQuestion, by: Array(strong.prefix(3)) + [bridge?.fact].compactMap { $0 },
                                      evidence: evidence) {
            // The readable facts cannot answer; a document outside the principal's scope that
            // covers most of the question, and more of it than they do, can: that is a refusal,
            // not "not found".
            if let restricted = Self.restricted(state.withheld, bestReadableCoverage: bestCoverage, margin: 0.01) {
                return AgentResult(.validation(Validation(answerable: false, facts: [], rationale: unmet + "; the answer lies outside the principal's scope",
                                                          withheld: restricted)))
            }
            let validation = Validation(answerable: false, facts: [], rationale: unmet, isFallback: false)
            return AgentResult(.validation(validation))
        }
        let numbered = strong.enumerated().map { "[\($0.offset + 1)] \($0.element.text)" }.joined(separator: "\n")
        let messages: [ChatMessage] = [
            .system(prompt.instructions ?? Self.instructions),
            .user("Question: \(state.question)\n\nFacts:\n\(numbered)"),
        ]
        let (output, usage) = try await StructuredOutput<Output>(schema: Self.schema, maxTokens: prompt.maxTokens ?? 40, temperature: prompt.temperature)
            .request(messages, model: model, context: context)
        var validation = Self.verdict(output, candidates: strong)
        if let bridge {
            // The bridged fact answers what the name stands for: first for a carried name, second
            // (after the fact that named it) for the second part of the question.
            let fact = ValidatedFact(text: bridge.fact.text, source: bridge.fact.evidence.source, chunkID: bridge.fact.evidence.chunkID)
            validation.facts.removeAll { $0 == fact }
            validation.facts.insert(fact, at: bridge.carried ? 0 : min(1, validation.facts.count))
            validation.facts = Array(validation.facts.prefix(3))
            validation.rationale += "; bridged through a name"
        } else if let part = Self.secondPartFact(of: state.question, evidence: evidence, extractor: extractor) {
            // A question that asks two things gets the best fact for its second part too, which
            // the whole question's ranking can leave out (its first part's words outnumber it).
            let fact = ValidatedFact(text: part.text, source: part.evidence.source, chunkID: part.evidence.chunkID)
            if !validation.facts.contains(fact) {
                validation.facts.insert(fact, at: min(1, validation.facts.count))
                validation.facts = Array(validation.facts.prefix(3))
                validation.rationale += "; with the best fact for the second part"
            }
        }
        return AgentResult(.validation(validation), usage: usage)
    }

    /// A second hop through a name: the best fact naming a person (or other named thing) that the
    /// question refers to through a labelled field, either of the previous answer ("what's the
    /// secondary's number?", `carried`) or of the best fact for the question's first part ("who is
    /// the primary …, and what is their number?"). Ranked by the rest of the question and the name.
    static func bridge(_ state: WorkflowState, top: FactExtractor.Candidate?, evidence: [Evidence],
                       extractor: FactExtractor) -> (fact: FactExtractor.Candidate, carried: Bool)? {
        var names = state.carriedNames
        var part = state.carriedQuery ?? state.question
        let carried = !names.isEmpty
        if names.isEmpty, let top, let second = SlotBridge.secondPart(of: state.question) {
            names = SlotBridge.names(in: top.text, labelledBy: state.question)
            part = second
        }
        guard !names.isEmpty else { return nil }
        let ranked = extractor.candidates(for: part + " " + names.joined(separator: " "), evidence: evidence, reasoning: nil, limit: 8)
        let lowerNames = names.map { $0.lowercased() }
        // The fact must name the name and say something the rest of the question asks about.
        let asked = TermSet(part).subtracting(TermSet(names.joined(separator: " ")))
        guard let fact = ranked.first(where: { candidate in
            candidate.text != top?.text && lowerNames.contains { Lowercased(candidate.text).contains($0) }
                && !TermSet(candidate.text).isDisjoint(with: asked)
        }) else { return nil }
        return (fact, carried)
    }

    /// The best fact for the second question of a two-part question ("…, and what should agents
    /// do about it?"): it must name a word of the second part that the first does not use.
    static func secondPartFact(of question: String, evidence: [Evidence], extractor: FactExtractor) -> FactExtractor.Candidate? {
        guard let second = SlotBridge.secondPart(of: question) else { return nil }
        let own = TermSet(second).subtracting(TermSet(String(question.dropLast(second.count))))
        guard !own.isEmpty else { return nil }
        return extractor.candidates(for: second, evidence: evidence, reasoning: nil, limit: 4)
            .first { !$0.matched.isDisjoint(with: own) }
    }

    /// Why the best facts cannot answer a question that asks for a count, an amount of money or
    /// contact data (an e-mail address, a phone number), or nil when they can (or the question asks
    /// for something else, or for several things).
    /// "How many parking spaces …" is answered only by a fact that names the spaces (in its text,
    /// heading or lead-in), states a number and is not an item keyed to another place than the one
    /// asked about; "how much is the bonus …" only by a fact that states an amount of money; "what
    /// is her e-mail address?" only by a fact holding one (or showing it masked).
    static func unmetForm(of question: String, by facts: [FactExtractor.Candidate], evidence: [Evidence]) -> String? {
        guard !asksSeveralThings(question), SlotBridge.secondPart(of: question) == nil else { return nil }
        if let noun = countedNoun(question) {
            let nounTerms = TermSet(noun)
            let anchors = anchors(of: question)
            let counted = facts.contains { fact in
                nounTerms.isSubset(of: fact.matched) && Quantities.statesNumber(fact.text)
                    && !isKeyedToAnotherName(fact, anchors: anchors)
            }
            return counted ? nil : "no fact states a number of \(noun)"
        }
        if asksForMoney(question), !facts.contains(where: { FactExtractor.matches($0.text, form: .money) }) {
            return "no fact states an amount of money"
        }
        // Contact data asked for is stated (or shown masked) by a fact, or the facts do not answer.
        let lower = Lowercased(question)
        let masked = facts.contains { $0.text.contains(MaskedValue.restricted) }
        if emailCues.contains(where: lower.contains), !masked, !facts.contains(where: { $0.text.contains("@") }) {
            return "no fact states an e-mail address"
        }
        if phoneCues.contains(where: lower.contains), !masked, !facts.contains(where: { containsPhoneNumber($0.text) }) {
            return "no fact states a phone number"
        }
        return nil
    }

    /// Words by which a question asks for an e-mail address (not "the e-mail inbox").
    static let emailCues = ["e-mail address", "email address", "private e-mail", "private email", "work e-mail", "work email"]
    /// Words by which a question asks for a phone number (not "the mobile app").
    static let phoneCues = ["phone number", "mobile number", "telephone", "number to call"]

    /// True when `text` holds a run of at least seven digits separated by at most single spaces,
    /// hyphens or brackets: a phone number ("+31 6 8324 7555", "010-555 0199").
    static func containsPhoneNumber(_ text: String) -> Bool {
        var digits = 0
        var gap = 0
        for character in text {
            if character.isNumber {
                digits += 1
                gap = 0
                if digits >= 7 { return true }
            } else if " -()+".contains(character), gap == 0 {
                gap += 1
            } else {
                digits = 0
                gap = 0
            }
        }
        return false
    }

    /// True when `fact` is an item keyed by a name ("Hull: 14 loading bays") that is none of the
    /// question's `anchors` while its passage names one of them: the item is about another place
    /// or thing than the one asked about ("… at the Leeds depot?").
    static func isKeyedToAnotherName(_ fact: FactExtractor.Candidate, anchors: [String]) -> Bool {
        guard !anchors.isEmpty, let colon = fact.text.firstIndex(of: ":") else { return false }
        // A record (`Code: RTM; Hub: Rotterdam; …`) is keyed by a field label, not a name.
        if let semicolon = fact.text.firstIndex(of: ";"), fact.text[semicolon...].contains(":") { return false }
        let key = fact.text[..<colon].split(separator: " ")
        guard (1...3).contains(key.count), key.allSatisfy({ $0.first?.isUppercase == true && !$0.contains(where: \.isNumber) })
        else { return false }
        let lowerKey = key.joined(separator: " ").lowercased()
        guard !anchors.contains(where: lowerKey.contains) else { return false }
        let passage = Lowercased(fact.evidence.text)
        return anchors.contains { passage.contains($0) }
    }

    /// The noun a "how many" question counts: the last word of the phrase after "how many"
    /// ("how many parking spaces are there …" → "spaces"); nil for other questions.
    static func countedNoun(_ question: String) -> String? {
        let words = lowercaseWords(question)
        guard let how = words.indices.first(where: { $0 + 1 < words.count && words[$0] == "how" && words[$0 + 1] == "many" })
        else { return nil }
        let ends: Set<String> = ["are", "is", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "must",
                                 "may", "have", "has", "had", "of", "in", "at", "for", "per", "on", "to", "from", "with", "we",
                                 "i", "you", "they", "there", "the", "a", "an", "and", "or", "before", "after", "within", "by",
                                 "our", "my", "their", "it", "that", "this", "left", "remain", "remaining"]
        let phrase = words[(how + 2)...].prefix { !ends.contains($0) }
        guard let noun = phrase.last, noun.count >= 3 else { return nil }
        return noun
    }

    /// True when the question asks how much something costs or pays: "how much" with no word of
    /// time, size or weight ("how much extra time", "how much storage" ask for other things, and
    /// "by how much can the deadline be extended?" for a difference).
    static func asksForMoney(_ question: String) -> Bool {
        let lower = Lowercased(question)
        // "By how much …" asks for a difference, of whatever unit.
        guard lower.contains("how much"), !lower.contains("by how much") else { return false }
        let other = ["time", "notice", "leave", "long", "day", "week", "month", "year", "hour", "minute", "deadline", "extend",
                     "period", "late", "storage", "space", "data", "weigh", " kg", "capacity", "volume", "percent", "%", "share",
                     "more", "less", "discount"]
        return !other.contains(where: lower.contains)
    }

    /// The question's anchors (codes mixing letters and digits such as a grade or a fiscal year,
    /// capitalised words after the first, such as a city, and record numbers such as "order 55731")
    /// that none of `facts` names, in its
    /// text, title or section. Anchors found in at least half of the evidence passages (the
    /// company's own name) are not counted. A question about a grade, a place or a year the facts
    /// do not mention is not answered by them, however many of its other words they share.
    static func uncoveredAnchors(of question: String, by facts: [FactExtractor.Candidate], evidence: [Evidence]) -> [String] {
        let anchors = anchors(of: question)
        guard !anchors.isEmpty else { return [] }
        let factText = Lowercased(facts.map { "\($0.text) \($0.evidence.source.title) \($0.evidence.source.section ?? "")" }
            .joined(separator: " "))
        let passages = evidence.map { Lowercased("\($0.source.title) \($0.text)") }
        // An acronym ("DSAR") is named by a fact whose document spells it out once and then
        // writes the thing in full or not at all: any passage of the facts' documents counts.
        let acronyms = Set(question.split(whereSeparator: { !$0.isLetter })
            .filter { $0.count >= 3 && $0.allSatisfy(\.isUppercase) }.map { $0.lowercased() })
        let factDocuments = Set(facts.map(\.evidence.source.id))
        let documentText = acronyms.isEmpty ? Lowercased("")
            : Lowercased(evidence.filter { factDocuments.contains($0.source.id) }.map(\.text).joined(separator: " "))
        return anchors.filter { anchor in
            // A plural names what its singular does ("Account Managers" → "Account Manager").
            let singular = anchor.count > 3 && anchor.hasSuffix("s") && !anchor.contains(where: \.isNumber) ? String(anchor.dropLast()) : anchor
            if factText.contains(singular) { return false }
            if acronyms.contains(anchor), documentText.contains(anchor) { return false }
            let common = passages.filter { $0.contains(anchor) }.count * 2 >= max(passages.count, 1)
            return !common
        }
    }

    /// The question's anchors, lowercased: codes mixing letters and digits, capitalised words
    /// after a sentence's first, and record numbers after a noun such as "order".
    static func anchors(of question: String) -> [String] {
        var anchors: [String] = []
        for sentence in question.split(whereSeparator: { ".?!".contains($0) }) {
            let words = sentence.split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
            for (index, word) in words.enumerated() where word.count >= 2 {
                let hasDigit = word.contains(where: \.isNumber)
                let hasLetter = word.contains(where: \.isLetter)
                // The first word of a sentence is capitalised whatever it is.
                let capitalised = index > 0 && word.first?.isUppercase == true && !hasDigit
                // A number of three digits or more right after a noun such as "account number" or
                // "order" names a record: "account number 245".
                let identifier = !hasLetter && word.count >= 3 && index > 0
                    && Quantities.identifierNouns.contains(words[index - 1].lowercased())
                if (hasDigit && hasLetter) || capitalised || identifier { anchors.append(word.lowercased()) }
            }
        }
        return anchors
    }

    /// True when the question joins two questions ("how many … and after how many days …").
    static func asksSeveralThings(_ question: String) -> Bool {
        let words = question.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        let interrogatives: Set<String> = ["what", "how", "when", "who", "which", "where", "why", "is", "are", "does", "do", "can"]
        guard let and = words.firstIndex(of: "and"), and > 0 else { return false }
        return words[(and + 1)...].prefix(3).contains(where: interrogatives.contains)
    }

    /// Words of questions that ask for a kind of personal data.
    static let personalDataCues = ["iban", "bank account", "account number", "salary", "salaries", "date of birth", "birthday",
                                   "born", "national id", "bsn", "social security", "home address", "private e-mail",
                                   "private email", "phone", "mobile"]

    /// A fact of the evidence, however weakly it matches, that shows personal data masked, when the
    /// question asks for personal data; its passage or title must name one of the question's names
    /// or codes (the case, the person), if it has any.
    static func maskedValue(askedBy question: String, query: String, evidence: [Evidence],
                            extractor: FactExtractor) -> FactExtractor.Candidate? {
        guard asksForPersonalData(question) else { return nil }
        let anchors = anchors(of: question)
        return extractor.candidates(for: query, evidence: evidence, reasoning: nil, limit: 24).first { candidate in
            guard candidate.text.contains(MaskedValue.restricted) else { return false }
            let passage = Lowercased(candidate.evidence.source.title + " " + candidate.evidence.text)
            return anchors.isEmpty || anchors.contains { passage.contains($0) }
        }
    }

    /// True when the question asks for personal data and the best fact shows it only masked.
    static func asksForMaskedValue(_ question: String, best: FactExtractor.Candidate) -> Bool {
        best.text.contains(MaskedValue.restricted) && asksForPersonalData(question)
    }

    /// True when the question asks for a kind of personal data (``personalDataCues``).
    static func asksForPersonalData(_ question: String) -> Bool {
        let lower = Lowercased(question)
        return personalDataCues.contains { lower.contains($0) }
    }

    /// The refusal for a question whose asked-for personal data `masked` shows only masked.
    static func maskedRefusal(_ masked: FactExtractor.Candidate) -> Validation {
        let source = WithheldSource(documentID: masked.evidence.source.id, department: nil, coverage: masked.coverage)
        return Validation(answerable: false, facts: [], rationale: "the asked-for value is masked for this user", withheld: [source])
    }

    /// The words of `text`, lowercased, hyphenated words kept whole ("e-mail", "on-call").
    static func lowercaseWords(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !($0.isLetter || $0 == "-") }).map(String.init)
    }

    /// The withheld documents that hold the answer instead of the readable ones: one covering at
    /// least 60 % of the question, and `margin` (a quarter) more of it than the best readable candidate.
    /// Nil when the readable evidence is as good (then the answer comes from it, or is "not found").
    static func restricted(_ withheld: [WithheldSource], bestReadableCoverage: Double, margin: Double = 0.25) -> [WithheldSource]? {
        let relevant = withheld.filter { $0.coverage >= 0.6 && $0.coverage >= bestReadableCoverage + margin }
        return relevant.isEmpty ? nil : relevant
    }

    /// Combines the model's verdict with the code-ranked candidates.
    static func verdict(_ output: Output?, candidates: [FactExtractor.Candidate]) -> Validation {
        func fact(_ c: FactExtractor.Candidate) -> ValidatedFact {
            ValidatedFact(text: c.text, source: c.evidence.source, chunkID: c.evidence.chunkID)
        }
        let ranked = candidates.prefix(3).map(fact)
        guard let output else {
            return Validation(answerable: true, facts: Array(ranked), rationale: "ranked by relevance (model verdict unusable)",
                              isFallback: true)
        }
        let picked = (output.facts ?? []).filter { (1...candidates.count).contains($0) }.map { fact(candidates[$0 - 1]) }
        // The code's ranking leads and the model's picks follow: on the dev set the best-ranked
        // candidate held the answer far more often than the 135M model's pick did. A small model's
        // "not answerable" over strong candidates is more often wrong than right, so it does not
        // empty the list either.
        var facts: [ValidatedFact] = []
        for f in ranked.prefix(1) + picked + ranked.dropFirst() where !facts.contains(f) { facts.append(f) }
        let rationale = output.answerable ? "model chose facts \(output.facts ?? [])" : "model doubted the facts; kept the best-ranked"
        return Validation(answerable: true, facts: Array(facts.prefix(3)), rationale: rationale)
    }
}
