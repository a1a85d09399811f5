"""Stability map: which post-LN models train, at which depth, with which optimizer and learning
rate, without warmup -- stock post-LN, pre-LN, DeepNorm and σReparam variants side by side, for
MT (an encoder-decoder `sigma_transformer`, N layers each side) or language modelling (a
decoder-only `sigma_transformer_lm`, N layers), whichever the data folder holds.

Each cell is one `fairseq-train` run (one thread) of a fixed number of updates on binarized data;
its result is saved as it finishes (OUT/cells/*.json, log in OUT/logs/), so a rerun skips done
cells. Then OUT/table.md (markdown), OUT/heatmap_<D>L.png (rows: model, columns: optimizer/LR,
colour: final loss, × on diverged cells) and OUT/curves_<D>L.png (loss and minimum attention
entropy of every model at the most telling optimizer) are written.

    # data: short segments of the l10n corpus (egs/l10n_en_de/mt1 stages 1-4)
    (cd egs/l10n_en_de/mt1 && ./run.sh --datadir data_short --max_len 8 \\
        --filter_splits train,valid,test --vocab_size 2000 --stop_stage 4)
    python bench/stability_map.py --data egs/l10n_en_de/mt1/data_short/bin --quick
    python bench/stability_map.py --data egs/l10n_en_de/mt1/data_short/bin --jobs 2   # full grid
    # language modelling: a folder binarized with fairseq-preprocess --only-source (egs/doc_en/lm1 stage 3)
    python bench/stability_map.py --data egs/doc_en/lm1/data/bin --out bench/out/stability_map_lm \
        --depths 6,24 --models postln,preln,sigma_g=sigma0 --optimizers adam1e-3,adam3e-3,adam1e-2
    python bench/stability_map.py --data ... --out ... --report-only   # table and figures of the saved cells

Models and optimizers: bench/stability_cells.py; how a cell is judged: docs/stability.md.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stability_cells import MODELS, Cell, CellResult, analyse, optimizer_flags, unigram_entropy_bits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "full": dict(depths="6,18", models=",".join(MODELS),
                 optimizers="adam3e-4,adam1e-3,adam3e-3,adam1e-2,lars1,lars3,lars10",
                 seeds="1,2", updates=600),
    "quick": dict(depths="6,18", models="postln,preln,sigma_g=sigma0,sigma_g=0.35sigma0",
                  optimizers="adam1e-3,adam1e-2,lars3", seeds="1", updates=150),
}


class MapError(Exception):
    pass


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="fairseq binarized folder (fairseq-preprocess --joined-dictionary)")
    ap.add_argument("--out", default=None, help="output folder (default bench/out/stability_map[_quick])")
    ap.add_argument("--quick", action="store_true", help=f"small preset: {PRESETS['quick']}")
    ap.add_argument("--depths", help="comma-separated encoder=decoder layer counts")
    ap.add_argument("--models", help=f"comma-separated, from: {', '.join(MODELS)}")
    ap.add_argument("--optimizers", help="comma-separated adam<LR>, lars<LR> or sgd<LR>")
    ap.add_argument("--seeds", help="comma-separated seeds")
    ap.add_argument("--updates", type=int, help="updates per cell")
    ap.add_argument("--dim", type=int, default=64, help="model width (FFN = 2×dim, 4 heads)")
    ap.add_argument("--max-tokens", type=int, default=1024, help="tokens per update")
    ap.add_argument("--tokens-per-sample", type=int, default=64,
                    help="language modelling only: tokens per block (--sample-break-mode none)")
    ap.add_argument("--log-interval", type=int, default=25, help="updates between logged losses and entropy probes")
    ap.add_argument("--jobs", type=int, default=2, help="cells run at once, one thread each")
    ap.add_argument("--plateau-margin", type=float, default=0.5,
                    help="bits below the unigram entropy a final NLL must reach to count as off the plateau")
    ap.add_argument("--reanalyse", action="store_true",
                    help="judge the finished cells again from their logs (after changing --plateau-margin)")
    ap.add_argument("--report-only", action="store_true",
                    help="run nothing: write the table and figures of the grid's saved cells (missing ones left out)")
    args = ap.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = str(ROOT / "bench" / "out" / ("stability_map_quick" if args.quick else "stability_map"))
    return args


def grid(args) -> List[Cell]:
    def ints(flag, text):
        try:
            values = [int(x) for x in str(text).split(",") if x.strip()]
        except ValueError:
            raise MapError(f"--{flag}: expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < 1:
            raise MapError(f"--{flag}: expected positive integers, got {text!r}")
        return values
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise MapError(f"--models: unknown {', '.join(unknown)} (known: {', '.join(MODELS)})")
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    for o in optimizers:
        try:
            optimizer_flags(o)
        except ValueError as e:
            raise MapError(f"--optimizers: {e}") from None
    if args.updates < 2 or args.dim < 4 or args.max_tokens < 16 or args.jobs < 1 or args.log_interval < 1:
        raise MapError("--updates ≥ 2, --dim ≥ 4, --max-tokens ≥ 16, --jobs ≥ 1 and --log-interval ≥ 1 are needed")
    return [Cell(d, m, o, s) for d in ints("depths", args.depths) for m in models for o in optimizers
            for s in ints("seeds", args.seeds)]


LM = "language_modeling"
MT = "translation"
# DeepNorm's β and α are defined for sigma_transformer's encoder-decoder only
MT_ONLY_MODELS = ("deepnorm",)


def data_kind(data: str) -> Tuple[str, str, str]:
    """(task, training-target prefix, dictionary file) of a binarized folder: translation when it
    holds train.SRC-TGT.TGT.idx, language modelling when it holds train.idx and dict.txt."""
    found = sorted(glob.glob(os.path.join(data, "train.*-*.*.idx")))
    if found:
        pair = os.path.basename(found[0]).split(".")[1]
        src, tgt = pair.split("-")
        return MT, f"train.{src}-{tgt}.{tgt}", f"dict.{tgt}.txt"
    if os.path.exists(os.path.join(data, "train.idx")) and os.path.exists(os.path.join(data, "dict.txt")):
        return LM, "train", "dict.txt"
    raise MapError(f"--data {data}: neither train.SRC-TGT.LANG.idx (translation) nor train.idx with dict.txt "
                   "(language modelling); binarize with fairseq-preprocess first")


def target_bits(data: str, tgt_prefix: str, dict_name: str) -> Tuple[float, float]:
    """(entropy of the training targets' unigram distribution, end-of-sentence included; log2 of
    the target vocabulary, the loss — label-smoothed or not — of a uniform prediction), in bits."""
    from fairseq.data import Dictionary, data_utils
    # importing fairseq leaves the root logger at DEBUG (its INFO lines, matplotlib's font search)
    logging.getLogger().setLevel(logging.WARNING)
    dictionary = Dictionary.load(os.path.join(data, dict_name))
    dataset = data_utils.load_indexed_dataset(os.path.join(data, tgt_prefix), dictionary)
    if dataset is None:
        raise MapError(f"--data {data}: cannot read {tgt_prefix}")
    counts: Counter = Counter()
    for i in range(len(dataset)):
        counts.update(dataset[i].tolist())
    return unigram_entropy_bits(dict(counts)), math.log2(len(dictionary))


def model_flags(args, cell: Cell) -> List[str]:
    """The task, architecture and size flags of a cell (everything but the model's own switches)."""
    d = args.dim
    if args.task == LM:
        # every LM cell is post-LN unless the model's own --sigma-layernorm (preln, sigma_noln),
        # given after this one, says otherwise
        return ["--task", LM, "--tokens-per-sample", str(args.tokens_per_sample), "--sample-break-mode", "none",
                "--arch", "sigma_transformer_lm", "--decoder-layers", str(cell.depth),
                "--decoder-embed-dim", str(d), "--decoder-ffn-embed-dim", str(2 * d),
                "--decoder-attention-heads", "4", "--share-decoder-input-output-embed",
                "--criterion", "cross_entropy_with_sigma", "--sigma-layernorm", "post"]
    return ["--task", MT, "--arch", "sigma_transformer", "--encoder-layers", str(cell.depth),
            "--decoder-layers", str(cell.depth), "--encoder-embed-dim", str(d), "--encoder-ffn-embed-dim", str(2 * d),
            "--encoder-attention-heads", "4", "--decoder-attention-heads", "4", "--share-all-embeddings",
            "--criterion", "label_smoothed_cross_entropy_with_sigma", "--label-smoothing", "0.1"]


def train_command(args, cell: Cell, save_dir: str) -> List[str]:
    trainer = str(Path(sys.executable).parent / "fairseq-train")
    return [trainer, args.data, "--user-dir", str(ROOT / "sigma_plugin"), *model_flags(args, cell),
            "--dropout", "0.1",
            "--sigma-log-interval", str(args.log_interval), "--log-interval", str(args.log_interval),
            "--max-tokens", str(args.max_tokens), "--max-update", str(args.updates), "--no-save",
            "--save-dir", save_dir,  # --no-save still dumps crash.pt there when gradients go non-finite
            "--disable-validation", "--log-format", "json", "--cpu", "--num-workers", "0", "--seed", str(cell.seed),
            *MODELS[cell.model], *optimizer_flags(cell.optimizer)]


def settings(args) -> Dict[str, object]:
    data = Path(args.data).resolve()
    # relative to the project when inside it, so saved cells stay valid in another clone
    data_key = str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else str(data)
    kept = {"data": data_key, "updates": args.updates, "dim": args.dim,
            "max_tokens": args.max_tokens, "log_interval": args.log_interval}
    if args.task == LM:
        kept["tokens_per_sample"] = args.tokens_per_sample
    return kept


def run_cell(args, cell: Cell, unigram: float, uniform: float) -> CellResult:
    out = Path(args.out)
    log_path = out / "logs" / f"{cell.key}.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.time()
    with open(log_path, "w", encoding="utf-8") as log, tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.run(train_command(args, cell, scratch), stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.time() - start
    result = analyse(cell, log_path.read_text(encoding="utf-8", errors="replace"), proc.returncode, seconds,
                     unigram, args.plateau_margin, uniform)
    payload = {"settings": settings(args), "unigram_bits": unigram, "uniform_bits": uniform,
               "returncode": proc.returncode,
               **json.loads(result.to_json())}
    _write_cell(out / "cells" / f"{cell.key}.json", payload)
    return result


def _write_cell(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def load_done(args, cells: List[Cell], uniform: float) -> Dict[str, dict]:
    done = {}
    for cell in cells:
        path = Path(args.out) / "cells" / f"{cell.key}.json"
        if path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # unreadable: run it again
            if saved.get("settings") == settings(args):
                log_path = Path(args.out) / "logs" / f"{cell.key}.log"
                if args.reanalyse and log_path.exists():  # judged again from its log, not retrained
                    r = analyse(cell, log_path.read_text(encoding="utf-8", errors="replace"),
                                saved.get("returncode", 0), saved["seconds"], saved["unigram_bits"],
                                args.plateau_margin, uniform)
                    saved = {**saved, "uniform_bits": uniform, **json.loads(r.to_json())}
                    _write_cell(path, saved)  # the new judgement is what a later plain rerun reads
                done[cell.key] = saved
    return done


def describe(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['status']} (final loss {r['final_loss']})"
    plateau = "left the plateau" if r["left_plateau"] else "on the plateau"
    ent = "" if r["min_entropy"] is None else f", min entropy {r['min_entropy']:.2f} ({r['min_entropy_where']})"
    return f"final loss {r['final_loss']:.3f}, nll {r['final_nll']:.3f}, {plateau}{ent}"


def main(argv=None) -> int:
    args = parse_args(argv)
    cells = grid(args)
    if not os.path.isdir(args.data):
        raise MapError(f"--data {args.data}: no such folder")
    args.task, target_prefix, dict_name = data_kind(args.data)
    if args.task == LM:
        mt_only = sorted({c.model for c in cells} & set(MT_ONLY_MODELS))
        if mt_only:
            raise MapError(f"--models: {', '.join(mt_only)} is defined for translation only; "
                           f"{args.data} holds language-modelling data")
    out = Path(args.out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    unigram, uniform = target_bits(args.data, target_prefix, dict_name)
    done = load_done(args, cells, uniform)
    if args.report_only:
        if not done:
            raise MapError(f"--report-only: no saved cell of this grid and these settings in {out / 'cells'}")
        from stability_report import write_report
        paths = write_report(out, [done[c.key] for c in cells if c.key in done], unigram, args)
        print(f"stability map: {len(done)} of {len(cells)} cells saved; table {paths[0]}; figures "
              + ", ".join(str(p) for p in paths[1:]), flush=True)
        return 0
    todo = [c for c in cells if c.key not in done]
    print(f"stability map: {len(cells)} cells ({len(done)} done, {len(todo)} to run, {args.jobs} at a time), "
          f"{args.updates} updates each; unigram entropy of the targets {unigram:.3f} bits; output {out}",
          flush=True)
    from tqdm import tqdm
    start = time.time()
    results = dict(done)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, tqdm(total=len(todo), unit="cell") as bar:
        futures = {pool.submit(run_cell, args, c, unigram, uniform): c for c in todo}
        for fut in as_completed(futures):
            cell = futures[fut]
            r = fut.result()
            results[cell.key] = json.loads(r.to_json())
            bar.write(f"{cell.key}: {describe(results[cell.key])} [{r.seconds:.0f} s]")
            bar.update(1)
    from stability_report import write_report
    paths = write_report(out, [results[c.key] for c in cells], unigram, args)
    print(f"total {time.time() - start:.0f} s for {len(todo)} cells; table {paths[0]}; figures "
          + ", ".join(str(p) for p in paths[1:]), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MapError as e:
        print(f"stability_map: error: {e}", file=sys.stderr)
        sys.exit(2)
