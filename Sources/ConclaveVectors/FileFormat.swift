#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Distinguishes temporary files of concurrent saves within one process.
private enum SaveCounter {
    static let next = Atomic<Int>(0)
}

// On-disk layout shared by both index types (all integers little-endian):
//
//   magic      8 bytes   ("SVECEXCT" or "SVECHNSW")
//   version    UInt32
//   fieldCount UInt32    number of UInt64 header fields that follow
//   fields     UInt64 x fieldCount
//   sections   raw arrays, sizes derived from the header fields
//   checksum   UInt64    hash of every byte before it
//
// Loaders compute the exact expected file size from the header (overflow-checked) before
// allocating anything, verify the checksum, then validate the structure.

enum FileFormat {
    static let exactMagic: [UInt8] = Array("SVECEXCT".utf8)
    static let hnswMagic: [UInt8] = Array("SVECHNSW".utf8)
    static let preambleSize = 16

    static func kindName(ofMagic magic: [UInt8]) -> String? {
        if magic == exactMagic { return "an ExactIndex file" }
        if magic == hnswMagic { return "an HNSWIndex file" }
        return nil
    }
}

/// Streaming 64-bit checksum (four independent multiply-rotate lanes over 32-byte blocks,
/// several GB/s). The result does not depend on how the input is split into `update` calls.
struct StreamingChecksum {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private var h0 = p1 &+ p2, h1 = p2, h2: UInt64 = 0, h3 = 0 &- p1
    private var pending = [UInt8](repeating: 0, count: 32)
    private var pendingCount = 0
    private var total = 0

    @inline(__always)
    private static func round(_ h: UInt64, _ w: UInt64) -> UInt64 {
        let x = h &+ w &* p2
        return ((x << 31) | (x >> 33)) &* p1
    }

    @inline(__always)
    private mutating func block(_ p: UnsafeRawPointer) {
        h0 = Self.round(h0, UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
        h1 = Self.round(h1, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        h2 = Self.round(h2, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        h3 = Self.round(h3, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }

    mutating func update(_ p: UnsafeRawPointer, _ n: Int) {
        total &+= n
        var i = 0
        if pendingCount > 0 {
            let take = min(32 - pendingCount, n)
            for j in 0..<take { pending[pendingCount + j] = p.load(fromByteOffset: j, as: UInt8.self) }
            pendingCount += take
            i = take
            if pendingCount < 32 { return }
            pending.withUnsafeBytes { if let b = $0.baseAddress { block(b) } }
            pendingCount = 0
        }
        while i &+ 32 <= n {
            block(p + i)
            i &+= 32
        }
        for j in i..<n { pending[j - i] = p.load(fromByteOffset: j, as: UInt8.self) }
        pendingCount = n - i
    }

    func finalize() -> UInt64 {
        var h = ((h0 << 1) | (h0 >> 63)) &+ ((h1 << 7) | (h1 >> 57))
            &+ ((h2 << 12) | (h2 >> 52)) &+ ((h3 << 18) | (h3 >> 46))
        for j in 0..<pendingCount { h = Self.round(h, UInt64(pending[j])) }
        h ^= UInt64(truncatingIfNeeded: total)
        h = (h ^ (h >> 33)) &* Self.p2
        return h ^ (h >> 29)
    }
}

private func errnoMessage() -> String {
    String(cString: strerror(errno))
}

/// Writes an index file to `<path>.tmp-<pid>` and renames it over `path` on success.
struct IndexFileWriter {
    private let path: String
    private let tempPath: String
    private var fd: Int32
    private var hash = StreamingChecksum()
    private var finished = false

    init(path: String, magic: [UInt8], version: UInt32, fields: [UInt64]) throws {
        #if _endian(big)
        throw VectorIndexError(.io, "index files are little-endian; big-endian hosts are not supported")
        #else
        self.path = path
        let serial = SaveCounter.next.wrappingAdd(1, ordering: .relaxed).oldValue
        tempPath = "\(path).tmp-\(getpid())-\(serial)"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw VectorIndexError(.io, "cannot create '\(tempPath)': \(errnoMessage())")
        }
        var preamble = magic
        withUnsafeBytes(of: version.littleEndian) { preamble.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(fields.count).littleEndian) { preamble.append(contentsOf: $0) }
        let encodedFields = fields.map { $0.littleEndian }
        do {
            try preamble.withUnsafeBytes { try write($0.baseAddress, $0.count) }
            try encodedFields.withUnsafeBytes { try write($0.baseAddress, $0.count) }
        } catch {
            abandon()
            throw error
        }
        #endif
    }

    /// Appends `count` elements starting at `pointer` (contiguous, native = little-endian).
    mutating func write<T: BitwiseCopyable>(_ pointer: UnsafePointer<T>, count: Int) throws {
        try write(UnsafeRawPointer(pointer), count &* MemoryLayout<T>.stride)
    }

    mutating func write(_ p: UnsafeRawPointer?, _ n: Int) throws {
        guard n > 0, let p else { return }
        hash.update(p, n)
        var done = 0
        while done < n {
            let r = Glibc_write(fd, p + done, n - done)
            if r < 0 {
                if errno == EINTR { continue }
                let message = errnoMessage()
                abandon()
                throw VectorIndexError(.io, "cannot write '\(tempPath)': \(message)")
            }
            done += r
        }
    }

    /// Appends `count` fixed-size rows gathered from arbitrary addresses (staged in ~1 MiB
    /// chunks), e.g. vectors stored inside larger per-node records.
    mutating func writeRows(count: Int, rowBytes: Int, row: (Int) -> UnsafeRawPointer) throws {
        guard count > 0, rowBytes > 0 else { return }
        let chunkRows = max(1, (1 << 20) / rowBytes)
        let staging = UnsafeMutableRawPointer.allocate(byteCount: chunkRows * rowBytes, alignment: 64)
        defer { staging.deallocate() }
        var r = 0
        while r < count {
            let m = min(chunkRows, count - r)
            for j in 0..<m { (staging + j * rowBytes).copyMemory(from: row(r + j), byteCount: rowBytes) }
            try write(UnsafeRawPointer(staging), m * rowBytes)
            r += m
        }
    }

    /// Writes the checksum trailer, flushes to disk and atomically replaces `path`.
    mutating func finish() throws {
        var trailer = hash.finalize().littleEndian
        try withUnsafeBytes(of: &trailer) { try write($0.baseAddress, 8) }
        if fsync(fd) != 0 {
            let message = errnoMessage()
            abandon()
            throw VectorIndexError(.io, "cannot flush '\(tempPath)': \(message)")
        }
        close(fd)
        fd = -1
        if rename(tempPath, path) != 0 {
            let message = errnoMessage()
            unlink(tempPath)
            throw VectorIndexError(.io, "cannot rename '\(tempPath)' to '\(path)': \(message)")
        }
        finished = true
    }

    /// Closes and deletes the temporary file (call on any failure path).
    mutating func abandon() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        if !finished { unlink(tempPath) }
    }
}

@inline(__always)
private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, p, n)
    #elseif canImport(Musl)
    return Musl.write(fd, p, n)
    #else
    return Glibc.write(fd, p, n)
    #endif
}

