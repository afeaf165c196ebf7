#!/usr/bin/env bash
# The demo: ingest the Meridian sample, start the server with the embedded defaults, run a scripted
# multi-turn conversation through conclave/full (answers, citations, agent trace), stop everything.
# Called by `make demo` after setup and the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/conclave
DB=var/demo.sqlite
LOG=var/demo-server.log
mkdir -p var

echo "== ingest examples/meridian/docs"
CONCLAVE_STORAGE__PATH=$DB "$BIN" ingest examples/meridian/docs

echo "== start the Meridian Fleet & Tracking API fixture server (the internal API connector's upstream)"
API_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 examples/meridian/api/serve.py --port "$API_PORT" --quiet &
API=$!

echo "== start conclave serve (embedded llama-server + SmolLM2-135M)"
CONCLAVE_STORAGE__PATH=$DB CONCLAVE_KNOWLEDGE__API_BASE_URL="http://127.0.0.1:$API_PORT" MERIDIAN_API_TOKEN=fleet-demo-token \
    "$BIN" serve --port 0 >"$LOG" 2>&1 &
SERVER=$!
stop() {
    if kill -0 "$SERVER" 2>/dev/null; then
        kill -TERM "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    kill -9 "$API" 2>/dev/null || true
}
trap stop EXIT

URL=""
for _ in $(seq 1 600); do
    URL="$(grep -o 'listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's/listening on //')" || true
    [[ -n "$URL" ]] && break
    kill -0 "$SERVER" 2>/dev/null || { echo "server exited:"; cat "$LOG"; exit 1; }
    sleep 0.1
done
[[ -n "$URL" ]] || { echo "server did not start"; cat "$LOG"; exit 1; }
for _ in $(seq 1 1200); do
    curl -sf "$URL/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf "$URL/readyz" >/dev/null || { echo "model never became ready"; tail -20 "$LOG"; exit 1; }
TOKEN="$("$BIN" token --user u-employee)"
echo "   listening on $URL; models: $(curl -s -H "Authorization: Bearer $TOKEN" "$URL/v1/models" | grep -o '"id":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')"
echo "   without a token: $(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")"

echo "== scripted conversation through conclave/full, as u-employee (operations, role employee)"
"$BIN" chat --url "$URL" --model conclave/full --token "$TOKEN" --script examples/demo-conversation.txt

echo
echo "== stopping (SIGTERM drains in-flight requests)"
stop
trap - EXIT
echo "done. Server log: $LOG"
echo "To try the web console: .build/release/conclave serve, then open http://127.0.0.1:8080/console"
echo "and sign in with a token from: .build/release/conclave token --user u-employee (u-auditor sees the audit trail)."
