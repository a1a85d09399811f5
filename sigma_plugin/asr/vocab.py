"""SentencePiece vocabulary trained on training transcripts, plus its fairseq dictionary.

Special ids follow fairseq's ``Dictionary`` (<s>=0, <pad>=1, </s>=2, <unk>=3), so the
SentencePiece ids and the dictionary indices coincide. The dictionary file lists the
remaining pieces in id order (``piece 1`` per line), as fairseq's s2t prep writes it.
``char`` is SentencePiece's character model: one piece per character plus ``▁``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Tuple

import sentencepiece as spm

from sigma_plugin.util.atomic import atomic_path
from sigma_plugin.util.spm import FAIRSEQ_IDS, train_sentencepiece

VOCAB_TYPES = ("unigram", "bpe", "char")
SPECIALS = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>"}


def vocab_name(vocab_type: str, vocab_size: int) -> str:
    return "spm_char" if vocab_type == "char" else f"spm_{vocab_type}{vocab_size}"


def build_vocabulary(texts: Iterable[str], out_prefix, vocab_type: str = "unigram",
                     vocab_size: int = 256) -> Tuple[Path, Path]:
    """Write ``out_prefix.model`` and ``out_prefix.txt`` (fairseq dict); return their paths."""
    if vocab_type not in VOCAB_TYPES:
        raise ValueError(f"--vocab-type must be one of {VOCAB_TYPES}, got {vocab_type!r}")
    if vocab_type != "char" and vocab_size < 8:
        raise ValueError(f"--vocab-size must be >= 8, got {vocab_size}")
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_prefix.parent) as tmp:
        text_file = Path(tmp) / "text.txt"
        n = 0
        with open(text_file, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(t + "\n")
                n += 1
        if n == 0:
            raise ValueError("no training transcripts to build the SentencePiece vocabulary from")
        tmp_model = train_sentencepiece(
            [text_file], Path(tmp) / "spm", vocab_size if vocab_type != "char" else 1000, vocab_type,
            special_ids=FAIRSEQ_IDS, hard_vocab_limit=vocab_type != "char",  # char: as many pieces as characters
            num_threads=max(1, min(4, os.cpu_count() or 1)), write_vocab=False)
        sp = spm.SentencePieceProcessor(model_file=str(tmp_model))
        for i, s in SPECIALS.items():
            assert sp.id_to_piece(i) == s, (i, sp.id_to_piece(i))
        model_path = out_prefix.with_suffix(".model")
        dict_path = out_prefix.with_suffix(".txt")
        with atomic_path(dict_path) as tmp_dict:
            with open(tmp_dict, "w", encoding="utf-8") as f:
                for i in range(len(SPECIALS), sp.get_piece_size()):
                    f.write(f"{sp.id_to_piece(i)} 1\n")
            os.replace(tmp_model, model_path)
    return model_path, dict_path
