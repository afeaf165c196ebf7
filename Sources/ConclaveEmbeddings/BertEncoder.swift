import CMatrixKernels
import Foundation

/// Dimensions of a BERT encoder, read from the weights (and `config.json` when present).
struct BertConfig: Sendable, Equatable {
    var hidden: Int
    var layers: Int
    var heads: Int
    var intermediate: Int
    var maxPositions: Int
    var layerNormEpsilon: Float
    var headSize: Int { hidden / heads }
}

/// How the encoder's linear layers multiply (the attention products stay float32 either way).
enum MatrixBackend: Sendable, Equatable {
    /// bfloat16 inputs, float32 sums, on Intel AMX (``CMatrixKernels``).
    case bf16AMX
    /// float32 OpenBLAS `sgemm`.
    case openBLAS
    /// float32 portable Swift SIMD GEMM.
    case swift
}

/// `y = x · Wᵀ + b` with PyTorch's `[out, in]` weight layout, stored the way the backend reads it.
struct Linear: Sendable {
    let outputs: Int
    let inputs: Int
    let bias: FloatBuffer
    /// float32 weight for OpenBLAS.
    let weight: FloatBuffer?
    /// Panel-packed float32 copy for the portable GEMM.
    let packed: FloatBuffer?
    /// bfloat16 AMX tiles.
    let tiles: BF16Buffer?

    init(weight: [Float], bias: [Float], outputs: Int, inputs: Int, backend: MatrixBackend) {
        self.outputs = outputs
        self.inputs = inputs
        self.bias = FloatBuffer(bias)
        let w = FloatBuffer(weight)
        switch backend {
        case .openBLAS:
            self.weight = w; self.packed = nil; self.tiles = nil
        case .swift:
            self.weight = nil; self.packed = packWeightPanels(w.pointer, n: outputs, k: inputs); self.tiles = nil
        case .bf16AMX:
            let tiles = BF16Buffer(count: mk_bf16_packed_count(Int32(outputs), Int32(inputs)))
            mk_bf16_pack_weights(w.pointer, Int32(outputs), Int32(inputs), tiles.base)
            self.weight = nil; self.packed = nil; self.tiles = tiles
        }
    }
}

struct EncoderLayer: Sendable {
    /// Q, K and V projections stacked into one `[3·hidden, hidden]` matrix; the Q rows and
    /// bias are pre-multiplied by `1/√headSize`.
    let qkv: Linear
    let attentionOutput: Linear
    let attentionNormGamma: FloatBuffer
    let attentionNormBeta: FloatBuffer
    let intermediate: Linear
    let output: Linear
    let outputNormGamma: FloatBuffer
    let outputNormBeta: FloatBuffer
}

/// Scratch memory for one forward pass, grown on demand. Used by one thread at a time: it is
/// handed between threads only through the embedder's mutex-protected pool.
final class EncoderWorkspace: @unchecked Sendable {
    private(set) var tokenCapacity = 0
    private(set) var lengthCapacity = 0
    var x = FloatBuffer(count: 0)
    var y = FloatBuffer(count: 0)
    var qkv = FloatBuffer(count: 0)
    var context = FloatBuffer(count: 0)
    var inner = FloatBuffer(count: 0)
    var scores = FloatBuffer(count: 0)
    var keysT = FloatBuffer(count: 0)
    /// The GEMM input rounded to bfloat16 (AMX backend only).
    var inputBF16 = BF16Buffer(count: 0)
    let gemmScratch = FloatBuffer(uninitialized: gemmScratchCount)

    func reserve(tokens: Int, maxLength: Int, config: BertConfig, backend: MatrixBackend) {
        if tokens > tokenCapacity || (backend == .bf16AMX && inputBF16.count < tokens * config.intermediate) {
            let capacity = max(tokens, tokenCapacity * 3 / 2)
            x = FloatBuffer(uninitialized: capacity * config.hidden)
            y = FloatBuffer(uninitialized: capacity * config.hidden)
            qkv = FloatBuffer(uninitialized: capacity * 3 * config.hidden)
            context = FloatBuffer(uninitialized: capacity * config.hidden)
            inner = FloatBuffer(uninitialized: capacity * config.intermediate)
            if backend == .bf16AMX {
                inputBF16 = BF16Buffer(count: capacity * max(config.intermediate, config.hidden))
            }
            tokenCapacity = capacity
        }
        if maxLength > lengthCapacity {
            let padded = (maxLength + 15) & ~15
            scores = FloatBuffer(uninitialized: maxLength * padded)
            keysT = FloatBuffer(uninitialized: config.headSize * padded)
            lengthCapacity = maxLength
        }
    }
}

