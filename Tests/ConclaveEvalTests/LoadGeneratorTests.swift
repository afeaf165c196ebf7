import ConclaveEval
import ConclaveTesting
import Foundation
import NIOCore
import Testing

/// The load generator against a real HTTP backend (the fake upstream test double): what it
/// counts as success, time to first token, tokens, and the histogram's percentiles.
@Suite struct LoadGeneratorTests {
    @Test func closedLoopCountsSuccessesErrorsTokensAndFirstTokens() async throws {
        let upstream = FakeOpenAIServer(.answer("one two three"))
        try await upstream.run { url in
            let client = ChatLoad.makeClient(connections: 4)
            let load = ChatLoad(url: url + "/chat/completions", client: client)
            let streamed = await ClosedLoopLoad.run(clients: 3, duration: .milliseconds(300)) { _, _ in
                await load.send(ByteBuffer(string: #"{"model":"x","stream":true,"messages":[]}"#), stream: true)
            }
            #expect(streamed.sent >= 3 && streamed.errors == 0)
            #expect(streamed.timeToFirstToken.count == streamed.sent && streamed.latency.count == streamed.sent)
            #expect(streamed.availability == 1 && streamed.throughput > 0)
            let whole = await ClosedLoopLoad.run(clients: 2, duration: .milliseconds(200)) { _, _ in
                await load.send(ByteBuffer(string: #"{"model":"x","messages":[]}"#), stream: false)
            }
            // The fake reports 2 completion tokens per whole answer.
            #expect(whole.errors == 0 && whole.completionTokens == 2 * whole.sent)
            upstream.set(.cutStream("cut short"))
            let cut = await ClosedLoopLoad.run(clients: 1, duration: .milliseconds(100)) { _, _ in
                await load.send(ByteBuffer(string: #"{"model":"x","stream":true,"messages":[]}"#), stream: true)
            }
            // A stream without [DONE] is a failure, never a success.
            #expect(cut.sent > 0 && cut.errors == cut.sent && cut.availability == 0)
            upstream.set(.status(503))
            let refused = await ClosedLoopLoad.run(clients: 1, duration: .milliseconds(100)) { _, _ in
                await load.send(ByteBuffer(string: #"{"model":"x","messages":[]}"#), stream: false)
            }
            #expect(refused.errors == refused.sent)
            try await client.shutdown()
        }
    }

    @Test func latencyRecorderReportsPercentilesInMilliseconds() {
        var recorder = LatencyRecorder()
        for value in 1...100 { recorder.record(.milliseconds(value)) }
        #expect(recorder.count == 100)
        #expect(abs(recorder.milliseconds(atPercentile: 50) - 50) < 0.1)
        #expect(abs(recorder.milliseconds(atPercentile: 99) - 99) < 0.1)
        #expect(abs(recorder.maxMilliseconds - 100) < 0.1)
        var other = LatencyRecorder()
        other.record(.seconds(2))
        recorder.add(other)
        #expect(recorder.count == 101 && abs(recorder.maxMilliseconds - 2000) < 2)
    }
}
