"""Choose the LM weight and token bonus of CTC beam search on a validation subset.

    python -m sigma_plugin.asr.tune_lm DATA --task speech_to_text --gen-subset dev-clean \
        --path exp/x/checkpoint_avg.pt --lm-path DATA/lm/ngram6.lm.gz --beam 5 \
        --lm-weights 0,0.25,0.5,0.75,1 --lm-token-bonuses 0,0.5,1,2 --out exp/x/lm_tuning.tsv [--cpu]

The model runs once; every (weight, bonus) pair of the grid then decodes the subset by prefix beam
search with the LM fused in (sigma_plugin.decoding.ctc_beam) and is scored like stage 7 (WER/CER, jiwer,
normalised text). Writes a TSV (``lm_weight lm_token_bonus wer cer``, plus a ``no LM`` row) and
prints it with the best pair (lowest CER, then WER) as recipe flags. Tune on a validation subset,
never on the test subset you report.
"""
import logging
import sys

from tqdm import tqdm

from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

from sigma_plugin.util import atomic_path

from .decode_ctc import CtcDecoder, load_lm
from .score import error_rates
from .text_norm import normalize_transcript

logger = logging.getLogger("sigma_plugin.asr.tune_lm")


def floats(text: str, flag: str):
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:
        raise ValueError(f"{flag}: expected comma-separated numbers, got {text!r}")
    return values


def tune(cfg, weights, bonuses, out):
    ctc = CtcDecoder(cfg)
    lm = load_lm(cfg.generation.lm_path, ctc.tgt_dict)
    beam = int(cfg.generation.beam)
    # the subset's frame scores stay in memory for the whole grid: tune on a validation-sized subset
    utts = list(ctc.emissions())
    refs = [normalize_transcript(ref) for _, _, ref in utts]

    def rates(*decoding):
        hyps = [normalize_transcript(ctc.text(ctc.best(lprobs, "beam", beam, *decoding))[1]) for _, lprobs, _ in utts]
        r = error_rates(refs, hyps)
        return r["wer"], r["cer"]

    rows = [("no LM", "", *rates())]
    grid = [(w, b) for w in weights for b in bonuses]
    for w, b in tqdm(grid, unit="setting", desc=f"LM grid on {ctc.subset}"):
        rows.append((w, b, *rates(lm, w, b)))
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("lm_weight\tlm_token_bonus\twer\tcer\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    best = min(rows[1:], key=lambda r: (r[3], r[2]))
    print(f"{'lm_weight':>10} {'bonus':>6} {'WER':>7} {'CER':>7}   ({ctc.subset}, {len(utts)} utterances, beam {beam})")
    for r in rows:
        print(f"{r[0]:>10} {r[1]:>6} {r[2]:7.2f} {r[3]:7.2f}{'   <- best' if r is best else ''}")
    print(f"best: --lm_weight {best[0]} --lm_token_bonus {best[1]} (CER {best[3]:.2f}, WER {best[2]:.2f}; "
          f"without LM CER {rows[0][3]:.2f}); table: {out}")
    return rows, best


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, force=True,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    parser = options.get_generation_parser()
    parser.add_argument("--lm-weights", default="0,0.25,0.5,0.75,1", help="comma-separated LM weights")
    parser.add_argument("--lm-token-bonuses", default="0,0.5,1,2", help="comma-separated token bonuses")
    parser.add_argument("--out", required=True, help="TSV to write")
    args = options.parse_args_and_arch(parser, input_args=argv)
    if not args.path or not args.lm_path:
        parser.error("--path and --lm-path are required")
    try:
        weights = floats(args.lm_weights, "--lm-weights")
        bonuses = floats(args.lm_token_bonuses, "--lm-token-bonuses")
        if min(weights) < 0:
            raise ValueError(f"--lm-weights must be >= 0, got {args.lm_weights}")
        if args.beam < 1:
            raise ValueError(f"--beam must be >= 1, got {args.beam}")
    except ValueError as e:
        parser.error(str(e))
    try:
        tune(convert_namespace_to_omegaconf(args), weights, bonuses, args.out)
    except ValueError as e:
        print(f"tune_lm: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
