"""Build and load time of deep σReparam models vs stock fairseq models of the same size (CPU).

For each depth (default 18L-18L and 100L-100L, d=256, FFN 1024, 4 heads) and variant:
  sigma  sigma_transformer with σReparam on every linear layer (u from 10 power-iteration steps)
  stock  fairseq's own transformer, same sizes
each round runs, in a fresh interpreter per variant (imports excluded from the times):
  build  task.build_model as fairseq-train does it, then the checkpoint is written once;
  load   checkpoint_utils.load_model_ensemble of that checkpoint (what fairseq-generate does at
         start-up) — for sigma with every SVD and the power-iteration initialisation patched to
         raise, so a load that computed either would fail the run.
Two more builds split σReparam's build cost (not loaded):
  sigma_register     sigma_transformer built inside deferred_sigma_init(): the registration of
                     the parametrizations without the power iteration that starts u
  parametrize_floor  the stock transformer, then torch.nn.utils.parametrize registers an identity
                     parametrization on the same linear weights (unsafe=True, as σReparam does):
                     what any weight parametrization costs before it computes anything
Variants alternate in rotating order; medians and minima over the rounds, and ratios to stock.
Target: build ≤ 1.5× stock, load without any SVD.

    python bench/build_load.py [--depths 18 100] [--rounds 3] [--out bench/out/build_load.md]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import emit_report, markdown_table, median, ratio, rotated
from fairseq_runs import USER_DIR, mt_data

VARIANTS = {"sigma": ["--arch", "sigma_transformer", "--sigma-reparam", "all"],
            "stock": ["--arch", "transformer"]}
# Build-only variants: (fairseq arguments, what the child does besides task.build_model)
BUILD_ONLY = {"sigma_register": (VARIANTS["sigma"], "defer"),
              "parametrize_floor": (VARIANTS["stock"], "identity")}

# Runs in a fresh interpreter: build (or load) once and print the seconds it took as JSON.
CHILD = r"""
import json, sys, time
import contextlib
mode, data, ckpt, argv = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
import torch
from torch import nn
from torch.nn.utils import parametrize
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf
import sigma_plugin
from sigma_plugin.nn import deferred_sigma_init
sigma_plugin.register()


class Identity(nn.Module):
    def forward(self, weight):
        return weight


if mode.startswith("build"):
    args = options.parse_args_and_arch(options.get_training_parser(), [data, *argv])
    task = tasks.setup_task(args)
    torch.manual_seed(1)
    t = time.perf_counter()
    with deferred_sigma_init() if mode == "build_defer" else contextlib.nullcontext():
        model = task.build_model(args)
    if mode == "build_identity":
        for layers in (model.encoder.layers, model.decoder.layers):
            for m in layers.modules():
                if isinstance(m, nn.Linear):
                    parametrize.register_parametrization(m, "weight", Identity(), unsafe=True)
    seconds = time.perf_counter() - t
    if mode != "build":
        print(json.dumps({"seconds": seconds}))
        sys.exit(0)
    cfg = OmegaConf.to_container(convert_namespace_to_omegaconf(args))  # as fairseq's save_state stores it
    checkpoint_utils.torch_persistent_save(
        {"cfg": cfg, "args": None, "model": model.state_dict(), "extra_state": {},
         "optimizer_history": [{"criterion_name": "none", "optimizer_name": "none",
                                "lr_scheduler_state": {}, "num_updates": 0}]}, ckpt)
else:
    def refuse(*a, **k):
        raise AssertionError("an SVD or the σReparam initialisation ran while loading a checkpoint")
    from sigma_plugin.nn.parametrization import _SigmaReparam
    for mod, name in ((torch.linalg, "svd"), (torch.linalg, "svdvals"), (torch, "svd"), (torch, "svd_lowrank")):
        setattr(mod, name, refuse)
    _SigmaReparam._initialise = refuse
    t = time.perf_counter()
    models, _ = checkpoint_utils.load_model_ensemble([ckpt])
    seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds}))
"""


def model_args(depth: int, dim: int):
    return ["--task", "translation", "--cpu", "--user-dir", USER_DIR, "--share-all-embeddings",
            "--encoder-layers", str(depth), "--decoder-layers", str(depth),
            "--encoder-embed-dim", str(dim), "--decoder-embed-dim", str(dim),
            "--encoder-ffn-embed-dim", str(4 * dim), "--decoder-ffn-embed-dim", str(4 * dim),
            "--encoder-attention-heads", str(dim // 64), "--decoder-attention-heads", str(dim // 64)]


def timed_child(mode: str, data: Path, ckpt: Path, argv) -> float:
    res = subprocess.run([sys.executable, "-c", CHILD, mode, str(data), str(ckpt), *argv],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"build_load.py: {mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", type=int, nargs="+", default=[18, 100])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("bench/out/work"), help="data and checkpoints")
    ap.add_argument("--out", type=Path, help="also write the table here (markdown)")
    args = ap.parse_args()
    data = mt_data(args.work)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for depth in args.depths:
            times = {v: {"build": [], "load": []} for v in [*VARIANTS, *BUILD_ONLY]}
            for rnd in range(args.rounds):
                for v in rotated(list(times), rnd):
                    ckpt = Path(tmp) / f"{v}_{depth}.pt"
                    if v in BUILD_ONLY:
                        flags, how = BUILD_ONLY[v]
                        times[v]["build"].append(timed_child(f"build_{how}", data, ckpt,
                                                             model_args(depth, args.dim) + flags))
                        continue
                    argv = model_args(depth, args.dim) + VARIANTS[v]
                    times[v]["build"].append(timed_child("build", data, ckpt, argv))
                    times[v]["load"].append(timed_child("load", data, ckpt, argv))
                print(f"{depth}L-{depth}L round {rnd + 1}/{args.rounds}: "
                      + ", ".join(f"{v} build {t['build'][-1]:.2f} s"
                                  + (f" load {t['load'][-1]:.2f} s" if t["load"] else "")
                                  for v, t in times.items()), flush=True)
            for what, variant in (("build", "sigma"), ("build", "sigma_register"),
                                  ("build", "parametrize_floor"), ("load", "sigma")):
                s, p = times[variant][what], times["stock"][what]
                rows.append([f"{depth}L-{depth}L", what, variant, median(p), median(s),
                             ratio(median(s), median(p)), min(p), min(s), ratio(min(s), min(p))])
    head = ["model", "step", "variant", "stock s (median)", "variant s (median)", "ratio", "stock s (min)",
            "variant s (min)", "ratio (min)"]
    text = (f"# Build and load, d={args.dim}, FFN {4 * args.dim}, {args.dim // 64} heads, {args.rounds} rounds, "
            f"a fresh interpreter per build and per load (imports excluded); σReparam loads ran with every SVD "
            f"and the power-iteration initialisation patched to raise. sigma_register: σReparam registered "
            f"without initialising u; parametrize_floor: stock + torch's parametrize with an identity "
            f"parametrization on the same weights. Target: sigma build ratio <= 1.5.\n\n"
            + markdown_table(head, rows))
    emit_report(text, args.out)


if __name__ == "__main__":
    main()
