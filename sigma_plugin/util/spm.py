"""SentencePiece training for the MT and the ASR recipes (one function): trained in a temporary
folder next to the output and renamed into place, so a rerun never finds half a model."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

from .steps import StepError

# Ids of the special pieces. MT: <unk> only, fairseq's dictionary adds its own <s>/<pad>/</s>.
UNK_ONLY_IDS: Dict[str, int] = {"bos_id": -1, "eos_id": -1, "pad_id": -1, "unk_id": 0}
# ASR: fairseq's Dictionary order, so that SentencePiece ids and dictionary indices coincide.
FAIRSEQ_IDS: Dict[str, int] = {"bos_id": 0, "pad_id": 1, "eos_id": 2, "unk_id": 3}


def train_sentencepiece(inputs: Sequence[os.PathLike], model_prefix: os.PathLike, vocab_size: int,
                        model_type: str = "unigram", *, special_ids: Dict[str, int] = UNK_ONLY_IDS,
                        character_coverage: float = 1.0, max_sentences: int = 0,
                        hard_vocab_limit: bool = True, num_threads: Optional[int] = None,
                        write_vocab: bool = True) -> Path:
    """Train a SentencePiece model on the text files ``inputs`` (one sentence a line) and write
    ``model_prefix.model`` (and ``model_prefix.vocab`` with ``write_vocab``); returns the model's
    path. ``max_sentences`` > 0 trains on that many sentences sampled from the inputs (0: all);
    ``hard_vocab_limit=False`` lets ``vocab_size`` be an upper bound (character models);
    ``num_threads`` None keeps SentencePiece's default. A missing or empty input, or a corpus too
    small for ``vocab_size``, is a StepError."""
    import sentencepiece as spm

    for path in inputs:
        if not Path(path).is_file() or os.path.getsize(path) == 0:
            raise StepError(f"{path}: SentencePiece training input is missing or empty")
    model_prefix = Path(model_prefix)
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(dir=model_prefix.parent, prefix=".spm."))
    options = dict(input=",".join(str(p) for p in inputs), model_prefix=str(tmpdir / "m"),
                   vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage,
                   input_sentence_size=max_sentences, shuffle_input_sentence=True,
                   hard_vocab_limit=hard_vocab_limit, minloglevel=2, **special_ids)
    if num_threads is not None:
        options["num_threads"] = num_threads
    try:
        try:
            spm.SentencePieceTrainer.train(**options)
        except RuntimeError as e:
            msg = str(e).strip()
            if "Vocabulary size" in msg or "vocab_size" in msg:
                raise StepError(f"--vocab-size {vocab_size} is too large for this corpus ({msg}); lower it") from None
            raise StepError(f"SentencePiece training failed ({model_type}, --vocab-size {vocab_size}): {msg}") from None
        for ext in ("model", "vocab") if write_vocab else ("model",):
            os.replace(tmpdir / f"m.{ext}", f"{model_prefix}.{ext}")
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return Path(f"{model_prefix}.model")
