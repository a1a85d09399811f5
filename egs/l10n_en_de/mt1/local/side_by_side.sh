#!/usr/bin/env bash
# Train several configs side by side on the same data (one thread each, started together, so
# they share the machine evenly), then optionally decode and score each, and compare them:
# a markdown table of loss and attention entropy at fixed updates, and overlaid plots.
#   local/side_by_side.sh --name NAME [--decode true|false] [--at 100,200,...] [--data_args "..."] CONF [CONF ...]
# --data_args: run.sh options for every stage of every run (data folder, length filter, vocabulary).
# Outputs: exp/NAME/<conf>/ (each run: train.log, checkpoints, decode_*/results.json),
#          exp/NAME/compare.md, exp/NAME/scores.md (with --decode true), exp/NAME/plots/*.png
# Examples (the recipe README's results):
#   local/side_by_side.sh --name depth --decode false conf/depth/stock_postln_18l_adam.yaml conf/depth/sigma_postln_18l_adam.yaml
#   local/side_by_side.sh --name budget conf/train_sigma_postln_sgd.yaml conf/train_preln_adam.yaml
#   local/side_by_side.sh --name demo_optimizer --at 250,500,1000,1500 \
#       --data_args "--datadir data_short --max_len 8 --filter_splits train,valid,test --vocab_size 2000" \
#       conf/train_demo.yaml conf/optimizer/demo_sgd.yaml conf/optimizer/demo_adam.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
name= decode=true at=100,200,300,400,500,600 data_args=
while [ $# -gt 0 ]; do
    case "$1" in
        --name) name=$2; shift 2 ;;
        --decode) decode=$2; shift 2 ;;
        --at) at=$2; shift 2 ;;
        --data_args) data_args=$2; shift 2 ;;
        --*) echo "side_by_side.sh: unknown option $1 (--name, --decode, --at, --data_args)" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ -n "$name" ] || { echo "side_by_side.sh: --name is required" >&2; exit 2; }
[ $# -ge 1 ] || { echo "side_by_side.sh: give at least one config" >&2; exit 2; }
for conf in "$@"; do [ -f "$conf" ] || { echo "side_by_side.sh: $conf: file not found" >&2; exit 2; }; done
# shellcheck disable=SC2206
data_opts=($data_args)
./run.sh "${data_opts[@]}" --stop_stage 4        # data (skipped when already prepared)
mkdir -p "exp/$name"
pids=() tags=() logs=()
for conf in "$@"; do
    tag=$(basename "$conf" .yaml)
    tags+=("$tag"); logs+=("exp/$name/$tag/train.log")
    OMP_NUM_THREADS=1 ./run.sh "${data_opts[@]}" --stage 5 --stop_stage 5 --train_config "$conf" --tag "$name/$tag" \
        > "exp/$name/$tag.train.out" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "side_by_side.sh: ${tags[$i]} failed, see exp/$name/${tags[$i]}.train.out" >&2; status=1; }
done
[ $status -eq 0 ] || exit $status
labels=$(IFS=,; echo "${tags[*]}")
"$python" -m sigma_plugin.recipe.compare "${logs[@]}" --labels "$labels" --at "$at" \
    --keys loss,nll_loss,ent_enc_self_mean,ent_enc_self_min,ent_dec_self_min,ent_dec_cross_min \
    --output "exp/$name/compare.md"
"$(dirname "$(command -v "$python")")/sigma-plot" "${logs[@]}" --labels "$labels" --out "exp/$name/plots"
if [ "$decode" = true ]; then
    for conf in "$@"; do
        ./run.sh "${data_opts[@]}" --stage 6 --train_config "$conf" --tag "$name/$(basename "$conf" .yaml)"
    done
    "$python" -m sigma_plugin.recipe.score_table exp/"$name"/*/decode_*/results.json --output "exp/$name/scores.md"
fi
