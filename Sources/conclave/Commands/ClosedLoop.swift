/// Closed-loop load, as both benchmarks drive it: `clients` concurrent loops, each making
/// `perClient` calls back to back.
enum ClosedLoop {
    struct Result {
        /// Latency of every call in milliseconds, ascending.
        var milliseconds: [Double]
        /// Calls completed per second over the whole run.
        var perSecond: Double

        /// The latency at quantile `q` (0.5 for the median).
        func percentile(_ q: Double) -> Double {
            milliseconds[min(milliseconds.count - 1, Int(Double(milliseconds.count) * q))]
        }
    }

    /// Runs the loops; `call` receives the client's index and the iteration.
    static func run(clients: Int, perClient: Int,
                    _ call: @escaping @Sendable (_ client: Int, _ iteration: Int) async throws -> Void) async throws -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for client in 0..<clients {
                group.addTask {
                    var samples: [Double] = []
                    samples.reserveCapacity(perClient)
                    for iteration in 0..<perClient {
                        let t0 = clock.now
                        try await call(client, iteration)
                        samples.append(milliseconds(clock.now - t0))
                    }
                    return samples
                }
            }
            var all: [Double] = []
            for try await samples in group { all += samples }
            return all
        }
        let seconds = milliseconds(clock.now - start) / 1000
        return Result(milliseconds: latencies.sorted(), perSecond: Double(latencies.count) / seconds)
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}
