"""What every command-line step shares (no fairseq, no torch import): atomic writes
(:mod:`.atomic`), the one error type and its one-line report (:mod:`.steps`), SentencePiece
training (:mod:`.spm`, imported on its own: it loads sentencepiece) and reading a training
run's logged scalars (:mod:`.run_logs`)."""
from .atomic import atomic_open, atomic_path, remove_stale_temps, write_lines, write_text
from .steps import StepError, fail, run_cli

__all__ = ["atomic_open", "atomic_path", "remove_stale_temps", "write_lines", "write_text",
           "StepError", "fail", "run_cli"]
