#!/usr/bin/env bash
# Encoder throughput: our encoder_bench, then the same model and inputs in ONNX Runtime (CPU, via
# Node) and Debian's PyTorch (bf16 and dynamic int8), at 1 and 2 threads; one table at the end.
#
#   tests/bench/run_encoder_bench.sh [BUILD_DIR]      (default: build; needs target encoder_bench)
#
# Environment: SLM_BENCH_DIR keeps the model and raw results there (default: a temp dir);
# SLM_BENCH_SKIP_ALTERNATIVES=1 runs only ours. Speed is measured, never asserted.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "${1:-$root/build}" && pwd)"
work="${SLM_BENCH_DIR:-$(mktemp -d -t encoder_bench.XXXXXX)}"
mkdir -p "$work"
python=/usr/bin/python3
alternatives="$root/tests/bench/alternatives"
export OMP_WAIT_POLICY=PASSIVE PYTHONPATH="$root/tools"

echo "== model (random MiniLM-L6-like BERT) -> $work"
"$python" "$alternatives/make_bench_model.py" --out "$work" 2>/dev/null

echo "== ours: encoder_bench"
SLM_ENCODER_BENCH_MODEL="$work/model.gguf" "$build/tests/bench/encoder_bench" \
  --benchmark_out="$work/ours.json" --benchmark_out_format=json

alt_files=()
if [[ "${SLM_BENCH_SKIP_ALTERNATIVES:-0}" != 1 ]]; then
  echo "== ONNX Runtime (onnxruntime-node, CPU EP, f32)"
  if [[ ! -d "$alternatives/node_modules/onnxruntime-node" ]]; then
    (cd "$alternatives" && npm i --ignore-scripts --no-audit --no-fund onnxruntime-node >/dev/null)
  fi
  if node "$alternatives/bench_ort.js" "$work/model.onnx" 1,2 16,64,256 8192 | tee "$work/ort.jsonl"
  then alt_files+=("$work/ort.jsonl"); else echo "(ONNX Runtime run failed; left out)"; fi

  echo "== PyTorch $("$python" -c 'import torch; print(torch.__version__)') (bf16, dynamic int8)"
  if "$python" "$alternatives/bench_torch.py" --model "$work/model.pt" --dtypes bf16,int8 \
       --threads 1,2 --seqs 16,64,256 | tee "$work/torch.jsonl"
  then alt_files+=("$work/torch.jsonl"); else echo "(PyTorch run failed; left out)"; fi
fi

echo
"$python" "$alternatives/summarize.py" "$work/ours.json" "${alt_files[@]}" | tee "$work/summary.txt"
