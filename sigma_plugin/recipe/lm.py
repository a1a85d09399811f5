"""Steps of the language-model recipe (recipes/lm.sh) that are easier in Python than in bash.

    python -m sigma_plugin.recipe.lm check --dir data/raw.tmp [--splits train,valid,test]
    python -m sigma_plugin.recipe.lm check --file extra.txt
    python -m sigma_plugin.recipe.lm task-flags exp/TAG/checkpoint_avg.pt
    python -m sigma_plugin.recipe.lm score --log eval.log --text raw.txt --name TAG/valid --output results.json

``check``: each text file exists, is UTF-8 and holds at least one word (prints lines and words).
``task-flags``: the checkpoint's --tokens-per-sample and --sample-break-mode, one item a line,
for fairseq-eval-lm (which takes the task's options from its command line, not the checkpoint).
``score``: reads fairseq-eval-lm's log and writes its perplexity per token together with the
perplexity per word of the text it scored: the same total log-likelihood divided by the words
of the text plus one end of line per line (fairseq appends </s> to each line), so that models
with different vocabularies can be compared.
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path

from sigma_plugin.util import atomic_open, fail, run_cli

from .io import check_utf8

_EVALUATED = re.compile(r"Evaluated ([\d,]+) tokens")
_LOSS = re.compile(r"Loss \(base 2\): ([\d.]+), Perplexity: ([\d.]+|inf|nan)")


def count_words(path: Path):
    """(lines, words) of a UTF-8 text file."""
    lines = words = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            lines += 1
            words += len(line.split())
    return lines, words


def check_text(path: Path) -> str:
    if not path.is_file():
        fail(f"{path}: file not found")
    check_utf8(path)
    lines, words = count_words(path)
    if words == 0:
        fail(f"{path}: no text (0 words in {lines} line(s)); give one sentence or paragraph a line")
    return f"{path.name} {lines:,} lines, {words:,} words"


def task_flags(checkpoint: Path):
    import torch
    if not checkpoint.is_file():
        fail(f"{checkpoint}: checkpoint not found (run the training and averaging stages first)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    task = (state.get("cfg") or {}).get("task") if isinstance(state, dict) else None
    if task is None and isinstance(state, dict) and state.get("args") is not None:
        task = vars(state["args"])
    if not task or task.get("tokens_per_sample") is None:
        fail(f"{checkpoint}: holds no language-modelling task options (tokens_per_sample); "
             f"is it a checkpoint of --task language_modeling?")
    return ["--tokens-per-sample", str(task["tokens_per_sample"]),
            "--sample-break-mode", str(task.get("sample_break_mode") or "none")]


def score(log: Path, text: Path, name: str, output: Path, checkpoint: str = "") -> str:
    if not log.is_file():
        fail(f"{log}: fairseq-eval-lm log not found")
    body = log.read_text(encoding="utf-8", errors="replace")
    tokens, loss = _EVALUATED.findall(body), _LOSS.findall(body)
    if not tokens or not loss:
        fail(f"{log}: no 'Evaluated N tokens' / 'Loss (base 2)' lines: fairseq-eval-lm did not finish (see the log)")
    n_tokens = int(tokens[-1].replace(",", ""))
    loss2 = float(loss[-1][0])
    if n_tokens == 0:
        fail(f"{log}: fairseq-eval-lm evaluated 0 tokens")
    lines, words = count_words(text)
    units = words + lines  # one </s> a line
    nll = loss2 * math.log(2) * n_tokens  # total negative log-likelihood, nats
    result = {"name": name, "text": str(text), "checkpoint": checkpoint,
              "tokens": n_tokens, "loss_per_token_nats": round(loss2 * math.log(2), 4),
              "ppl_per_token": round(2 ** loss2, 3), "lines": lines, "words": words,
              "ppl_per_word": round(math.exp(nll / units), 3)}
    with atomic_open(output) as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return (f"{name}: perplexity {result['ppl_per_token']:.2f} per token ({n_tokens:,} tokens), "
            f"{result['ppl_per_word']:.2f} per word ({words:,} words + {lines:,} line ends)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="text files exist, are UTF-8 and hold words")
    c.add_argument("--dir", type=Path, help="folder of SPLIT.txt files")
    c.add_argument("--splits", default="train,valid,test")
    c.add_argument("--file", type=Path, help="one text file")
    t = sub.add_parser("task-flags", help="the checkpoint's language-modelling task flags")
    t.add_argument("checkpoint", type=Path)
    s = sub.add_parser("score", help="fairseq-eval-lm log -> results.json and one printed line")
    s.add_argument("--log", required=True, type=Path)
    s.add_argument("--text", required=True, type=Path, help="the raw text that was scored (words counted)")
    s.add_argument("--name", required=True)
    s.add_argument("--output", required=True, type=Path)
    s.add_argument("--checkpoint", default="")
    s.add_argument("--line-output", type=Path, help="also write the printed line to this file")
    args = ap.parse_args(argv)
    if args.cmd == "check":
        if (args.dir is None) == (args.file is None):
            fail("check: give --dir or --file")
        paths = [args.file] if args.file else [args.dir / f"{s}.txt" for s in args.splits.split(",")]
        print("text: " + "; ".join(check_text(p) for p in paths) + " (UTF-8)")
    elif args.cmd == "task-flags":
        sys.stdout.write("".join(f"{f}\n" for f in task_flags(args.checkpoint)))
    else:
        line = score(args.log, args.text, args.name, args.output, args.checkpoint)
        if args.line_output:
            with atomic_open(args.line_output) as f:
                f.write(line + "\n")
        print(line)


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