/// A BERT encoder with mean pooling and L2 normalisation (the sentence-transformers recipe).
/// Immutable; `encode` may be called concurrently with distinct workspaces.
struct BertEncoder: Sendable {
    let config: BertConfig
    let wordEmbeddings: FloatBuffer
    /// Position embeddings with the token-type-0 embedding already added.
    let positionEmbeddings: FloatBuffer
    let embeddingNormGamma: FloatBuffer
    let embeddingNormBeta: FloatBuffer
    let vocabularySize: Int
    let layers: [EncoderLayer]
    /// The linear layers' backend.
    let backend: MatrixBackend
    /// Used for the attention products whenever it is loaded (and for the linear layers when
    /// `backend` is `.openBLAS`).
    let blas: OpenBLAS?

    /// - Parameter amx: use bfloat16 AMX products for the linear layers when the geometry allows
    ///   (sizes divisible by 32); the caller has checked `mk_bf16_amx_available()`.
    init(weights st: SafeTensors, configJSON: [String: Any]?, blas: OpenBLAS?, amx: Bool = false) throws {
        self.blas = blas
        let prefix = st.tensors["embeddings.word_embeddings.weight"] != nil ? "" : "bert."
        let wordInfo = try st.info(prefix + "embeddings.word_embeddings.weight")
        guard wordInfo.shape.count == 2 else {
            throw EmbedderError("\(st.path): word embeddings have shape \(wordInfo.shape), expected [vocab, hidden]")
        }
        let vocab = wordInfo.shape[0], hidden = wordInfo.shape[1]
        let positions = try st.info(prefix + "embeddings.position_embeddings.weight").shape.first ?? 0
        var layerCount = 0
        while st.tensors["\(prefix)encoder.layer.\(layerCount).attention.self.query.weight"] != nil { layerCount += 1 }
        guard layerCount > 0 else { throw EmbedderError("\(st.path): no encoder layers found") }
        let intermediate = try st.info("\(prefix)encoder.layer.0.intermediate.dense.weight").shape.first ?? 0
        let heads = (configJSON?["num_attention_heads"] as? Int) ?? max(hidden / 32, 1)
        let epsilon = (configJSON?["layer_norm_eps"] as? Double).map(Float.init) ?? 1e-12
        let config = BertConfig(hidden: hidden, layers: layerCount, heads: heads, intermediate: intermediate,
                                maxPositions: positions, layerNormEpsilon: epsilon)
        guard hidden % heads == 0, config.headSize == 32, hidden % 16 == 0, intermediate % 16 == 0 else {
            throw EmbedderError("\(st.path): unsupported geometry (hidden \(hidden), heads \(heads), intermediate \(intermediate)); this encoder needs head size 32 and sizes divisible by 16")
        }
        if let act = configJSON?["hidden_act"] as? String, act != "gelu" {
            throw EmbedderError("\(st.path): unsupported hidden_act '\(act)' (only exact 'gelu')")
        }
        self.config = config
        self.vocabularySize = vocab
        let backend: MatrixBackend = amx && hidden % 32 == 0 && intermediate % 32 == 0 ? .bf16AMX
            : blas != nil ? .openBLAS : .swift
        self.backend = backend

        wordEmbeddings = FloatBuffer(try st.floats(prefix + "embeddings.word_embeddings.weight"))
        var pos = try st.floats(prefix + "embeddings.position_embeddings.weight", shape: [positions, hidden])
        let types = try st.floats(prefix + "embeddings.token_type_embeddings.weight")
        guard types.count >= hidden else { throw EmbedderError("\(st.path): token type embeddings are empty") }
        for p in 0..<positions { for j in 0..<hidden { pos[p * hidden + j] += types[j] } }
        positionEmbeddings = FloatBuffer(pos)
        embeddingNormGamma = FloatBuffer(try st.floats(prefix + "embeddings.LayerNorm.weight", shape: [hidden]))
        embeddingNormBeta = FloatBuffer(try st.floats(prefix + "embeddings.LayerNorm.bias", shape: [hidden]))

        let scale = 1 / Float(config.headSize).squareRoot()
        var layers: [EncoderLayer] = []
        for l in 0..<layerCount {
            let p = "\(prefix)encoder.layer.\(l)."
            func linear(_ name: String, _ outputs: Int, _ inputs: Int) throws -> (w: [Float], b: [Float]) {
                (try st.floats(p + name + ".weight", shape: [outputs, inputs]), try st.floats(p + name + ".bias", shape: [outputs]))
            }
            let q = try linear("attention.self.query", hidden, hidden)
            let k = try linear("attention.self.key", hidden, hidden)
            let v = try linear("attention.self.value", hidden, hidden)
            let qkv = Linear(weight: q.w.map { $0 * scale } + k.w + v.w, bias: q.b.map { $0 * scale } + k.b + v.b,
                             outputs: 3 * hidden, inputs: hidden, backend: backend)
            let o = try linear("attention.output.dense", hidden, hidden)
            let f1 = try linear("intermediate.dense", intermediate, hidden)
            let f2 = try linear("output.dense", hidden, intermediate)
            layers.append(EncoderLayer(
                qkv: qkv,
                attentionOutput: Linear(weight: o.w, bias: o.b, outputs: hidden, inputs: hidden, backend: backend),
                attentionNormGamma: FloatBuffer(try st.floats(p + "attention.output.LayerNorm.weight", shape: [hidden])),
                attentionNormBeta: FloatBuffer(try st.floats(p + "attention.output.LayerNorm.bias", shape: [hidden])),
                intermediate: Linear(weight: f1.w, bias: f1.b, outputs: intermediate, inputs: hidden, backend: backend),
                output: Linear(weight: f2.w, bias: f2.b, outputs: hidden, inputs: intermediate, backend: backend),
                outputNormGamma: FloatBuffer(try st.floats(p + "output.LayerNorm.weight", shape: [hidden])),
                outputNormBeta: FloatBuffer(try st.floats(p + "output.LayerNorm.bias", shape: [hidden]))))
        }
        self.layers = layers
    }

