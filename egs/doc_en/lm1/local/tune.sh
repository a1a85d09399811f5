#!/usr/bin/env bash
# Learning-rate and warmup search on valid for the default (σReparam post-LN, Adam, no warmup) and
# for the stock fairseq transformer_lm (pre-LN, Adam, inverse-sqrt warmup), the same budget each:
# every candidate trains --updates updates (stage 4) under the tag tune_NAME, then one table of the
# validation loss (first 20 batches of valid, as the configs validate) and the training loss.
#   local/tune.sh --datadir data                       # all candidates, 500 updates each
#   local/tune.sh --datadir data --only sigma_lr2e-3,stock_lr1e-3_w100
#   local/tune.sh --datadir data --report              # the table of what has run
# A candidate that finished is skipped; a larger --updates continues it. The winner of each side is
# then trained to the configs' --max-update with ./run.sh --tag tune_NAME --train_args "..." (the same
# arguments as below, without --max-update), which continues the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
updates=500
datadir=data
only=""
report=false
while [ $# -gt 0 ]; do
    case $1 in
        --updates) updates=$2; shift 2 ;;
        --datadir) datadir=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --report) report=true; shift ;;
        *) echo "tune.sh: unknown option $1 (known: --updates N, --datadir DIR, --only A,B, --report)" >&2; exit 2 ;;
    esac
done
[[ $updates =~ ^[0-9]+$ ]] && [ "$updates" -ge 2 ] || { echo "tune.sh: --updates must be a whole number ≥ 2 (got '$updates')" >&2; exit 2; }
python=${PYTHON:-python}

sigma=conf/train_sigma_postln_adam.yaml
stock=conf/train_stock_adam_warmup.yaml
# name | config | training arguments (each side gets the learning rates around its config's own)
candidates=(
    "sigma_lr2e-3|$sigma|--lr 2e-3"
    "stock_lr5e-4_w100|$stock|--lr 5e-4 --warmup-updates 100"
    "stock_lr1e-3_w100|$stock|--lr 1e-3 --warmup-updates 100"
    "sigma_lr1e-3|$sigma|--lr 1e-3"
    "stock_lr2e-3_w100|$stock|--lr 2e-3 --warmup-updates 100"
    "sigma_lr4e-3|$sigma|--lr 4e-3"
    "stock_lr1e-3_w300|$stock|--lr 1e-3 --warmup-updates 300"
    "stock_lr2e-3_w300|$stock|--lr 2e-3 --warmup-updates 300"
    # the stock command's best setting with the LayerNorm fairseq's transformer_lm_* archs use:
    # --arch transformer_lm itself builds post-LN (see README)
    "stockpreln_lr1e-3_w100|$stock|--lr 1e-3 --warmup-updates 100 --sigma-layernorm pre"
)

names=() logs=()
for c in "${candidates[@]}"; do
    IFS='|' read -r name conf args <<< "$c"
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    names+=("$name"); logs+=("exp/tune_$name/train.log")
    $report && continue
    ./run.sh --datadir "$datadir" --stage 4 --stop_stage 4 --train_config "$conf" --tag "tune_$name" \
        --train_args "$args --max-update $updates"
done
[ ${#names[@]} -gt 0 ] || { echo "tune.sh: --only $only names no candidate" >&2; exit 2; }
present=() labels=()
for i in "${!names[@]}"; do
    # a candidate still starting has no training line yet
    grep -qs "| train_inner |" "${logs[$i]}" && { present+=("${logs[$i]}"); labels+=("${names[$i]}"); }
done
[ ${#present[@]} -gt 0 ] || { echo "tune.sh: no candidate has run yet" >&2; exit 2; }
"$python" -m sigma_plugin.recipe.compare "${present[@]}" --labels "$(IFS=,; echo "${labels[*]}")" \
    --at "$((updates / 2)),$updates" --keys valid:loss,loss,ent_dec_self_min --output exp/tune_table.md
echo "table: exp/tune_table.md"
