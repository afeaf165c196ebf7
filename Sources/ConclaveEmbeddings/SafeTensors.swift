import Foundation

/// An error raised while reading a `.safetensors` file.
///
/// The ``description`` always names the file and says what is wrong with it, e.g.
/// `safetensors file '/m/model.safetensors': header length 9000000 exceeds the file size (1024 bytes)`.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The category of problem, for programmatic handling.
    public enum Kind: String, Sendable, Equatable {
        /// The file does not exist or cannot be read.
        case unreadable
        /// The file is shorter than the 8-byte header-length prefix, or shorter than its header says.
        case truncated
        /// The header length prefix is zero or points past the end of the file.
        case badHeaderLength
        /// The header is not valid UTF-8 JSON of the expected shape.
        case invalidHeader
        /// A tensor's `data_offsets` are reversed, outside the data section, or disagree with its shape.
        case badOffsets
        /// A tensor uses a dtype this reader cannot convert.
        case unsupportedDType
        /// A requested tensor is not in the file.
        case missingTensor
        /// A tensor's shape differs from the one the caller expects.
        case shapeMismatch
    }

    /// The path of the offending file.
    public let path: String
    /// What went wrong, as a category.
    public let kind: Kind
    /// Human-readable detail (without the file name, which ``description`` adds).
    public let message: String

    public init(path: String, kind: Kind, message: String) {
        self.path = path
        self.kind = kind
        self.message = message
    }

    public var description: String { "safetensors file '\(path)': \(message)" }
}

/// A read-only view of a [safetensors](https://github.com/huggingface/safetensors) file.
///
/// The whole file is read into memory and its header is validated eagerly: every tensor's
/// byte range must lie inside the data section and match `shape × dtype size`. Tensor data
/// is converted to `Float` on request with ``floats(_:)`` (supported source dtypes: `F32`,
/// `F16`, `BF16`). Other dtypes (e.g. the `I64` `position_ids` buffer some BERT exports
/// carry) are listed in ``tensors`` but reading them as floats throws
/// ``SafeTensorsError/Kind/unsupportedDType``.
public struct SafeTensors: Sendable {
    /// Element type of a tensor as spelled in the header (`"F32"`, `"BF16"`, ...).
    public struct DType: Hashable, Sendable, CustomStringConvertible {
        /// The header spelling.
        public let name: String
        public init(_ name: String) { self.name = name }

        /// Size of one element in bytes, or `nil` for dtypes this reader does not know.
        public var byteSize: Int? {
            switch name {
            case "F64", "I64", "U64": return 8
            case "F32", "I32", "U32": return 4
            case "F16", "BF16", "I16", "U16": return 2
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": return 1
            default: return nil
            }
        }

        /// Whether ``SafeTensors/floats(_:)`` can convert this dtype.
        public var isReadableAsFloat: Bool { name == "F32" || name == "F16" || name == "BF16" }

        public var description: String { name }
    }

    /// Header entry of one tensor.
    public struct TensorInfo: Sendable, Equatable {
        /// Tensor name, e.g. `encoder.layer.0.attention.self.query.weight`.
        public let name: String
        /// Element type.
        public let dtype: DType
        /// Dimensions, outermost first.
        public let shape: [Int]
        /// Byte range of the data, relative to the start of the data section.
        public let dataOffsets: Range<Int>
        /// Number of elements (`shape` product; 1 for a scalar).
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// Path the file was read from.
    public let path: String
    /// The optional `__metadata__` string map from the header.
    public let metadata: [String: String]
    /// All tensors by name.
    public let tensors: [String: TensorInfo]
    /// Tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    private let bytes: Data
    private let dataStart: Int

