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
    check_python
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

# The interpreter must import torch, fairseq and sigma_plugin (the system Python usually cannot):
# one line saying how to fix it instead of a traceback at the first stage that needs them.
check_python() {
    local missing
    missing=$("$python" -c 'import importlib.util as u
print(" ".join(m for m in ("torch", "fairseq", "sigma_plugin") if u.find_spec(m) is None))' 2>/dev/null) \
        || die "--python '$python' does not run: activate the project's environment (. $project_root/.venv/bin/activate) or set PYTHON=$project_root/.venv/bin/python"
    [ -z "$missing" ] || die "--python '$python' cannot import ${missing// /, }: activate the project's environment \
(. $project_root/.venv/bin/activate; 'make install' creates it) or set PYTHON=$project_root/.venv/bin/python"
}

# check_words FLAG VALUE ALLOWED...: every word of VALUE is one of ALLOWED (at least one word,
# none twice); else a one-line error naming FLAG and the bad word.
check_words() {
    local flag=$1 value=$2 w seen=" "
    shift 2
    [ -n "${value// /}" ] || die "$flag is empty (one or more of: $*)"
    for w in $value; do
        [[ " $* " == *" $w "* ]] || die "$flag: '$w' is not one of: $* (separate several with spaces)"
        [[ $seen != *" $w "* ]] || die "$flag: '$w' is given twice"
        seen+="$w "
    done
}

# The budget flags of a training run: a larger budget continues the run in place (from
# checkpoint_last.pt); every other flag is part of what the run is.
#   split_budget FLAG...   sets budget ("max-update=N max-epoch=N stop-time-hours=H", the last
#                          value of each; 0 = no limit, fairseq's default) and run_flags (the rest)
#   budget_cmp OLD NEW     prints same, larger (no limit lower, one higher) or smaller
split_budget() {
    local mu=0 me=0 st=0 a name value
    run_flags=()
    while [ $# -gt 0 ]; do
        a=$1; shift
        case "$a" in
            --max-update=*|--max-epoch=*|--stop-time-hours=*) name=${a%%=*} value=${a#*=} ;;
            --max-update|--max-epoch|--stop-time-hours) name=$a value=${1:-}; [ $# -eq 0 ] || shift ;;
            *) run_flags+=("$a"); continue ;;
        esac
        case "$name" in --max-update) mu=$value ;; --max-epoch) me=$value ;; *) st=$value ;; esac
    done
    budget="max-update=$mu max-epoch=$me stop-time-hours=$st"
}
budget_cmp() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); r = "same"
        for (i = 1; i <= n; i++) {
            split(x[i], p, "="); split(y[i], q, "="); o = p[2] + 0; w = q[2] + 0
            if (o == 0) o = 1e300; if (w == 0) w = 1e300
            if (w < o) { print "smaller"; exit }
            if (w > o) r = "larger"
        }
        print r }'
}

