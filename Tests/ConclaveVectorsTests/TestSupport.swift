#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConclaveVectors

/// Deterministic pseudo-random source for test data.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double((next() >> 11) + 1) / 9_007_199_254_740_993.0 }
    mutating func gaussian() -> Float {
        Float((-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform()))
    }
    mutating func int(_ upperBound: Int) -> Int { Int(next() % UInt64(upperBound)) }
}

/// Unit vectors drawn around `clusters` random unit centres (noise norm ≈ `spread`).
func clusteredVectors(count: Int, dimensions: Int, clusters: Int, spread: Float = 1, seed: UInt64) -> [[Float]] {
    var rng = TestRandom(seed: seed)
    let centres = (0..<clusters).map { _ in
        VectorMath.normalized((0..<dimensions).map { _ in rng.gaussian() })
    }
    let sigma = spread / Float(dimensions).squareRoot()
    return (0..<count).map { _ in
        let c = centres[rng.int(clusters)]
        return VectorMath.normalized(c.map { $0 + sigma * rng.gaussian() })
    }
}

/// Brute-force reference in Double precision: (id, score) best first.
func referenceTopK(_ vectors: [Int: [Float]], _ query: [Float], k: Int, filter: (Int) -> Bool = { _ in true })
    -> [(id: Int, score: Double)]
{
    var all: [(id: Int, score: Double)] = []
    for (id, v) in vectors where filter(id) {
        var s = 0.0
        for i in 0..<v.count { s += Double(v[i]) * Double(query[i]) }
        all.append((id, s))
    }
    all.sort { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }
    return Array(all.prefix(k))
}

func recallAt(_ found: [VectorMatch], _ truth: [(id: Int, score: Double)]) -> Double {
    let expected = Set(truth.map(\.id))
    return Double(found.filter { expected.contains($0.id) }.count) / Double(max(truth.count, 1))
}

/// A fresh path under /tmp that is unique to this process and call.
func temporaryPath(_ name: String) -> String {
    let salt = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    return "/tmp/vectors-test-\(getpid())-\(salt)-\(name)"
}

func readFile(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    guard let f = fopen(path, "wb") else { return }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

func removeFile(_ path: String) { unlink(path) }
