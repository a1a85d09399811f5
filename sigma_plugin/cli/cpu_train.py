"""`sigma-cpu-train`: fairseq-train as N data-parallel processes on CPU (gloo).

fairseq's own multi-process start does not work without CUDA: it spawns
min(cuda devices, world size) = 0 workers and exits 0 having trained nothing, and its
torchrun path divides by the CUDA device count. This launcher starts the N processes
itself, each with an explicit rank:

    sigma-cpu-train --nproc 2 [--threads 1] -- DATA --user-dir sigma_plugin --arch ... [fairseq-train flags]

adding ``--cpu --distributed-backend gloo --distributed-world-size N --distributed-no-spawn
--distributed-init-method file://RENDEZVOUS --distributed-rank R --ddp-backend legacy_ddp``. The
ranks meet through a file in a fresh temporary folder (removed at the end), not a TCP port that
another program could take between choosing it and rank 0 binding it.
Rank 0 logs as usual; the others log to ``cpu_train.rank<R>.log`` beside the checkpoints (the
``--save-dir``, fairseq's default ``checkpoints``), so two runs never share a log.
If one process fails, the others are stopped, the launcher says which rank failed, how (exit
status or signal) and where its log is, and returns its exit status. SIGTERM/SIGINT/SIGHUP sent
to the launcher are passed on to every worker (no orphans); the launcher then returns 128 + the
signal number. Workers also get SIGTERM if the launcher itself is killed (Linux).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

RESERVED = ("--distributed-world-size", "--distributed-rank", "--distributed-init-method",
            "--distributed-no-spawn", "--distributed-backend", "--ddp-backend")


def save_dir(train_args: List[str]) -> str:
    """The run's --save-dir (the last one given; fairseq's default ``checkpoints``)."""
    found = "checkpoints"
    for i, a in enumerate(train_args):
        if a == "--save-dir" and i + 1 < len(train_args):
            found = train_args[i + 1]
        elif a.startswith("--save-dir="):
            found = a.split("=", 1)[1]
    return found


def worker_commands(train_args: List[str], nproc: int, rendezvous: str, fairseq_train: str) -> List[List[str]]:
    """``rendezvous``: a file that does not exist yet, in a folder only this run uses."""
    common = [fairseq_train, *train_args, "--cpu", "--distributed-backend", "gloo", "--distributed-world-size",
              str(nproc), "--distributed-no-spawn", "--distributed-init-method", f"file://{rendezvous}",
              "--ddp-backend", "legacy_ddp"]
    return [common + ["--distributed-rank", str(rank)] for rank in range(nproc)]


def _die_with_parent() -> None:
    """In the worker, before exec: receive SIGTERM when the launcher dies (Linux prctl)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _stop(procs, grace: float = 30.0) -> None:
    """SIGTERM every live worker; SIGKILL those still alive after ``grace`` seconds."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _tail(path: str, n: int = 5) -> List[str]:
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f.readlines()[-n:]]
    except OSError:
        return []


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
    procs, logs = [], []
    received = []

    def forward(signum, frame):
        received.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    log_dir = save_dir(train_args)
    os.makedirs(log_dir, exist_ok=True)
    meeting = tempfile.mkdtemp(prefix="sigma-cpu-train-")
    previous = {s: signal.signal(s, forward) for s in handled}
    try:
        commands = worker_commands(train_args, args.nproc, os.path.join(meeting, "rendezvous"), fairseq_train)
        for rank, cmd in enumerate(commands):
            log = None if rank == 0 else os.path.abspath(os.path.join(log_dir, f"cpu_train.rank{rank}.log"))
            out = open(log, "w") if log else None
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                          preexec_fn=_die_with_parent))
            logs.append(log)
            if out:
                out.close()
        print("sigma-cpu-train: " + ", ".join(
            f"rank {r} pid {p.pid}" + (f" (log {logs[r]})" if logs[r] else "") for r, p in enumerate(procs)),
            file=sys.stderr, flush=True)
        failed = None
        while any(p.poll() is None for p in procs) and not received:
            failed = next((r for r, p in enumerate(procs) if p.poll() not in (None, 0)), None)
            if failed is not None:
                break
            time.sleep(0.2)
        if received:
            _stop(procs)
            name = signal.Signals(received[0]).name
            print(f"sigma-cpu-train: {name} received: passed on to the workers, all stopped", file=sys.stderr)
            return 128 + received[0]
        if failed is None:
            failed = next((r for r, p in enumerate(procs) if p.wait() != 0), None)
        if failed is None:
            return 0
        code = procs[failed].returncode
        _stop(procs)
        where = f"its log: {logs[failed]}" if logs[failed] else "its output is above (rank 0 logs to this terminal)"
        print(f"sigma-cpu-train: rank {failed} (pid {procs[failed].pid}) {_how(code)}; the other workers were "
              f"stopped; {where}", file=sys.stderr)
        for line in _tail(logs[failed]) if logs[failed] else []:
            print(f"  rank {failed}| {line}", file=sys.stderr)
        return _exit_status(code)
    finally:
        _stop(procs, grace=5.0)
        shutil.rmtree(meeting, ignore_errors=True)
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
