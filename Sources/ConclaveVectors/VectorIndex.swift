import Dispatch
import Synchronization

/// One search hit: the caller's `id` and its similarity `score`.
///
/// `score` is the dot product between the query and the stored vector, which equals the
/// cosine similarity when both are L2-normalised. Higher is better.
public struct VectorMatch: Sendable, Hashable {
    /// Caller-supplied identifier of the stored vector.
    public var id: Int
    /// Dot product between query and stored vector (cosine similarity for unit vectors).
    public var score: Float

    /// Creates a match.
    public init(id: Int, score: Float) {
        self.id = id
        self.score = score
    }
}

/// A thread-safe collection of fixed-dimension vectors supporting top-k dot-product search.
///
/// Vectors are expected to be L2-normalised so that the dot product is the cosine
/// similarity; the index does not normalise them for you (see ``VectorMath/normalized(_:)``).
/// Searches may run concurrently with each other; mutations are serialised and exclude
/// searches while they run.
public protocol VectorIndex: Sendable {
    /// Number of components of every stored vector and query.
    var dimensions: Int { get }
    /// Number of live (not removed) vectors.
    var count: Int { get }
    /// Adds (or replaces) the vector for `id`. Vectors must have `dimensions` elements.
    ///
    /// - Throws: ``VectorIndexError`` if the vector has the wrong number of elements or
    ///   contains non-finite values.
    func add(id: Int, vector: [Float]) throws
    /// Removes the vector for `id` (no-op if absent). Removed ids never come back from search.
    func remove(id: Int)
    /// Returns up to `k` best matches, best first. A query with the wrong number of
    /// elements, or `k <= 0`, returns an empty array.
    func search(_ query: [Float], k: Int) -> [VectorMatch]
    /// Like ``search(_:k:)`` but only returns ids for which `filter` returns `true`.
    ///
    /// When at least `k` live ids pass the filter, exactly `k` results are returned, however
    /// selective the filter is. `filter` may be called many times and from the calling
    /// thread only; it must not call back into the index.
    func search(_ query: [Float], k: Int, filter: (Int) -> Bool) -> [VectorMatch]
    /// Writes the index to `path` atomically (temporary file + rename).
    func save(to path: String) throws
}

extension VectorIndex {
    /// Runs ``search(_:k:)`` for every query using up to `threads` worker threads and returns
    /// the results in query order. Intended for batch jobs and benchmarks.
    public func search(batch queries: [[Float]], k: Int, threads: Int = 1) -> [[VectorMatch]] {
        let workers = max(1, min(threads, queries.count))
        if workers == 1 {
            return queries.map { search($0, k: k) }
        }
        var results = [[VectorMatch]](repeating: [], count: queries.count)
        let next = Atomic<Int>(0)
        let chunk = 16
        results.withUnsafeMutableBufferPointer { out in
            let outBase = UncheckedSendable(out.baseAddress)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let start = next.wrappingAdd(chunk, ordering: .relaxed).oldValue
                    if start >= queries.count { break }
                    for i in start..<min(start + chunk, queries.count) {
                        outBase.value?[i] = search(queries[i], k: k)
                    }
                }
            }
        }
        return results
    }
}

/// Error thrown by index mutation and persistence.
public struct VectorIndexError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Broad category of the failure.
    public enum Kind: Sendable, Equatable {
        /// A vector or query had the wrong number of elements.
        case dimensionMismatch
        /// A vector contained NaN or infinity, or a parameter was out of range.
        case invalidArgument
        /// The file does not start with the expected magic bytes (not an index file, or the
        /// wrong index type).
        case wrongMagic
        /// The file was written by an unsupported format version.
        case unsupportedVersion
        /// The file is shorter (or longer) than its header says.
        case truncated
        /// The file failed checksum or structural validation.
        case corrupt
        /// An operating-system level I/O failure.
        case io
    }

    /// Category of the failure.
    public let kind: Kind
    /// Human-readable explanation, including the offending values or path.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The human-readable ``message``.
    public var description: String { message }
}

/// Small helpers for preparing vectors.
public enum VectorMath {
    /// Returns `vector` scaled to unit L2 norm (unchanged if its norm is zero).
    public static func normalized(_ vector: [Float]) -> [Float] {
        var sum: Double = 0
        for x in vector { sum += Double(x) * Double(x) }
        guard sum > 0 else { return vector }
        let inv = Float(1 / sum.squareRoot())
        return vector.map { $0 * inv }
    }

    /// Name of the dot-product kernel used in this process: `"avx512"`, `"avx2+fma"` or
    /// `"portable-simd"` (Swift SIMD). Set `VECTORS_KERNEL=portable` (or `avx2`) in the
    /// environment before the first search to cap it.
    public static var activeKernel: String { Kernels.name }
}

/// Wrapper for values whose cross-thread use is made safe by construction (e.g. each
/// worker writes disjoint slots of one buffer).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

@inline(__always)
func validate(_ vector: [Float], dimensions: Int) throws {
    guard vector.count == dimensions else {
        throw VectorIndexError(
            .dimensionMismatch,
            "vector has \(vector.count) elements but the index has \(dimensions) dimensions")
    }
    for x in vector where !x.isFinite {
        throw VectorIndexError(.invalidArgument, "vector contains a non-finite value (\(x))")
    }
}
