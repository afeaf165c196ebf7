extension Duration {
    /// Whole nanoseconds (truncated), for APIs that count in them (swift-metrics timers, NIO
    /// time amounts, JetStream).
    public var inNanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
    /// Whole microseconds (truncated).
    public var inMicroseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
    /// Whole milliseconds (truncated), for C APIs with millisecond timeouts.
    public var inMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