    /// `c = a · Wᵀ (+ c)` for `rows` rows (float32 backends).
    @inline(__always)
    private func multiply(_ a: UnsafePointer<Float>, rows: Int, _ linear: Linear, into c: UnsafeMutablePointer<Float>,
                          accumulate: Bool, workspace: EncoderWorkspace) {
        if let weight = linear.weight, let blas {
            blas.gemmABt(m: rows, n: linear.outputs, k: linear.inputs, a: a, lda: linear.inputs,
                         b: weight.pointer, ldb: linear.inputs, c: c, ldc: linear.outputs, beta: accumulate ? 1 : 0)
        } else if let packed = linear.packed {
            gemmSwift(m: rows, n: linear.outputs, k: linear.inputs, a: a, lda: linear.inputs,
                      packed: packed.pointer, c: c, ldc: linear.outputs, accumulate: accumulate,
                      scratch: workspace.gemmScratch.base)
        }
    }

    /// AMX: `c = (bias or c) + a · Wᵀ` with `a` already in bfloat16.
    @inline(__always)
    private func multiplyBF16(_ a: UnsafePointer<UInt16>, rows: Int, _ linear: Linear, into c: UnsafeMutablePointer<Float>,
                              startingFromBias: Bool) {
        guard let tiles = linear.tiles else { preconditionFailure("linear layer not packed for AMX") }
        mk_bf16_gemm(Int32(rows), Int32(linear.outputs), Int32(linear.inputs), a, tiles.base,
                     startingFromBias ? linear.bias.pointer : nil, c, Int32(linear.outputs))
    }

    /// AMX: `c = (bias or c) + a · Wᵀ`, rounding `a` to bfloat16 first.
    @inline(__always)
    private func multiplyBF16(_ a: UnsafePointer<Float>, rows: Int, _ linear: Linear, into c: UnsafeMutablePointer<Float>,
                              startingFromBias: Bool, workspace: EncoderWorkspace) {
        let input = workspace.inputBF16.base
        mk_bf16_convert(a, input, rows * linear.inputs)
        multiplyBF16(input, rows: rows, linear, into: c, startingFromBias: startingFromBias)
    }

