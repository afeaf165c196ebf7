import ConclaveCore

extension AuditEntry {
    /// The stored body of a record: `{"record":…,"seq":…,"time":…}` with every object's keys in
    /// sorted order and absent optionals left out, the same document `JSONEncoder` with
    /// `.sortedKeys` writes. Written by hand because encoding it was the largest single cost of an
    /// audited request (the chain hashes these exact bytes; `verify` re-hashes them as stored).
    func canonicalEnvelope(seq: Int64, time: Double) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(512 + (prompt?.utf8.count ?? 0) + (answer?.utf8.count ?? 0))
        func raw(_ text: String) { out.append(contentsOf: text.utf8) }
        func string(_ text: String) {
            out.append(UInt8(ascii: "\""))
            JSONString.append(text, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        var first = true
        func key(_ name: String) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            string(name)
            out.append(UInt8(ascii: ":"))
        }
        func strings(_ values: [String]) {
            raw("[")
            for (index, value) in values.enumerated() {
                if index > 0 { raw(",") }
                string(value)
            }
            raw("]")
        }
        raw(#"{"record":{"#)
        if let answer { key("answer"); string(answer) }
        if let answerSHA256 { key("answerSHA256"); string(answerSHA256) }
        key("completionTokens"); raw(String(completionTokens))
        if let conversationID { key("conversationID"); string(conversationID) }
        key("decisions"); raw("[")
        for (index, decision) in decisions.enumerated() {
            if index > 0 { raw(",") }
            raw(#"{"allowed":"#); raw(decision.allowed ? "true" : "false")
            raw(#","point":"#); string(decision.point)
            raw(#","reason":"#); string(decision.reason)
            raw(#","rule":"#); string(decision.rule)
            raw("}")
        }
        raw("]")
        key("maskedEntities"); raw("{")
        for (index, name) in maskedEntities.keys.sorted().enumerated() {
            if index > 0 { raw(",") }
            string(name); raw(":"); raw(String(maskedEntities[name] ?? 0))
        }
        raw("}")
        key("models"); strings(models)
        if let prompt { key("prompt"); string(prompt) }
        if let promptSHA256 { key("promptSHA256"); string(promptSHA256) }
        key("promptTokens"); raw(String(promptTokens))
        key("roles"); strings(roles)
        if let runID { key("runID"); string(runID) }
        key("sources"); raw("[")
        for (index, source) in sources.enumerated() {
            if index > 0 { raw(",") }
            raw("{")
            if let classification = source.classification { raw(#""classification":"#); string(classification); raw(",") }
            raw(#""id":"#); string(source.id); raw("}")
        }
        raw("]")
        key("status"); string(status)
        if let tenant { key("tenant"); string(tenant) }
        key("type"); string(type)
        key("user"); string(user)
        key("withheld"); strings(withheld)
        if let workflow { key("workflow"); string(workflow) }
        raw(#"},"seq":"#); raw(String(seq))
        raw(#","time":"#); raw(time.isFinite ? String(time) : "0")
        raw("}")
        return String(decoding: out, as: UTF8.self)
    }
}
