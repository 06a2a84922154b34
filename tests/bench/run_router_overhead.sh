#!/usr/bin/env bash
# Router overhead over calling the workers directly (issue 4, "Speed"): starts WORKERS slm-worker
# processes with a tiny random text classifier, slm-router (task routing to a pool of them) and
# tests/bench/bare_proxy (raw-bytes gRPC pass-through, round robin over the same workers: the floor
# any proxy hop costs) on loopback ephemeral ports, then runs tests/bench/loadgen open-loop at each
# rate against (a) the workers directly (its channels spread over them), (b) the bare proxy and
# (c) the router, in the same run. Prints router - direct and router - bare proxy latency at p50
# and p99, the router's own ServedBy.timings.router_us, and the slmgw_router_overhead_seconds
# histogram from its /metrics. ROUTER_BASELINE=/path/to/another/slm-router adds (d) that binary
# (e.g. the one before a change) on the same workers: before/after in one run.
#
#   tests/bench/run_router_overhead.sh [BUILD_DIR]       (default: build)
#   RATES="1000 5000" WORKERS=2 ROUNDS=2 DURATION_S=3 tests/bench/run_router_overhead.sh build-load
#
# Needs: loadgen, bare_proxy, slm-worker, slm-router built in BUILD_DIR; /usr/bin/python3 with
# torch.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
RATES="${RATES:-1000 5000}"
DURATION_S="${DURATION_S:-3}"
WARMUP_S="${WARMUP_S:-1}"
CHANNELS="${CHANNELS:-4}"
WORKERS="${WORKERS:-2}"
ROUNDS="${ROUNDS:-1}"
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
PROXY_BIN="$(find_binary bare_proxy)"

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

WORKER_ADDRESSES=()
for i in $(seq "$WORKERS"); do
  "$WORKER_BIN" --model "$TMP/sentiment.gguf" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 \
    --ready_file "$TMP/worker$i.ready" >"$TMP/worker$i.log" 2>&1 &
  PIDS+=($!)
  ports="$(wait_ready "$TMP/worker$i.ready" "${PIDS[-1]}" "$TMP/worker$i.log")"
  read -r port _ <<<"$ports"
  WORKER_ADDRESSES+=("127.0.0.1:$port")
done
WORKER_LIST="$(IFS=,; echo "${WORKER_ADDRESSES[*]}")"
ENDPOINTS="$(printf '"%s",' "${WORKER_ADDRESSES[@]}")"

cat >"$TMP/router.yaml" <<EOF
pools:
  - name: sentiment-pool
    endpoints: [${ENDPOINTS%,}]
routes:
  - name: sentiment
    tasks: [sentiment]
    pool: sentiment-pool
default_route: sentiment
EOF
# NAME BINARY: starts a router on router.yaml; prints "grpc_port metrics_port".
start_router() {
  "$2" --config "$TMP/router.yaml" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 \
    --ready_file "$TMP/$1.ready" >"$TMP/$1.log" 2>&1 &
  PIDS+=($!)
  wait_ready "$TMP/$1.ready" "${PIDS[-1]}" "$TMP/$1.log"
}
# Started here, not in $(...): PIDS must be filled in this shell for the cleanup.
"$ROUTER_BIN" --config "$TMP/router.yaml" --listen 127.0.0.1:0 --metrics_listen 127.0.0.1:0 \
  --ready_file "$TMP/router.ready" >"$TMP/router.log" 2>&1 &
PIDS+=($!)
read -r ROUTER_PORT ROUTER_METRICS <<<"$(wait_ready "$TMP/router.ready" "${PIDS[-1]}" "$TMP/router.log")"
TARGETS="worker proxy router"
if [[ -n "${ROUTER_BASELINE:-}" ]]; then
  "$ROUTER_BASELINE" --config "$TMP/router.yaml" --listen 127.0.0.1:0 \
    --metrics_listen 127.0.0.1:0 --ready_file "$TMP/baseline.ready" >"$TMP/baseline.log" 2>&1 &
  PIDS+=($!)
  read -r BASELINE_PORT _ <<<"$(wait_ready "$TMP/baseline.ready" "${PIDS[-1]}" "$TMP/baseline.log")"
  TARGETS="$TARGETS baseline"
fi
"$PROXY_BIN" --upstreams "$WORKER_LIST" --listen 127.0.0.1:0 --ready_file "$TMP/proxy.ready" \
  >"$TMP/proxy.log" 2>&1 &
PIDS+=($!)
read -r PROXY_PORT _ <<<"$(wait_ready "$TMP/proxy.ready" "${PIDS[-1]}" "$TMP/proxy.log")"

