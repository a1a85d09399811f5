"""Cost of the attention-entropy probe: a training step (criterion forward + backward + Adam step)
on an update where the sigma criterion probes (update % --sigma-log-interval == 0) vs one where it
does not, interleaved, for an MT model (sigma_transformer) and an ASR model (sigma_s2t_ctc); and the
amortised cost at the default --sigma-log-interval (read from the criterion's parsed defaults):
(probe step - plain step) / interval / plain step.

Models are built in-process exactly as fairseq-train builds them (sizes and data: fairseq_runs.py).

    python bench/probe_cost.py [--reps 10] [--tasks mt asr] [--work bench/out/work] [--out FILE.md]
"""
import argparse
import logging
import time
from pathlib import Path

import torch

import fairseq_runs as fr
from bench_common import markdown_table, median, rotated, emit_report

TARGET = 0.01


def build(task_name, data, extra):
    from fairseq import options, tasks
    import sigma_plugin
    sigma_plugin.register()
    if task_name == "mt":
        argv = [str(data), "--user-dir", fr.USER_DIR, "--task", "translation", "--arch", "sigma_transformer",
                *fr.MT_SIZE, "--criterion", "label_smoothed_cross_entropy_with_sigma", "--label-smoothing", "0.1",
                "--max-tokens", "2048", "--cpu", "--seed", "1", *extra]
        split = "train"
    else:
        argv = [str(data), "--user-dir", fr.USER_DIR, "--task", "speech_to_text", "--config-yaml", "config.yaml",
                "--train-subset", fr.ASR_TRAIN, "--arch", "sigma_s2t_ctc", *fr.ASR_SIZE, "--criterion", "sigma_ctc",
                "--max-tokens", "6000", "--cpu", "--seed", "1", *extra]
        split = fr.ASR_TRAIN
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    task = tasks.setup_task(args)
    task.load_dataset(split)
    torch.manual_seed(1)
    model, criterion = task.build_model(args), task.build_criterion(args)
    batches = list(task.get_batch_iterator(task.dataset(split), max_tokens=args.max_tokens,
                                           required_batch_size_multiple=1, seed=1).next_epoch_itr(shuffle=False))
    return args, model, criterion, batches[len(batches) // 2]  # batches go by length: a middle one


def step(model, criterion, opt, sample, update):
    model.set_num_updates(update)
    t = time.perf_counter()
    loss, _, log = criterion(model, sample)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t, any(k.startswith("sigma/ent") for k in log)


def bench_task(task_name, args_cli, work):
    data = fr.mt_data(work) if task_name == "mt" else fr.asr_data(work)
    args, model, criterion, sample = build(task_name, data, args_cli.extra)
    interval = args.sigma_log_interval
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    times = {True: [], False: []}
    for rep in range(args_cli.warmup + args_cli.reps):
        for probe in rotated([True, False], rep):
            t, probed = step(model, criterion, opt, sample, 0 if probe else 1)
            if probed != probe:
                raise RuntimeError(f"{task_name}: the probe ran={probed} on a step meant to {'' if probe else 'not '}probe")
            if rep >= args_cli.warmup:
                times[probe].append(t)
    with_probe, without = median(times[True]), median(times[False])
    amortised = (with_probe - without) / interval / without
    print(f"[probe] {task_name}: step {without * 1e3:.0f} ms, with probe {with_probe * 1e3:.0f} ms, "
          f"interval {interval}: amortised {100 * amortised:.2f} %", flush=True)
    return [task_name, args.arch, sample["ntokens"], without * 1e3, with_probe * 1e3,
            with_probe / without, interval, f"{100 * amortised:.2f} %",
            "ok" if amortised <= TARGET else "MISSED"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", choices=["mt", "asr"], default=["mt", "asr"])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--work", default="bench/out/work")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more model flags (e.g. sizes)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in ("fairseq", "sigma_plugin"):
        logging.getLogger(name).setLevel(logging.WARNING)
    work = Path(args.work).resolve()
    rows = [bench_task(t, args, work) for t in args.tasks]
    head = ["task", "arch", "target tokens/batch", "step ms", "probe step ms", "probe step x",
            "default interval", "amortised", f"<= {100 * TARGET:.0f} %"]
    text = (f"# Attention-entropy probe cost: training step (criterion forward + backward + Adam), "
            f"{args.reps} interleaved reps after {args.warmup} warm-up, CPU, {torch.get_num_threads()} threads\n\n"
            f"Medians. Amortised = (probe step - step) / interval / step. Models: {' '.join(fr.MT_SIZE)} (mt); "
            f"{' '.join(fr.ASR_SIZE)} (asr).\n\n" + markdown_table(head, rows))
    emit_report(text, args.out)


if __name__ == "__main__":
    main()
