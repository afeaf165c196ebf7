// vector-bench: times the Vectors indexes on a dataset file written by
// scripts/bench_vectors.py and prints/writes a JSON report.
//
// Dataset format (little-endian): "VBENCH01", u32 dim, u32 n, u32 nq, u32 gtK,
// f32 base[n*dim], f32 queries[nq*dim], i32 groundTruth[nq*gtK] (exact top-gtK ids).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConclaveVectors

struct Options {
    var data = ""
    var out: String?
    var m = 16
    var efConstruction = 200
    var efList = [10, 20, 40, 80]
    var threads = [1, 2]
    var k = 10
    var exactQueries = 200
    var repeats = 3
    var indexPath = "/tmp/vector-bench-hnsw.idx"
    var loadIndex: String?
    var skipExact = false
    var skipHNSW = false
}

func writeStderr(_ s: String) {
    var bytes = Array(s.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    writeStderr("vector-bench: \(message)\n")
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    func intList(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0) } }
    while let a = args.popFirst() {
        func value() -> String {
            guard let v = args.popFirst() else { fail("missing value for \(a)") }
            return v
        }
        switch a {
        case "--data": o.data = value()
        case "--out": o.out = value()
        case "--m": o.m = Int(value()) ?? o.m
        case "--ef-construction": o.efConstruction = Int(value()) ?? o.efConstruction
        case "--ef": o.efList = intList(value())
        case "--threads": o.threads = intList(value())
        case "--k": o.k = Int(value()) ?? o.k
        case "--exact-queries": o.exactQueries = Int(value()) ?? o.exactQueries
        case "--repeats": o.repeats = max(1, Int(value()) ?? o.repeats)
        case "--index-path": o.indexPath = value()
        case "--load-index": o.loadIndex = value()
        case "--skip-exact": o.skipExact = true
        case "--skip-hnsw": o.skipHNSW = true
        default: fail("unknown argument \(a)")
        }
    }
    if o.data.isEmpty { fail("usage: vector-bench --data FILE [--out JSON] [--ef 10,20] [--threads 1,2] ...") }
    return o
}

struct Dataset {
    var dim = 0, n = 0, nq = 0, gtK = 0
    var base: [[Float]] = []
    var queries: [[Float]] = []
    var truth: [[Int32]] = []
}

func loadDataset(_ path: String) -> Dataset {
    guard let f = fopen(path, "rb") else { fail("cannot open \(path)") }
    defer { fclose(f) }
    var magic = [UInt8](repeating: 0, count: 8)
    var header = [UInt32](repeating: 0, count: 4)
    guard fread(&magic, 1, 8, f) == 8, magic == Array("VBENCH01".utf8),
        fread(&header, 4, 4, f) == 4
    else { fail("\(path) is not a VBENCH01 dataset") }
    var ds = Dataset()
    ds.dim = Int(header[0]); ds.n = Int(header[1]); ds.nq = Int(header[2]); ds.gtK = Int(header[3])
    func readRows<T: BitwiseCopyable & Numeric>(_ rows: Int, _ cols: Int, _ type: T.Type) -> [[T]] {
        var flat = [T](repeating: 0, count: rows * cols)
        let got = flat.withUnsafeMutableBytes { fread($0.baseAddress, MemoryLayout<T>.stride, rows * cols, f) }
        guard got == rows * cols else { fail("\(path) is truncated") }
        return (0..<rows).map { Array(flat[($0 * cols)..<($0 * cols + cols)]) }
    }
    ds.base = readRows(ds.n, ds.dim, Float.self)
    ds.queries = readRows(ds.nq, ds.dim, Float.self)
    ds.truth = readRows(ds.nq, ds.gtK, Int32.self)
    return ds
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

func time<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let r = try body()
    return (r, seconds(clock.now - start))
}

