"""End to end: fairseq-train words per second (fairseq's ``wps``, JSON log) with σReparam vs without,
same data, same size, interleaved runs of a fixed number of updates (order alternating per pair).

  mt:  sigma_transformer (σReparam on all linears, label_smoothed_cross_entropy_with_sigma at its
       default --sigma-log-interval) vs stock transformer + label_smoothed_cross_entropy
  asr: sigma_s2t_ctc (σReparam on all linears/convs) vs the same with --sigma-reparam none
Sizes and data: bench/fairseq_runs.py. The last run of each MT variant keeps its checkpoint in
WORK/ckpt/mt_{sigma,stock} (bench/inference.py decodes them).

    python bench/e2e_wps.py [--pairs 3] [--updates 60] [--tasks mt asr] [--work bench/out/work] [--out FILE.md]
"""
import argparse
import shutil
import time
from pathlib import Path

import fairseq_runs as fr
from bench_common import markdown_table, median, ratio, rotated, train_inner_records, wps_of_run, emit_report

TARGET = 0.97
LABELS = {"mt": ("sigma_transformer", "transformer (stock)"), "asr": ("sigma_s2t_ctc", "sigma_s2t_ctc --sigma-reparam none")}


def one_run(task, data, save_dir, sigma, args):
    shutil.rmtree(save_dir, ignore_errors=True)  # a fresh run, never a resumed one
    make = fr.mt_train_cmd if task == "mt" else fr.asr_train_cmd
    res = fr.run(make(data, save_dir, sigma, args.updates, args.log_interval, *args.extra))
    return wps_of_run(train_inner_records(res.stdout + res.stderr), args.log_interval)


def bench_task(task, args, work):
    data = fr.mt_data(work) if task == "mt" else fr.asr_data(work)
    runs = {True: [], False: []}
    for pair in range(args.pairs):
        for sigma in rotated([True, False], pair):
            name = f"{task}_{'sigma' if sigma else 'stock'}"
            t = time.perf_counter()
            wps = one_run(task, data, work / "ckpt" / name, sigma, args)
            runs[sigma].append(wps)
            print(f"  {task} pair {pair + 1}/{args.pairs} {name}: wps {wps['steady']:.0f} steady, "
                  f"{wps['all']:.0f} all ({time.perf_counter() - t:.0f} s)", flush=True)
    row = [task, LABELS[task][0], LABELS[task][1]]
    for key in ("steady", "all"):
        s, p = [r[key] for r in runs[True]], [r[key] for r in runs[False]]
        row += [median(s), median(p), ratio(median(s), median(p))]
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", choices=["mt", "asr"], default=["mt", "asr"])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--log-interval", type=int, default=10)
    ap.add_argument("--work", default="bench/out/work", help="data and checkpoints (reused)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more fairseq-train flags, for every run")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.updates < 2 * args.log_interval:
        ap.error(f"--updates {args.updates} gives fewer than 2 log intervals of {args.log_interval}")
    work = Path(args.work).resolve()
    rows = []
    for task in args.tasks:
        print(f"[e2e] {task}: {args.pairs} interleaved pairs x {args.updates} updates", flush=True)
        rows.append(bench_task(task, args, work))
    head = ["task", "σReparam", "reference", "steady wps σ", "steady wps ref", "steady ratio",
            "all wps σ", "all wps ref", "all ratio"]
    text = (f"# End-to-end fairseq-train wps: {args.pairs} interleaved pairs x {args.updates} updates, "
            f"log interval {args.log_interval}, CPU\n\nMedians over runs. steady: median wps of the log intervals "
            f"after the first; all: every interval, the first (start-up, the probe at update 0) included. "
            f"Target: ratio >= {TARGET}. Models: {' '.join(fr.MT_SIZE)} (mt); {' '.join(fr.ASR_SIZE)} (asr).\n\n"
            + markdown_table(head, rows)
            + "".join(f"- {r[0]}: steady {r[5]:.3f}x {'ok' if r[5] >= TARGET else 'MISSED'} (>= {TARGET})\n"
                      for r in rows))
    emit_report(text, args.out)


if __name__ == "__main__":
    main()
