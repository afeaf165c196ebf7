import ConclaveEval
import Foundation

/// What every fuzz target shares: property checks that end the run as a crash (libFuzzer then
/// keeps the input), the input as bytes or text, a deterministic generator for the choices a
/// target derives from its input (where to split a stream), and a bridge to async code.
public enum Fuzz {
    /// Ends the run as a crash with `message` when `condition` is false.
    public static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        guard !condition() else { return }
        fail(message(), file: file, line: line)
    }

    /// Ends the run as a crash: prints which property failed and aborts (libFuzzer's deadly
    /// signal handler writes the input to `crash-<sha1>`).
    public static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        FileHandle.standardError.write(Data("\n==fuzz== property violated (\(file):\(line)): \(message)\n".utf8))
        abort()
    }

    /// The input as bytes.
    public static func bytes(_ start: UnsafeRawPointer, _ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: start, count: count))
    }

    /// The input as text, invalid UTF-8 replaced (as the server does with a body it reads as text).
    public static func text(_ start: UnsafeRawPointer, _ count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    }

    /// Runs `body` to completion from the synchronous entry point. libFuzzer calls the target on
    /// its own thread, outside Swift's cooperative pool, so blocking that thread is safe.
    public static func blocking<T>(_ body: @escaping () async -> T) -> T {
        let box = Box<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            box.value = await body()
            done.signal()
        }
        done.wait()
        guard let value = box.value else { fail("the async body produced no value") }
        return value
    }

    /// `body`'s value, written by the task and read after the semaphore: the semaphore orders the
    /// two accesses, which is why the unchecked conformance is safe.
    private final class Box<T>: @unchecked Sendable {
        var value: T?
    }

    /// A per-process scratch directory (for parsers that read files).
    public static let scratch: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let url = URL(fileURLWithPath: base).appendingPathComponent("conclave-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Fuzz.scratch) }
        return url
    }()

    /// True when `needle` occurs in `haystack` (bytes; an empty needle never does).
    public static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }
}

/// Choices a target takes from its input (chunk boundaries, which principal asks), from a
/// generator seeded with the input's hash, so the corpus files need no binary header: the same
/// input always makes the same choices, and a mutated input others.
public struct FuzzChoices {
    private var generator: SplitMix64

    /// Seeds from the FNV-1a hash of `bytes`.
    public init(_ bytes: [UInt8]) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        generator = SplitMix64(seed: hash)
    }

    /// A number in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        Int.random(in: range, using: &generator)
    }

    /// `count` split points cutting `0..<length` into pieces (sorted, within 0...length).
    public mutating func cuts(_ length: Int, count: Int) -> [Int] {
        guard length > 0 else { return [] }
        return (0..<count).map { _ in int(in: 0...length) }.sorted()
    }
}