    /// Encodes a batch of token-id sequences (no padding: the sequences are packed end to end)
    /// and writes one L2-normalised, mean-pooled vector per sequence to `outputs[i]`.
    /// Ids must be `< vocabularySize` and lengths in `1...maxPositions` (the caller guarantees it).
    func encode(_ batch: [[Int32]], outputs: [UnsafeMutablePointer<Float>], workspace ws: EncoderWorkspace) {
        let hidden = config.hidden, hd = config.headSize
        var offsets: [Int] = []
        offsets.reserveCapacity(batch.count)
        var tokens = 0, maxLength = 0
        for ids in batch {
            offsets.append(tokens)
            tokens += ids.count
            maxLength = max(maxLength, ids.count)
        }
        guard tokens > 0 else { return }
        ws.reserve(tokens: tokens, maxLength: maxLength, config: config, backend: backend)

        var x = ws.x.base, y = ws.y.base
        let qkv = ws.qkv.base, context = ws.context.base, inner = ws.inner.base

        // Embeddings: word + (position + token type 0), then LayerNorm.
        for (s, ids) in batch.enumerated() {
            for (p, id) in ids.enumerated() {
                let row = x + (offsets[s] + p) * hidden
                let word = wordEmbeddings.pointer + Int(id) * hidden
                let position = positionEmbeddings.pointer + p * hidden
                var j = 0
                while j < hidden { store16(load16(word + j) + load16(position + j), row + j); j += 16 }
            }
        }
        layerNorm(x, rows: tokens, n: hidden, gamma: embeddingNormGamma.pointer, beta: embeddingNormBeta.pointer,
                  epsilon: config.layerNormEpsilon)

        let qkvStride = 3 * hidden
        for layer in layers {
            // Self-attention.
            if backend == .bf16AMX {
                multiplyBF16(x, rows: tokens, layer.qkv, into: qkv, startingFromBias: true, workspace: ws)
            } else {
                fillRows(qkv, rows: tokens, n: qkvStride, bias: layer.qkv.bias.pointer)
                multiply(x, rows: tokens, layer.qkv, into: qkv, accumulate: true, workspace: ws)
            }
            for (s, ids) in batch.enumerated() {
                let length = ids.count
                let base = qkv + offsets[s] * qkvStride
                // Score rows are padded to a multiple of 16 columns for the vectorised softmax.
                let paddedLength = (length + 15) & ~15
                for h in 0..<config.heads {
                    let q = base + h * hd, k = base + hidden + h * hd, v = base + 2 * hidden + h * hd
                    let out = context + offsets[s] * hidden + h * hd
                    if let blas {
                        // Scores transposed (keys × queries), so the softmax over keys runs down
                        // columns with vertical SIMD operations only.
                        let scoresT = ws.scores.base
                        blas.gemmABt(m: length, n: length, k: hd, a: k, lda: qkvStride, b: q, ldb: qkvStride,
                                     c: scoresT, ldc: paddedLength, beta: 0)
                        softmaxColumns(scoresT, rows: length, columns: length, ld: paddedLength)
                        blas.gemmAtB(m: length, n: hd, k: length, a: scoresT, lda: paddedLength, b: v, ldb: qkvStride,
                                     c: out, ldc: hidden, beta: 0)
                    } else {
                        attentionHead32(length: length, q: q, k: k, v: v, stride: qkvStride, out: out, outStride: hidden,
                                        kt: ws.keysT.base, scores: ws.scores.base)
                    }
                }
            }
            // Output projection + residual + LayerNorm.
            addRowsBias(x, bias: layer.attentionOutput.bias.pointer, into: y, rows: tokens, n: hidden)
            if backend == .bf16AMX {
                multiplyBF16(context, rows: tokens, layer.attentionOutput, into: y, startingFromBias: false, workspace: ws)
            } else {
                multiply(context, rows: tokens, layer.attentionOutput, into: y, accumulate: true, workspace: ws)
            }
            layerNorm(y, rows: tokens, n: hidden, gamma: layer.attentionNormGamma.pointer,
                      beta: layer.attentionNormBeta.pointer, epsilon: config.layerNormEpsilon)
            swap(&x, &y)
            // Feed-forward + residual + LayerNorm.
            addRowsBias(x, bias: layer.output.bias.pointer, into: y, rows: tokens, n: hidden)
            if backend == .bf16AMX {
                // The GELU writes the second product's bfloat16 input directly.
                multiplyBF16(x, rows: tokens, layer.intermediate, into: inner, startingFromBias: true, workspace: ws)
                mk_gelu_bf16(inner, ws.inputBF16.base, tokens * config.intermediate)
                multiplyBF16(ws.inputBF16.base, rows: tokens, layer.output, into: y, startingFromBias: false)
            } else {
                multiply(x, rows: tokens, layer.intermediate, into: inner, accumulate: false, workspace: ws)
                biasGELU(inner, rows: tokens, n: config.intermediate, bias: layer.intermediate.bias.pointer)
                multiply(inner, rows: tokens, layer.output, into: y, accumulate: true, workspace: ws)
            }
            layerNorm(y, rows: tokens, n: hidden, gamma: layer.outputNormGamma.pointer,
                      beta: layer.outputNormBeta.pointer, epsilon: config.layerNormEpsilon)
            swap(&x, &y)
        }

        // Mean pooling over each sequence's tokens, then L2 normalisation.
        for (s, ids) in batch.enumerated() {
            let out = outputs[s]
            out.initialize(repeating: 0, count: hidden)
            for t in 0..<ids.count {
                let row = x + (offsets[s] + t) * hidden
                var j = 0
                while j < hidden { store16(load16(out + j) + load16(row + j), out + j); j += 16 }
            }
            let inv = 1 / Float(ids.count)
            var sq = F16()
            var j = 0
            while j < hidden {
                let m = load16(out + j) * inv
                store16(m, out + j)
                sq = madd(sq, m, m)
                j += 16
            }
            let norm = max(hsum(sq).squareRoot(), 1e-12)
            let scale = F16(repeating: 1 / norm)
            j = 0
            while j < hidden { store16(load16(out + j) * scale, out + j); j += 16 }
        }
    }
}
