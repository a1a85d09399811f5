"""GPU precision checks for bench/gpu_check.sh.

    python bench/gpu_precision.py autocast [cpu]    σ and u stay fp32 under fp16/bf16 autocast and
                                                    in a .half() model (training and eval forwards);
                                                    ``cpu`` runs the same check on the CPU (for tests)
    python bench/gpu_precision.py fairseq WORK      short fairseq-train runs with --amp and --fp16
                                                    (sigma_transformer); u is fp32 in the checkpoints
"""
import sys
from pathlib import Path

import torch
from torch import nn

import fairseq_runs as fr


def check_autocast(dev: torch.device) -> None:
    from sigma_plugin.nn import apply_sigma_reparam, cached_sigma_weights, sigma_reparam_modules
    for dtype in (torch.float16, torch.bfloat16):
        for half_model in (False, True):
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256)).to(dev)
            apply_sigma_reparam(model)
            if half_model:
                model = model.to(dtype)
            x = torch.randn(64, 256, device=dev, dtype=dtype if half_model else torch.float32)
            for training in (True, False):
                model.train(training)
                with torch.autocast(dev.type, dtype=dtype), torch.set_grad_enabled(training), cached_sigma_weights():
                    y = model(x)
                    if training:
                        y.float().pow(2).mean().backward()
                for name, _, p in sigma_reparam_modules(model):
                    bad = [f"{k} is {t.dtype}" for k, t in (("sigma", p.last_sigma), ("u", p.u)) if t.dtype != torch.float32]
                    if bad:
                        raise SystemExit(f"FAILED: {name} ({dtype}, half_model={half_model}, training={training}): "
                                         + ", ".join(bad))
            print(f"ok ({dev.type}): σ and u fp32 under {dtype} autocast, half_model={half_model}, train and eval")


def check_fairseq(work: Path) -> None:
    data = fr.mt_data(work, n_train=2000, n_valid=50)
    for flag in ("--amp", "--fp16"):
        save = work / "ckpt" / f"gpu{flag.replace('-', '_')}"
        cmd = [c for c in fr.mt_train_cmd(data, save, True, 30, 10, flag, "--sigma-log-interval", "10") if c != "--cpu"]
        res = fr.run(cmd)
        state = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]
        us = {k: v.dtype for k, v in state.items() if k.endswith(".u")}
        wrong = {k: d for k, d in us.items() if d != torch.float32}
        if not us or wrong:
            raise SystemExit(f"FAILED {flag}: {len(us)} σReparam u buffers, not fp32: {wrong}")
        tail = [line for line in (res.stdout + res.stderr).splitlines() if "train_inner" in line][-1:]
        print(f"ok: fairseq-train {flag} on GPU, {len(us)} u buffers fp32 in the checkpoint; {''.join(tail)[-200:]}")


if __name__ == "__main__":
    if sys.argv[1:] == ["autocast", "cpu"]:
        check_autocast(torch.device("cpu"))
    elif not torch.cuda.is_available():
        raise SystemExit("gpu_precision: torch sees no CUDA device")
    elif sys.argv[1:] == ["autocast"]:
        check_autocast(torch.device("cuda"))
    elif sys.argv[1:2] == ["fairseq"] and len(sys.argv) == 3:
        check_fairseq(Path(sys.argv[2]).resolve())
    else:
        raise SystemExit(__doc__)
