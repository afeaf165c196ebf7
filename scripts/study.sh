#!/usr/bin/env bash
# The study: every experiment under experiments/ against real servers (release build), written to
# reports/<UTC timestamp>/ (tables as Markdown, raw JSON, CSV). Called by `make study`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONCLAVE_BIN="$PWD/.build/release/conclave"
out="reports/$(date -u +%Y%m%dT%H%M%SZ)"
"$CONCLAVE_BIN" study experiments/*.yaml --output "$out" "$@"
.venv/bin/python scripts/analysis.py --output "$out" "$out"
echo "study: report in $out"