/// CPU seconds consumed by the calling thread (threads == 1) or the whole process.
func cpuSeconds(process: Bool) -> Double {
    var ts = timespec()
    clock_gettime(process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func recall(_ results: [[VectorMatch]], _ truth: [[Int32]], k: Int) -> Double {
    var hits = 0
    for (r, t) in zip(results, truth) {
        let expected = Set(t.prefix(k).map(Int.init))
        hits += r.prefix(k).filter { expected.contains($0.id) }.count
    }
    return Double(hits) / Double(results.count * k)
}

/// Minimal JSON value for the report (no Foundation dependency).
indirect enum JSON {
    case number(Double), string(String), array([JSON]), object([(String, JSON)]), bool(Bool)
    func render(_ indent: String = "") -> String {
        switch self {
        case .number(let v): return v.isFinite ? (v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)) : "null"
        case .string(let s): return "\"" + s.replacingOccurrences("\"", "\\\"") + "\""
        case .bool(let b): return b ? "true" : "false"
        case .array(let a):
            return "[" + a.map { $0.render(indent) }.joined(separator: ", ") + "]"
        case .object(let o):
            let inner = indent + "  "
            return "{\n" + o.map { inner + "\"\($0.0)\": " + $0.1.render(inner) }.joined(separator: ",\n") + "\n" + indent + "}"
        }
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}

func log(_ s: String) {
    writeStderr(s + "\n")
}

let opt = parseOptions()
let ds = loadDataset(opt.data)
let k = opt.k
log("vector-bench: n=\(ds.n) nq=\(ds.nq) dim=\(ds.dim) kernel=\(VectorMath.activeKernel)")
var report: [(String, JSON)] = [
    ("kernel", .string(VectorMath.activeKernel)),
    ("n", .number(Double(ds.n))), ("queries", .number(Double(ds.nq))), ("dim", .number(Double(ds.dim))),
    ("k", .number(Double(k))),
]

if !opt.skipHNSW {
    let index: HNSWIndex
    var hnsw: [(String, JSON)] = [("m", .number(Double(opt.m))), ("ef_construction", .number(Double(opt.efConstruction)))]
    if let path = opt.loadIndex {
        let (loaded, t) = time { () -> HNSWIndex in
            do { return try HNSWIndex.load(from: path) } catch { fail("load failed: \(error)") }
        }
        index = loaded
        hnsw.append(("load_seconds", .number(t)))
        log("hnsw: loaded \(path) in \(t)s")
    } else {
        index = HNSWIndex(
            dimensions: ds.dim, parameters: .init(m: opt.m, efConstruction: opt.efConstruction, efSearch: 40, seed: 42))
        let cpu0 = cpuSeconds(process: false)
        let (_, buildTime) = time {
            for (i, v) in ds.base.enumerated() {
                do { try index.add(id: i, vector: v) } catch { fail("add failed: \(error)") }
            }
        }
        hnsw.append(("build_seconds", .number(buildTime)))
        hnsw.append(("build_cpu_seconds", .number(cpuSeconds(process: false) - cpu0)))
        hnsw.append(("build_threads", .number(1)))
        log("hnsw: built in \(buildTime)s")
        let (_, saveTime) = time {
            do { try index.save(to: opt.indexPath) } catch { fail("save failed: \(error)") }
        }
        hnsw.append(("save_seconds", .number(saveTime)))
        hnsw.append(("index_path", .string(opt.indexPath)))
    }
    var sweep: [JSON] = []
    for ef in opt.efList {
        index.efSearch = ef
        for threads in opt.threads {
            var best = Double.infinity
            var bestCPU = Double.infinity
            var r = 0.0
            for _ in 0..<opt.repeats {
                let cpu0 = cpuSeconds(process: threads > 1)
                let (results, t) = time { index.search(batch: ds.queries, k: k, threads: threads) }
                bestCPU = min(bestCPU, cpuSeconds(process: threads > 1) - cpu0)
                best = min(best, t)
                r = recall(results, ds.truth, k: k)
            }
            let qps = Double(ds.nq) / best
            // CPU-time based rate per thread: robust against other load on a shared machine.
            let qpsCPU = Double(ds.nq) * Double(threads) / bestCPU
            log("hnsw ef=\(ef) threads=\(threads): recall@\(k)=\(r) qps=\(Int(qps)) cpu-qps=\(Int(qpsCPU))")
            sweep.append(.object([
                ("ef", .number(Double(ef))), ("threads", .number(Double(threads))),
                ("recall", .number(r)), ("qps", .number(qps)), ("qps_cpu", .number(qpsCPU)),
            ]))
        }
    }
    hnsw.append(("sweep", .array(sweep)))
    report.append(("hnsw", .object(hnsw)))
}

if !opt.skipExact {
    let exact = ExactIndex(dimensions: ds.dim)
    let (_, buildTime) = time {
        for (i, v) in ds.base.enumerated() {
            do { try exact.add(id: i, vector: v) } catch { fail("add failed: \(error)") }
        }
    }
    let nq = min(opt.exactQueries, ds.nq)
    let queries = Array(ds.queries.prefix(nq))
    let truth = Array(ds.truth.prefix(nq))
    var entries: [(String, JSON)] = [("build_seconds", .number(buildTime)), ("queries", .number(Double(nq)))]
    for threads in opt.threads {
        var modes: [(String, JSON)] = []
        // per_query: one search(_:k:) call per query (the protocol's generic batch helper);
        // batched: ExactIndex.search(batch:) which scores 8 queries per pass over the codes.
        for mode in ["per_query", "batched"] {
            var best = Double.infinity
            var bestCPU = Double.infinity
            var r = 0.0
            for _ in 0..<opt.repeats {
                let cpu0 = cpuSeconds(process: threads > 1)
                let (results, t) = time {
                    mode == "batched"
                        ? exact.search(batch: queries, k: k, threads: threads)
                        : (exact as any VectorIndex).search(batch: queries, k: k, threads: threads)
                }
                bestCPU = min(bestCPU, cpuSeconds(process: threads > 1) - cpu0)
                best = min(best, t)
                r = recall(results, truth, k: k)
            }
            let qpsCPU = Double(nq) * Double(threads) / bestCPU
            log("exact \(mode) threads=\(threads): recall@\(k)=\(r) qps=\(Int(Double(nq) / best)) cpu-qps=\(Int(qpsCPU))")
            modes.append((mode, .object([
                ("qps", .number(Double(nq) / best)), ("qps_cpu", .number(qpsCPU)), ("recall", .number(r)),
            ])))
        }
        entries.append(("threads_\(threads)", .object(modes)))
    }
    report.append(("exact", .object(entries)))
}

let text = JSON.object(report).render() + "\n"
if let out = opt.out {
    guard let f = fopen(out, "wb") else { fail("cannot write \(out)") }
    fputs(text, f)
    fclose(f)
} else {
    print(text, terminator: "")
}
