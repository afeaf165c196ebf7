#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// pthread reader-writer lock: many concurrent readers (searches) or one writer.
final class ReadWriteLock: @unchecked Sendable {
    private let handle: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        handle = .allocate(capacity: 1)
        handle.initialize(to: pthread_rwlock_t())
        #if canImport(Glibc)
        // Prefer writers so a steady stream of searches cannot starve add/remove.
        var attr = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attr)
        pthread_rwlockattr_setkind_np(&attr, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(handle, &attr)
        pthread_rwlockattr_destroy(&attr)
        #else
        pthread_rwlock_init(handle, nil)
        #endif
    }

    deinit {
        pthread_rwlock_destroy(handle)
        handle.deallocate()
    }

    @inline(__always)
    func withReadLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_rdlock(handle)
        defer { pthread_rwlock_unlock(handle) }
        return try body()
    }

    @inline(__always)
    func withWriteLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_rwlock_wrlock(handle)
        defer { pthread_rwlock_unlock(handle) }
        return try body()
    }
}

/// Manually managed contiguous buffer of trivial values (no ARC, no bounds checks in hot
/// loops). The owner must call `deallocate()` exactly once.
struct RawBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count: Int = 0
    private(set) var capacity: Int

    init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    func deallocate() { base.deallocate() }

    mutating func reserve(_ minimumCapacity: Int) {
        guard minimumCapacity > capacity else { return }
        let newCapacity = max(minimumCapacity, capacity &* 2)
        let newBase = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Appends `n` copies of `value`; returns the index of the first appended element.
    @discardableResult
    mutating func append(repeating value: Element, count n: Int) -> Int {
        reserve(count + n)
        (base + count).initialize(repeating: value, count: n)
        let start = count
        count += n
        return start
    }

    @discardableResult
    mutating func append(contentsOf source: UnsafePointer<Element>, count n: Int) -> Int {
        reserve(count + n)
        (base + count).update(from: source, count: n)
        let start = count
        count += n
        return start
    }

    /// Appends one element (fast path for the heaps' hot loops).
    @inline(__always)
    mutating func append(_ value: Element) {
        if count == capacity { reserve(count + 1) }
        (base + count).initialize(to: value)
        count &+= 1
    }

    mutating func removeLast(_ n: Int) { count -= n }
    mutating func removeAll() { count = 0 }

    @inline(__always) subscript(i: Int) -> Element {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }
}

/// (score, node) pair stored in the search heaps.
struct Scored {
    var score: Float
    var node: Int32
}

/// Binary heap of `Scored` with the *highest* score on top (allocation-free once warm).
struct MaxHeap {
    private(set) var storage: RawBuffer<Scored>
    init(capacity: Int) { storage = RawBuffer(capacity: capacity) }
    func deallocate() { storage.deallocate() }
    var count: Int { @inline(__always) get { storage.count } }
    var isEmpty: Bool { @inline(__always) get { storage.count == 0 } }
    var top: Scored { @inline(__always) get { storage.base[0] } }
    @inline(__always) mutating func removeAll() { storage.removeAll() }

    @inline(__always)
    mutating func push(_ item: Scored) {
        storage.append(item)
        let h = storage.base
        var i = storage.count &- 1
        while i > 0 {
            let parent = (i &- 1) >> 1
            if h[parent].score >= item.score { break }
            h[i] = h[parent]
            i = parent
        }
        h[i] = item
    }

    @inline(__always)
    mutating func pop() -> Scored {
        let h = storage.base
        let result = h[0]
        let last = h[storage.count &- 1]
        storage.removeLast(1)
        let n = storage.count
        if n > 0 {
            var i = 0
            while true {
                var child = 2 &* i &+ 1
                if child >= n { break }
                if child &+ 1 < n && h[child &+ 1].score > h[child].score { child &+= 1 }
                if h[child].score <= last.score { break }
                h[i] = h[child]
                i = child
            }
            h[i] = last
        }
        return result
    }
}

