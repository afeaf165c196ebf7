import ConclaveEval
import ConclaveOrchestrator
import ConclaveTesting
import Foundation
import Testing

/// Experiment files: the shipped ones parse, settings become the loader's environment overrides,
/// and a malformed file names its key.
@Suite struct ExperimentTests {
    @Test func shippedTableOneParses() throws {
        let path = TestRuntime.repositoryRoot.appendingPathComponent("experiments/table1-scalability.yaml").path
        let experiment = try Experiment(path: path)
        #expect(experiment.name == "table1-scalability" && experiment.repetitions >= 3)
        #expect(experiment.configurations.prefix(3).map(\.model) == ["conclave/single", "conclave/full", "conclave/full"])
        #expect(experiment.load.mode == .closed && experiment.load.levels == [1, 2, 4])
        // The sensitivity points: each varies one parameter of multi-fixed, at the highest load only.
        let variants = experiment.configurations.filter { $0.varies != nil }
        #expect(variants.map { $0.varies?.parameter } == ["inference.replicas", "step timeouts"])
        #expect(variants.allSatisfy { $0.varies?.of == "multi-fixed" && $0.levels == [4] && $0.model == "conclave/full" })
        #expect(experiment.allLevels == [1, 2, 4])
        let environment = Experiment.environment(experiment.configurations[2].settings)
        #expect(environment["CONCLAVE_INFERENCE__AUTOSCALE__ENABLED"] == "true")
        #expect(environment["CONCLAVE_INFERENCE__AUTOSCALE__MAX_REPLICAS"] == "2")
    }

    @Test func everyShippedExperimentParses() throws {
        let directory = TestRuntime.repositoryRoot.appendingPathComponent("experiments")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 2)
        for file in files {
            let experiment = try Experiment(path: directory.appendingPathComponent(file).path)
            #expect(!experiment.configurations.isEmpty && !experiment.load.levels.isEmpty, "\(file)")
            #expect(Set(experiment.configurations.map(\.name)).count == experiment.configurations.count, "\(file): names repeat")
        }
    }

    @Test func tableTwoIsAQualityExperimentOverAStratifiedSample() throws {
        let path = TestRuntime.repositoryRoot.appendingPathComponent("experiments/table2-quality.yaml").path
        let experiment = try Experiment(path: path)
        #expect(experiment.kind == .quality && experiment.repetitions >= 3)
        #expect(experiment.configurations.map(\.model) == ["conclave/single", "conclave/planner-responder",
                                                            "conclave/planner-retriever-responder", "conclave/full"])
        let tasks = try EvalTask.load(path: TestRuntime.repositoryRoot.appendingPathComponent(experiment.questions).path)
        let sample = experiment.sample(tasks)
        let types = Set(tasks.map(\.type))
        // Every type, at most `tasks_per_type` of each, in file order.
        #expect(Set(sample.map(\.type)) == types)
        #expect(types.allSatisfy { type in sample.filter { $0.type == type }.count == min(experiment.tasksPerType, tasks.filter { $0.type == type }.count) })
        #expect(sample.map(\.id) == tasks.map(\.id).filter { id in sample.contains { $0.id == id } })
    }

    @Test func aLoadExperimentNeedsItsLoadSectionAndAnUnknownKindIsNamed() throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bad.yaml")
        try "name: x\nkind: vibes\nconfigurations: [{name: a, model: conclave/full}]\n".write(to: file, atomically: true, encoding: .utf8)
        let kind = #expect(throws: Experiment.FileError.self) { try Experiment(path: file.path) }
        #expect(kind?.description.contains("kind") == true)
        try "name: x\nconfigurations: [{name: a, model: conclave/full}]\n".write(to: file, atomically: true, encoding: .utf8)
        let load = #expect(throws: Experiment.FileError.self) { try Experiment(path: file.path) }
        #expect(load?.description.contains("load") == true)
    }

    /// The step-timeout sensitivity point replaces the built-in `full` workflow with one that differs
    /// in its step timeouts alone (shorter each), so that only the parameter under study changes.
    @Test func theTightTimeoutWorkflowIsTheBuiltInFullWithShorterTimeoutsOnly() throws {
        let root = TestRuntime.repositoryRoot
        let shipped = try WorkflowLoader.load(yaml: String(contentsOf: root.appendingPathComponent(
            "Sources/ConclaveServer/Resources/Workflows/full.yaml"), encoding: .utf8))
        let tight = try WorkflowLoader.loadDirectory(root.appendingPathComponent("experiments/workflows/tight-timeouts").path)
        #expect(tight.map(\.name) == ["full"])
        let steps = try #require(tight.first).steps
        #expect(steps.count == shipped.steps.count)
        for (mine, theirs) in zip(steps, shipped.steps) {
            var untimed = mine
            untimed.timeoutSeconds = theirs.timeoutSeconds
            #expect(untimed == theirs, "step \(mine.id) differs in more than its timeout")
            #expect((mine.timeoutSeconds ?? .infinity) < (theirs.timeoutSeconds ?? .infinity), "step \(mine.id)")
        }
    }

    @Test func aVariationMustNameAnotherConfiguration() throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("sensitivity.yaml")
        let head = "name: x\nload: {levels: [1, 2]}\nconfigurations:\n  - {name: base, model: conclave/full}\n"
        try (head + "  - {name: two, model: conclave/full, levels: [4], varies: {parameter: r, of: base, from: 1, to: 2}}\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let experiment = try Experiment(path: file.path)
        #expect(experiment.configurations[1].varies == Experiment.Variation(parameter: "r", of: "base", from: "1", to: "2"))
        #expect(experiment.configurations[0].levels == nil && experiment.allLevels == [1, 2, 4])
        try (head + "  - {name: two, model: conclave/full, varies: {parameter: r, of: nobody, from: 1, to: 2}}\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let unknown = #expect(throws: Experiment.FileError.self) { try Experiment(path: file.path) }
        #expect(unknown?.description.contains("varies.of") == true && unknown?.description.contains("base") == true)
        try (head + "  - {name: two, model: conclave/full, varies: {parameter: r, of: base}}\n").write(to: file, atomically: true, encoding: .utf8)
        let partial = #expect(throws: Experiment.FileError.self) { try Experiment(path: file.path) }
        #expect(partial?.description.contains("configurations[1].varies") == true)
        try (head + "  - {name: two, model: conclave/full, levels: []}\n").write(to: file, atomically: true, encoding: .utf8)
        let levels = #expect(throws: Experiment.FileError.self) { try Experiment(path: file.path) }
        #expect(levels?.description.contains("configurations[1].levels") == true)
    }

    @Test func settingsBecomeEnvironmentOverridesTheLoaderReads() {
        let environment = Experiment.environment(["server.port": 0, "knowledge.ingest_on_start": ["a", "b"], "logging.level": "warning",
                                                  "inference.temperature": 0.5])
        #expect(environment["CONCLAVE_SERVER__PORT"] == "0")
        #expect(environment["CONCLAVE_LOGGING__LEVEL"] == "warning")
        #expect(environment["CONCLAVE_INFERENCE__TEMPERATURE"] == "0.5")
        #expect(environment["CONCLAVE_KNOWLEDGE__INGEST_ON_START"]?.contains("- a") == true)
    }

    @Test func malformedFileNamesTheKey() throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bad.yaml")
        try "name: x\nload: {levels: []}\nconfigurations: []\n".write(to: file, atomically: true, encoding: .utf8)
        let error = #expect(throws: Experiment.FileError.self) { try Experiment(path: file.path) }
        #expect(error?.description.contains("load.levels") == true)
    }
}
