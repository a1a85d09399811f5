"""How close σ₀ is to ‖W‖₂ after k start-up steps of the power iteration (what σReparam's
INIT_POWER_ITERATIONS buys at model build), and after k Lanczos steps for comparison (same number
of matrix-vector products: 2 per step).

For each shape, Xavier-uniform weights (as fairseq initialises its linear layers), the start vector
σReparam uses (a fixed pseudo-random vector per input size); u after k steps, then σ₀ computed the
way eval mode computes it (sigma_plugin.nn.power_iteration, one step from u). Reported: the mean
relative gap 1 − σ₀/‖W‖₂ over the matrices, ‖W‖₂ from torch.linalg.matrix_norm(W, 2); and the time of
the k steps per weight (one thread, minimum over repeats).

    python bench/init_accuracy.py [--shapes 256x256 1024x256 256x1024 512x512] [--matrices 5] [--out F]
"""
import argparse
import time

import torch
import torch.nn.functional as F

from bench_common import emit_report, markdown_table
from sigma_plugin.nn import power_iteration
from sigma_plugin.nn.parametrization import _start_vector


def power_start(w: torch.Tensor, u: torch.Tensor, steps: int) -> torch.Tensor:
    # σReparam's initialisation: u ← WᵀW u / ‖WᵀW u‖
    return power_iteration(w, u, steps, normalize_v=False)[1]


def lanczos_start(w: torch.Tensor, u: torch.Tensor, steps: int) -> torch.Tensor:
    """The Ritz vector of the largest eigenvalue of WᵀW after ``steps`` Lanczos steps (full
    reorthogonalisation) from u."""
    basis, alphas, betas = [], [], []
    q = F.normalize(u, dim=0)
    for j in range(steps):
        basis.append(q)
        r = w.t() @ (w @ q)
        alphas.append(torch.dot(r, q))
        v = torch.stack(basis)
        r = r - v.t() @ (v @ r)
        r = r - v.t() @ (v @ r)
        b = r.norm()
        if j + 1 == steps or b < 1e-10:
            break
        betas.append(b)
        q = r / b
    m = len(alphas)
    t = torch.diag(torch.stack(alphas))
    if m > 1:
        off = torch.stack(betas[:m - 1])
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    y = torch.linalg.eigh(t).eigenvectors[:, -1]
    return F.normalize(torch.stack(basis[:m]).t() @ y, dim=0)


METHODS = {"power": power_start, "lanczos": lanczos_start}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=["256x256", "1024x256", "256x1024", "512x512"],
                    help="OUTxIN weight shapes")
    ap.add_argument("--steps", default="power:3,5,10,20;lanczos:3,5,8",
                    help="method:k,k,...;method:... (methods: power, lanczos)")
    ap.add_argument("--matrices", type=int, default=5, help="random matrices per shape")
    ap.add_argument("--out", help="also write the table here (markdown)")
    args = ap.parse_args()
    try:
        shapes = [tuple(int(x) for x in s.lower().split("x")) for s in args.shapes]
        plan = [(m, int(k)) for part in args.steps.split(";") for m, ks in [part.split(":")] for k in ks.split(",")]
    except ValueError:
        raise SystemExit(f"init_accuracy.py: --shapes must look like 256x1024 and --steps like power:5,10;lanczos:5; "
                         f"got {args.shapes} and {args.steps!r}")
    if any(len(s) != 2 or min(s) < 1 for s in shapes) or any(m not in METHODS or k < 1 for m, k in plan):
        raise SystemExit(f"init_accuracy.py: bad --shapes {args.shapes} or --steps {args.steps!r} "
                         f"(methods: {', '.join(METHODS)}; k >= 1)")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    for out_dim, in_dim in shapes:
        weights = [torch.nn.init.xavier_uniform_(torch.empty(out_dim, in_dim)) for _ in range(args.matrices)]
        norms = [float(torch.linalg.matrix_norm(w, 2)) for w in weights]
        start = _start_vector(in_dim).float()
        for method, k in plan:
            gaps = []
            for w, norm in zip(weights, norms):
                u = METHODS[method](w, start.clone(), k)
                sigma0 = float(power_iteration(w, u, 1)[0])
                gaps.append(1 - sigma0 / norm)
            best = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(20):
                    METHODS[method](weights[0], start.clone(), k)
                best = min(best, (time.perf_counter() - t) / 20)
            rows.append([f"{out_dim}x{in_dim}", method, k, 2 * k, f"{100 * sum(gaps) / len(gaps):.2f} %",
                         f"{100 * max(gaps):.2f} %", f"{best * 1e6:.0f}"])
    text = (f"# σ₀ after k start-up steps: Xavier-uniform weights, {args.matrices} per shape, σ₀ as eval computes "
            f"it; gap = 1 − σ₀/‖W‖₂; time per weight, one thread\n\n"
            + markdown_table(["shape", "method", "steps", "mat-vecs", "mean gap", "largest gap", "µs per weight"], rows))
    emit_report(text, args.out)


if __name__ == "__main__":
    main()
