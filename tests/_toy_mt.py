"""A toy translation corpus (reverse a sentence of w0..w39 tokens) and fairseq helpers for tests."""
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_DIR = str(ROOT / "sigma_plugin")
BIN = Path(sys.executable).parent


def write_toy_corpus(folder: Path, n_train=300, n_valid=30, seed=0):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        with open(folder / f"{split}.src", "w") as fs, open(folder / f"{split}.tgt", "w") as ft:
            for _ in range(n):
                s = [rng.choice(words) for _ in range(rng.randint(3, 10))]
                fs.write(" ".join(s) + "\n")
                ft.write(" ".join(reversed(s)) + "\n")


def binarize(folder: Path) -> Path:
    dest = folder / "bin"
    run([str(BIN / "fairseq-preprocess"), "--source-lang", "src", "--target-lang", "tgt",
         "--trainpref", str(folder / "train"), "--validpref", str(folder / "valid"),
         "--testpref", str(folder / "valid"), "--destdir", str(dest), "--joined-dictionary",
         "--workers", "1"])
    return dest


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def train_args(data, save_dir, *extra, max_update=6):
    return [str(BIN / "fairseq-train"), str(data), "--user-dir", USER_DIR, "--task", "translation",
            "--arch", "sigma_transformer_tiny", "--criterion", "label_smoothed_cross_entropy_with_sigma",
            "--label-smoothing", "0.1", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9",
            "--lr-scheduler", "fixed", "--max-tokens", "500", "--max-update", str(max_update),
            "--log-format", "json", "--log-interval", "2", "--sigma-log-interval", "2", "--cpu",
            "--save-dir", str(save_dir), "--no-epoch-checkpoints", "--share-all-embeddings",
            "--seed", "1", *extra]


def build_model(data, *extra):
    """Build task + model in-process exactly as fairseq-train would from these CLI args."""
    from fairseq import options, tasks
    from fairseq.utils import import_user_module
    import sigma_plugin
    sigma_plugin.register()  # sigma_plugin may have been imported before fairseq
    argv = [str(data), "--user-dir", USER_DIR, "--task", "translation", "--arch", "sigma_transformer_tiny",
            "--cpu", "--share-all-embeddings", *extra]
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, argv)
    import_user_module(args)
    task = tasks.setup_task(args)
    import torch
    torch.manual_seed(args.seed)  # as fairseq-train does before building
    return task, task.build_model(args), args
