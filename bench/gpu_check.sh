#!/usr/bin/env bash
# GPU check of σReparam (issue 12, item 6), about 3-5 minutes on one GPU:
#   1. bench/overhead.py on CUDA, fp32 and bf16 autocast (d 256/512/1024 x 4k/16k tokens)
#   2. σ and u computed in fp32 under fp16/bf16 autocast and in a .half() model
#   3. short fairseq-train runs of sigma_transformer with --amp and with --fp16
# Tables go to $OUT_DIR (default bench/out/gpu). Without a CUDA device it says so and exits 0
# (nothing to check on this machine); any failed check exits 1.
#
#     bash bench/gpu_check.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
out=${1:-bench/out/gpu}

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: SKIPPED - torch sees no CUDA device on this machine (torch.cuda.is_available() is False); nothing was checked."
    exit 0
fi
gpu=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
echo "gpu_check: $gpu, torch $("$PY" -c 'import torch; print(torch.__version__)')"
mkdir -p "$out"
export PYTHONPATH=$PWD/bench:$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$SECONDS
for dtype in fp32 bf16; do
    echo "== overhead bench, CUDA $dtype"
    timeout 120 "$PY" bench/overhead.py --device cuda --dtype "$dtype" --dims 256 512 1024 --tokens 4096 16384 \
        --reps 20 --warmup 3 --no-memory --out "$out/overhead_cuda_$dtype.md" || { echo "gpu_check: FAILED (overhead $dtype)"; exit 1; }
done
echo "== σ in fp32 under autocast"
timeout 60 "$PY" bench/gpu_precision.py autocast || { echo "gpu_check: FAILED (autocast)"; exit 1; }
echo "== fairseq-train --amp / --fp16"
timeout 150 "$PY" bench/gpu_precision.py fairseq "$out/work" || { echo "gpu_check: FAILED (fairseq precision)"; exit 1; }
echo "gpu_check: all checks passed on $gpu in $((SECONDS - start)) s; tables: $out/overhead_cuda_fp32.md $out/overhead_cuda_bf16.md"
