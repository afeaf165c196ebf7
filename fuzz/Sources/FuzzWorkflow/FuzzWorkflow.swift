// Workflow YAML: `WorkflowLoader.load(yaml:knownModels:)`.
//
// Properties:
// - it never crashes, and every refusal is a `ConclaveError` with code `invalid_workflow`;
// - an accepted workflow is runnable, checked here independently of `Workflow.validate`: a
//   non-empty name of letters, digits, `-` and `_`; unique non-empty step ids; every dependency a
//   step; no cycle (Kahn's algorithm orders every step); known models only; positive timeouts;
//   at least one attempt; exactly one responder; a timeout the engine can turn into a Duration;
// - encode → load is the identity.
import ConclaveCore
import ConclaveOrchestrator
import Foundation
import FuzzSupport
import Yams

private let knownModels: Set<String> = ["default", "smollm2"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let yaml = Fuzz.text(start, count)
    let workflow: Workflow
    do {
        workflow = try WorkflowLoader.load(yaml: yaml, origin: "fuzz.yaml", knownModels: knownModels)
    } catch let error as ConclaveError {
        Fuzz.check(error.code == .invalidWorkflow, "refused with code \(error.code), not invalid_workflow: \(error)")
        return 0
    } catch {
        Fuzz.fail("refused with \(type(of: error)), not a ConclaveError: \(error)")
    }
    checkRunnable(workflow)

    let encoded: String
    do {
        encoded = try YAMLEncoder().encode(workflow)
    } catch {
        Fuzz.fail("an accepted workflow does not encode: \(error)")
    }
    do {
        let reloaded = try WorkflowLoader.load(yaml: encoded, origin: "encoded.yaml", knownModels: knownModels)
        Fuzz.check(reloaded == workflow, "encode → load changed the workflow:\n\(workflow)\n\(reloaded)\nencoded:\n\(encoded)")
    } catch {
        Fuzz.fail("the encoded workflow is refused: \(error); encoded:\n\(encoded)")
    }
    return 0
}

private func checkRunnable(_ workflow: Workflow) {
    Fuzz.check(!workflow.name.isEmpty, "accepted an empty name")
    Fuzz.check(workflow.name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }, "accepted name \(workflow.name)")
    let ids = workflow.steps.map(\.id)
    Fuzz.check(!ids.isEmpty, "accepted a workflow without steps")
    Fuzz.check(Set(ids).count == ids.count, "accepted duplicate step ids \(ids)")
    Fuzz.check(!ids.contains(""), "accepted an empty step id")
    for step in workflow.steps {
        Fuzz.check(step.dependsOn.allSatisfy(ids.contains), "step \(step.id) depends on \(step.dependsOn), steps are \(ids)")
        Fuzz.check(knownModels.contains(step.model), "step \(step.id) uses unknown model \(step.model)")
        if let timeout = step.timeoutSeconds {
            // The engine turns it into `Duration.milliseconds(Int64(timeout * 1000))`, which traps
            // on infinity, NaN and values past Int64.
            Fuzz.check(timeout > 0 && timeout.isFinite && timeout * 1000 < 9.2e18, "step \(step.id) has timeout \(timeout)")
        }
        Fuzz.check(step.retry.maxAttempts >= 1, "step \(step.id) has \(step.retry.maxAttempts) attempts")
    }
    Fuzz.check(workflow.steps.filter { $0.role == .responder }.count == 1, "accepted without exactly one responder")

    // Kahn's algorithm: a DAG orders all its steps (a dependency listed twice counts twice).
    var waiting = Dictionary(uniqueKeysWithValues: workflow.steps.map { ($0.id, $0.dependsOn.count) })
    var ready = workflow.steps.filter { $0.dependsOn.isEmpty }.map(\.id)
    var ordered = 0
    while let id = ready.popLast() {
        ordered += 1
        for step in workflow.steps {
            for dependency in step.dependsOn where dependency == id {
                waiting[step.id, default: 0] -= 1
                if waiting[step.id] == 0 { ready.append(step.id) }
            }
        }
    }
    Fuzz.check(ordered == workflow.steps.count, "accepted a cycle: only \(ordered) of \(workflow.steps.count) steps can be ordered")
}
