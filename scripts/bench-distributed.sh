#!/usr/bin/env bash
# Distributed mode's benchmark (docs/performance.md#distributed-mode): the `full` workflow at 1, 8
# and 32 concurrent users, embedded (one `conclave serve`) against a local cluster (`conclave
# cluster up`: PostgreSQL, NATS JetStream, 2 gateways, a worker per role), both over one
# llama-server replica with the same slots and threads, in one invocation. Also reads what the bus
# adds to each step from the gateways' conclave_bus_overhead_seconds. Called by
# `make bench-distributed`; DURATION (seconds per level, default 30) and USERS override.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/conclave
DURATION="${DURATION:-30}"
USERS="${USERS:-1 8 32}"
OUT=bench/results
WORK="$(mktemp -d /tmp/conclave-bench-distributed.XXXXXX)"
log() { echo "bench-distributed: $*" >&2; }
SERVE_PID=""
cleanup() {
    [[ -n "$SERVE_PID" ]] && kill "$SERVE_PID" 2>/dev/null || true
    "$BIN" cluster down --config "$WORK/cluster.yaml" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"
TOKEN="$("$BIN" token --user u-employee)"

log "embedded: conclave serve (SQLite, in-process agents, 1 llama-server replica with 4 slots)"
CONCLAVE_STORAGE__PATH="$WORK/embedded.sqlite" CONCLAVE_KNOWLEDGE__INGEST_ON_START='[examples/meridian/docs]' \
CONCLAVE_INFERENCE__REPLICAS=1 CONCLAVE_INFERENCE__PARALLEL_SLOTS=4 CONCLAVE_INFERENCE__CONTEXT_SIZE=8192 \
    "$BIN" serve --port 0 >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 600); do
    PORT="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1 | sed 's/.*://')" || true
    [[ -n "${PORT:-}" ]] && break
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
    sleep 0.5
done
# shellcheck disable=SC2086
"$BIN" bench load --url "http://127.0.0.1:$PORT" --token "$TOKEN" --users $USERS --duration "$DURATION" \
    --output "$OUT/distributed-embedded.json"
kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=""

log "cluster: conclave cluster up (PostgreSQL, NATS, 1 llama-server replica with 4 slots, 2 gateways, 5 workers)"
cat >"$WORK/cluster.yaml" <<YAML
directory: $WORK/cluster
gateways: 2
inference: {replicas: 1, parallel_slots: 4, context_size: 8192}
ingest: [examples/meridian/docs]
YAML
"$BIN" cluster up --config "$WORK/cluster.yaml"
GATEWAYS="$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["gateways"]))' "$WORK/cluster/cluster.json")"
# shellcheck disable=SC2086
"$BIN" bench load --url "$GATEWAYS" --token "$TOKEN" --users $USERS --duration "$DURATION" --output "$OUT/distributed-cluster.json"
for gateway in ${GATEWAYS//,/ }; do curl -fsS "$gateway/metrics"; done >"$WORK/metrics.txt"
"$BIN" cluster down --config "$WORK/cluster.yaml"

python3 - "$OUT" "$WORK/metrics.txt" <<'PY'
import json, re, sys, datetime, os
out, metrics = sys.argv[1], sys.argv[2]
embedded = json.load(open(f"{out}/distributed-embedded.json"))
cluster = json.load(open(f"{out}/distributed-cluster.json"))
sums, counts = {}, {}
for line in open(metrics):
    m = re.match(r'conclave_bus_overhead_seconds_(sum|count)\{role="(\w+)"\} ([0-9.e+-]+)', line)
    if m:
        target = sums if m.group(1) == "sum" else counts
        target[m.group(2)] = target.get(m.group(2), 0) + float(m.group(3))
overhead = {role: round(1e6 * sums[role] / counts[role]) for role in sums if counts.get(role)}
total_steps = sum(counts.values())
levels = []
for e, c in zip(embedded["levels"], cluster["levels"]):
    levels.append({
        "users": int(e["level"]),
        "embedded": {"throughput": round(e["throughput"], 3), "p95_ms": round(e["p95_ms"]), "errors": e["errors"]},
        "cluster": {"throughput": round(c["throughput"], 3), "p95_ms": round(c["p95_ms"]), "errors": c["errors"]},
        "throughput_ratio": round(c["throughput"] / e["throughput"], 3) if e["throughput"] else None,
        "p95_ratio": round(c["p95_ms"] / e["p95_ms"], 3) if e["p95_ms"] else None,
    })
report = {
    "benchmark": "distributed", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "cores": os.cpu_count(), "duration_seconds_per_level": embedded["plan"]["duration_seconds"],
    "levels": levels,
    "bus_overhead_microseconds_per_step": overhead,
    "bus_overhead_mean_microseconds": round(1e6 * sum(sums.values()) / total_steps) if total_steps else None,
    "steps_measured": int(total_steps),
}
json.dump(report, open(f"{out}/distributed.json", "w"), indent=2)
print(json.dumps(report, indent=2))
PY
log "wrote $OUT/distributed.json"
