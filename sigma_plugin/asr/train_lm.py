"""A token n-gram LM for CTC shallow fusion, in the recipe's own vocabulary.

    python -m sigma_plugin.asr.train_lm --data-dir dump --train-subsets train-clean-100 \
        [--text more_english.txt ...] --exclude-subsets dev-clean test-clean --order 6 \
        --out dump/lm/ngram6.lm.gz

Text: the transcripts of --train-subsets plus each --text file (one sentence per line), all
normalised as the transcripts are scored (upper case, no punctuation) and encoded with the
SentencePiece model of DATA_DIR/config.yaml. Any sentence equal (after normalisation) to a
transcript of --exclude-subsets is dropped, so that the dev/test sentences are never in the LM.
Interpolated Witten-Bell smoothing (sigma_plugin.decoding.ngram_lm); ``decode_ctc --lm-path`` uses it.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterable, List, Sequence

import yaml

from sigma_plugin.decoding.ngram_lm import NgramLM
from sigma_plugin.util import StepError, atomic_path, run_cli

from .manifest import read_tsv
from .text_norm import normalize_transcript

logger = logging.getLogger("sigma_plugin.asr.train_lm")


def spm_model_of(data_dir: Path) -> Path:
    config = data_dir / "config.yaml"
    try:
        cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
        model = Path(cfg["bpe_tokenizer"]["sentencepiece_model"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        raise StepError(f"{config}: no SentencePiece model named there (run the vocab stage first)") from None
    if not model.is_file():
        raise StepError(f"{config}: its SentencePiece model {model} does not exist (run the vocab stage again)")
    return model


def transcripts(data_dir: Path, subsets: Iterable[str]) -> List[str]:
    texts = []
    for s in subsets:
        path = data_dir / f"{s}.tsv"
        if not path.exists():
            raise StepError(f"{path}: no such manifest (subset {s!r})")
        texts += [r["tgt_text"] for r in read_tsv(path, required=("tgt_text",))]
    return texts


def train_lm(data_dir, train_subsets: Sequence[str], out, texts: Sequence[str] = (),
             exclude_subsets: Sequence[str] = (), order: int = 6, max_sentences: int = 0) -> dict:
    import sentencepiece as spm
    data_dir = Path(data_dir)
    if order < 1:
        raise StepError(f"--order must be >= 1, got {order}")
    if max_sentences < 0:
        raise StepError(f"--max-sentences must be >= 0, got {max_sentences}")
    sp = spm.SentencePieceProcessor(model_file=str(spm_model_of(data_dir)))
    held_out = {normalize_transcript(t) for t in transcripts(data_dir, exclude_subsets)}
    train_texts = [normalize_transcript(t) for t in transcripts(data_dir, train_subsets)]
    sentences = [s for s in train_texts if s not in held_out]
    n_transcripts, n_dropped = len(train_texts), 0
    for path in texts:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    s = normalize_transcript(line)
                    if not s:
                        continue
                    if s in held_out:
                        n_dropped += 1
                        continue
                    sentences.append(s)
                    if max_sentences and len(sentences) >= max_sentences:
                        break
        except (OSError, UnicodeDecodeError) as e:
            raise StepError(f"--text {path}: cannot read it ({e})") from None
    if not sentences:
        raise StepError("no text to train the LM on (empty transcripts and --text)")
    lm = NgramLM.train((sp.encode(s) for s in sentences), order, sp.get_piece_size(), sp.bos_id(), sp.eos_id())
    with atomic_path(Path(out)) as tmp:
        lm.save(tmp)
    stats = {"sentences": len(sentences), "transcripts": n_transcripts, "dropped_held_out": n_dropped,
             "ngrams": len(lm.counts), "order": order}
    logger.info(f"{out}: {order}-gram LM from {len(sentences)} sentences ({n_transcripts} transcripts, "
                f"{n_dropped} --text lines dropped as dev/test sentences), {len(lm.counts)} n-grams")
    return stats


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder with config.yaml and the subsets' manifests")
    p.add_argument("--train-subsets", nargs="+", required=True, help="subsets whose transcripts the LM learns")
    p.add_argument("--text", nargs="*", default=[], help="more text files, one sentence per line")
    p.add_argument("--exclude-subsets", nargs="*", default=[],
                   help="subsets whose sentences never enter the LM (dev/test)")
    p.add_argument("--order", type=int, default=6, help="n-gram order (default 6)")
    p.add_argument("--max-sentences", type=int, default=0,
                   help="stop reading --text once the LM has this many sentences (0: all)")
    p.add_argument("--out", required=True, help="LM file to write (gzip text)")
    return p


def main(argv=None) -> int:
    return run_cli(None, _main, argv)


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, force=True,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    train_lm(args.data_dir, args.train_subsets, args.out, args.text, args.exclude_subsets, args.order,
             args.max_sentences)
    return 0


if __name__ == "__main__":
    sys.exit(main())
