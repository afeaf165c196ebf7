#!/usr/bin/env bash
# Starts the LiteLLM proxy for the gateway-overhead benchmark in the foreground on
# 127.0.0.1:PORT, with one uvicorn worker and bench/litellm/config.yaml.
#
#   FAKE_UPSTREAM_BASE=http://127.0.0.1:9000/v1 LITELLM_MASTER_KEY=sk-... \
#       scripts/litellm-proxy.sh 4000
#
# Readiness: poll GET /health/readiness (no auth). It returns 200
# {"status":"healthy","db":"Not connected"} once the server is accepting requests.
# /health/liveliness works too.
#
# Runs from .venv-bench. litellm[proxy]==1.108.7 is installed there only if it is
# missing, so a prepared venv starts offline. The environment below keeps the proxy
# off the network: bundled model cost map and other bundled catalogs, telemetry
# vetoed, no Hugging Face downloads.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

LITELLM_VERSION="1.108.7"
VENV=".venv-bench"
CONFIG="bench/litellm/config.yaml"

if [[ $# -ne 1 || ! "$1" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 PORT" >&2
    exit 2
fi
PORT_ARG="$1"

for var in FAKE_UPSTREAM_BASE LITELLM_MASTER_KEY; do
    if [[ -z "${!var:-}" ]]; then
        echo "litellm-proxy: $var must be set" >&2
        exit 2
    fi
done
if [[ "$LITELLM_MASTER_KEY" != sk-* ]]; then
    echo "litellm-proxy: LITELLM_MASTER_KEY must start with sk-" >&2
    exit 2
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$LITELLM_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
# Check distribution metadata only. Importing litellm would add seconds to startup.
version("fastapi"), version("uvicorn"), version("gunicorn")  # from the [proxy] extra
sys.exit(0 if version("litellm") == sys.argv[1] else 1)
EOF
then
    echo "litellm-proxy: installing litellm[proxy]==$LITELLM_VERSION into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
fi

# Offline: the model cost map and the other catalogs come from the package, never
# from GitHub.
export LITELLM_LOCAL_MODEL_COST_MAP=True
export LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS=True
export LITELLM_LOCAL_POLICY_TEMPLATES=True
export LITELLM_LOCAL_BLOG_POSTS=True
export LITELLM_LOCAL_AUTOROUTER_PRESETS=True
# Telemetry veto. Usage telemetry is opt-in and off with no DB, but this pins it off.
export LITELLM_TELEMETRY_DISABLED=true
# No Hugging Face Hub calls (huggingface_hub is a litellm dependency).
export HF_HUB_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1
# Only errors in the log, so there is no per-request logging cost.
export LITELLM_LOG=ERROR
# No DB: make sure one isn't picked up from the caller's environment.
unset DATABASE_URL
# The CLI reads HOST/PORT/NUM_WORKERS from the environment. Pass them explicitly so
# a stray value there has no effect.
unset HOST PORT NUM_WORKERS

exec "$VENV/bin/litellm" --config "$CONFIG" --host 127.0.0.1 --port "$PORT_ARG" --num_workers 1
