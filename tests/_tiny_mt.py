"""One tiny σReparam translation model, trained once per test session and shared by the CLI
tests (sigma-plot/inspect/export), plus helpers to run fairseq-generate and the examples of
docs/tools.md."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import List

from _toy_mt import BIN, ROOT, USER_DIR, binarize, run, train_args, write_toy_corpus

DATA = Path(__file__).resolve().parent / "data"
DOCS = ROOT / "docs" / "tools.md"


@dataclass
class TinyRun:
    root: Path
    data: Path        # binarized corpus
    checkpoint: Path  # ckpt/checkpoint_best.pt
    log: Path         # the --log-format json output
    tensorboard: Path


_CACHE = {}


def tiny_run(tmp_path_factory) -> TinyRun:
    """Train sigma_transformer_tiny for 4 updates (once per session, whichever test asks first)."""
    if "run" not in _CACHE:
        root = tmp_path_factory.mktemp("tiny_mt")
        write_toy_corpus(root, n_train=120, n_valid=12)
        data = binarize(root)
        res = run(train_args(data, root / "ckpt", "--tensorboard-logdir", str(root / "tb"), max_update=4),
                  cwd=root)
        log = root / "train.log"
        log.write_text(res.stdout + res.stderr)
        _CACHE["run"] = TinyRun(root, data, root / "ckpt" / "checkpoint_best.pt", log, root / "tb")
    return _CACHE["run"]


def generate(data: Path, checkpoint: Path, user_dir: bool, *extra: str, subset: str = "valid") -> List[str]:
    """The hypothesis (H), detokenized (D) and positional-score (P) lines of fairseq-generate,
    sorted; with ``user_dir=False`` it is stock fairseq (sigma_plugin never imported). ``extra``:
    more fairseq-generate flags (e.g. the speech_to_text task's)."""
    cmd = [str(BIN / "fairseq-generate"), str(data), "--path", str(checkpoint), "--beam", "2", "--cpu",
           "--gen-subset", subset, *extra]
    if user_dir:
        cmd += ["--user-dir", USER_DIR]
    out = run(cmd).stdout
    return sorted(line for line in out.splitlines() if re.match(r"^[HDP]-\d+\t", line))


def doc_examples(tool: str) -> List[List[str]]:
    """The argument lists of the ``$ <tool> ...`` example lines of docs/tools.md."""
    lines = [line.strip()[2:] for line in DOCS.read_text(encoding="utf-8").splitlines()
             if line.strip().startswith(f"$ {tool} ")]
    return [shlex.split(line)[1:] for line in lines]
