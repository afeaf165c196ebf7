#!/usr/bin/env bash
# All tests: Swift unit and integration tests (real llama-server + SmolLM2), then the Python
# client test with the official openai package. Called by `make test` after setup and build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONCLAVE_BIN="$PWD/.build/debug/conclave"
# Every log of this run is kept under var/test-artefacts/ (the Swift tests' output here, each
# pytest server's log by conftest.py); tests/python/test_zz_secrets.py greps them all for the
# secrets the run used.
ARTEFACTS="$PWD/var/test-artefacts"
rm -rf "$ARTEFACTS" && mkdir -p "$ARTEFACTS"
# Suites that measure deadlines of a few hundred milliseconds are named …DeadlineTests and run
# below with the integration tests, not among the hundreds of unit tests running at once.
SERIAL='IntegrationTests|DeadlineTests'
echo "== swift test: unit tests (in parallel)"
swift test --skip-build --skip "$SERIAL" 2>&1 | tee "$ARTEFACTS/swift-unit.log"
# The integration suites each start real llama-server processes and measure time bounds; one at a
# time they do not compete for the 2 cores with each other and with the unit tests.
echo "== swift test: deadline and integration tests (real llama-server, one test at a time)"
swift test --skip-build --filter "$SERIAL" --no-parallel 2>&1 | tee "$ARTEFACTS/swift-integration.log"
bash scripts/fuzz.sh 10  # fuzzing: every libFuzzer target in fuzz/ for 10 s on its seed corpus; fails on a crash (docs/reliability.md)
echo "== pytest tests/python"
.venv/bin/python -m pytest -q tests/python
