"""`sigma-cpu-train`: fairseq-train as N data-parallel processes on CPU (gloo).

fairseq's own multi-process start does not work without CUDA: it spawns
min(cuda devices, world size) = 0 workers and exits 0 having trained nothing, and its
torchrun path divides by the CUDA device count. This launcher starts the N processes
itself, each with an explicit rank:

    sigma-cpu-train --nproc 2 [--threads 1] -- DATA --user-dir sigma_plugin --arch ... [fairseq-train flags]

adding ``--cpu --distributed-backend gloo --distributed-world-size N --distributed-no-spawn
--distributed-init-method tcp://127.0.0.1:PORT --distributed-rank R --ddp-backend legacy_ddp``.
Rank 0 logs as usual; the others log to ``cpu_train.rank<R>.log`` in the current directory. If one process fails, the others are stopped and its exit code is returned.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import List, Optional

RESERVED = ("--distributed-world-size", "--distributed-rank", "--distributed-init-method",
            "--distributed-no-spawn", "--distributed-backend", "--ddp-backend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_commands(train_args: List[str], nproc: int, port: int, fairseq_train: str) -> List[List[str]]:
    common = [fairseq_train, *train_args, "--cpu", "--distributed-backend", "gloo", "--distributed-world-size",
              str(nproc), "--distributed-no-spawn", "--distributed-init-method", f"tcp://127.0.0.1:{port}",
              "--ddp-backend", "legacy_ddp"]
    return [common + ["--distributed-rank", str(rank)] for rank in range(nproc)]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="sigma-cpu-train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, required=True, help="number of CPU worker processes (>= 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (OMP_NUM_THREADS)")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then fairseq-train's arguments")
    args = ap.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.nproc < 2:
        ap.error(f"--nproc must be >= 2 (got {args.nproc}); for one process run fairseq-train --cpu")
    if not train_args:
        ap.error("give fairseq-train's arguments after --")
    clash = [a for a in train_args if a.split("=")[0] in RESERVED]
    if clash:
        ap.error(f"{', '.join(clash)}: set by sigma-cpu-train; remove them")
    fairseq_train = shutil.which("fairseq-train") or os.path.join(os.path.dirname(sys.executable), "fairseq-train")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    procs = []
    for rank, cmd in enumerate(worker_commands(train_args, args.nproc, free_port(), fairseq_train)):
        out = None if rank == 0 else open(f"cpu_train.rank{rank}.log", "w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None))
    status = 0
    while any(p.poll() is None for p in procs):
        failed = [p for p in procs if p.poll() not in (None, 0)]
        if failed:
            status = failed[0].returncode
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            break
        time.sleep(0.5)
    for p in procs:
        p.wait()
        status = status or p.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
