#!/usr/bin/env bash
# The issue-3 generation matrix in one run: random-weight models with the shapes of SmolLM2-135M,
# Qwen2.5-0.5B and TinyLlama-1.1B (Q8_0 GGUF from our converter, built once and cached), int8
# weights, bf16 KV cache, 1 and 2 threads; decoder_bench prints each figure against the read
# bandwidth and int8 matmul peak measured in the same run, and a summary table.
#
#   tests/bench/run_decoder_bench.sh [BUILD_DIR]     (default: build; needs target decoder_bench)
#
# Environment: SLM_BENCH_MODELS_DIR caches the GGUF files (default /tmp/slm-decoder-bench; about
# 1.9 GB); THREADS (default "1,2"); STEPS (decode steps, default 32); MODELS (default all three:
# smollm2-135m,qwen2.5-0.5b,tinyllama-1.1b); COMPARE_GEMV_ROWS (default 8: batch 16 is also timed
# with the packed GEMV limited to 8 rows, oneDNN above, as before the 16-row kernels).
# OMP_WAIT_POLICY (default PASSIVE: idle OpenMP threads sleep at once; on dedicated cores ACTIVE or
# unset lets them spin between the many small parallel regions of a decode step, see docs).
# Takes about 3-5 minutes on 2 cores. Speed is measured, never asserted.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
models_dir="${SLM_BENCH_MODELS_DIR:-/tmp/slm-decoder-bench}"
mkdir -p "$models_dir"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" PYTHONPATH="$root/tools"

shape() {
  case "$1" in
    smollm2-135m) echo 'llama {"vocab_size": 49152, "hidden_size": 576, "num_layers": 30, "num_heads": 9, "num_kv_heads": 3, "ffn_size": 1536, "context_length": 2048, "tie_embeddings": true}' ;;
    qwen2.5-0.5b) echo 'qwen2 {"vocab_size": 151936, "hidden_size": 896, "num_layers": 24, "num_heads": 14, "num_kv_heads": 2, "ffn_size": 4864, "context_length": 2048, "tie_embeddings": true, "rope_theta": 1000000.0}' ;;
    tinyllama-1.1b) echo 'llama {"vocab_size": 32000, "hidden_size": 2048, "num_layers": 22, "num_heads": 32, "num_kv_heads": 4, "ffn_size": 5632, "context_length": 2048}' ;;
    *) echo "unknown model $1" >&2; exit 2 ;;
  esac
}

paths=()
IFS=, read -ra names <<< "${MODELS:-smollm2-135m,qwen2.5-0.5b,tinyllama-1.1b}"
for name in "${names[@]}"; do
  spec="$(shape "$name")"
  file="$models_dir/$name-random-q8_0.gguf"
  if [[ ! -s "$file" ]]; then
    echo "== building $file (once)"
    nice -n 10 /usr/bin/python3 "$root/tools/convert_decoder.py" --random "${spec%% *}" \
      --type q8_0 --shape "${spec#* }" --out "$file.tmp"
    mv "$file.tmp" "$file"
  fi
  paths+=("$file")
done

echo "== load: $(uptime)"
models="$(IFS=,; echo "${paths[*]}")"
"$build/tests/bench/decoder_bench" --models "$models" --dtype int8 --kv bf16 \
  --threads "${THREADS:-1,2}" --steps "${STEPS:-32}" \
  --compare_gemv_rows "${COMPARE_GEMV_ROWS:-8}" 2>&1 | grep -v '^I 20'
echo "== load: $(uptime)"
