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
chmod 755 "$WORK"   # PostgreSQL runs as the postgres account when this runs as root: it must reach its data
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
# One request per gateway before measuring: the model's first prompt and the caches warm up.
warm() {
    curl -fsS -m 300 "$1/v1/chat/completions" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d '{"model":"conclave/full","max_tokens":64,"messages":[{"role":"user","content":"How many days of annual leave do full-time staff get?"}]}' \
        >/dev/null
}

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
for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
warm "http://127.0.0.1:$PORT"
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
for gateway in ${GATEWAYS//,/ }; do warm "$gateway"; done
scrape() { for gateway in ${GATEWAYS//,/ }; do curl -fsS "$gateway/metrics"; done >"$1"; }
# One level at a time, the gateways' bus counters read between levels.
scrape "$WORK/metrics-0.txt"
for users in $USERS; do
    "$BIN" bench load --url "$GATEWAYS" --token "$TOKEN" --users "$users" --duration "$DURATION" --output "$WORK/cluster-$users.json"
    scrape "$WORK/metrics-$users.txt"
done
"$BIN" cluster down --config "$WORK/cluster.yaml"

python3 - "$OUT" "$WORK" "$USERS" <<'PY'
import json, re, sys, datetime, os
out, work, users = sys.argv[1], sys.argv[2], [int(u) for u in sys.argv[3].split()]
embedded = json.load(open(f"{out}/distributed-embedded.json"))

def counters(path):
    """Sum and count of each bus histogram, summed over gateways."""
    values = {}
    for line in open(path):
        m = re.match(r'(conclave_bus_(?:overhead|queue)_seconds)_(sum|count)\{role="(\w+)"\} ([0-9.e+-]+)', line)
        if m:
            key = (m.group(1), m.group(2))
            values[key] = values.get(key, 0.0) + float(m.group(4))
    return values

def mean_us(after, before, name):
    count = after.get((name, "count"), 0) - before.get((name, "count"), 0)
    total = after.get((name, "sum"), 0) - before.get((name, "sum"), 0)
    return (round(1e6 * total / count), int(count)) if count else (None, 0)

levels, cluster_levels = [], []
previous = counters(f"{work}/metrics-0.txt")
for u, e in zip(users, embedded["levels"]):
    c = json.load(open(f"{work}/cluster-{u}.json"))["levels"][0]
    cluster_levels.append(c)
    current = counters(f"{work}/metrics-{u}.txt")
    overhead, steps = mean_us(current, previous, "conclave_bus_overhead_seconds")
    queued, _ = mean_us(current, previous, "conclave_bus_queue_seconds")
    previous = current
    levels.append({
        "users": u,
        "embedded": {"throughput": round(e["throughput"], 3), "p95_ms": round(e["p95_ms"]), "errors": e["errors"]},
        "cluster": {"throughput": round(c["throughput"], 3), "p95_ms": round(c["p95_ms"]), "errors": c["errors"]},
        "throughput_ratio": round(c["throughput"] / e["throughput"], 3) if e["throughput"] else None,
        "p95_ratio": round(c["p95_ms"] / e["p95_ms"], 3) if e["p95_ms"] else None,
        "bus_overhead_us_per_step": overhead,
        "queue_wait_us_per_step": queued,
        "steps": steps,
    })
json.dump({"levels": cluster_levels}, open(f"{out}/distributed-cluster.json", "w"), indent=2)
report = {
    "benchmark": "distributed", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "cores": os.cpu_count(), "duration_seconds_per_level": embedded["plan"]["duration_seconds"],
    "definitions": {
        "bus_overhead_us_per_step": "gateway dispatch time - time the step waited in the stream for a free worker - agent time on the worker",
        "queue_wait_us_per_step": "time from JetStream storing the step to a worker fetching it",
    },
    "levels": levels,
}
json.dump(report, open(f"{out}/distributed.json", "w"), indent=2)
print(json.dumps(report, indent=2))
PY
log "wrote $OUT/distributed.json"
