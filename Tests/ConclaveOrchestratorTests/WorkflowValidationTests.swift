import ConclaveCore
import ConclaveOrchestrator
import Testing

@Suite struct WorkflowValidationTests {
    @Test func cycleIsRejectedWithItsPath() throws {
        let yaml = """
            name: loop
            steps:
              - {id: a, role: planner, depends_on: [c]}
              - {id: b, role: retriever, depends_on: [a]}
              - {id: c, role: responder, depends_on: [b]}
            """
        let error = #expect(throws: ConclaveError.self) { try WorkflowLoader.load(yaml: yaml) }
        #expect(error?.code == .invalidWorkflow)
        #expect(error?.message.contains("cycle") == true)
        #expect(error?.message.contains("a -> b -> c -> a") == true || error?.message.contains("-> a") == true)
    }

    /// Found by fuzz/FuzzWorkflow: `timeout_seconds: 3222222222222222220` passed validation, and
    /// the engine's `Duration.milliseconds(Int64(timeout * 1000))` trapped on it at run time.
    @Test func timeoutsNoDurationCanHoldAreRejected() throws {
        for timeout in ["3222222222222222220", ".inf", ".nan", "1e300", "86401", "0", "-1"] {
            let yaml = """
                name: slow
                steps:
                  - {id: respond, role: responder, timeout_seconds: \(timeout)}
                """
            let error = #expect(throws: ConclaveError.self, "\(timeout)") { try WorkflowLoader.load(yaml: yaml) }
            #expect(error?.code == .invalidWorkflow)
            #expect(error?.message.contains("timeout_seconds") == true, "\(timeout)")
        }
        let day = try WorkflowLoader.load(yaml: "name: slow\nsteps:\n  - {id: respond, role: responder, timeout_seconds: 86400}\n")
        #expect(day.steps.first?.timeoutSeconds == 86_400)
    }

    @Test func unknownRoleIsRejected() throws {
        let yaml = """
            name: odd
            steps:
              - {id: a, role: summarizer}
            """
        let error = #expect(throws: ConclaveError.self) { try WorkflowLoader.load(yaml: yaml, origin: "odd.yaml") }
        #expect(error?.message.contains("unknown role 'summarizer'") == true)
        #expect(error?.message.hasPrefix("odd.yaml") == true)
    }

    @Test func missingDependencyIsRejected() throws {
        let yaml = """
            name: dangling
            steps:
              - {id: respond, role: responder, depends_on: [plan]}
            """
        let error = #expect(throws: ConclaveError.self) { try WorkflowLoader.load(yaml: yaml) }
        #expect(error?.message.contains("depends on 'plan', which is not a step") == true)
    }

    @Test func duplicateStepIdsAreRejected() throws {
        let yaml = """
            name: twice
            steps:
              - {id: a, role: planner}
              - {id: a, role: responder}
            """
        let error = #expect(throws: ConclaveError.self) { try WorkflowLoader.load(yaml: yaml) }
        #expect(error?.message.contains("used twice") == true)
    }

    @Test func missingStepsKeyIsReported() throws {
        let error = #expect(throws: ConclaveError.self) { try WorkflowLoader.load(yaml: "name: empty\n") }
        #expect(error?.message.contains("missing key 'steps'") == true)
    }

    @Test func unknownModelIsRejected() throws {
        let yaml = """
            name: m
            steps:
              - {id: r, role: responder, model: gpt-9}
            """
        let error = #expect(throws: ConclaveError.self) { try WorkflowLoader.load(yaml: yaml) }
        #expect(error?.message.contains("uses model 'gpt-9'") == true)
    }

    @Test func validWorkflowLoadsWithDefaults() throws {
        let yaml = """
            name: mine
            description: custom
            steps:
              - {id: plan, role: planner, timeout_seconds: 5, retry: {max_attempts: 3}}
              - {id: respond, role: responder, depends_on: [plan]}
            """
        let workflow = try WorkflowLoader.load(yaml: yaml)
        #expect(workflow.modelID == "conclave/mine")
        #expect(workflow.steps[0].retry.maxAttempts == 3)
        #expect(workflow.steps[0].retry.backoffMilliseconds == 100)
        #expect(workflow.steps[1].dependsOn == ["plan"])
        #expect(workflow.steps[1].model == "default")
    }
}
