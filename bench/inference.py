"""Inference: fairseq-generate sentences per second of a σReparam checkpoint (eval path, W_hat
cached per beam search) vs its sigma-export'ed stock checkpoint vs a stock transformer of the same
size, on the same data, interleaved in rotating order.

Every hypothesis is forced to the same length (--min-len = --max-len-b, --max-len-a 0), so the
three models do the same work whatever they learnt. Speed is fairseq-generate's own figure (the
search only, model loading excluded). The export is decoded by stock fairseq alone; the other two
with --user-dir (a checkpoint of stock fairseq-train holds argparse.Namespace, which torch >= 2.6
loads only with the plugin's allowlist; the plugin changes nothing in the stock model). The checkpoints are those bench/e2e_wps.py leaves in
WORK/ckpt (trained here for --updates if absent).

    python bench/inference.py [--rounds 3] [--beam 5] [--work bench/out/work] [--out FILE.md]
"""
import argparse
import re
from pathlib import Path

import fairseq_runs as fr
from bench_common import markdown_table, median, ratio, rotated, emit_report

TARGET = 1.01
SPEED = re.compile(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in ([\d.]+)s \(([\d.]+) sentences/s, "
                   r"([\d.]+) tokens/s\)")


def checkpoints(work: Path, data: Path, updates: int):
    ck = {}
    for name, sigma in (("sigma", True), ("stock", False)):
        path = work / "ckpt" / f"mt_{name}" / "checkpoint_last.pt"
        if not path.exists():
            print(f"  training mt_{name} ({updates} updates) for a checkpoint", flush=True)
            fr.run(fr.mt_train_cmd(data, path.parent, sigma, updates, 10))
        ck[name] = path
    export = work / "ckpt" / "mt_sigma_export.pt"
    fr.run([fr.BIN / "sigma-export", "--force", ck["sigma"], export])
    return {"sigma": ck["sigma"], "sigma_export": export, "stock": ck["stock"]}


def generate(data: Path, ckpt: Path, plugin: bool, args) -> float:
    cmd = [fr.BIN / "fairseq-generate", data, "--path", ckpt, "--gen-subset", "valid", "--beam", str(args.beam),
           "--batch-size", str(args.batch_size), "--min-len", str(args.length), "--max-len-a", "0",
           "--max-len-b", str(args.length), "--required-batch-size-multiple", "1", "--cpu", "--quiet"]
    if plugin:
        cmd += ["--user-dir", fr.USER_DIR]
    res = fr.run(cmd)
    m = SPEED.search(res.stdout + res.stderr)
    if not m:
        raise RuntimeError(f"no speed line in fairseq-generate's output:\n{res.stderr[-2000:]}")
    return float(m.group(4))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--length", type=int, default=30, help="tokens of every hypothesis")
    ap.add_argument("--updates", type=int, default=60, help="training updates when a checkpoint is absent")
    ap.add_argument("--work", default="bench/out/work")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    work = Path(args.work).resolve()
    data = fr.mt_data(work)
    ck = checkpoints(work, data, args.updates)
    names = list(ck)
    speed = {n: [] for n in names}
    for r in range(args.rounds):
        for n in rotated(names, r):
            speed[n].append(generate(data, ck[n], n != "sigma_export", args))
        print(f"[inference] round {r + 1}/{args.rounds}: "
              + ", ".join(f"{n} {speed[n][-1]:.2f}" for n in names) + " sentences/s", flush=True)
    rows = [[n, median(speed[n]), max(speed[n]), ratio(median(speed["stock"]), median(speed[n]))] for n in names]
    text = (f"# Inference: fairseq-generate, valid set, beam {args.beam}, batch {args.batch_size}, every hypothesis "
            f"{args.length} tokens, CPU, {args.rounds} interleaved rounds\n\nTime ratio = stock sentences/s over "
            f"this model's (median): target for sigma <= {TARGET}. Model: {' '.join(fr.MT_SIZE)}.\n\n"
            + markdown_table(["checkpoint", "sentences/s (median)", "sentences/s (best)", "time ratio vs stock"], rows))
    sigma_x = rows[0][3]
    text += f"- sigma: {sigma_x:.3f}x {'ok' if sigma_x <= TARGET else 'MISSED'} (<= {TARGET})\n"
    emit_report(text, args.out)


if __name__ == "__main__":
    main()
