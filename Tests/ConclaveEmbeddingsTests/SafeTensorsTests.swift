import ConclaveEmbeddings
import Foundation
import Testing

/// Builds a safetensors file: 8-byte little-endian header length, header JSON, data.
private func safetensorsBytes(header: String, data: [UInt8], declaredHeaderLength: UInt64? = nil) -> Data {
    let headerBytes = Array(header.utf8)
    var length = declaredHeaderLength ?? UInt64(headerBytes.count)
    var bytes = Data()
    withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }  // x86_64/arm64: little-endian
    bytes.append(contentsOf: headerBytes)
    bytes.append(contentsOf: data)
    return bytes
}

private func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v -> [UInt8] in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

/// Writes `contents` to a file in a fresh temp dir, runs `body` with its path, cleans up.
private func withFile<T>(_ contents: Data, _ body: (String) throws -> T) throws -> T {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("test.safetensors").path
    try contents.write(to: URL(fileURLWithPath: path))
    return try body(path)
}

/// Expects `body` to throw a SafeTensorsError of `kind` whose description names `path` and contains `fragment`.
private func expectError(_ kind: SafeTensorsError.Kind, _ fragment: String, path: String,
                         sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected SafeTensorsError.\(kind)", sourceLocation: sourceLocation)
    } catch let error as SafeTensorsError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(path), "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("SafeTensors loader")
struct SafeTensorsTests {
    @Test("reads F32, F16 and BF16 tensors, shapes and metadata")
    func readsValidFile() throws {
        let f32 = floatBytes([1, -2.5, 3, 0.125])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x35]  // 1.0, -2.0, 0.3125
        let bf16: [UInt8] = [0x80, 0x3F, 0x40, 0xC0]              // 1.0, -3.0
        let header = """
            {"__metadata__":{"format":"pt"},
             "a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},
             "h":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},
             "b":{"dtype":"BF16","shape":[2],"data_offsets":[22,26]},
             "i":{"dtype":"I64","shape":[1],"data_offsets":[26,34]}}
            """
        try withFile(safetensorsBytes(header: header, data: f32 + f16 + bf16 + [UInt8](repeating: 0, count: 8))) { path in
            let st = try SafeTensors(path: path)
            #expect(st.metadata == ["format": "pt"])
            #expect(st.names == ["a", "b", "h", "i"])
            #expect(try st.info("a").shape == [2, 2])
            #expect(try st.floats("a") == [1, -2.5, 3, 0.125])
            #expect(try st.floats("a", shape: [2, 2]).count == 4)
            #expect(try st.floats("h") == [1, -2, 0.3125])
            #expect(try st.floats("b") == [1, -3])
        }
    }

    @Test("missing file")
    func missingFile() {
        let path = "/nonexistent-dir/model.safetensors"
        expectError(.unreadable, "does not exist", path: path) { _ = try SafeTensors(path: path) }
    }

    @Test("file shorter than the header length prefix")
    func truncatedPrefix() throws {
        try withFile(Data([1, 2, 3, 4, 5])) { path in
            expectError(.truncated, "too short", path: path) { _ = try SafeTensors(path: path) }
        }
    }

    @Test("header length beyond the end of the file")
    func headerLengthBeyondFile() throws {
        try withFile(safetensorsBytes(header: "{}", data: [], declaredHeaderLength: 1_000_000)) { path in
            expectError(.badHeaderLength, "exceeds the file size", path: path) { _ = try SafeTensors(path: path) }
        }
        try withFile(safetensorsBytes(header: "", data: [1, 2, 3], declaredHeaderLength: 0)) { path in
            expectError(.badHeaderLength, "header length is 0", path: path) { _ = try SafeTensors(path: path) }
        }
    }

    @Test("header that is not JSON, or not an object")
    func invalidJSON() throws {
        try withFile(safetensorsBytes(header: "{\"a\": {\"dtype\": ", data: [])) { path in
            expectError(.invalidHeader, "not valid JSON", path: path) { _ = try SafeTensors(path: path) }
        }
        try withFile(safetensorsBytes(header: "[1, 2, 3]", data: [])) { path in
            expectError(.invalidHeader, "not an object", path: path) { _ = try SafeTensors(path: path) }
        }
        try withFile(safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1]}}"#, data: floatBytes([1]))) { path in
            expectError(.invalidHeader, "data_offsets", path: path) { _ = try SafeTensors(path: path) }
        }
    }

    @Test("tensor offsets out of range, reversed, or inconsistent with the shape")
    func badOffsets() throws {
        let data = floatBytes([1, 2, 3, 4])
        try withFile(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}"#, data: data)) { path in
            expectError(.badOffsets, "beyond the data section", path: path) { _ = try SafeTensors(path: path) }
        }
        try withFile(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: data)) { path in
            expectError(.badOffsets, "reversed", path: path) { _ = try SafeTensors(path: path) }
        }
        try withFile(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: data)) { path in
            expectError(.badOffsets, "needs 3 × 4 bytes", path: path) { _ = try SafeTensors(path: path) }
        }
    }

    @Test("file truncated inside the tensor data")
    func truncatedData() throws {
        let full = safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: floatBytes([1, 2, 3, 4]))
        try withFile(full.prefix(full.count - 6)) { path in
            expectError(.badOffsets, "truncated", path: path) { _ = try SafeTensors(path: path) }
        }
    }

    @Test("unknown and non-float dtypes are rejected when read")
    func unsupportedDType() throws {
        let header = #"{"q":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,2]},"i":{"dtype":"I32","shape":[1],"data_offsets":[2,6]}}"#
        try withFile(safetensorsBytes(header: header, data: [0, 0, 0, 0, 0, 0])) { path in
            let st = try SafeTensors(path: path)
            expectError(.unsupportedDType, "unsupported dtype 'Q4_K'", path: path) { _ = try st.floats("q") }
            expectError(.unsupportedDType, "unsupported dtype 'I32'", path: path) { _ = try st.floats("i") }
        }
    }

    @Test("missing tensor name and shape mismatch")
    func missingTensorAndShape() throws {
        try withFile(safetensorsBytes(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: floatBytes([1, 2]))) { path in
            let st = try SafeTensors(path: path)
            expectError(.missingTensor, "tensor 'encoder.missing' not found", path: path) { _ = try st.floats("encoder.missing") }
            expectError(.shapeMismatch, "expected [3]", path: path) { _ = try st.floats("w", shape: [3]) }
        }
    }

    @Test("the real model file loads and has the expected BERT tensors")
    func realModelFile() throws {
        let dir = try Shared.modelDirectory.get()
        let st = try SafeTensors(path: dir + "/model.safetensors")
        #expect(try st.info("embeddings.word_embeddings.weight").shape == [30522, 384])
        #expect(try st.info("encoder.layer.5.output.dense.weight").shape == [384, 1536])
        #expect(try st.floats("encoder.layer.0.attention.self.query.bias").count == 384)
    }
}
