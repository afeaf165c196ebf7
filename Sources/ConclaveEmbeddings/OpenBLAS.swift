#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// OpenBLAS, loaded at run time with `dlopen` (no link-time dependency).
///
/// Why `dlopen` rather than linking: OpenBLAS picks its kernels in a library constructor,
/// and Debian's 0.3.21 misdetects recent Xeons (it reports "Prescott" and runs SSE3 kernels
/// at ~1/5 of the speed). The only override is the `OPENBLAS_CORETYPE` environment variable,
/// which must be set *before* the library initialises. Loading it ourselves lets us set that
/// variable from the CPU's actual features (when the user has not set it), and lets the
/// embedder fall back to its portable Swift kernels when OpenBLAS is not installed.
///
/// Environment:
/// - `MINILM_GEMM=swift` disables OpenBLAS (forces the Swift kernels).
/// - `OPENBLAS_CORETYPE` / `OPENBLAS_NUM_THREADS` set by the user are respected as they are;
///   otherwise they are set (to the detected core type and 1) only for the `dlopen` call.
final class OpenBLAS: @unchecked Sendable {  // immutable after init; function pointers only
    typealias SgemmFn = @convention(c) (
        Int32, Int32, Int32, Int32, Int32, Int32, Float,
        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32, Float,
        UnsafeMutablePointer<Float>?, Int32
    ) -> Void
    typealias SetThreadsFn = @convention(c) (Int32) -> Void
    typealias CoreNameFn = @convention(c) () -> UnsafeMutablePointer<CChar>?

    // CBLAS enum values.
    static let rowMajor: Int32 = 101
    static let noTrans: Int32 = 111
    static let trans: Int32 = 112

    private let sgemmFn: SgemmFn
    /// OpenBLAS's name for the kernel set in use (e.g. "SkylakeX").
    let coreName: String
    /// The shared object that was loaded.
    let libraryName: String

    /// The process-wide instance, or `nil` when OpenBLAS is unavailable or disabled.
    static let shared: OpenBLAS? = load()

    private init(sgemm: @escaping SgemmFn, coreName: String, libraryName: String) {
        self.sgemmFn = sgemm
        self.coreName = coreName
        self.libraryName = libraryName
    }

    private static func load() -> OpenBLAS? {
        let environment = ProcessInfo.processInfo.environment
        if let choice = environment["MINILM_GEMM"]?.lowercased(), choice == "swift" || choice == "none" {
            return nil
        }
        let candidates = ["libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "libopenblas.dylib"]

        // Already loaded by someone else: its kernels are fixed, use it as it is.
        var handle: UnsafeMutableRawPointer?
        var loadedName = ""
        for name in candidates {
            if let h = dlopen(name, RTLD_NOW | RTLD_NOLOAD) { handle = h; loadedName = name; break }
        }
        if handle == nil {
            // OpenBLAS reads both variables once, in its constructor; they are removed again
            // afterwards so child processes do not inherit them.
            let coretype = environment["OPENBLAS_CORETYPE"] == nil ? detectCoreType() : nil
            if let coretype { setenv("OPENBLAS_CORETYPE", coretype, 1) }
            // One thread: no idle OpenBLAS worker threads spinning beside the embedder's own.
            let setThreads = environment["OPENBLAS_NUM_THREADS"] == nil
            if setThreads { setenv("OPENBLAS_NUM_THREADS", "1", 1) }
            for name in candidates {
                if let h = dlopen(name, RTLD_NOW | RTLD_LOCAL) { handle = h; loadedName = name; break }
            }
            if coretype != nil { unsetenv("OPENBLAS_CORETYPE") }
            if setThreads { unsetenv("OPENBLAS_NUM_THREADS") }
        }
        guard let handle, let sgemm = dlsym(handle, "cblas_sgemm") else { return nil }
        if let setThreads = dlsym(handle, "openblas_set_num_threads") {
            // The embedder parallelises across batches itself; each GEMM runs on its caller's thread.
            unsafeBitCast(setThreads, to: SetThreadsFn.self)(1)
        }
        var coreName = "unknown"
        if let sym = dlsym(handle, "openblas_get_corename"),
           let cString = unsafeBitCast(sym, to: CoreNameFn.self)() {
            coreName = String(cString: cString)
        }
        return OpenBLAS(sgemm: unsafeBitCast(sgemm, to: SgemmFn.self), coreName: coreName, libraryName: loadedName)
    }

    /// Picks an OpenBLAS core type from `/proc/cpuinfo` flags (which the kernel only reports
    /// when the OS also enables the register state), or `nil` to leave detection to OpenBLAS.
    static func detectCoreType() -> String? {
        #if arch(x86_64)
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else {
            return nil
        }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if ["avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"].allSatisfy(flags.contains) {
            return "SkylakeX"
        }
        if ["avx2", "fma"].allSatisfy(flags.contains) {
            return "Haswell"
        }
        #endif
        return nil
    }

    /// `C = alpha · A · Bᵀ + beta · C`, row-major: A is M×K (lda), B is N×K (ldb), C is M×N (ldc).
    @inline(__always)
    func gemmABt(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float) {
        sgemmFn(Self.rowMajor, Self.noTrans, Self.trans, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C = alpha · Aᵀ · B + beta · C`, row-major: A is stored K×M (lda), B is K×N (ldb), C is M×N (ldc).
    @inline(__always)
    func gemmAtB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float) {
        sgemmFn(Self.rowMajor, Self.trans, Self.noTrans, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C = alpha · A · B + beta · C`, row-major: A is M×K (lda), B is K×N (ldb), C is M×N (ldc).
    @inline(__always)
    func gemmAB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float) {
        sgemmFn(Self.rowMajor, Self.noTrans, Self.noTrans, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
