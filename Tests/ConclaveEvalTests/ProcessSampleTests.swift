import ConclaveEval
import Foundation
import Testing

/// Table 4 reads each process's counters; these are the readings it relies on.
struct ProcessSampleTests {
    @Test func metricsTextGivesCPUMemoryStepsAndTokens() {
        let text = """
            # TYPE conclave_process_cpu_seconds_total counter
            conclave_process_cpu_seconds_total{role="planner"} 1.5
            conclave_process_resident_memory_bytes{role="planner"} 2097152
            conclave_worker_step_seconds_bucket{role="planner",le="1.0"} 3
            conclave_worker_step_seconds_sum{role="planner"} 4.25
            conclave_worker_step_seconds_count{role="planner"} 5
            conclave_worker_model_tokens_total{role="planner"} 1200
            conclave_worker_steps_total{role="planner",outcome="completed"} 5
            conclave_http_requests_total{route="/v1/chat/completions"} 9
            """
        let sample = ProcessSample.parse(text)
        #expect(sample == ProcessSample(cpuSeconds: 1.5, residentBytes: 2_097_152, stepSeconds: 4.25, steps: 5, tokens: 1200))
        #expect(ProcessSample.parse("") == ProcessSample(cpuSeconds: 0, residentBytes: 0, stepSeconds: 0, steps: 0, tokens: 0))
    }

    @Test func procReadsThisProcess() {
        // Burn a little CPU so the reading cannot be zero.
        var x = 0.0
        for i in 0..<3_000_000 { x += Double(i).squareRoot() }
        #expect(x > 0)
        let sample = ProcessSample.proc(pid: getpid())
        #expect(sample.cpuSeconds > 0)
        #expect(sample.residentBytes > 1_000_000)
        #expect(ProcessSample.proc(pid: 0x7fff_fff0).cpuSeconds == 0)
    }
}
