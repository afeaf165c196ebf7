import Foundation

/// This process's CPU time and resident memory: what the study's Table 4 reports per agent role.
public struct ProcessStats: Sendable, Hashable {
    /// User plus system CPU seconds since the process started.
    public var cpuSeconds: Double
    /// Resident set size in bytes.
    public var residentBytes: Int

    /// The current values (`getrusage`, and `/proc/self/statm` on Linux).
    public static func current() -> ProcessStats {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        var resident = 0
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count > 1, let pages = Int(fields[1]) { resident = pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
        } else {
            resident = Int(usage.ru_maxrss) * 1024  // the peak, where statm is missing
        }
        return ProcessStats(cpuSeconds: cpu, residentBytes: resident)
    }

    /// Prometheus text lines, labelled with the process's `role` (`gateway` or an agent role).
    public func prometheusText(role: String) -> String {
        """
        # HELP conclave_process_cpu_seconds_total User and system CPU time of this process.
        # TYPE conclave_process_cpu_seconds_total counter
        conclave_process_cpu_seconds_total{role="\(role)"} \(cpuSeconds)
        # HELP conclave_process_resident_memory_bytes Resident memory of this process.
        # TYPE conclave_process_resident_memory_bytes gauge
        conclave_process_resident_memory_bytes{role="\(role)"} \(residentBytes)

        """
    }
}