    /// Reads and validates the file at `path`.
    /// - Throws: ``SafeTensorsError`` when the file is missing, truncated, has an impossible
    ///   header length, a malformed JSON header, or out-of-range / inconsistent tensor offsets.
    public init(path: String) throws {
        self.path = path
        func fail(_ kind: SafeTensorsError.Kind, _ message: String) -> SafeTensorsError {
            SafeTensorsError(path: path, kind: kind, message: message)
        }

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw fail(.unreadable, "file does not exist")
        }
        guard !isDirectory.boolValue else { throw fail(.unreadable, "path is a directory, not a file") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: [.mappedIfSafe])
        } catch {
            throw fail(.unreadable, "cannot read file (\(error.localizedDescription))")
        }
        let bytes = data
        let fileSize = bytes.count
        guard fileSize >= 8 else {
            throw fail(.truncated, "file is \(fileSize) bytes, too short for the 8-byte header length prefix")
        }
        var headerLength64: UInt64 = 0
        for i in 0..<8 { headerLength64 |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        guard headerLength64 > 0 else { throw fail(.badHeaderLength, "header length is 0") }
        guard headerLength64 <= UInt64(fileSize - 8) else {
            throw fail(.badHeaderLength, "header length \(headerLength64) exceeds the file size (\(fileSize) bytes; at most \(fileSize - 8) available after the prefix)")
        }
        let headerLength = Int(headerLength64)
        let dataStart = 8 + headerLength
        let dataSize = fileSize - dataStart

        let headerBytes = Data(bytes[(bytes.startIndex + 8)..<(bytes.startIndex + dataStart)])
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerBytes, options: [])
        } catch {
            let preview = String(decoding: headerBytes.prefix(60), as: UTF8.self)
            throw fail(.invalidHeader, "header is not valid JSON (\(headerLength) bytes starting \(preview.debugDescription))")
        }
        guard let object = parsed as? [String: Any] else {
            throw fail(.invalidHeader, "header JSON is not an object")
        }

        var metadata: [String: String] = [:]
        var tensors: [String: TensorInfo] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw fail(.invalidHeader, "__metadata__ is not an object")
                }
                for (key, entry) in map {
                    guard let string = entry as? String else {
                        throw fail(.invalidHeader, "__metadata__ value for '\(key)' is not a string")
                    }
                    metadata[key] = string
                }
                continue
            }
            guard let entry = value as? [String: Any] else {
                throw fail(.invalidHeader, "entry for tensor '\(name)' is not an object")
            }
            guard let dtypeName = entry["dtype"] as? String else {
                throw fail(.invalidHeader, "tensor '\(name)' has no string 'dtype'")
            }
            guard let shapeValues = entry["shape"] as? [Any] else {
                throw fail(.invalidHeader, "tensor '\(name)' has no 'shape' array")
            }
            var shape: [Int] = []
            for dim in shapeValues {
                guard let d = Self.integer(dim), d >= 0 else {
                    throw fail(.invalidHeader, "tensor '\(name)' has an invalid dimension \(dim) in its shape")
                }
                shape.append(d)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = Self.integer(offsets[0]), let end = Self.integer(offsets[1]) else {
                throw fail(.invalidHeader, "tensor '\(name)' has no 'data_offsets' pair of integers")
            }
            guard begin >= 0, begin <= end else {
                throw fail(.badOffsets, "tensor '\(name)' has data_offsets [\(begin), \(end)] that are negative or reversed")
            }
            guard end <= dataSize else {
                throw fail(.badOffsets, "tensor '\(name)' has data_offsets [\(begin), \(end)] beyond the data section (\(dataSize) bytes); the file may be truncated")
            }
            let dtype = DType(dtypeName)
            if let elementSize = dtype.byteSize {
                var count = 1
                for d in shape {
                    let (product, overflow) = count.multipliedReportingOverflow(by: d)
                    guard !overflow else { throw fail(.invalidHeader, "tensor '\(name)' shape \(shape) overflows") }
                    count = product
                }
                let (expected, overflow) = count.multipliedReportingOverflow(by: elementSize)
                guard !overflow, expected == end - begin else {
                    throw fail(.badOffsets, "tensor '\(name)' (\(dtypeName) \(shape)) needs \(count) × \(elementSize) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
                }
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
        }

        self.metadata = metadata
        self.tensors = tensors
        self.bytes = bytes
        self.dataStart = dataStart
    }

    private static func integer(_ value: Any) -> Int? {
        if let n = value as? NSNumber {
            // Reject non-integral and absurdly large numbers.
            let d = n.doubleValue
            guard d.rounded() == d, abs(d) < 9.0e15 else { return nil }
            return n.intValue
        }
        return nil
    }

    /// Header entry for `name`.
    /// - Throws: ``SafeTensorsError/Kind/missingTensor`` if absent.
    public func info(_ name: String) throws -> TensorInfo {
        guard let info = tensors[name] else {
            throw SafeTensorsError(path: path, kind: .missingTensor, message: "tensor '\(name)' not found (file has \(tensors.count) tensors)")
        }
        return info
    }

    /// The tensor's elements converted to `Float`, in row-major order.
    /// - Throws: ``SafeTensorsError`` if the tensor is missing or its dtype is not `F32`, `F16` or `BF16`.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        let count = info.elementCount
        let base = dataStart + info.dataOffsets.lowerBound
        switch info.dtype.name {
        case "F32":
            return bytes.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if let destination = buffer.baseAddress, let source = raw.baseAddress, count > 0 {
                        UnsafeMutableRawPointer(destination).copyMemory(from: source + base, byteCount: 4 * count)
                    }
                    #if _endian(big)
                    for i in 0..<count { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
                    #endif
                    initialized = count
                }
            }
        case "F16":
            return bytes.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count {
                        let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self))
                        buffer[i] = Self.halfToFloat(bits)
                    }
                    initialized = count
                }
            }
        case "BF16":
            return bytes.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for i in 0..<count {
                        let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: base + 2 * i, as: UInt16.self))
                        buffer[i] = Float(bitPattern: UInt32(bits) << 16)
                    }
                    initialized = count
                }
            }
        default:
            throw SafeTensorsError(path: path, kind: .unsupportedDType,
                                   message: "tensor '\(name)' has unsupported dtype '\(info.dtype.name)' (readable as float: F32, F16, BF16)")
        }
    }

    /// Like ``floats(_:)`` but also checks the shape.
    /// - Throws: ``SafeTensorsError/Kind/shapeMismatch`` if the shape differs from `shape`.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let info = try info(name)
        guard info.shape == shape else {
            throw SafeTensorsError(path: path, kind: .shapeMismatch,
                                   message: "tensor '\(name)' has shape \(info.shape), expected \(shape)")
        }
        return try floats(name)
    }

    /// IEEE 754 binary16 → binary32, exact (portable; does not need `Float16`).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa × 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
