"""WER and CER (jiwer) of decoded subsets against their manifests' transcripts.

    python -m sigma_plugin.asr.score --data-dir dump --decode-dir exp/x/decode_avg_beam5 \
        --subsets dev-clean test-clean

Reads, per subset, DATA_DIR/SUBSET.tsv (references: tgt_text) and
DECODE_DIR/SUBSET/generate-SUBSET.txt (fairseq-generate or sigma_plugin.asr.decode_ctc output;
``D-<i>`` lines are the hypotheses for manifest row <i>). Both sides are normalised
(text_norm.normalize_transcript). Every manifest row must have exactly one hypothesis.
Writes (atomically) DECODE_DIR/SUBSET/hyp_ref.tsv (id, ref, hyp), DECODE_DIR/SUBSET/score.json,
and DECODE_DIR/RESULTS.tsv (one row per subset), and prints the table. CER counts spaces.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import jiwer

from sigma_plugin.corpus.atomic import write_text
from .manifest import read_tsv, write_tsv
from .text_norm import normalize_transcript

RESULT_COLUMNS = ("subset", "utts", "words", "wer", "sub", "del", "ins", "chars", "cer")


def read_hypotheses(path) -> Dict[int, str]:
    """{manifest row: detokenized hypothesis} from the D-<i> lines of a generate file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"decoder output not found: {path}")
    hyps: Dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.startswith("D-"):
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) not in (2, 3):
                raise ValueError(f"{path}:{lineno}: expected 'D-<i>\\tscore\\ttext', got {line!r}")
            idx = int(fields[0][2:])
            if idx in hyps:
                raise ValueError(f"{path}:{lineno}: second hypothesis for D-{idx} (use --nbest 1)")
            hyps[idx] = fields[2] if len(fields) == 3 else ""
    return hyps


def score_subset(manifest, generate_file) -> Dict:
    rows = read_tsv(manifest, required=("id", "tgt_text"))
    hyps = read_hypotheses(generate_file)
    missing = [r["id"] for i, r in enumerate(rows) if i not in hyps]
    extra = sorted(i for i in hyps if i >= len(rows))
    if missing or extra:
        raise ValueError(f"{generate_file} does not match {manifest}: {len(missing)} manifest rows without "
                         f"hypothesis (e.g. {missing[:3]}), {len(extra)} hypotheses beyond its {len(rows)} rows")
    refs = [normalize_transcript(r["tgt_text"]) for r in rows]
    hyp_list = [normalize_transcript(hyps[i]) for i in range(len(rows))]
    empty = [r["id"] for r, ref in zip(rows, refs) if not ref]
    if empty:
        raise ValueError(f"{manifest}: references empty after normalisation: {empty[:3]}")
    words = jiwer.process_words(refs, hyp_list)
    chars = jiwer.process_characters(refs, hyp_list)
    n_words = words.hits + words.substitutions + words.deletions
    n_chars = chars.hits + chars.substitutions + chars.deletions
    return {
        "utts": len(rows), "words": n_words, "wer": round(100 * words.wer, 2),
        "sub": words.substitutions, "del": words.deletions, "ins": words.insertions,
        "chars": n_chars, "cer": round(100 * chars.cer, 2),
        "pairs": [{"id": r["id"], "ref": ref, "hyp": hyp} for r, ref, hyp in zip(rows, refs, hyp_list)],
    }


def score(data_dir, decode_dir, subsets: List[str]) -> List[Dict]:
    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    results = []
    for subset in subsets:
        sub_dir = decode_dir / subset
        res = score_subset(data_dir / f"{subset}.tsv", sub_dir / f"generate-{subset}.txt")
        write_tsv(sub_dir / "hyp_ref.tsv", ("id", "ref", "hyp"), res.pop("pairs"))
        res = {"subset": subset, **res}
        write_text(sub_dir / "score.json", json.dumps(res, indent=1) + "\n")
        results.append(res)
    write_tsv(decode_dir / "RESULTS.tsv", RESULT_COLUMNS, results)
    return results


def format_table(results: List[Dict]) -> str:
    lines = ["\t".join(RESULT_COLUMNS)]
    lines += ["\t".join(str(r[c]) for c in RESULT_COLUMNS) for r in results]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder with SUBSET.tsv manifests")
    p.add_argument("--decode-dir", required=True, help="folder with SUBSET/generate-SUBSET.txt")
    p.add_argument("--subsets", nargs="+", required=True, help="subsets to score")
    args = p.parse_args(argv)
    try:
        results = score(args.data_dir, args.decode_dir, args.subsets)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(results))
    print(f"(WER/CER in %; written to {Path(args.decode_dir) / 'RESULTS.tsv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
