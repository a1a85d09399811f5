"""SentencePiece for the MT recipe: train a joint model (``sigma_plugin.util.spm``), encode or decode
text files.

    python -m sigma_plugin.recipe.spm train --input a.en,a.de --model-prefix data/spm/spm \\
        --vocab-size 8000 [--model-type unigram] [--character-coverage 1.0] [--max-sentences 2000000]
    python -m sigma_plugin.recipe.spm encode --model data/spm/spm.model --inputs a.en a.de --outdir data/spm
    python -m sigma_plugin.recipe.spm decode --model data/spm/spm.model --input x.spm --output x.txt
"""
import argparse
import sys
from pathlib import Path

import sentencepiece as spm

from sigma_plugin.util import atomic_open, fail, run_cli
from sigma_plugin.util.spm import UNK_ONLY_IDS, train_sentencepiece


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
        train_sentencepiece(args.input.split(","), args.model_prefix, args.vocab_size, args.model_type,
                            special_ids=UNK_ONLY_IDS, character_coverage=args.character_coverage,
                            max_sentences=args.max_sentences)
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
