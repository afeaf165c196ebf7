// Access-policy YAML: `AccessPolicy.load(yaml:)`, then the decision point over what it loaded.
//
// Properties:
// - it never crashes, and every refusal is a `ConfigurationError` for `governance.policy_file`;
// - an accepted policy names only declared roles (or `*`, `!role`) in every rule, only the four
//   classifications in the matrix, and only deny patterns that compile;
// - default deny: a principal without roles is refused every document, table, API operation and
//   workflow, sees no column and no PII type unmasked;
// - for a principal with one role (taken from the input), table, API and workflow decisions equal
//   an independent reading of the lists: allowed when the list names the role or `*` and does
//   not name `!role` (workflows fall back to the `*` entry).
import ConclaveCore
import ConclaveGovernance
import Foundation
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let policy: AccessPolicy
    do {
        policy = try AccessPolicy.load(yaml: Fuzz.text(start, count), origin: "fuzz.yaml")
    } catch let error as ConfigurationError {
        Fuzz.check(error.key == "governance.policy_file", "refused naming key \(error.key): \(error)")
        return 0
    } catch {
        Fuzz.fail("refused with \(type(of: error)), not a ConfigurationError: \(error)")
    }
    checkDeclared(policy)

    let decisions = PolicyDecisionPoint(policy: policy)
    let nobody = Principal(userID: "nobody", tenant: "default", roles: [], department: "hr")
    let labels = policy.grants.map { DocumentLabel(id: $0.document, classification: "restricted", department: "hr") }
        + DocumentLabel.classifications.map { DocumentLabel(id: "DOC-\($0)", classification: $0, department: "hr") }
    for label in labels {
        Fuzz.check(!decisions.document(label, for: nobody).allowed, "a principal without roles reads \(label)")
    }
    for table in policy.tables.keys {
        Fuzz.check(!decisions.table(table, for: nobody).allowed, "a principal without roles reads table \(table)")
    }
    for key in policy.columns.keys {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { continue }
        Fuzz.check(decisions.column(parts[0], parts[1], for: nobody) == .denied, "a principal without roles sees column \(key)")
    }
    for type in Array(policy.pii.keys) + ["email", "phone"] {
        Fuzz.check(decisions.pii(type, for: nobody) != .unmasked, "a principal without roles sees \(type) unmasked")
    }
    for operation in policy.api.keys {
        Fuzz.check(!decisions.apiOperation(operation, for: nobody).allowed, "a principal without roles calls \(operation)")
    }
    for workflow in Array(policy.workflows.keys) + ["full"] {
        Fuzz.check(!decisions.workflow(workflow, for: nobody).allowed, "a principal without roles runs \(workflow)")
    }

    var choices = FuzzChoices(Fuzz.bytes(start, count))
    let candidates = policy.roles + ["nobody-declared"]
    let role = candidates[choices.int(in: 0...(candidates.count - 1))]
    let principal = Principal(userID: "u", tenant: "default", roles: [role], department: "hr")
    for (table, set) in policy.tables {
        Fuzz.check(decisions.table(table, for: principal).allowed == admits(set.entries, role),
                   "table \(table) for \(role): decision \(decisions.table(table, for: principal)), list \(set.entries)")
    }
    for (operation, set) in policy.api {
        Fuzz.check(decisions.apiOperation(operation, for: principal).allowed == admits(set.entries, role),
                   "operation \(operation) for \(role): list \(set.entries)")
    }
    for workflow in Array(policy.workflows.keys) + ["unlisted-workflow"] {
        let entries = (policy.workflows[workflow] ?? policy.workflows["*"])?.entries ?? []
        Fuzz.check(decisions.workflow(workflow, for: principal).allowed == admits(entries, role),
                   "workflow \(workflow) for \(role): list \(entries)")
    }
    return 0
}

/// Whether a role list admits `role`: it names the role or `*`, and not `!role`.
private func admits(_ entries: [String], _ role: String) -> Bool {
    !entries.contains("!" + role) && (entries.contains(role) || entries.contains("*"))
}

private func checkDeclared(_ policy: AccessPolicy) {
    let declared = Set(policy.roles)
    func check(_ names: [String], _ place: String) {
        for name in names {
            let role = name.hasPrefix("!") ? String(name.dropFirst()) : name
            Fuzz.check(role == "*" || declared.contains(role), "accepted undeclared role \(role) in \(place)")
        }
    }
    check(Array(policy.matrix.keys), "documents.matrix")
    for grant in policy.grants { check(grant.roles, "grant \(grant.id)") }
    for (table, set) in policy.tables { check(set.entries, "tables.\(table)") }
    for (column, rule) in policy.columns { check(rule.unmasked.entries, "columns.\(column)") }
    for (type, rule) in policy.pii { check(rule.unmasked.entries, "pii.\(type)") }
    for (operation, set) in policy.api { check(set.entries, "api.\(operation)") }
    for (workflow, set) in policy.workflows { check(set.entries, "workflows.\(workflow)") }
    for (role, row) in policy.matrix {
        for classification in row.keys {
            Fuzz.check(DocumentLabel.classifications.contains(classification), "accepted classification \(classification) for \(role)")
        }
    }
    for pattern in policy.input.denyPatterns + policy.outputDenyPatterns {
        Fuzz.check((try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive])) != nil, "accepted pattern \(pattern)")
    }
}
