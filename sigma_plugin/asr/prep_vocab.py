"""Vocabulary, global CMVN and config.yaml for a folder made by ``prep_fbank``.

    python -m sigma_plugin.asr.prep_vocab --data-dir dump --train-subsets train-clean-100 \
        --vocab-type unigram --vocab-size 5000 --specaugment ld

Writes into --data-dir: spm_<type><size>.model / .txt (SentencePiece model, fairseq dict;
``spm_char.*`` for --vocab-type char), gcmvn.npz (mean/std over all training frames) and
config.yaml (written last: its presence means this step is complete).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from .data_config import SPECAUGMENT_POLICIES, cmvn_from_stats, save_cmvn, write_config_yaml
from .manifest import read_tsv
from sigma_plugin.util import StepError, run_cli

from .freq_warp import check_range
from .vocab import VOCAB_TYPES, build_vocabulary, vocab_name

logger = logging.getLogger("sigma_plugin.asr.prep_vocab")


def prep_vocab(data_dir, train_subsets: Sequence[str], vocab_type="unigram", vocab_size=256,
               specaugment=None, n_mels=80, overwrite=False, freq_warp=0.0, sample_rate=16000) -> Path:
    data_dir = Path(data_dir)
    config = data_dir / "config.yaml"
    if config.exists() and not overwrite:
        logger.info(f"{config} exists, skipping (--overwrite to redo)")
        return config
    if config.exists():
        config.unlink()
    texts = []
    for subset in train_subsets:
        texts += [r["tgt_text"] for r in read_tsv(data_dir / f"{subset}.tsv", required=("tgt_text",))]
    name = vocab_name(vocab_type, vocab_size)
    model, dict_file = build_vocabulary(texts, data_dir / name, vocab_type, vocab_size)
    n_pieces = sum(1 for _ in open(dict_file, encoding="utf-8")) + 4
    logger.info(f"{name}: {n_pieces} pieces from {len(texts)} transcripts -> {model}, {dict_file}")
    stats = cmvn_from_stats([data_dir / f"{s}.fbank_stats.npz" for s in train_subsets])
    save_cmvn(data_dir / "gcmvn.npz", stats)
    write_config_yaml(config, data_dir, model.name, dict_file.name, "gcmvn.npz", specaugment, n_mels,
                      freq_warp, sample_rate)
    logger.info(f"wrote {config}")
    return config


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="folder with the prep_fbank outputs")
    p.add_argument("--train-subsets", nargs="+", required=True, help="training subsets (transcripts + CMVN)")
    p.add_argument("--vocab-type", choices=VOCAB_TYPES, default="unigram", help="SentencePiece model type")
    p.add_argument("--vocab-size", type=int, default=256, help="pieces incl. 4 specials (ignored for char)")
    p.add_argument("--specaugment", choices=sorted(SPECAUGMENT_POLICIES) + ["none"], default="ss",
                   help="SpecAugment policy on training batches (fairseq's lb/ld/sm/ss, or none; default ss)")
    p.add_argument("--n-mels", type=int, default=80, help="feature dimension (as in prep_fbank)")
    p.add_argument("--freq-warp", type=float, default=0.0, metavar="W",
                   help="vocal-tract length perturbation of training batches: warp factor drawn in "
                        "[1-W, 1+W] per utterance (e.g. 0.1; 0 = off, the default)")
    p.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the audio (as in prep_fbank)")
    p.add_argument("--overwrite", action="store_true", help="redo even if config.yaml exists")
    return p


def main(argv=None) -> int:
    """The command line: exit status 0, or 2 with ``error: <message>`` on stderr."""
    return run_cli(None, _main, argv)


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_range(args.freq_warp)
    except ValueError as e:
        raise StepError(f"--freq-warp: {e}") from None
    logging.basicConfig(level=logging.INFO, force=True,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    try:
        prep_vocab(args.data_dir, args.train_subsets, args.vocab_type, args.vocab_size,
                   None if args.specaugment == "none" else args.specaugment, args.n_mels, args.overwrite,
                   args.freq_warp, args.sample_rate)
    except (ValueError, FileNotFoundError) as e:
        raise StepError(str(e)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
