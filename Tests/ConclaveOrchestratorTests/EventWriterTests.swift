import ConclaveCore
import ConclaveStorage
import ConclaveTesting
import Foundation
import Testing

/// The group-commit event log writer loses nothing on the way out.
@Suite struct EventWriterTests {
    private func events(run: String, count: Int) -> [RunEvent] {
        (0..<count).map { RunEvent(runID: run, sequence: $0, kind: $0 == 0 ? .runStarted : .stepCompleted, stepID: "s\($0)",
                                   detail: "détail \($0) with 'quotes' and ünïcode", durationMilliseconds: Double($0) / 3) }
    }

    @Test func finishStoresEverythingQueuedThenReturns() async throws {
        let store = try SQLiteStore(path: ":memory:")
        let writer = BatchingEventWriter(store: store)
        let running = Task { try await writer.run() }
        for run in 0..<50 { writer.append(events(run: "run_\(run)", count: 7)) }
        writer.finish()
        try await running.value
        #expect(writer.pendingCount == 0)
        for run in [0, 25, 49] {
            let stored = try await store.events(ofRun: "run_\(run)")
            #expect(stored.map(\.sequence) == Array(0..<7))
            #expect(stored.last?.detail == "détail 6 with 'quotes' and ünïcode")
            #expect(stored.last?.durationMilliseconds == 2)
        }
    }

    @Test func cancelledWriterStillStoresWhatWasQueued() async throws {
        let directory = try TestRuntime.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("events.sqlite").path)
        let writer = BatchingEventWriter(store: store)
        writer.append(events(run: "run_a", count: 3))
        writer.append(events(run: "run_b", count: 4))
        // The writer starts in a cancelled task (shutdown by cancellation): the database refuses
        // writes from a cancelled task, so the final write must happen outside it.
        let running = Task {
            while !Task.isCancelled { await Task.yield() }
            try await writer.run()
        }
        running.cancel()
        _ = try? await running.value
        #expect(try await store.events(ofRun: "run_a").count == 3)
        #expect(try await store.events(ofRun: "run_b").count == 4)
    }

    @Test func appendingARunTwiceStoresItOnce() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.appendEvents(batches: [events(run: "run_x", count: 3), events(run: "run_x", count: 3)])
        #expect(try await store.events(ofRun: "run_x").count == 3)
    }
}