# fairseq 0.12.3.1's batch_by_size drops the last batch of a subset unless its size is a multiple
# of --required-batch-size-multiple (default 8): validation and decoding would silently leave
# sentences out, so training and decoding pass --required-batch-size-multiple 1.
#
# train_stage DATA SIG_DATA [FLAGS...]: $exp/.train_options holds SIG_DATA and the run's flags
# (config, --train_args, FLAGS) without the budget; $exp/.train_done adds the budget it reached.
# Other flags stop with a message; a larger --max-update/--max-epoch/--stop-time-hours continues
# the finished run from checkpoint_last.pt (and so redoes averaging and decoding); a smaller one
# stops. $legacy_sig_train, when set, is the marker an older version of this script wrote for
# the same run: it is taken as the same run.
train_stage() {
    local data=$1 sig_data=$2 dev conf_flags extra sig_train old was_budget
    shift 2
    mapfile -t conf_flags < <("$python" -m sigma_plugin.recipe.conf "$train_config")
    [ "${#conf_flags[@]}" -gt 0 ] || die "$train_config gave no fairseq-train flags (see the message above)"
    # shellcheck disable=SC2206
    extra=($train_args)
    split_budget "${conf_flags[@]}" "${extra[@]}" "$@"
    local run_budget=$budget run_hash
    run_hash=$(printf '%s\n' "${run_flags[@]}" | sha256sum | cut -c1-16)
    split_budget "${extra[@]}"  # --train_args, readable in the marker, without their budget flags
    sig_train="$sig_data | flags=$run_hash train_args=${run_flags[*]}"
    budget=$run_budget
    if [ -n "${legacy_sig_train:-}" ] && [ -f "$exp/.train_options" ] && [ "$(cat "$exp/.train_options")" = "$legacy_sig_train" ]; then
        log "$exp: markers of an older recipe version; rewritten in the current form"
        mark_done "$exp/.train_options" "$sig_train"
        [ ! -f "$exp/.train_done" ] || mark_done "$exp/.train_done" "$sig_train | $budget"
    fi
    [ ! -s "$exp/.train_options" ] || [ "$(cat "$exp/.train_options")" = "$sig_train" ] || die "$exp was trained \
with other data or options (was: $(cat "$exp/.train_options"); now: $sig_train): train under another --tag, or \
remove $exp to start over"
    if [ -f "$exp/.train_done" ]; then
        old=$(cat "$exp/.train_done")
        [ "${old% | max-update=*}" = "$sig_train" ] || die "$exp was trained with other data or options (was: \
${old% | max-update=*}; now: $sig_train): train under another --tag, or remove $exp to start over"
        was_budget=${old#"$sig_train | "}
        case "$(budget_cmp "$was_budget" "$budget")" in
            same) log "$exp: training finished earlier; skipping"; return 0 ;;
            larger) log "$exp: a larger budget ($was_budget -> $budget): continuing from $exp/checkpoint_last.pt"
                    rm -f "$exp/.train_done" ;;
            *) die "$exp was trained to $was_budget; $budget is smaller and cannot undo it: train under another \
--tag, or remove $exp to start over" ;;
        esac
    fi
    mapfile -t conf_flags < <("$python" -m sigma_plugin.recipe.conf "$train_config" --check "$data")
    [ "${#conf_flags[@]}" -gt 0 ] || die "$train_config gave no fairseq-train flags (see the message above)"
    dev=$(device_flags "$python" "$use_gpu")
    # the entropy alarm's snapshot goes to the experiment, not to the folder run.sh runs in
    local alarm=()
    if [[ " ${conf_flags[*]} ${extra[*]} " == *" --sigma-entropy-alarm"* ]] \
        && [[ " ${conf_flags[*]} ${extra[*]} " != *" --sigma-entropy-alarm-dir"* ]]; then
        alarm=(--sigma-entropy-alarm-dir "$exp")
    fi
    mkdir -p "$exp"
    cp "$train_config" "$exp/train_config.yaml"
    mark_done "$exp/.train_options" "$sig_train"
    log "fairseq-train ${conf_flags[*]} ${extra[*]} ${alarm[*]} $dev (log: $exp/train.log; resumes from $exp/checkpoint_last.pt)"
    # shellcheck disable=SC2086
    "$bindir/fairseq-train" "$data" --user-dir "$plugin_dir" "${conf_flags[@]}" "${extra[@]}" "${alarm[@]}" $dev "$@" \
        --required-batch-size-multiple 1 --save-dir "$exp" --tensorboard-logdir "$exp/tensorboard" \
        --log-format json 2>&1 | tee -a "$exp/train.log" || die "fairseq-train failed; see $exp/train.log"
    [ -f "$exp/checkpoint_last.pt" ] || die "training wrote no checkpoint; see $exp/train.log"
    mark_done "$exp/.train_done" "$sig_train | $budget"
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
