#!/usr/bin/env bash
# The inference layer's benchmark, each comparison side by side in one invocation
# (`conclave bench inference`, see docs/performance.md#inference):
#   - model: 8 SmolLM2 streams straight to llama-server vs through Conclave's direct model route;
#   - gateway: an instant fake upstream directly, through LiteLLM, through a logic-free proxy on
#     the same HTTP stack (the floor) and through Conclave, at 1 and 32 clients.
# LiteLLM goes into .venv-bench (scripts/litellm-proxy.sh installs litellm[proxy]==1.108.7 there
# when it is missing), never into the project's .venv. Called by `make bench-inference`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
log() { echo "bench-inference: $*" >&2; }
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/python" -c 'from importlib.metadata import version; assert version("litellm") == "1.108.7"' 2>/dev/null || {
    log "installing litellm[proxy]==1.108.7 into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q "litellm[proxy]==1.108.7"
}
mkdir -p bench/results
log "about 5 minutes"
.build/release/conclave bench inference --output bench/results/inference.json "$@"
