# Shared helpers for the recipe stage scripts (sourced, not run).
#   log MSG / die MSG          timestamped messages on stderr (die exits 1)
#   stage_header N NAME        the logged header of a stage
#   parse_options "$@"         --name value / --name-with-dashes value for every name in $options
#   device_flags PYTHON MODE   prints --cpu unless a GPU is usable (MODE: auto | true | false)

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') | ${recipe_name:-recipe} | $*" >&2; }
die() { log "error: $*"; exit 1; }
stage_header() { log "==== stage $1: $2 ===="; }

parse_options() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --*)
                local name=${1#--}; name=${name//-/_}
                [[ " ${options[*]} " == *" ${name} "* ]] || die "unknown option $1 (known: ${options[*]})"
                [ $# -ge 2 ] || die "option $1 needs a value"
                printf -v "$name" '%s' "$2"; shift 2 ;;
            *) die "unexpected argument '$1' (options are --name value)" ;;
        esac
    done
}

device_flags() {
    local python=$1 mode=$2
    case "$mode" in
        false) echo "--cpu" ;;
        true) "$python" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
                  || die "--use_gpu true but torch sees no CUDA device" ;;
        auto) "$python" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" || echo "--cpu" ;;
        *) die "--use_gpu must be auto, true or false (got '$mode')" ;;
    esac
}

# run_stage N NAME: true when stage N is inside [stage, stop_stage]; logs the header.
run_stage() {
    if [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; then stage_header "$1" "$2"; return 0; fi
    return 1
}

# Stage markers hold the options a stage ran with (one line, with the marker of the stage it
# read from), so that a rerun with other options redoes the stage instead of trusting old output.
#   stage_done MARKER SIGNATURE   true when MARKER exists and holds SIGNATURE (logs why not)
#   mark_done MARKER SIGNATURE    write MARKER atomically (call it after checking the outputs)
#   marker_of MARKER              what MARKER holds ("none" when absent)
stage_done() {
    [ -f "$1" ] || return 1
    local was; was=$(cat "$1")
    [ "$was" = "$2" ] && return 0
    log "$1 was made with other options; redoing (was: ${was:-not recorded}; now: $2)"
    return 1
}
mark_done() { printf '%s\n' "$2" > "$1.tmp" && mv "$1.tmp" "$1"; }
marker_of() { if [ -f "$1" ]; then cat "$1"; else echo none; fi; }

# ---- stages shared by mt.sh and asr.sh -------------------------------------------------
# Both scripts set: stage stop_stage python train_config tag expdir use_gpu n_average, and
# recipe_dir/project_root/plugin_dir before sourcing this file.
#   check_stage_options LAST   checks --stage/--stop_stage (1..LAST) and --python; sets
#                              PYTHONPATH, bindir, tag (from --train_config) and exp
#   need_config N              stops unless --train_config is given (stage N needs it)
#   train_stage DATA SIGNATURE [FAIRSEQ_FLAGS...]
#                              fairseq-train on DATA with the config's flags, --train_args, the
#                              device flag and FAIRSEQ_FLAGS -> $exp; never continues a run made
#                              with another SIGNATURE (data and options); resumes checkpoint_last.pt
#   average_stage              the last --n_average checkpoints -> $decode_ckpt (checkpoint_avg.pt)
#   plot_stage                 sigma-plot of $exp/train.log -> $exp/plots
check_stage_options() {
    [[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage/--stop_stage must be numbers (got '$stage', '$stop_stage')"
    [ "$stage" -le "$1" ] || die "unknown stage $stage: the stages are 1-$1 (see the header of $0)"
    command -v "$python" >/dev/null || die "--python '$python' not found (run 'make install' and use .venv/bin/python)"
    export PYTHONPATH=$project_root${PYTHONPATH:+:$PYTHONPATH}
    bindir=$(dirname "$(command -v "$python")")
    if [ -n "$train_config" ]; then
        [ -f "$train_config" ] || die "--train_config $train_config: file not found"
        [ -n "$tag" ] || tag=$(basename "$train_config" .yaml)
    fi
    exp=$expdir/${tag:-none}
    # the checkpoint stages after training decode: the average, or checkpoint_best.pt (--n_average 0)
    decode_ckpt=$exp/checkpoint_best.pt
    [ "$n_average" -gt 0 ] && decode_ckpt=$exp/checkpoint_avg.pt
    return 0
}

need_config() { [ -n "$train_config" ] || die "stage $1 needs --train_config"; }

# fairseq 0.12.3.1's batch_by_size drops the last batch of a subset unless its size is a multiple
# of --required-batch-size-multiple (default 8): validation and decoding would silently leave
# sentences out, so training and decoding pass --required-batch-size-multiple 1.
train_stage() {
    local data=$1 sig_train=$2 marker dev
    shift 2
    for marker in "$exp/.train_options" "$exp/.train_done"; do
        [ ! -s "$marker" ] || [ "$(cat "$marker")" = "$sig_train" ] || die "$exp was trained with other data or \
options (was: $(cat "$marker"); now: $sig_train): train under another --tag, or remove $exp to start over"
    done
    if [ -f "$exp/.train_done" ]; then log "$exp: training finished earlier; skipping"; return 0; fi
    local conf_flags extra
    mapfile -t conf_flags < <("$python" -m sigma_plugin.recipe.conf "$train_config" --check "$data")
    [ "${#conf_flags[@]}" -gt 0 ] || die "$train_config gave no fairseq-train flags (see the message above)"
    # shellcheck disable=SC2206
    extra=($train_args)
    dev=$(device_flags "$python" "$use_gpu")
    mkdir -p "$exp"
    cp "$train_config" "$exp/train_config.yaml"
    mark_done "$exp/.train_options" "$sig_train"
    log "fairseq-train ${conf_flags[*]} ${extra[*]} $dev (log: $exp/train.log; resumes from $exp/checkpoint_last.pt)"
    # shellcheck disable=SC2086
    "$bindir/fairseq-train" "$data" --user-dir "$plugin_dir" "${conf_flags[@]}" "${extra[@]}" $dev "$@" \
        --required-batch-size-multiple 1 --save-dir "$exp" --tensorboard-logdir "$exp/tensorboard" \
        --log-format json 2>&1 | tee -a "$exp/train.log" || die "fairseq-train failed; see $exp/train.log"
    [ -f "$exp/checkpoint_last.pt" ] || die "training wrote no checkpoint; see $exp/train.log"
    mark_done "$exp/.train_done" "$sig_train"
}

average_stage() {
    [ -f "$exp/.train_done" ] || die "$exp: training has not finished: run the training stage first"
    local sig_avg
    sig_avg="$(cat "$exp/.train_done") | n_average=$n_average"
    if [ "$n_average" -eq 0 ]; then log "--n_average 0: decoding checkpoint_best.pt"
    elif [ -f "$decode_ckpt" ] && stage_done "$exp/.average_done" "$sig_avg"; then log "$decode_ckpt is up to date; skipping"
    else
        rm -f "$exp/.average_done"
        "$python" -m sigma_plugin.recipe.average --dir "$exp" --last "$n_average" --output "$decode_ckpt"
        mark_done "$exp/.average_done" "$sig_avg"
    fi
}

plot_stage() { "$bindir/sigma-plot" "$exp/train.log" --labels "$tag" --out "$exp/plots"; }