scrape() { $PY -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "http://127.0.0.1:$ROUTER_METRICS/metrics" >"$1"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $WORKERS workers"
# Each round runs every target once per rate (in turn, so drift in the machine's load spreads
# over all of them); a target's percentiles are over all rounds' calls.
for round in $(seq "$ROUNDS"); do
  for rate in $RATES; do
    common=(--rate "$rate" --duration_s "$DURATION_S" --warmup_s "$WARMUP_S" --channels "$CHANNELS"
            --text "the movie was very good and the plot was great" --json --raw_latencies)
    for kind in $TARGETS; do
      case "$kind" in
        worker) args=(--target "$WORKER_LIST" --worker) ;;
        proxy) args=(--target "127.0.0.1:$PROXY_PORT" --worker) ;;
        router) args=(--target "127.0.0.1:$ROUTER_PORT" --task sentiment) ;;
        baseline) args=(--target "127.0.0.1:$BASELINE_PORT" --task sentiment) ;;
      esac
      if [[ "$kind" == router ]]; then scrape "$TMP/before-$rate-$round.prom"; fi
      "$LOADGEN" "${args[@]}" "${common[@]}" >"$TMP/$kind-$rate-$round.json" \
        || echo "($kind run at $rate/s, round $round, had failed or skipped calls; see the table)"
      if [[ "$kind" == router ]]; then scrape "$TMP/after-$rate-$round.prom"; fi
    done
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

$PY - "$TMP" "$ROUNDS" "$TARGETS" $RATES <<'EOF'
import json, math, sys

tmp, rounds, targets, rates = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]

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

def pct(sorted_values, p):
    """Nearest rank, as loadgen."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]

NAMES = {"worker": "direct", "proxy": "bare proxy", "router": "slm-router",
         "baseline": "slm-router (baseline)"}
print()
print(f"{rounds} round(s); percentiles over all rounds' OK calls.")
print("| rate/s | target | sent | ok | errors | skipped | p50 us | p90 us | p99 us | p99.9 us | max us |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
rows, notes = {}, []
for rate in rates:
    for kind in targets:
        runs = [json.load(open(f"{tmp}/{kind}-{rate}-{r}.json")) for r in range(1, rounds + 1)]
        lat = sorted(v for r in runs for v in r["all_latency_us"])
        router_us = sorted(v for r in runs for v in r["all_router_us"])
        errors = {}
        for r in runs:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
            if r["first_error"]:
                notes.append(f"{rate}/s {kind}: first error: {r['first_error']}")
        row = {"sent": sum(r["sent"] for r in runs), "ok": sum(r["ok"] for r in runs),
               "skipped": sum(r["skipped"] for r in runs), "lat": lat, "router_us": router_us}
        rows[(rate, kind)] = row
        err = ", ".join(f"{k} {v}" for k, v in errors.items()) or "0"
        print(f"| {rate} | {NAMES[kind]} | {row['sent']} | {row['ok']} | {err} | {row['skipped']} | "
              f"{pct(lat, 50):.0f} | {pct(lat, 90):.0f} | {pct(lat, 99):.0f} | "
              f"{pct(lat, 99.9):.0f} | {(lat[-1] if lat else float('nan')):.0f} |")
for note in notes[:8]:
    print(note)
print()
print("Added latency (us) at p50 / p99, and the ratio of the two latencies:")
print("| rate/s | comparison | added p50 us | added p99 us | ratio p50 | ratio p99 |")
print("|---|---|---|---|---|---|")
pairs = [("proxy", "worker"), ("router", "worker"), ("router", "proxy")]
if "baseline" in targets:
    pairs += [("baseline", "worker"), ("baseline", "proxy"), ("router", "baseline")]
for rate in rates:
    for a, b in pairs:
        la, lb = rows[(rate, a)]["lat"], rows[(rate, b)]["lat"]
        print(f"| {rate} | {NAMES[a]} vs {NAMES[b]} | {pct(la, 50) - pct(lb, 50):.0f} | "
              f"{pct(la, 99) - pct(lb, 99):.0f} | {pct(la, 50) / pct(lb, 50):.2f}x | "
              f"{pct(la, 99) / pct(lb, 99):.2f}x |")
print()
print("| rate/s | router_us p50 / p99 (ServedBy) | slmgw_router_overhead_seconds p50 / p99 us |")
print("|---|---|---|")
for rate in rates:
    ru = rows[(rate, "router")]["router_us"]
    diff = {}
    for r in range(1, rounds + 1):
        before = histogram(f"{tmp}/before-{rate}-{r}.prom")
        after = histogram(f"{tmp}/after-{rate}-{r}.prom")
        for b in after:
            diff[b] = diff.get(b, 0) + after[b] - before.get(b, 0)
    print(f"| {rate} | {pct(ru, 50):.0f} / {pct(ru, 99):.0f} | "
          f"{quantile(diff, 0.5) * 1e6:.0f} / {quantile(diff, 0.99) * 1e6:.0f} |")
print()
print("Goal: router overhead over direct p50 <= 100 us, p99 <= 500 us (rule/task routing).")
EOF
