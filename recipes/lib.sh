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
