#!/usr/bin/env bash
# Runs `conclave bench orchestration` with the LangGraph baseline beside it and writes
# bench/results/orchestration.json. Extra arguments go to the bench command
# (e.g. --runs 20000 --concurrency 1 8 64). Build first with `make release`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

BIN=".build/release/conclave"
PY=".venv/bin/python"

if [[ ! -x "$BIN" ]]; then
    echo "bench-orchestration: $BIN not found; run 'make release' first" >&2
    exit 1
fi
if [[ ! -x "$PY" ]]; then
    echo "bench-orchestration: $PY not found; run scripts/setup.sh first" >&2
    exit 1
fi

if ! "$PY" -c 'import langgraph' 2>/dev/null; then
    echo "bench-orchestration: installing langgraph into .venv" >&2
    "$PY" -m pip install -q --disable-pip-version-check langgraph
fi

exec "$BIN" bench orchestration --output bench/results/orchestration.json \
    --langgraph "$PY bench/langgraph_orchestration.py" "$@"
