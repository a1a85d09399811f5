"""Step-time and peak-memory overhead of σReparam on a 6-layer Transformer encoder stack, over a
grid of widths d and tokens per batch (CPU fp32 by default; CUDA and bf16 autocast for the GPU check).

Variants (bench/overhead_variants.py): plain, sigma (ours), snlinear (reference-style Linear
subclass), torch_sn (torch spectral_norm + γ); FFN 4d, d/64 heads, sequences of --seq-len tokens.
Per shape: --warmup rounds, then timed rounds with the variants interleaved in rotating order
(A B C D, B C D A, ...). Training step = forward + backward + SGD step; eval step = forward under
no_grad with fixed weights, in the variant's inference scope (one per step, as one beam search).
Peak memory: one fresh subprocess per variant and shape (see MEMORY_METHOD).

    python bench/overhead.py --quick                 # d=512, 4k tokens
    python bench/overhead.py --dims 256 512 1024 --tokens 1024 4096 16384 --reps 3 --out bench/out/overhead.md
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

from bench_common import (MEMORY_ENV, MEMORY_METHOD, markdown_table, median, peak_mib, ratio, reset_peak, rotated,
                          rss_mib, emit_report)

TARGETS = {"train": 1.02, "eval": 1.005, "memory": 1.05}


def weights_dtype(args):
    """--dtype bf16-weights: weights and activations in bf16, as fairseq's --bf16 trains."""
    return torch.bfloat16 if getattr(args, "dtype", "fp32") == "bf16-weights" else torch.float32


