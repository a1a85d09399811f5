"""English speech in LibriSpeech's layout, synthesised with espeak-ng and flite.

    python -m sigma_plugin.corpus.tts --workdir W --root R --sentences FILE \\
        --n-train 600 --n-dev 100 --n-test 100 [--nj 2] [--seed 1]

espeak-ng and flite come from Debian packages fetched with `apt-get download` and unpacked
under W (no root needed). Sentences (e.g. the English side of the MT corpus) that are plain
words are spoken by many voices for training (espeak-ng accents × variants, flite voices,
rate ±10 %) and by voices never used in training for dev and test. Output:
R/{train-tts,dev-tts,test-tts}/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac (16 kHz
mono) with <speaker>-<chapter>.trans.txt, and SPEAKERS.txt per subset. Each .flac is
written atomically and a subset is marked complete only at its end, so a rerun resumes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import shutil
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from . import atomic, debs, librispeech_layout as layout
from .tts_engines import FALLBACK_HINT, prepare_engines, resample
from .tts_text import candidate_sentences, pick_sentences
from .tts_voices import SPEEDS, VOICES, Voice, usable_voices

BUILDER_VERSION = 1
KINDS = ("train", "dev", "test")
SPEAKER_BASE = {"train": 1000, "dev": 2000, "test": 3000}
PLAN_FILE = ".tts-plan.json"
COMPLETE_FILE = ".tts-complete.json"

# synth(voice, speed, text) -> (mono float samples, sample rate)
Synth = Callable[[Voice, float, str], Tuple[np.ndarray, int]]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def plan_subset(kind: str, sentences: Sequence[Tuple[str, str]], voices: Sequence[Voice],
                speeds: Sequence[float], seed: int) -> List[dict]:
    """Utterances of one subset: each sentence gets a (voice, speed), cycling through all
    combinations in a seeded random order so that voices are used evenly."""
    combos = [(vi, si) for vi in range(len(voices)) for si in range(len(speeds))]
    rng = random.Random(f"{seed}-{kind}")
    order: List[Tuple[int, int]] = []
    counters: Dict[Tuple[int, int], int] = defaultdict(int)
    utts = []
    for spoken, transcript in sentences:
        if not order:
            order = combos[:]
            rng.shuffle(order)
        vi, si = order.pop()
        speaker = SPEAKER_BASE[kind] + vi
        chapter = speaker * 10 + si
        index = counters[(speaker, chapter)]
        counters[(speaker, chapter)] += 1
        v = voices[vi]
        utts.append({"id": layout.utterance_id(speaker, chapter, index), "engine": v.engine,
                     "voice": v.name, "variant": v.variant, "sex": v.sex, "speed": speeds[si],
                     "text": spoken, "transcript": transcript})
    return utts


def utterance_voice(u: dict) -> Voice:
    return Voice(u["engine"], u["voice"], u["variant"], u["sex"])


_WORKER_SYNTH: Optional[Synth] = None


def _init_worker(synth: Synth) -> None:
    global _WORKER_SYNTH
    _WORKER_SYNTH = synth


def _init_pool_worker(synth: Synth) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled once, by the parent
    _init_worker(synth)


def _render(job: Tuple[dict, str]) -> Tuple[str, str]:
    """Synthesise one utterance into its .flac; returns (id, error message or "")."""
    u, path = job
    try:
        audio, rate = _WORKER_SYNTH(utterance_voice(u), u["speed"], u["text"])
        audio = resample(np.asarray(audio, dtype=np.float32), rate, layout.SAMPLE_RATE)
        if len(audio) < layout.SAMPLE_RATE // 10:
            return u["id"], f"{u['id']}: synthesiser returned {len(audio)} samples"
        layout.write_flac(Path(path), audio)
        return u["id"], ""
    except Exception as e:  # reported by the parent; the subset stays incomplete
        return u["id"], f"{u['id']}: {e}"


def render_all(utts: List[dict], subset_dir: Path, synth: Synth, nj: int, desc: str) -> List[str]:
    jobs = [(u, str(layout.flac_path(subset_dir, u["id"]))) for u in utts
            if not layout.is_complete_flac(layout.flac_path(subset_dir, u["id"]))]
    errors = []
    bar = tqdm(total=len(utts), initial=len(utts) - len(jobs), desc=desc, unit="utt", file=sys.stderr)
    if nj <= 1 or len(jobs) <= 1:
        _init_worker(synth)
        results = map(_render, jobs)
        for _, err in results:
            if err:
                errors.append(err)
            bar.update()
    else:
        with multiprocessing.get_context("fork").Pool(nj, _init_pool_worker, (synth,)) as pool:
            for _, err in pool.imap_unordered(_render, jobs, chunksize=4):
                if err:
                    errors.append(err)
                bar.update()
    bar.close()
    return errors


def finish_subset(subset_dir: Path, subset: str, utts: List[dict], config: dict, seconds: float) -> dict:
    durations = {u["id"]: layout.flac_seconds(layout.flac_path(subset_dir, u["id"])) for u in utts}
    layout.write_transcripts(subset_dir, ((u["id"], u["transcript"]) for u in utts))
    per_speaker: Dict[int, list] = {}
    for u in utts:
        speaker = int(u["id"].split("-")[0])
        entry = per_speaker.setdefault(speaker, [speaker, u["sex"], 0.0, utterance_voice(u).label])
        entry[2] += durations[u["id"]] / 60
    layout.write_speakers(subset_dir, subset, (tuple(e) for e in per_speaker.values()))
    summary = {"config": config, "utterances": len(utts), "speakers": len(per_speaker),
               "hours": round(sum(durations.values()) / 3600, 3),
               "build_seconds": round(seconds, 1)}
    atomic.write_text(subset_dir / COMPLETE_FILE, json.dumps(summary, indent=1) + "\n")
    return summary


def read_json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def build(workdir, root, sentences_file, n_train: int = 600, n_dev: int = 100, n_test: int = 100,
          nj: int = 2, seed: int = 1, names: Optional[Dict[str, str]] = None,
          min_words: int = 3, max_words: int = 20, force: bool = False,
          synth: Optional[Synth] = None, log=print) -> Dict[str, dict]:
    """Build the three subsets; returns each subset's summary. `synth` replaces the real engines."""
    workdir, root, sentences_file = Path(workdir), Path(root), Path(sentences_file)
    names = {**{k: f"{k}-tts" for k in KINDS}, **(names or {})}
    counts = {"train": n_train, "dev": n_dev, "test": n_test}
    if not sentences_file.is_file():
        raise SystemExit(f"error: --sentences {sentences_file}: no such file")
    if any(n < 0 for n in counts.values()):
        raise SystemExit(f"error: --n-train/--n-dev/--n-test must be >= 0, got {counts}")
    config = {"builder_version": BUILDER_VERSION, "sentences_sha256": file_sha256(sentences_file),
              "counts": counts, "seed": seed, "min_words": min_words, "max_words": max_words,
              "fake_synth": synth is not None}
    wanted = [k for k in KINDS if counts[k] > 0]
    summaries: Dict[str, dict] = {}
    todo = []
    for kind in wanted:
        subset_dir = root / names[kind]
        done = read_json(subset_dir / COMPLETE_FILE)
        plan = read_json(subset_dir / PLAN_FILE)
        if force and subset_dir.exists():
            shutil.rmtree(subset_dir)
            done = plan = None
        for state, what in ((done, COMPLETE_FILE), (plan, PLAN_FILE)):
            if state is not None and state["config"] != config:
                changed = sorted(k for k in set(config) | set(state["config"])
                                 if config.get(k) != state["config"].get(k))
                raise SystemExit(f"error: {subset_dir} was built with other settings ({', '.join(changed)} "
                                 f"differ, see {subset_dir / what}); use another --root, or --force.")
        if done is not None:
            log(f"[tts] {subset_dir}: complete ({done['utterances']} utterances), nothing to do")
            summaries[kind] = done
        else:
            todo.append(kind)
    if not todo:
        return summaries

    real = synth is None
    if real:
        engines = prepare_engines(workdir, log=log)
        have = (engines.espeak_languages(), engines.espeak_variants(), engines.flite_voices())
        synth = engines.synthesize
    voices: Dict[str, List[Voice]] = {}
    for kind in KINDS:
        ok, missing = usable_voices(VOICES[kind], *have) if real else (list(VOICES[kind]), [])
        if missing:
            log(f"[tts] {kind}: voices this espeak-ng/flite lacks, skipped: "
                f"{' '.join(v.label for v in missing)}")
        if not ok and counts[kind] > 0:
            raise SystemExit(f"error: none of the {kind} voices is available "
                             f"({' '.join(v.label for v in VOICES[kind])}). {FALLBACK_HINT}")
        voices[kind] = ok

    lines = sentences_file.read_text(encoding="utf-8", errors="replace").splitlines()
    candidates = candidate_sentences(lines, min_words, max_words)
    try:
        groups = dict(zip(KINDS, pick_sentences(candidates, [counts[k] for k in KINDS], seed)))
    except ValueError:
        raise SystemExit(
            f"error: --sentences {sentences_file} has {len(candidates)} usable sentences (plain "
            f"ASCII words, {min_words}-{max_words} words each), fewer than --n-train + --n-dev + "
            f"--n-test = {sum(counts.values())}; lower the counts or give a larger file.")

    for kind in todo:
        subset_dir = root / names[kind]
        plan = read_json(subset_dir / PLAN_FILE)
        if plan is None:
            utts = plan_subset(kind, groups[kind], voices[kind], SPEEDS[kind], seed)
            plan = {"config": config, "utterances": utts}
            atomic.write_text(subset_dir / PLAN_FILE, json.dumps(plan) + "\n")
        utts = plan["utterances"]
        atomic.remove_stale_temps(subset_dir, recursive=True)
        start = time.time()
        errors = render_all(utts, subset_dir, synth, nj, names[kind])
        if errors:
            shown = "\n  ".join(errors[:5])
            raise SystemExit(f"error: {len(errors)} of {len(utts)} utterances of {subset_dir} failed "
                             f"(rerun to retry; finished ones are kept):\n  {shown}")
        summaries[kind] = finish_subset(subset_dir, names[kind], utts, config, time.time() - start)
        s = summaries[kind]
        log(f"[tts] {subset_dir}: {s['utterances']} utterances, {s['speakers']} speakers, "
            f"{s['hours'] * 60:.1f} min of audio, {s['build_seconds']} s")
    return summaries


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m sigma_plugin.corpus.tts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, help="cache for .debs (W/debs) and the unpacked engines (W/root)")
    p.add_argument("--root", required=True, help="LibriSpeech-layout output root")
    p.add_argument("--sentences", required=True, help="text file, one English sentence per line")
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-dev", type=int, default=100)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-name", default="train-tts")
    p.add_argument("--dev-name", default="dev-tts")
    p.add_argument("--test-name", default="test-tts")
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=20)
    p.add_argument("--force", action="store_true", help="delete and rebuild existing subsets")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.nj < 1:
        raise SystemExit(f"error: --nj must be >= 1, got {args.nj}")
    names = {"train": args.train_name, "dev": args.dev_name, "test": args.test_name}
    if len(set(names.values())) != 3:
        raise SystemExit(f"error: --train-name/--dev-name/--test-name must differ, got {names}")
    start = time.time()
    try:
        build(args.workdir, args.root, args.sentences, args.n_train, args.n_dev, args.n_test,
              nj=args.nj, seed=args.seed, names=names, min_words=args.min_words,
              max_words=args.max_words, force=args.force)
    except debs.DebianToolError as e:
        raise SystemExit(f"error: {e}")
    except KeyboardInterrupt:
        raise SystemExit("interrupted: finished utterances are kept; rerun the same command to resume")
    print(f"[tts] done in {time.time() - start:.1f} s: {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
