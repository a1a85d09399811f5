"""Fbank features + manifests for subsets of a LibriSpeech-layout corpus.

    python -m sigma_plugin.asr.prep_fbank --root DB --subsets train-clean-100 dev-clean \
        --out-dir dump --nj 4
    python -m sigma_plugin.asr.prep_fbank --root DB --subsets train-tts --out-dir dump \
        --speed-perturb 0.9 1.0 1.1 --noise-snr 10,30

Training data augmentation (subsets whose name starts with "train"; others are never
augmented): --speed-perturb writes one copy per factor (Kaldi's ids: sp0.9-<id>, speaker
sp0.9-<speaker>; factor 1.0 keeps the id), --noise-snr adds white, pink or brown noise at an
SNR drawn uniformly from LOW..HIGH dB to every copy (seeded per utterance by --seed).

Writes, per subset, into --out-dir (each file written to a temporary name, then renamed;
``SUBSET.tsv`` is renamed last, so its presence means the subset is complete and a rerun
skips it unless --overwrite):
  fbank<N>_SUBSET.zip     per-utterance (frames, N) float32 .npy, stored (uncompressed)
  SUBSET.fbank_stats.npz  frame count, per-dim sum and sum of squares (for global CMVN)
  SUBSET.skipped.tsv      id, path, reason of every utterance left out (header only if none)
  SUBSET.tsv              id, audio (fbank<N>_SUBSET.zip:offset:length), n_frames, tgt_text, speaker
Audio paths in SUBSET.tsv are relative to --out-dir (config.yaml's audio_root).
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import zipfile
import zlib
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from sigma_plugin.util import StepError, run_cli
from sigma_plugin.util.atomic import atomic_path, remove_stale_temps
from . import augment
from .worker_pool import ordered_map
from .corpus import CorpusError, Skipped, Utterance, scan_subset
from .feature_zip import member_spans, npy_bytes
from .features import AudioFormatError, BadAudio, load_waveform, log_mel_fbank
from .manifest import MANIFEST_COLUMNS, SKIPPED_COLUMNS, write_tsv

logger = logging.getLogger("sigma_plugin.asr.prep_fbank")


class TooManySkipped(ValueError):
    pass


def _init_worker():
    import torch
    torch.set_num_threads(1)  # one process per core; no oversubscription


def _copies(utt_id: str, wav: np.ndarray, aug) -> List[Tuple[str, np.ndarray]]:
    """(id, samples) of every training copy of one utterance: one per speed factor, each with
    noise at a random SNR when aug has a range (aug: (factors, snr_range or None, seed))."""
    factors, snr_range, seed = aug
    out = []
    for factor in factors:
        copy_id = augment.speed_perturbed_id(utt_id, factor)
        x = augment.speed_perturb(torch.from_numpy(wav), factor)
        if snr_range is not None:
            g = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{copy_id}".encode()))
            colour = sorted(augment.NOISE_COLOURS)[int(torch.randint(len(augment.NOISE_COLOURS), (1,), generator=g))]
            x = augment.add_noise(x, augment.random_snr(snr_range, g), colour=colour, generator=g)
        out.append((copy_id, x.numpy()))
    return out


def _extract(job):
    """Runs in a worker: never raises (an exception inside a pool worker is what leaves a pool
    hard to shut down); every outcome is a (utt_id, status, payload) tuple, the payload of "ok"
    a list of (id, npy bytes, frames, sum, sum of squares), one per copy."""
    utt_id, path, sample_rate, n_mels, aug = job
    try:
        wav = load_waveform(path, sample_rate)
        copies = [(utt_id, wav)] if aug is None else _copies(utt_id, wav, aug)
        feats = [(cid, log_mel_fbank(x, sample_rate, n_mels)) for cid, x in copies]
    except BadAudio as e:
        return utt_id, "bad", str(e)
    except AudioFormatError as e:
        return utt_id, "format", str(e)
    except Exception as e:  # anything else stops the subset with a message naming the file
        return utt_id, "format", f"{path}: {type(e).__name__}: {e}"
    out = []
    for cid, f in feats:
        f64 = f.astype(np.float64)
        out.append((cid, npy_bytes(f), f.shape[0], f64.sum(0), (f64 ** 2).sum(0)))
    return utt_id, "ok", out


def extract_all(jobs, nj: int):
    """_extract over the jobs in order, in nj processes (nj > 1) or in this one; closing the
    generator early shuts the processes down."""
    if nj <= 1:
        yield from map(_extract, jobs)
    else:
        yield from ordered_map(_extract, jobs, nj, initializer=_init_worker)


def evenly_spaced(utts: List[Utterance], n: int) -> List[Utterance]:
    """n utterances spread over the sorted list (speaker variety for quick runs)."""
    if n <= 0 or n >= len(utts):
        return utts
    step = len(utts) / n
    return [utts[int(i * step)] for i in range(n)]


def check_augmentation(speed_perturb: Sequence[float], noise_snr: Optional[Sequence[float]]) -> None:
    """ValueError naming the flag for factors or an SNR range that cannot be used."""
    if not speed_perturb:
        raise ValueError("--speed-perturb needs at least one factor (1.0: no perturbation)")
    if len(set(speed_perturb)) != len(speed_perturb):
        raise ValueError(f"--speed-perturb: factors repeat: {' '.join(f'{f:g}' for f in speed_perturb)}")
    for f in speed_perturb:
        try:
            augment.speed_ratio(f)
        except ValueError as e:
            raise ValueError(f"--speed-perturb: {e}") from None
    if noise_snr is not None:
        if len(noise_snr) != 2 or not all(math.isfinite(x) for x in noise_snr) or noise_snr[0] > noise_snr[1]:
            raise ValueError(f"--noise-snr must be LOW,HIGH in dB with LOW <= HIGH, got {noise_snr}")


def is_training_subset(subset: str) -> bool:
    return subset.startswith("train")


def prep_subset(root, subset: str, out_dir: Path, nj: int = 1, sample_rate: int = 16000,
                n_mels: int = 80, max_skip_ratio: float = 0.05, max_utts: int = 0,
                overwrite: bool = False, speed_perturb: Sequence[float] = (1.0,),
                noise_snr: Optional[Sequence[float]] = None, seed: int = 1) -> Path:
    """Features and manifest of one subset. speed_perturb / noise_snr apply to training subsets
    (names starting with "train") only."""
    check_augmentation(speed_perturb, noise_snr)
    out_dir = Path(out_dir)
    remove_stale_temps(out_dir)  # e.g. the half-written zip of an interrupted run
    tsv = out_dir / f"{subset}.tsv"
    if tsv.exists() and not overwrite:
        logger.info(f"{subset}: {tsv} exists, skipping (--overwrite to redo)")
        return tsv
    if tsv.exists():
        tsv.unlink()  # never leave a manifest pointing into a zip being rewritten
    utts, skipped = scan_subset(root, subset)
    utts = evenly_spaced(utts, max_utts)
    zip_name = f"fbank{n_mels}_{subset}.zip"
    aug = None
    if is_training_subset(subset) and (tuple(speed_perturb) != (1.0,) or noise_snr is not None):
        aug = (tuple(float(f) for f in speed_perturb), None if noise_snr is None else tuple(noise_snr), seed)
        logger.info(f"{subset}: speed factors {' '.join(f'{f:g}' for f in aug[0])}"
                    + (f", noise at {aug[1][0]:g}..{aug[1][1]:g} dB SNR" if aug[1] else ""))
    jobs = [(u.utt_id, u.audio, sample_rate, n_mels, aug) for u in utts]
    kept, n_frames = {}, {}
    count, total, total_sq = 0, np.zeros(n_mels), np.zeros(n_mels)
    with atomic_path(out_dir / zip_name) as tmp_zip:
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_STORED) as zf:
            error = None
            by_id = {u.utt_id: u for u in utts}
            results = extract_all(jobs, nj)
            try:
                for utt_id, status, payload in tqdm(results, total=len(jobs), desc=f"fbank {subset}",
                                                    unit="utt", file=sys.stderr):
                    if status == "format":
                        error = payload
                        break
                    if status == "bad":
                        skipped.append(Skipped(utt_id, by_id[utt_id].audio, payload))
                        continue
                    for copy_id, data, frames, s, sq in payload:
                        zf.writestr(f"{copy_id}.npy", data)
                        kept[copy_id] = by_id[utt_id]
                        n_frames[copy_id] = frames
                        count, total, total_sq = count + frames, total + s, total_sq + sq
            finally:
                results.close()  # stops the worker processes (after their running task) on every path
            if error is not None:
                raise AudioFormatError(error)
        spans = member_spans(tmp_zip)
        skipped.sort(key=lambda s: s.utt_id)
        write_tsv(out_dir / f"{subset}.skipped.tsv", SKIPPED_COLUMNS,
                  ({"id": s.utt_id, "path": s.path, "reason": s.reason} for s in skipped))
        n_all = len({u.utt_id for u in kept.values()}) + len(skipped)
        if skipped:
            logger.warning(f"{subset}: skipped {len(skipped)} of {n_all} utterances "
                           f"(listed in {out_dir / (subset + '.skipped.tsv')}); first: "
                           f"{skipped[0].utt_id}: {skipped[0].reason}")
        if not kept:
            raise CorpusError(f"{subset}: no utterance could be read; see {subset}.skipped.tsv")
        if len(skipped) > max_skip_ratio * n_all:
            raise TooManySkipped(f"{subset}: {len(skipped)}/{n_all} utterances skipped, more than "
                                 f"--max-skip-ratio {max_skip_ratio}; see {subset}.skipped.tsv")
    with atomic_path(out_dir / f"{subset}.fbank_stats.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, count=np.array(count, dtype=np.int64), sum=total, sum_sq=total_sq)
    rows = ({"id": cid, "audio": f"{zip_name}:{spans[cid][0]}:{spans[cid][1]}",
             "n_frames": n_frames[cid], "tgt_text": u.text, "speaker": copy_speaker(cid, u)}
            for cid, u in kept.items())
    n = write_tsv(tsv, MANIFEST_COLUMNS, rows)
    logger.info(f"{subset}: {n} utterances, {count} frames ({count / 360000:.2f} h) -> {tsv}")
    return tsv


def copy_speaker(copy_id: str, utt: Utterance) -> str:
    """sp0.9-<speaker> for the copy sp0.9-<id> (Kaldi's naming), the speaker otherwise."""
    prefix = copy_id[:len(copy_id) - len(utt.utt_id)]
    return prefix + utt.speaker


def parse_snr(text: str) -> Tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in dB (e.g. 10,30), got {text!r}") from None
    return low, high


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="corpus root holding the subset folders")
    p.add_argument("--subsets", nargs="+", required=True, help="subset folder names, e.g. train-clean-100 dev-clean")
    p.add_argument("--out-dir", required=True, help="where zips, manifests and stats go")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--sample-rate", type=int, default=16000, help="required sample rate in Hz (default 16000)")
    p.add_argument("--n-mels", type=int, default=80, help="mel bins (default 80)")
    p.add_argument("--max-skip-ratio", type=float, default=0.05,
                   help="fail if more than this fraction of a subset's utterances is skipped (default 0.05)")
    p.add_argument("--max-utts", type=int, default=0,
                   help="keep only this many evenly spaced utterances per subset (0 = all; for quick runs)")
    p.add_argument("--speed-perturb", type=float, nargs="+", default=[1.0], metavar="FACTOR",
                   help="training subsets: one copy per speed factor, e.g. 0.9 1.0 1.1 (ids sp0.9-<id>; "
                        "default 1.0: none)")
    p.add_argument("--noise-snr", type=parse_snr, default=None, metavar="LOW,HIGH",
                   help="training subsets: add white/pink/brown noise at an SNR drawn from LOW..HIGH dB "
                        "(default: no noise)")
    p.add_argument("--seed", type=int, default=1, help="seed of the noise (default 1)")
    p.add_argument("--overwrite", action="store_true", help="redo subsets whose manifest exists")
    return p


def main(argv: Sequence[str] = None) -> int:
    """The command line: exit status 0, or 2 with ``error: <message>`` on stderr."""
    return run_cli(None, _main, argv)


def _main(argv: Sequence[str] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", force=True)
    if args.nj < 1:
        raise StepError(f"--nj must be >= 1, got {args.nj}")
    try:
        check_augmentation(args.speed_perturb, args.noise_snr)
    except ValueError as e:
        raise StepError(str(e)) from None
    try:
        for subset in args.subsets:
            prep_subset(args.root, subset, Path(args.out_dir), args.nj, args.sample_rate, args.n_mels,
                        args.max_skip_ratio, args.max_utts, args.overwrite, args.speed_perturb,
                        args.noise_snr, args.seed)
    except (CorpusError, AudioFormatError, TooManySkipped) as e:
        raise StepError(str(e)) from None
    except BrokenProcessPool:
        print(f"error: a feature-extraction process died (killed, out of memory?); rerun with a smaller "
              f"--nj (finished subsets are kept)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