def make_inputs(dim, tokens, seq_len, device, dtype=torch.float32):
    bsz = max(1, tokens // seq_len)
    x = torch.randn(seq_len, bsz, dim, device=device).to(dtype)
    return x, torch.zeros(bsz, seq_len, dtype=torch.bool, device=device)


def build(names, args, dim, device):
    from overhead_variants import build_stack, make_variant
    torch.manual_seed(0)
    plain = build_stack(args.layers, dim, max(1, dim // 64), 4 * dim).to(device)
    stacks = {n: make_variant(n, plain).to(device=device, dtype=weights_dtype(args)) for n in names}
    return stacks, {n: torch.optim.SGD(s.parameters(), lr=1e-4) for n, s in stacks.items()}


def autocast(args, device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_step(name, stack, opt, x, pad, args, device):
    from overhead_variants import forward, train_scope
    stack.train()
    sync(device)
    t = time.perf_counter()
    with train_scope(name), autocast(args, device):
        loss = forward(stack, x, pad).float().pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - t


def eval_step(name, stack, x, pad, args, device):
    from overhead_variants import eval_scope, forward
    stack.eval()
    sync(device)
    t = time.perf_counter()
    with torch.no_grad(), eval_scope(name), autocast(args, device):
        forward(stack, x, pad)
    sync(device)
    return time.perf_counter() - t


def time_shape(args, dim, tokens, device, warmup):
    """{variant: {"train": [s...], "eval": [s...]}} from interleaved rounds, and the seconds of the
    last round. With --max-shape-s, no new round starts once the shape has used that many seconds
    (warm-up included), but at least one timed round runs."""
    names = list(args.variants)
    stacks, opts = build(names, args, dim, device)
    x, pad = make_inputs(dim, tokens, args.seq_len, device, weights_dtype(args))
    times = {n: {"train": [], "eval": []} for n in names}
    start, rep, last = time.perf_counter(), 0, 0.0
    while rep < warmup + args.reps:
        if rep > warmup and args.max_shape_s and time.perf_counter() - start >= args.max_shape_s:
            break
        t0 = time.perf_counter()
        for n in rotated(names, rep):
            t_train = train_step(n, stacks[n], opts[n], x, pad, args, device)
            t_eval = eval_step(n, stacks[n], x, pad, args, device)
            if rep >= warmup:
                times[n]["train"].append(t_train)
                times[n]["eval"].append(t_eval)
        rep, last = rep + 1, time.perf_counter() - t0
    return times, last


def memory_child(args):
    """--memory-child VARIANT DIM TOKENS: peak MiB above the pre-build RSS, for one train and one eval step."""
    name, dim, tokens = args.memory_child[0], int(args.memory_child[1]), int(args.memory_child[2])
    device = torch.device("cpu")
    # first use of the kernels (library initialisation, thread pools) on a tiny stack, outside the baseline
    tiny, tiny_opt = build([name], argparse.Namespace(layers=1, dtype=args.dtype), 64, device)
    dtype = weights_dtype(args)
    train_step(name, tiny[name], tiny_opt[name], *make_inputs(64, 128, 64, device, dtype), args, device)
    eval_step(name, tiny[name], *make_inputs(64, 128, 64, device, dtype), args, device)
    del tiny, tiny_opt
    base = rss_mib()
    stacks, opts = build([name], args, dim, device)
    x, pad = make_inputs(dim, tokens, args.seq_len, device, weights_dtype(args))
    # eval first (its peak then holds no leftovers of training), then training
    exact = reset_peak()
    eval_step(name, stacks[name], x, pad, args, device)
    eval_peak = peak_mib() - base
    reset_peak()
    train_step(name, stacks[name], opts[name], x, pad, args, device)
    train_peak = peak_mib() - base if exact else max(peak_mib() - base, eval_peak)
    print(json.dumps({"train": train_peak, "eval": eval_peak}))


def measure_memory(args, name, dim, tokens):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", name, str(dim), str(tokens),
           "--layers", str(args.layers), "--seq-len", str(args.seq_len), "--threads", str(args.threads),
           "--dtype", args.dtype]
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MEMORY_ENV})
    if res.returncode != 0:
        raise RuntimeError(f"memory subprocess failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def shape_rows(names, dim, tokens, times, memory, warmup):
    """One row per variant: train/eval median and min ratios, memory ratios (vs plain)."""
    rows = []
    for n in names:
        row = {"d": dim, "tokens": tokens, "variant": n}
        if times is not None:
            tr, ev, p = times[n]["train"], times[n]["eval"], times["plain"]
            row.update(rounds=f"{warmup}+{len(tr)}",
                       train_ms=median(tr) * 1e3, train_x=ratio(median(tr), median(p["train"])),
                       train_min_x=ratio(min(tr), min(p["train"])),
                       eval_ms=median(ev) * 1e3, eval_x=ratio(median(ev), median(p["eval"])),
                       eval_min_x=ratio(min(ev), min(p["eval"])))
        if memory:
            row.update(train_mib=memory[n]["train"], mem_train_x=ratio(memory[n]["train"], memory["plain"]["train"]),
                       mem_eval_x=ratio(memory[n]["eval"], memory["plain"]["eval"]))
        rows.append(row)
    return rows


def verdict(rows):
    """Targets for sigma, and sigma ahead of the other σ variants (medians)."""
    by = {r["variant"]: r for r in rows}
    s, msgs = by["sigma"], []
    checks = [("train", s["train_x"], TARGETS["train"]), ("eval", s["eval_x"], TARGETS["eval"])] if "train_x" in s else []
    if "mem_train_x" in s:
        checks.append(("memory", max(s["mem_train_x"], s["mem_eval_x"]), TARGETS["memory"]))
    for what, value, target in checks:
        msgs.append(f"{what} {value:.3f}x {'ok' if value <= target else 'MISSED'} (<= {target})")
    for other in ("snlinear", "torch_sn"):
        if other in by and "train_x" in s:
            ahead = s["train_x"] <= by[other]["train_x"] and s["eval_x"] <= by[other]["eval_x"]
            msgs.append(f"{'ahead of' if ahead else 'NOT ahead of'} {other}")
    return "; ".join(msgs)


COLUMNS = [("d", "d"), ("tokens", "tokens"), ("variant", "variant"), ("rounds", "warm-up+timed"), ("train_ms", "train ms"),
           ("train_x", "train x"), ("train_min_x", "train min x"), ("eval_ms", "eval ms"), ("eval_x", "eval x"),
           ("eval_min_x", "eval min x"), ("train_mib", "train peak MiB"), ("mem_train_x", "mem train x"),
           ("mem_eval_x", "mem eval x")]


def report(args, device, rows, verdicts):
    cols = [(k, h) for k, h in COLUMNS if any(k in r for r in rows)]
    budget = (f" (at most {args.max_shape_s:.0f} s a shape: see warm-up+timed)" if args.max_shape_s else "")
    memory_note = f" Memory: {MEMORY_METHOD}." if any("train_mib" in r for r in rows) else " Memory: not measured."
    timing = ("memory only (no timing)" if args.memory_only else
              f"{args.warmup} warm-up + {args.reps} interleaved rounds{budget}")
    head = (f"# σReparam overhead: {args.layers} layers, FFN 4d, d/64 heads, sequences of {args.seq_len}, "
            f"{device.type} {args.dtype}, {args.threads} threads, {timing}, SGD; torch {torch.__version__}\n\n"
            f"Ratios to plain (medians; 'min' = ratio of minima).{memory_note}\n"
            f"Targets for sigma: train <= {TARGETS['train']}, eval <= {TARGETS['eval']}, memory <= "
            f"{TARGETS['memory']}, and ahead of snlinear and torch_sn.\n\n")
    table = markdown_table([h for _, h in cols], [[r.get(k, "") for k, _ in cols] for r in rows])
    return head + table + "\n" + "".join(f"- d={d}, {t} tokens: {v}\n" for (d, t), v in verdicts.items())


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one shape: d=512, 4096 tokens")
    ap.add_argument("--dims", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096, 16384], help="tokens per batch")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5, help="timed rounds per shape")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds per shape")
    ap.add_argument("--max-shape-s", type=float, default=0,
                    help="time budget per shape: no new round after this many seconds (>= 1 timed round); a shape "
                         "after one whose round took longer skips its warm-up. 0 = exactly --warmup + --reps")
    ap.add_argument("--variants", nargs="+", default=["plain", "sigma", "snlinear", "torch_sn"])
    ap.add_argument("--no-memory", action="store_true", help="skip the per-variant memory subprocesses")
    ap.add_argument("--memory-only", action="store_true",
                    help="no timing: only the peak-memory subprocesses (memory does not depend on the load)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (memory is measured on CPU only)")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "bf16-weights"], default="fp32",
                    help="bf16 = bf16 autocast (fp32 weights); bf16-weights = weights and activations in "
                         "bf16, as fairseq's --bf16")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", help="also write the markdown table to this file (atomically)")
    ap.add_argument("--memory-child", nargs=3, metavar=("VARIANT", "DIM", "TOKENS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.dims, args.tokens = [512], [4096]
    if args.reps < 1 or args.warmup < 0:
        ap.error(f"--reps must be >= 1 and --warmup >= 0, got {args.reps} and {args.warmup}")
    if args.variants[0] != "plain":
        ap.error("--variants must start with plain (the ratios' reference)")
    if args.memory_only and (args.no_memory or args.device != "cpu"):
        ap.error("--memory-only measures CPU memory: it cannot go with --no-memory or --device other than cpu")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args)
    device = torch.device(args.device)
    # cheapest first (cost ~ d² · tokens): a shape after one whose round took >= --max-shape-s skips
    # its warm-up (first-call costs are small next to such steps; their memory is mapped afresh each step)
    shapes = sorted(((d, t) for d in args.dims for t in args.tokens), key=lambda s: (s[0] ** 2 * s[1], s))
    rows, verdicts, start, last_round = [], {}, time.perf_counter(), 0.0
    for i, (dim, tokens) in enumerate(shapes, 1):
        warmup = 0 if args.max_shape_s and last_round >= args.max_shape_s else args.warmup
        times = None
        if args.memory_only:
            print(f"[{i}/{len(shapes)}] d={dim} tokens={tokens}:", end="", flush=True)
        else:
            print(f"[{i}/{len(shapes)}] d={dim} tokens={tokens}: timing {len(args.variants)} variants "
                  f"({warmup} warm-up) ...", end="", flush=True)
            times, last_round = time_shape(args, dim, tokens, device, warmup)
        memory = None
        if not args.no_memory and device.type == "cpu":
            print(" memory ...", end="", flush=True)
            memory = {n: measure_memory(args, n, dim, tokens) for n in args.variants}
        shape = shape_rows(args.variants, dim, tokens, times, memory, warmup)
        rows += shape
        verdicts[(dim, tokens)] = verdict(shape) if "sigma" in args.variants else "no sigma variant"
        rounds = f" {len(times['plain']['train'])} timed rounds," if times else ""
        print(f"{rounds} done ({time.perf_counter() - start:.0f} s elapsed)"
              f"\n    {verdicts[(dim, tokens)]}", flush=True)
    rows.sort(key=lambda r: (r["d"], r["tokens"]))
    text = report(args, device, rows, verdicts)
    emit_report(text, args.out)


if __name__ == "__main__":
    main()
