"""WER and CER (jiwer) of decoded subsets against their manifests' transcripts.

    python -m sigma_plugin.asr.score --data-dir dump --decode-dir exp/x/decode_avg_beam5 \
        --subsets dev-clean test-clean [--speakers-root CORPUS_ROOT]

Reads, per subset, DATA_DIR/SUBSET.tsv (references: tgt_text) and
DECODE_DIR/SUBSET/generate-SUBSET.txt (fairseq-generate or sigma_plugin.asr.decode_ctc output;
``D-<i>`` lines are the hypotheses for manifest row <i>). Both sides are normalised
(text_norm.normalize_transcript). Every manifest row must have exactly one hypothesis.
Writes (atomically) DECODE_DIR/SUBSET/hyp_ref.tsv (id, ref, hyp), DECODE_DIR/SUBSET/score.json,
and DECODE_DIR/RESULTS.tsv (one row per subset), and prints the table. CER counts spaces.
Several --decode-dir (e.g. greedy and beam decoding of one model) are scored alike and printed
as one table with a `decode` column.

With --speakers-root, the speakers of each subset are looked up in SPEAKERS.txt
(CORPUS_ROOT/SUBSET/SPEAKERS.txt, else CORPUS_ROOT/SPEAKERS.txt; LibriSpeech's
`ID | SEX | SUBSET | MINUTES | NAME` lines, NAME being the voice of a synthetic corpus) and
scored per voice: DECODE_DIR/SUBSET/per_voice.tsv (voice, utts, words, wer, chars, cer), printed
too. Speakers missing from SPEAKERS.txt count under their id.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import jiwer

from sigma_plugin.util import StepError, run_cli
from sigma_plugin.util.atomic import write_text
from .manifest import read_tsv, write_tsv
from .text_norm import normalize_transcript

RESULT_COLUMNS = ("subset", "utts", "words", "wer", "sub", "del", "ins", "chars", "cer")
VOICE_COLUMNS = ("voice", "utts", "words", "wer", "chars", "cer")
MAX_PRINTED_VOICES = 20       # more voices (e.g. LibriSpeech readers) go to per_voice.tsv only


def read_speakers(path) -> Dict[str, str]:
    """{speaker id: NAME} from a LibriSpeech-style SPEAKERS.txt (';' lines are comments)."""
    names: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith(";"):
                continue
            fields = [x.strip() for x in line.split("|")]
            if len(fields) < 5 or not fields[0]:
                raise ValueError(f"{path}:{lineno}: expected 'ID | SEX | SUBSET | MINUTES | NAME', got {line.rstrip()!r}")
            names[fields[0]] = "|".join(fields[4:])
    return names


def speakers_file(root, subset: str):
    for path in (Path(root) / subset / "SPEAKERS.txt", Path(root) / "SPEAKERS.txt"):
        if path.is_file():
            return path
    return None


def error_rates(refs: List[str], hyps: List[str]) -> Dict:
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return {"words": words.hits + words.substitutions + words.deletions, "wer": round(100 * words.wer, 2),
            "sub": words.substitutions, "del": words.deletions, "ins": words.insertions,
            "chars": chars.hits + chars.substitutions + chars.deletions, "cer": round(100 * chars.cer, 2)}


def per_voice(rows: List[Dict[str, str]], pairs: List[Dict], voices: Dict[str, str]) -> List[Dict]:
    """Error rates per voice (manifest speaker -> SPEAKERS.txt name), sorted by voice."""
    groups: Dict[str, List[int]] = {}
    for i, r in enumerate(rows):
        spk = r.get("speaker", "")
        groups.setdefault(voices.get(spk, spk or "?"), []).append(i)
    out = []
    for voice, idx in sorted(groups.items()):
        rates = error_rates([pairs[i]["ref"] for i in idx], [pairs[i]["hyp"] for i in idx])
        out.append({"voice": voice, "utts": len(idx), **rates})
    return out


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
    return {"utts": len(rows), **error_rates(refs, hyp_list),
            "pairs": [{"id": r["id"], "ref": ref, "hyp": hyp} for r, ref, hyp in zip(rows, refs, hyp_list)],
            "rows": rows}


def score(data_dir, decode_dir, subsets: List[str], speakers_root=None) -> List[Dict]:
    """One result per subset; with speakers_root, each with "voices" (per_voice rows) when the
    subset has a SPEAKERS.txt."""
    data_dir, decode_dir = Path(data_dir), Path(decode_dir)
    results, voices_of = [], {}
    for subset in subsets:
        sub_dir = decode_dir / subset
        res = score_subset(data_dir / f"{subset}.tsv", sub_dir / f"generate-{subset}.txt")
        pairs, rows = res.pop("pairs"), res.pop("rows")
        write_tsv(sub_dir / "hyp_ref.tsv", ("id", "ref", "hyp"), pairs)
        res = {"subset": subset, **res}
        spk_file = speakers_file(speakers_root, subset) if speakers_root else None
        if spk_file is not None:
            voices_of[subset] = per_voice(rows, pairs, read_speakers(spk_file))
            write_tsv(sub_dir / "per_voice.tsv", VOICE_COLUMNS, voices_of[subset])
        write_text(sub_dir / "score.json", json.dumps(res, indent=1) + "\n")
        results.append(res)
    write_tsv(decode_dir / "RESULTS.tsv", RESULT_COLUMNS, results)
    for res in results:
        if res["subset"] in voices_of:
            res["voices"] = voices_of[res["subset"]]
    return results


def format_table(results: List[Dict], decode: str = None) -> str:
    """The RESULTS.tsv table; with decode, a first column naming the decoding."""
    head = ("decode",) if decode is not None else ()
    lines = ["\t".join(head + RESULT_COLUMNS)]
    lines += ["\t".join(((decode,) if decode is not None else ()) + tuple(str(r[c]) for c in RESULT_COLUMNS))
              for r in results]
    return "\n".join(lines)


def format_voices(results: List[Dict], decode: str = "") -> str:
    """Per-voice WER/CER lines of the subsets that have them."""
    lines = []
    for r in results:
        voices = r.get("voices")
        if not voices:
            continue
        title = f"{r['subset']}{' (' + decode + ')' if decode else ''}: per voice"
        if len(voices) > MAX_PRINTED_VOICES:
            lines.append(f"{title}: {len(voices)} voices, see per_voice.tsv")
            continue
        width = max(len(v["voice"]) for v in voices)
        lines.append(f"{title} ({len(voices)} voices)")
        lines += [f"  {v['voice']:<{width}}  utts {v['utts']:>4}  WER {v['wer']:6.2f}  CER {v['cer']:6.2f}"
                  for v in voices]
    return "\n".join(lines)


def main(argv=None) -> int:
    """The command line: exit status 0, or 2 with ``error: <message>`` on stderr."""
    return run_cli(None, _main, argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder with SUBSET.tsv manifests")
    p.add_argument("--decode-dir", required=True, nargs="+",
                   help="folder(s) with SUBSET/generate-SUBSET.txt (several: one table with a decode column)")
    p.add_argument("--subsets", nargs="+", required=True, help="subsets to score")
    p.add_argument("--speakers-root", help="corpus root with SUBSET/SPEAKERS.txt or SPEAKERS.txt: "
                                           "also score per voice")
    args = p.parse_args(argv)
    if args.speakers_root and not Path(args.speakers_root).is_dir():
        raise StepError(f"--speakers-root {args.speakers_root}: folder not found")
    several = len(args.decode_dir) > 1
    tables, voices = [], []
    try:
        for d in args.decode_dir:
            results = score(args.data_dir, d, args.subsets, args.speakers_root)
            name = Path(d).name if several else None
            tables.append(format_table(results, name))
            voices.append(format_voices(results, name or ""))
    except (FileNotFoundError, ValueError) as e:
        raise StepError(str(e)) from None
    print("\n".join([tables[0]] + [t.split("\n", 1)[1] for t in tables[1:]]))
    print(f"(WER/CER in %; written to {', '.join(str(Path(d) / 'RESULTS.tsv') for d in args.decode_dir)})")
    for v in voices:
        if v:
            print(v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
