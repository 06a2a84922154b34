#!/usr/bin/env bash
# Router overhead over calling the worker directly (issue 4, "Speed"): starts slm-worker with a
# tiny random text classifier and slm-router (task routing to a pool of that one worker) on
# loopback ephemeral ports, runs tests/bench/loadgen open-loop at each rate against (a) the worker
# and (b) the router, and prints router - worker latency at p50 and p99, the router's own
# ServedBy.timings.router_us, and the slmgw_router_overhead_seconds histogram from its /metrics.
#
#   tests/bench/run_router_overhead.sh [BUILD_DIR]       (default: build)
#   RATES="1000 5000" DURATION_S=3 tests/bench/run_router_overhead.sh build-load
#
# Needs: loadgen, slm-worker, slm-router built in BUILD_DIR; /usr/bin/python3 with torch.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
RATES="${RATES:-1000 5000}"
DURATION_S="${DURATION_S:-3}"
WARMUP_S="${WARMUP_S:-1}"
CHANNELS="${CHANNELS:-4}"
PY=/usr/bin/python3

find_binary() {
  local path
  path="$(find "$BUILD" -type f -name "$1" -perm -u+x -not -path '*/CMakeFiles/*' | head -n1)"
  if [[ -z "$path" ]]; then
    echo "run_router_overhead: $1 not found under $BUILD (ninja -C $BUILD $1)" >&2
    exit 2
  fi
  echo "$path"
}
LOADGEN="$(find_binary loadgen)"
WORKER_BIN="$(find_binary slm-worker)"
ROUTER_BIN="$(find_binary slm-router)"

TMP="$(mktemp -d /tmp/slmgw-overhead.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# Ready file -> "grpc_port metrics_port"; fails if the process exits or 60 s pass.
wait_ready() {
  local ready="$1" pid="$2" log="$3"
  for _ in $(seq 600); do
    if [[ -s "$ready" ]]; then
      $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["grpc_port"], d["metrics_port"])' "$ready"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run_router_overhead: process exited:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "run_router_overhead: not ready after 60 s:" >&2; cat "$log" >&2; exit 1
}

PYTHONPATH="$ROOT/tools:$ROOT/tests/e2e" $PY -c '
import sys, harness
from pyslm import bert
harness.write_model(sys.argv[1], bert.TEXT_CLASSIFICATION, ["negative", "positive"])
' "$TMP/sentiment.gguf"

"$WORKER_BIN" --model "$TMP/sentiment.gguf" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 \
  --ready_file "$TMP/worker.ready" >"$TMP/worker.log" 2>&1 &
PIDS+=($!)
ports="$(wait_ready "$TMP/worker.ready" "${PIDS[-1]}" "$TMP/worker.log")"
read -r WORKER_PORT _ <<<"$ports"

cat >"$TMP/router.yaml" <<EOF
pools:
  - name: sentiment-pool
    endpoints: ["127.0.0.1:$WORKER_PORT"]
routes:
  - name: sentiment
    tasks: [sentiment]
    pool: sentiment-pool
default_route: sentiment
EOF
"$ROUTER_BIN" --config "$TMP/router.yaml" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 \
  --ready_file "$TMP/router.ready" >"$TMP/router.log" 2>&1 &
PIDS+=($!)
ports="$(wait_ready "$TMP/router.ready" "${PIDS[-1]}" "$TMP/router.log")"
read -r ROUTER_PORT ROUTER_METRICS <<<"$ports"

scrape() { $PY -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "http://127.0.0.1:$ROUTER_METRICS/metrics" >"$1"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
for rate in $RATES; do
  common=(--rate "$rate" --duration_s "$DURATION_S" --warmup_s "$WARMUP_S" --channels "$CHANNELS"
          --text "the movie was very good and the plot was great" --json)
  "$LOADGEN" --target "127.0.0.1:$WORKER_PORT" --worker "${common[@]}" >"$TMP/worker-$rate.json" \
    || echo "(worker run at $rate/s had failed or skipped calls; see the table)"
  scrape "$TMP/before-$rate.prom"
  "$LOADGEN" --target "127.0.0.1:$ROUTER_PORT" --task sentiment "${common[@]}" \
    >"$TMP/router-$rate.json" || echo "(router run at $rate/s had failed or skipped calls)"
  scrape "$TMP/after-$rate.prom"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

$PY - "$TMP" $RATES <<'EOF'
import json, sys

tmp, rates = sys.argv[1], sys.argv[2:]

def histogram(path, name="slmgw_router_overhead_seconds_bucket"):
    buckets = {}
    for line in open(path):
        if line.startswith(name + "{"):
            head, _, value = line.rpartition(" ")
            le = head.split('le="')[1].split('"')[0]
            le = float("inf") if le == "+Inf" else float(le)
            buckets[le] = buckets.get(le, 0) + float(value)
    return buckets

def quantile(buckets, q):
    """Prometheus histogram_quantile: linear interpolation inside the bucket."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            if b == float("inf"):
                return lower
            return lower + (b - lower) * (rank - below) / max(buckets[b] - below, 1e-12)
        lower, below = b, buckets[b]
    return lower

print()
print("| rate/s | target | sent | ok | errors | skipped | p50 us | p90 us | p99 us | p99.9 us | max us |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
rows, notes = {}, []
for rate in rates:
    for kind in ("worker", "router"):
        r = json.load(open(f"{tmp}/{kind}-{rate}.json"))
        rows[(rate, kind)] = r
        lat = r["latency_us"]
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
        if r["first_error"]:
            notes.append(f"{rate}/s {kind}: first error: {r['first_error']}")
        print(f"| {rate} | {kind} | {r['sent']} | {r['ok']} | {errors} | {r['skipped']} | "
              f"{lat['p50']:.0f} | {lat['p90']:.0f} | {lat['p99']:.0f} | {lat['p99_9']:.0f} | "
              f"{lat['max']:.0f} |")
for note in notes:
    print(note)
print()
print("| rate/s | overhead p50 us (router - worker) | p99 us | ratio p50 / p99 (router/worker) "
      "| router_us p50 / p99 (ServedBy) | slmgw_router_overhead_seconds p50 / p99 us (buckets) |")
print("|---|---|---|---|---|---|")
for rate in rates:
    w, r = rows[(rate, "worker")], rows[(rate, "router")]
    d50 = r["latency_us"]["p50"] - w["latency_us"]["p50"]
    d99 = r["latency_us"]["p99"] - w["latency_us"]["p99"]
    ratio50 = r["latency_us"]["p50"] / max(w["latency_us"]["p50"], 1e-9)
    ratio99 = r["latency_us"]["p99"] / max(w["latency_us"]["p99"], 1e-9)
    ru = r.get("router_us", {})
    before, after = histogram(f"{tmp}/before-{rate}.prom"), histogram(f"{tmp}/after-{rate}.prom")
    diff = {b: after.get(b, 0) - before.get(b, 0) for b in after}
    h50, h99 = quantile(diff, 0.5) * 1e6, quantile(diff, 0.99) * 1e6
    print(f"| {rate} | {d50:.0f} | {d99:.0f} | {ratio50:.2f}x / {ratio99:.2f}x | "
          f"{ru.get('p50', float('nan')):.0f} / {ru.get('p99', float('nan')):.0f} | "
          f"{h50:.0f} / {h99:.0f} |")
print()
print("Goal: router overhead p50 <= 100 us, p99 <= 500 us (rule/task routing). The histogram "
      "buckets are 50/100/250/500 us wide at this range, so its quantiles are interpolated.")
EOF
