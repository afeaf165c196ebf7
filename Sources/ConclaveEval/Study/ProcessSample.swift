import Foundation

/// One process's counters at one moment, from its `/metrics`.
public struct ProcessSample: Codable, Sendable, Hashable {
    public var cpuSeconds: Double
    public var residentBytes: Double
    public var stepSeconds: Double
    public var steps: Double
    public var tokens: Double

    public init(cpuSeconds: Double, residentBytes: Double, stepSeconds: Double, steps: Double, tokens: Double) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.stepSeconds = stepSeconds
        self.steps = steps
        self.tokens = tokens
    }

    /// CPU time and resident memory of a process that has no `/metrics` of Conclave's
    /// (llama-server), from `/proc/<pid>/stat` and `/proc/<pid>/statm`.
    public static func proc(pid: Int32) -> ProcessSample {
        var sample = ProcessSample(cpuSeconds: 0, residentBytes: 0, stepSeconds: 0, steps: 0, tokens: 0)
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            // Fields after the command name: state is field 3, utime 14 and stime 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
                sample.cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let statm = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let pages = Double(fields[1]) { sample.residentBytes = pages * Double(sysconf(Int32(_SC_PAGESIZE))) }
        }
        return sample
    }

    /// Reads the series a gateway or worker exposes (absent series count as zero).
    public static func parse(_ text: String) -> ProcessSample {
        var sample = ProcessSample(cpuSeconds: 0, residentBytes: 0, stepSeconds: 0, steps: 0, tokens: 0)
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let name = line[..<space]
            if name.hasPrefix("conclave_process_cpu_seconds_total") { sample.cpuSeconds += value }
            else if name.hasPrefix("conclave_process_resident_memory_bytes") { sample.residentBytes += value }
            else if name.hasPrefix("conclave_worker_step_seconds_sum") { sample.stepSeconds += value }
            else if name.hasPrefix("conclave_worker_step_seconds_count") { sample.steps += value }
            else if name.hasPrefix("conclave_worker_model_tokens_total") { sample.tokens += value }
        }
        return sample
    }
}

