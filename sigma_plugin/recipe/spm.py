"""SentencePiece for the recipes: train a joint model, encode or decode text files.

    python -m sigma_plugin.recipe.spm train --input a.en,a.de --model-prefix data/spm/spm \\
        --vocab-size 8000 [--model-type unigram] [--character-coverage 1.0] [--max-sentences 2000000]
    python -m sigma_plugin.recipe.spm encode --model data/spm/spm.model --inputs a.en a.de --outdir data/spm
    python -m sigma_plugin.recipe.spm decode --model data/spm/spm.model --input x.spm --output x.txt
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import sentencepiece as spm

from sigma_plugin.util import atomic_open, fail, run_cli


def train(inputs, model_prefix: Path, vocab_size: int, model_type: str, character_coverage: float,
          max_sentences: int) -> None:
    for path in inputs:
        if not Path(path).is_file() or os.path.getsize(path) == 0:
            fail(f"{path}: SentencePiece training input is missing or empty")
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(dir=model_prefix.parent, prefix=".spm."))
    try:
        try:
            spm.SentencePieceTrainer.train(
                input=",".join(str(p) for p in inputs), model_prefix=str(tmpdir / "m"),
                vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage,
                input_sentence_size=max_sentences, shuffle_input_sentence=True,
                # ids fairseq's dictionary does not need: keep <unk> only, no <s>/</s>/<pad> pieces
                bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0, minloglevel=2)
        except RuntimeError as e:
            msg = str(e)
            if "Vocabulary size" in msg or "vocab_size" in msg:
                fail(f"--vocab-size {vocab_size} is too large for this corpus ({msg.strip()}); lower it")
            raise
        for ext in ("model", "vocab"):
            os.replace(tmpdir / f"m.{ext}", f"{model_prefix}.{ext}")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def load(model: Path) -> spm.SentencePieceProcessor:
    if not Path(model).is_file():
        fail(f"{model}: SentencePiece model not found (run the vocabulary stage first)")
    return spm.SentencePieceProcessor(model_file=str(model))


def encode(model: Path, inp: Path, out: Path) -> int:
    sp = load(model)
    n = 0
    with open(inp, encoding="utf-8") as fi, atomic_open(out) as fo:
        for line in fi:
            fo.write(" ".join(sp.encode(line.strip(), out_type=str)) + "\n")
            n += 1
    return n


def decode(model: Path, inp: Path, out: Path) -> int:
    sp = load(model)
    n = 0
    with open(inp, encoding="utf-8") as fi, atomic_open(out) as fo:
        for line in fi:
            fo.write(sp.decode(line.split()) + "\n")
            n += 1
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--input", required=True, help="comma-separated text files")
    t.add_argument("--model-prefix", required=True, type=Path)
    t.add_argument("--vocab-size", type=int, default=8000)
    t.add_argument("--model-type", default="unigram", choices=["unigram", "bpe", "char", "word"])
    t.add_argument("--character-coverage", type=float, default=1.0)
    t.add_argument("--max-sentences", type=int, default=2_000_000)
    e = sub.add_parser("encode")
    e.add_argument("--model", required=True, type=Path)
    e.add_argument("--inputs", required=True, nargs="+", type=Path)
    e.add_argument("--outdir", required=True, type=Path, help="encoded files keep their names")
    d = sub.add_parser("decode")
    d.add_argument("--model", required=True, type=Path)
    d.add_argument("--input", required=True, type=Path)
    d.add_argument("--output", required=True, type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "train":
        train(args.input.split(","), args.model_prefix, args.vocab_size, args.model_type,
              args.character_coverage, args.max_sentences)
        print(f"spm: trained {args.model_prefix}.model (vocab {args.vocab_size}, {args.model_type})")
    elif args.cmd == "encode":
        for path in args.inputs:
            if not path.is_file():
                fail(f"{path}: file not found")
        for path in args.inputs:
            out = args.outdir / path.name
            print(f"spm: encoded {encode(args.model, path, out)} lines -> {out}")
    else:
        print(f"spm: decoded {decode(args.model, args.input, args.output)} lines -> {args.output}")


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
