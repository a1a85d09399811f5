#!/usr/bin/env bash
# Continue a stock fairseq checkpoint as its σReparam twin (docs/flags.md, "Continuing from a stock
# checkpoint"), on the short segments of the corpus:
#   1. the stock command a user would run (conf/import/stock_warmup.yaml)  -> exp/import/stock_warmup
#   2. the import checked: sigma-twin --verify (max |Δ log-prob| on valid)  -> exp/import/verify.txt
#   3. that checkpoint continued at Adam 3e-3 without warmup, side by side: the stock model
#      (conf/import/stock_ft_adam3e-3.yaml) and its σReparam twin (conf/import/sigma_ft_adam3e-3.yaml)
#                                                       -> exp/import/compare.md, exp/import/plots/
#   local/import_finetune.sh [--data_args "run.sh data options"]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
data_args="--datadir data_short --max_len 8 --filter_splits train,valid,test --vocab_size 2000"
while [ $# -gt 0 ]; do
    case "$1" in
        --data_args) data_args=$2; shift 2 ;;
        *) echo "import_finetune.sh: unknown option $1 (--data_args)" >&2; exit 2 ;;
    esac
done
# shellcheck disable=SC2206
data_opts=($data_args)
datadir=data
for ((i = 0; i < ${#data_opts[@]}; i++)); do [ "${data_opts[$i]}" = --datadir ] && datadir=${data_opts[$((i + 1))]}; done
./run.sh "${data_opts[@]}" --stop_stage 4
OMP_NUM_THREADS=1 ./run.sh "${data_opts[@]}" --stage 5 --stop_stage 5 --train_config conf/import/stock_warmup.yaml \
    --tag import/stock_warmup
"$(dirname "$(command -v "$python")")/sigma-twin" exp/import/stock_warmup/checkpoint_last.pt "$datadir/bin" \
    --verify valid > exp/import/verify.txt
head -1 exp/import/verify.txt
local/side_by_side.sh --name import --decode false --at 25,100,200,300 --data_args "$data_args" \
    conf/import/stock_ft_adam3e-3.yaml conf/import/sigma_ft_adam3e-3.yaml
cat exp/import/compare.md