/// Binary heap of `Scored` with the *lowest* score on top (the worst of a top-k set).
struct MinHeap {
    private(set) var storage: RawBuffer<Scored>
    init(capacity: Int) { storage = RawBuffer(capacity: capacity) }
    func deallocate() { storage.deallocate() }
    var count: Int { @inline(__always) get { storage.count } }
    var isEmpty: Bool { @inline(__always) get { storage.count == 0 } }
    var top: Scored { @inline(__always) get { storage.base[0] } }
    @inline(__always) mutating func removeAll() { storage.removeAll() }

    @inline(__always)
    mutating func push(_ item: Scored) {
        storage.append(item)
        let h = storage.base
        var i = storage.count &- 1
        while i > 0 {
            let parent = (i &- 1) >> 1
            if h[parent].score <= item.score { break }
            h[i] = h[parent]
            i = parent
        }
        h[i] = item
    }

    @inline(__always)
    @discardableResult
    mutating func pop() -> Scored {
        let h = storage.base
        let result = h[0]
        let last = h[storage.count &- 1]
        storage.removeLast(1)
        let n = storage.count
        if n > 0 {
            var i = 0
            while true {
                var child = 2 &* i &+ 1
                if child >= n { break }
                if child &+ 1 < n && h[child &+ 1].score < h[child].score { child &+= 1 }
                if h[child].score >= last.score { break }
                h[i] = h[child]
                i = child
            }
            h[i] = last
        }
        return result
    }

    /// Replaces the top (worst) element and restores the heap property.
    @inline(__always)
    mutating func replaceTop(_ item: Scored) {
        let h = storage.base
        let n = storage.count
        var i = 0
        while true {
            var child = 2 &* i &+ 1
            if child >= n { break }
            if child &+ 1 < n && h[child &+ 1].score < h[child].score { child &+= 1 }
            if h[child].score >= item.score { break }
            h[i] = h[child]
            i = child
        }
        h[i] = item
    }

    /// Elements sorted best (highest score) first; ties broken by node for determinism.
    func sortedDescending() -> [Scored] {
        UnsafeBufferPointer(start: storage.base, count: storage.count).sorted {
            $0.score != $1.score ? $0.score > $1.score : $0.node < $1.node
        }
    }
}

/// Bounded top-k collector over arbitrary `Int` payloads (used by exact search).
struct TopK {
    private var heap: MinHeap
    let k: Int
    init(k: Int) {
        self.k = k
        heap = MinHeap(capacity: k + 1)
    }
    func deallocate() { heap.deallocate() }
    /// Score a candidate must exceed to enter (−∞ until k items are held).
    var threshold: Float { heap.count < k ? -.infinity : heap.top.score }
    var count: Int { heap.count }

    @inline(__always)
    mutating func insert(score: Float, row: Int32) {
        if heap.count < k {
            heap.push(Scored(score: score, node: row))
        } else if score > heap.top.score {
            heap.replaceTop(Scored(score: score, node: row))
        }
    }

    func sortedDescending() -> [Scored] { heap.sortedDescending() }
}

/// SplitMix64: small, fast, deterministic generator (level assignment).
struct SplitMix64 {
    var state: UInt64
    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform double in (0, 1].
    mutating func nextUnitInterval() -> Double {
        Double((next() >> 11) &+ 1) * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// Fixed-stride, 64-byte-aligned records (one per graph node), grown by doubling.
/// The owner must call `deallocate()` exactly once.
struct NodeStore {
    private(set) var base: UnsafeMutableRawPointer
    let stride: Int
    private(set) var count = 0
    private(set) var capacity: Int

    init(stride: Int, capacity: Int) {
        self.stride = stride
        self.capacity = max(1, capacity)
        base = .allocate(byteCount: self.capacity * stride, alignment: 64)
    }

    func deallocate() { base.deallocate() }

    /// Appends one zero-filled record and returns its index.
    mutating func appendZeroed() -> Int {
        if count == capacity {
            let newCapacity = capacity * 2
            let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity * stride, alignment: 64)
            newBase.copyMemory(from: base, byteCount: count * stride)
            base.deallocate()
            base = newBase
            capacity = newCapacity
        }
        (base + count * stride).initializeMemory(as: UInt8.self, repeating: 0, count: stride)
        count += 1
        return count - 1
    }

    mutating func removeAll() { count = 0 }

    @inline(__always) func record(_ i: Int) -> UnsafeMutableRawPointer { base + i &* stride }
}
