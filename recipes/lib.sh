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
