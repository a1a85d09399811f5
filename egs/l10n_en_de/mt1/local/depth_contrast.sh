#!/usr/bin/env bash
# The paper's depth claim at CPU scale, in one run: fairseq's stock post-LN `transformer` and the
# same model with σReparam, both 18L-18L (d=128, FFN 256, 4 heads, 2048 tokens, Adam 1e-3 fixed,
# no warmup, 600 updates), trained side by side on the l10n data; then a table of loss and
# attention entropy at fixed updates and overlaid plots.
#   local/depth_contrast.sh [CONF ...]      (default: conf/depth/{stock,sigma}_postln_18l_adam.yaml)
# Outputs: exp/depth/<conf>/train.log, exp/depth/compare.md, exp/depth/plots/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
confs=("$@")
[ ${#confs[@]} -gt 0 ] || confs=(conf/depth/stock_postln_18l_adam.yaml conf/depth/sigma_postln_18l_adam.yaml)
./run.sh --stop_stage 4                          # data (skipped when already prepared)
mkdir -p exp
pids=() tags=() logs=()
for conf in "${confs[@]}"; do
    tag=depth/$(basename "$conf" .yaml)
    tags+=("$(basename "$conf" .yaml)"); logs+=("exp/$tag/train.log")
    # one thread per run: the runs share the machine evenly
    OMP_NUM_THREADS=1 ./run.sh --stage 5 --stop_stage 5 --train_config "$conf" --tag "$tag" \
        > "exp/depth_$(basename "$conf" .yaml).out" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "depth_contrast: ${confs[$i]} failed, see exp/depth_${tags[$i]}.out" >&2; status=1; }
done
[ $status -eq 0 ] || exit $status
labels=$(IFS=,; echo "${tags[*]}")
"$python" -m sigma_plugin.recipe.compare "${logs[@]}" --labels "$labels" --at 100,200,300,400,500,600 \
    --keys loss,nll_loss,ent_enc_self_mean,ent_enc_self_min,ent_dec_self_min,ent_dec_cross_min \
    --output exp/depth/compare.md
"$(dirname "$(command -v "$python")")/sigma-plot" "${logs[@]}" --labels "$labels" --out exp/depth/plots