/// Reads and validates an index file written by `IndexFileWriter`.
struct IndexFileReader {
    let path: String
    let fileSize: Int
    private(set) var version: UInt32
    private(set) var fields: [UInt64]
    private var fd: Int32
    private var offset: Int
    private var hash = StreamingChecksum()

    init(path: String, magic expectedMagic: [UInt8], supportedVersion: UInt32, typeName: String) throws {
        #if _endian(big)
        throw VectorIndexError(.io, "index files are little-endian; big-endian hosts are not supported")
        #else
        self.path = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw VectorIndexError(.io, "cannot open '\(path)': \(errnoMessage())")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = errnoMessage()
            closeFD(fd)
            throw VectorIndexError(.io, "cannot stat '\(path)': \(message)")
        }
        fileSize = Int(st.st_size)
        offset = 0
        version = 0
        fields = []
        do {
            guard fileSize >= FileFormat.preambleSize else {
                throw VectorIndexError(
                    .truncated,
                    "'\(path)' is truncated: \(fileSize) bytes is shorter than the \(FileFormat.preambleSize)-byte header")
            }
            var preamble = [UInt8](repeating: 0, count: FileFormat.preambleSize)
            try preamble.withUnsafeMutableBytes { try readRaw($0.baseAddress, $0.count, what: "header") }
            let magic = Array(preamble[0..<8])
            guard magic == expectedMagic else {
                if let other = FileFormat.kindName(ofMagic: magic) {
                    throw VectorIndexError(.wrongMagic, "'\(path)' is \(other), not \(typeName) file")
                }
                throw VectorIndexError(.wrongMagic, "'\(path)' is not \(typeName) file (wrong magic bytes)")
            }
            let v = preamble.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
            guard v == supportedVersion else {
                throw VectorIndexError(
                    .unsupportedVersion,
                    "'\(path)' has format version \(v); this build reads version \(supportedVersion)")
            }
            version = v
            let fieldCount = Int(preamble.withUnsafeBytes {
                UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            })
            guard fieldCount <= 64 else {
                throw VectorIndexError(.corrupt, "'\(path)' is corrupt: implausible header field count \(fieldCount)")
            }
            var f = [UInt64](repeating: 0, count: fieldCount)
            try f.withUnsafeMutableBytes { try readRaw($0.baseAddress, $0.count, what: "header") }
            fields = f.map { UInt64(littleEndian: $0) }
        } catch {
            closeFD(fd)
            throw error
        }
        #endif
    }

    /// Number of bytes consumed so far (header included).
    var position: Int { offset }

    /// Verifies that header + `payloadBytes` + trailer is exactly the file size.
    mutating func expectPayload(bytes payloadBytes: Int) throws {
        let (withTrailer, o1) = payloadBytes.addingReportingOverflow(8)
        let (expected, o2) = offset.addingReportingOverflow(withTrailer)
        if o1 || o2 {
            throw VectorIndexError(.corrupt, "'\(path)' is corrupt: header describes an impossibly large index")
        }
        if fileSize < expected {
            throw VectorIndexError(
                .truncated, "'\(path)' is truncated: \(fileSize) bytes, header requires \(expected)")
        }
        if fileSize > expected {
            throw VectorIndexError(
                .corrupt, "'\(path)' is corrupt: \(fileSize - expected) unexpected trailing bytes")
        }
    }

    mutating func read<T: BitwiseCopyable>(into pointer: UnsafeMutablePointer<T>, count: Int, what: String) throws {
        try readRaw(UnsafeMutableRawPointer(pointer), count &* MemoryLayout<T>.stride, what: what)
    }

    private mutating func readRaw(_ p: UnsafeMutableRawPointer?, _ n: Int, what: String) throws {
        guard n > 0, let p else { return }
        guard n <= fileSize - offset else {
            throw VectorIndexError(.truncated, "'\(path)' is truncated while reading \(what)")
        }
        var done = 0
        while done < n {
            let r = Glibc_read(fd, p + done, n - done)
            if r < 0 {
                if errno == EINTR { continue }
                throw VectorIndexError(.io, "cannot read '\(path)': \(errnoMessage())")
            }
            if r == 0 {
                throw VectorIndexError(.truncated, "'\(path)' is truncated while reading \(what)")
            }
            done += r
        }
        hash.update(UnsafeRawPointer(p), n)
        offset += n
    }

    /// Reads `count` fixed-size rows and scatters them to arbitrary addresses.
    mutating func readRows(count: Int, rowBytes: Int, what: String, row: (Int) -> UnsafeMutableRawPointer) throws {
        guard count > 0, rowBytes > 0 else { return }
        let chunkRows = max(1, (1 << 20) / rowBytes)
        let staging = UnsafeMutableRawPointer.allocate(byteCount: chunkRows * rowBytes, alignment: 64)
        defer { staging.deallocate() }
        var r = 0
        while r < count {
            let m = min(chunkRows, count - r)
            try readRaw(staging, m * rowBytes, what: what)
            for j in 0..<m { row(r + j).copyMemory(from: staging + j * rowBytes, byteCount: rowBytes) }
            r += m
        }
    }

    /// Reads the trailer and compares it with the checksum of everything read; closes the file.
    mutating func finish() throws {
        defer { closeFD(fd); fd = -1 }
        let computed = hash.finalize()
        var stored: UInt64 = 0
        try withUnsafeMutableBytes(of: &stored) { try readRaw($0.baseAddress, 8, what: "checksum") }
        guard UInt64(littleEndian: stored) == computed else {
            throw VectorIndexError(.corrupt, "'\(path)' is corrupt: checksum mismatch")
        }
    }

    /// Closes the file after a failure.
    mutating func close() {
        if fd >= 0 {
            closeFD(fd)
            fd = -1
        }
    }

    func corrupt(_ detail: String) -> VectorIndexError {
        VectorIndexError(.corrupt, "'\(path)' is corrupt: \(detail)")
    }
}

@inline(__always)
private func closeFD(_ fd: Int32) {
    #if canImport(Darwin)
    _ = Darwin.close(fd)
    #elseif canImport(Musl)
    _ = Musl.close(fd)
    #else
    _ = Glibc.close(fd)
    #endif
}

@inline(__always)
private func Glibc_read(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.read(fd, p, n)
    #elseif canImport(Musl)
    return Musl.read(fd, p, n)
    #else
    return Glibc.read(fd, p, n)
    #endif
}

/// Overflow-checked product of non-negative sizes; nil on overflow.
func checkedProduct(_ values: Int...) -> Int? {
    var result = 1
    for v in values {
        guard v >= 0 else { return nil }
        let (r, o) = result.multipliedReportingOverflow(by: v)
        if o { return nil }
        result = r
    }
    return result
}

/// Overflow-checked sum; nil on overflow.
func checkedSum(_ values: Int...) -> Int? {
    var result = 0
    for v in values {
        let (r, o) = result.addingReportingOverflow(v)
        if o { return nil }
        result = r
    }
    return result
}
