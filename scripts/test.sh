#!/usr/bin/env bash
# All tests: Swift unit and integration tests (real llama-server + SmolLM2), then the Python
# client test with the official openai package. Called by `make test` after setup and build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONCLAVE_BIN="$PWD/.build/debug/conclave"
echo "== swift test"
swift test --skip-build
echo "== pytest tests/python"
.venv/bin/python -m pytest -q tests/python
