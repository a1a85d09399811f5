"""Helpers shared by the benches: interleaving, statistics, markdown tables written atomically,
peak memory of a step, and the fairseq JSON log."""
from __future__ import annotations

import resource
import statistics
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from sigma_plugin.util.atomic import write_text
from sigma_plugin.util.run_logs import read_json_lines


def rotated(names: Sequence[str], rep: int) -> List[str]:
    """A B C, B C A, C A B, ...: no variant always runs first (or right after another)."""
    k = rep % len(names)
    return list(names[k:]) + list(names[:k])


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table; floats with 3 decimals."""
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def emit_report(text: str, out=None) -> None:
    """Print a bench's report; with ``out``, also write it there atomically (never half a table)."""
    print(text)
    if out:
        write_text(out, text)
        print(f"table written to {out}")


# ---- peak memory (Linux) -------------------------------------------------------------------
MEMORY_METHOD = ("peak resident set size (VmHWM) of a fresh subprocess per variant and shape, above "
                 "its RSS before building the model (after imports and one step of a tiny stack, which "
                 "initialises the kernels): weights, buffers, gradients, activations, σ caches. One eval "
                 "step, then one training step, the high-water mark reset before each "
                 "(/proc/self/clear_refs; without it, ru_maxrss: the training peak only). glibc's mmap "
                 "threshold is fixed at 64 KiB (MALLOC_MMAP_THRESHOLD_), so freed tensors leave the RSS "
                 "at once and the peak is that of live memory (repeat runs agree within 1 %)")
# Child environment for MEMORY_METHOD: without a fixed threshold glibc raises it after the first large
# frees and later tensors come from a heap that keeps freed pages (peaks then vary by 10-20 %).
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def peak_mib() -> float:
    """Peak RSS since start or the last reset_peak()."""
    try:
        return _status_kib("VmHWM") / 1024
    except (OSError, RuntimeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- fairseq --log-format json -------------------------------------------------------------
def train_inner_records(log_text: str) -> List[Dict[str, float]]:
    """The ``train_inner`` records fairseq-train prints every --log-interval updates, in update
    order, each with its ``num_updates`` (parsed by sigma_plugin's run-log reader)."""
    train = read_json_lines(log_text.splitlines(), "<output>", "run").train
    updates = sorted({u for series in train.values() for u in series})
    return [{"num_updates": float(u), **{k: s[u] for k, s in train.items() if u in s}} for u in updates]


def wps_of_run(records: List[Dict[str, float]], log_interval: int) -> Dict[str, float]:
    """``steady``: median wps of the log intervals after the first (start-up, first batches and,
    for sigma criteria, the probe of update 0 fall in the first); ``all``: words over time of
    every interval, the first included (interval time = updates / ups)."""
    if len(records) < 2:
        raise ValueError(f"need >= 2 train_inner records to drop the first, got {len(records)}")
    words = sum(r["wpb"] * log_interval for r in records)
    seconds = sum(log_interval / r["ups"] for r in records)
    return {"steady": median(r["wps"] for r in records[1:]), "all": words / seconds}
