"""Step-time overhead of σReparam on a 6-layer Transformer encoder stack (CPU, fp32).

Variants, timed interleaved in rotating order (A B C, B C A, C A B, ...) so that machine noise
and order effects hit all alike:
  plain      fairseq TransformerEncoderLayer stack
  sigma      the same with σReparam on every Linear (sigma_plugin.nn.apply_sigma_reparam)
  torch_sn   torch.nn.utils.parametrizations.spectral_norm + a learned scale γ (the
             nearest off-the-shelf equivalent)
Training step = forward + backward + SGD step; eval = forward under no_grad with fixed
weights (inference), after all training reps.
Prints medians and minima (ms) and their ratios to plain.

    python bench/overhead.py [--reps 7] [--tokens 4096] [--threads N]
"""
import argparse
import copy
import statistics
import time

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from fairseq.models.transformer import TransformerConfig
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase

from sigma_plugin.nn import apply_sigma_reparam


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, w):
        return self.gamma * w


def build_stack(layers, dim, heads, ffn):
    cfg = TransformerConfig()
    cfg.encoder.embed_dim, cfg.encoder.attention_heads, cfg.encoder.ffn_embed_dim = dim, heads, ffn
    cfg.dropout = cfg.attention_dropout = 0.0
    return nn.ModuleList([TransformerEncoderLayerBase(cfg) for _ in range(layers)])


def torch_spectral_norm(stack):
    for m in stack.modules():
        if isinstance(m, nn.Linear):
            spectral_norm(m)
            parametrize.register_parametrization(m, "weight", _Scale())
    return stack


def forward(stack, x, pad):
    for layer in stack:
        x = layer(x, pad)
    return x


def time_train(stack, opt, x, pad):
    stack.train()
    t = time.perf_counter()
    forward(stack, x, pad).pow(2).mean().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def time_eval(stack, x, pad):
    stack.eval()
    with torch.no_grad():
        t = time.perf_counter()
        forward(stack, x, pad)
        return time.perf_counter() - t


def rotated(names, rep):
    """A B C, B C A, C A B, ...: no variant always runs first (or right after another)."""
    k = rep % len(names)
    return names[k:] + names[:k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per batch (sequences of --seq-len)")
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    plain = build_stack(args.layers, args.dim, args.heads, args.ffn)
    variants = {"plain": plain}
    variants["sigma"] = copy.deepcopy(plain)
    apply_sigma_reparam(variants["sigma"])
    variants["torch_sn"] = torch_spectral_norm(copy.deepcopy(plain))
    opts = {k: torch.optim.SGD(v.parameters(), lr=1e-4) for k, v in variants.items()}

    bsz = args.tokens // args.seq_len
    x = torch.randn(args.seq_len, bsz, args.dim)
    pad = torch.zeros(bsz, args.seq_len, dtype=torch.bool)
    # Training: weights change every step, so σReparam does its power iteration each time.
    train, evals = {k: [] for k in variants}, {k: [] for k in variants}
    names = list(variants)
    for rep in range(args.warmup + args.reps):
        for name in rotated(names, rep):
            t = time_train(variants[name], opts[name], x, pad)
            if rep >= args.warmup:
                train[name].append(t)
    # Inference: fixed weights; σReparam's W_hat is computed once and reused.
    for rep in range(args.warmup + args.reps):
        for name in rotated(names, rep):
            t = time_eval(variants[name], x, pad)
            if rep >= args.warmup:
                evals[name].append(t)

    med = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    low = lambda xs: min(xs) * 1000  # noqa: E731
    print(f"# {args.layers} layers, d={args.dim}, {args.heads} heads, FFN {args.ffn}, "
          f"{bsz}x{args.seq_len}={bsz * args.seq_len} tokens, fp32, {args.threads} threads, "
          f"{args.reps} interleaved reps")
    print(f"{'variant':<10} {'train ms':>9} {'ratio':>6} {'(min ms':>8} {'ratio)':>7}"
          f" {'eval ms':>8} {'ratio':>6} {'(min ms':>8} {'ratio)':>7}")
    for name in variants:
        print(f"{name:<10} {med(train[name]):>9.1f} {med(train[name]) / med(train['plain']):>6.3f} "
              f"{low(train[name]):>8.1f} {low(train[name]) / low(train['plain']):>7.3f} "
              f"{med(evals[name]):>8.1f} {med(evals[name]) / med(evals['plain']):>6.3f} "
              f"{low(evals[name]):>8.1f} {low(evals[name]) / low(evals['plain']):>7.3f}")


if __name__ == "__main__":
    main()
