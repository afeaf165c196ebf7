import Histogram

/// Latencies in microseconds, in an HdrHistogram (3 significant digits, 1 µs to 10 min).
public struct LatencyRecorder: Sendable {
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000,
                                              numberOfSignificantValueDigits: .three)

    /// Creates an empty recorder.
    public init() {}

    /// Records one latency.
    public mutating func record(_ duration: Duration) {
        let microseconds = duration.inMicroseconds
        _ = histogram.record(UInt64(max(1, min(600_000_000, microseconds))))
    }

    /// Adds another recorder's values.
    public mutating func add(_ other: LatencyRecorder) {
        histogram.add(other.histogram)
    }

    /// Values recorded.
    public var count: Int { Int(histogram.totalCount) }

    /// The value at `percentile` (0–100) in milliseconds.
    public func milliseconds(atPercentile percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    /// Mean in milliseconds.
    public var meanMilliseconds: Double { count == 0 ? 0 : histogram.mean / 1000 }

    /// Largest value in milliseconds.
    public var maxMilliseconds: Double { count == 0 ? 0 : Double(histogram.max) / 1000 }

    /// mean, p50, p95, p99 and max in milliseconds, for reports.
    public var summary: [String: Double] {
        ["mean_ms": meanMilliseconds, "p50_ms": milliseconds(atPercentile: 50), "p95_ms": milliseconds(atPercentile: 95),
         "p99_ms": milliseconds(atPercentile: 99), "max_ms": maxMilliseconds]
    }
}
