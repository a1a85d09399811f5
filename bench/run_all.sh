#!/usr/bin/env bash
# All CPU benches of issue 12 in sequence, each table to bench/out/*.md. Run on a QUIET machine
# (nothing else using the cores): the ratios are only as good as the machine is idle.
#
#     bash bench/run_all.sh            (or: make bench-all)
#
# Estimated run time on 2 idle cores: about 32 minutes (could be 28-40), derived from the
# idle-machine timing of d=512/4k tokens in docs/overhead.md (train 3.3 s, eval 1.0 s a step),
# scaled by d²·tokens, and from start-up times of the tiny runs in tests/test_bench_*.py:
#   1 overhead grid   ~23 min  9 shapes x 4 variants, cheapest first; --max-shape-s 60 gives
#                              the 6 cheaper shapes a warm-up and 3 timed rounds, and the three
#                              largest (d=1024 x 4k, d=512 x 16k, d=1024 x 16k: 20-70 s a step)
#                              one timed round each, the last two without warm-up; plus one
#                              memory subprocess per variant and shape (one eval + one train step)
#   2 probe cost      ~1.5 min (with building the MT and ASR data)
#   3 end to end wps  ~6 min   3 pairs x 60 updates, MT and ASR (12 fairseq-train runs)
#   4 build and load  ~3 min   18L-18L and 100L-100L (d=256), sigma vs stock, 3 rounds, a fresh
#                              interpreter per build and per load
#   5 inference       ~4 min   7 rounds x 3 checkpoints of fairseq-generate (3 rounds differ by a few %)
# More precision for the largest shapes: BENCH_SHAPE_S=300 (about +15 min).
# Each stage's elapsed time is printed; a failed stage is reported and the others still run.
# BENCH_SMOKE=1: tiny settings for every stage (a minute or two; checks the wiring, not the speed).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=${BENCH_OUT:-bench/out}
work=$out/work
shape_s=${BENCH_SHAPE_S:-60}
export PYTHONPATH=$PWD/bench:$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out"

echo "bench/run_all.sh: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l > 0.5) }' &&
    echo "WARNING: the machine is not idle (load > 0.5): timings will be distorted"
failed=()
stage() {  # stage NAME OUTFILE COMMAND...
    local name=$1 file=$2 t=$SECONDS
    shift 2
    echo "== $name -> $file  ($(date +%H:%M:%S))"
    rm -f "$file"  # never list a table of an earlier run
    if "$@" --out "$file"; then echo "== $name: done in $((SECONDS - t)) s"
    else echo "== $name: FAILED after $((SECONDS - t)) s"; failed+=("$name"); fi
}
grid=(--dims 256 512 1024 --tokens 1024 4096 16384 --reps 3 --warmup 1 --max-shape-s "$shape_s")
probe=(--reps 10)
e2e=(--pairs 3 --updates 60)
inf=(--rounds 7)
bl=(--depths 18 100 --rounds 3)
if [ "${BENCH_SMOKE:-0}" = 1 ]; then
    grid=(--dims 64 --tokens 256 --layers 1 --reps 1); probe=(--reps 1 --warmup 0)
    e2e=(--pairs 1 --updates 4 --log-interval 2); inf=(--rounds 1 --beam 2 --length 4)
    bl=(--depths 2 --dim 64 --rounds 1)
    echo "BENCH_SMOKE=1: tiny settings, the numbers mean nothing"
fi
start=$SECONDS
stage "1 overhead grid" "$out/overhead_grid.md" "$PY" bench/overhead.py "${grid[@]}"
stage "2 probe cost" "$out/probe_cost.md" "$PY" bench/probe_cost.py "${probe[@]}" --work "$work"
stage "3 end-to-end wps" "$out/e2e_wps.md" "$PY" bench/e2e_wps.py "${e2e[@]}" --work "$work"
stage "4 build and load" "$out/build_load.md" "$PY" bench/build_load.py "${bl[@]}" --work "$work"
stage "5 inference" "$out/inference.md" "$PY" bench/inference.py "${inf[@]}" --work "$work"

echo "bench/run_all.sh: finished in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s; tables:"
for f in overhead_grid probe_cost e2e_wps build_load inference; do [ -f "$out/$f.md" ] && echo "  $out/$f.md"; done
[ ${#failed[@]} -eq 0 ] || { echo "FAILED stages: ${failed[*]}"; exit 1; }
