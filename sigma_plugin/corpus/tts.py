"""English speech in LibriSpeech's layout, synthesised by the TTS engines Debian ships.

    python -m sigma_plugin.corpus.tts --workdir W --root R --sentences FILE \\
        --n-train 10000 --n-dev 500 --n-test 500 [--nj 2] [--seed 1] [--dictionary wamerican]

espeak-ng, espeak, flite and festival (with its English diphone voices) come from Debian
packages fetched with `apt-get download` and unpacked under W (no root needed). Sentences
of FILE made of plain dictionary words are spoken by every usable English voice for
training (accents × voice variants, natural-speaker voices; rate, pitch and loudness
varied), and by voices of speakers never heard in training for dev and test. Voices built
from CMU ARCTIC `slt` are refused. Output:
R/{train-tts,dev-tts,test-tts}/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac (16 kHz
mono) with <speaker>-<chapter>.trans.txt, and SPEAKERS.txt per subset. Each .flac is
written atomically and a subset is marked complete only at its end, so a rerun resumes.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import multiprocessing
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from sigma_plugin.util import StepError, atomic

from . import debs, librispeech_layout as layout
from .tts_engines import FALLBACK_HINT, prepare_engines, resample
from .tts_plan import plan_subset, utterance_voice
from .tts_text import candidate_sentences, pick_sentences, read_vocabulary, transcripts_of
from .tts_voices import (ENGINES, KINDS, SPEEDS, TRAIN_ENGINE_WEIGHTS, ReservedVoiceError, Voice,
                         check_allowed, parse_weights, split_voices)

BUILDER_VERSION = 2
PLAN_FILE = ".tts-plan.json"
COMPLETE_FILE = ".tts-complete.json"
PEAK = 0.9                       # loudest sample before the per-utterance gain
DICTIONARY_PACKAGE, DICTIONARY_FILE = "wamerican", "usr/share/dict/american-english"

# synth(voice, speed, pitch, text) -> (mono float samples, sample rate)
Synth = Callable[[Voice, float, float, str], Tuple[np.ndarray, int]]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_WORKER_SYNTH: Optional[Synth] = None


def _init_worker(synth: Synth) -> None:
    global _WORKER_SYNTH
    _WORKER_SYNTH = synth


def _init_pool_worker(synth: Synth) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled once, by the parent
    _init_worker(synth)


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale to a peak of PEAK * 10^(gain_db/20)."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return audio if peak == 0 else audio * (PEAK * 10 ** (gain_db / 20) / peak)


def _render(job: Tuple[dict, str]) -> Tuple[str, str]:
    """Synthesise one utterance into its .flac; returns (id, error message or "")."""
    u, path = job
    try:
        audio, rate = _WORKER_SYNTH(utterance_voice(u), u["speed"], u.get("pitch", 1.0), u["text"])
        audio = resample(np.asarray(audio, dtype=np.float32), rate, layout.SAMPLE_RATE)
        if len(audio) < layout.SAMPLE_RATE // 10:
            return u["id"], f"{u['id']}: synthesiser returned {len(audio)} samples"
        layout.write_flac(Path(path), apply_gain(audio, u.get("gain_db", 0.0)))
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
            for _, err in pool.imap_unordered(_render, jobs, chunksize=8):
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
               "engines": dict(sorted(Counter(u["engine"] for u in utts).items())),
               "build_seconds": round(seconds, 1)}
    atomic.write_text(subset_dir / COMPLETE_FILE, json.dumps(summary, indent=1) + "\n")
    return summary


def read_json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def select_voices(voices: Sequence[Voice], patterns: Sequence[str]) -> List[Voice]:
    """The voices whose label matches one of the shell patterns (all if none are given)."""
    for p in patterns:
        try:
            check_allowed(Voice("pattern", p))
        except ReservedVoiceError:
            raise StepError(f"--voices {p}: CMU ARCTIC slt voices are reserved for evaluation "
                             f"outside this corpus and are never used") from None
    return [v for v in voices if not patterns or any(fnmatch.fnmatchcase(v.label, p) for p in patterns)]


def subset_voices(inventory: Sequence[Voice], patterns: Sequence[str]) -> Dict[str, List[Voice]]:
    return split_voices(select_voices(inventory, patterns))


def get_dictionary(workdir: Path, spec: Optional[str], log) -> Optional[frozenset]:
    """The vocabulary sentences must keep to, or None. spec: None/"none", "wamerican" or a word-list file."""
    if not spec or spec == "none":
        return None
    if spec == DICTIONARY_PACKAGE:
        found = debs.download([DICTIONARY_PACKAGE], workdir / "debs", FALLBACK_HINT,
                              log=lambda m: log(f"[tts] {m}"))
        debs.unpack_into(found[DICTIONARY_PACKAGE], workdir / "root", FALLBACK_HINT)
        path = workdir / "root" / DICTIONARY_FILE
    else:
        path = Path(spec)
    return read_vocabulary(path.read_text(encoding="utf-8", errors="replace").splitlines())


def build(workdir, root, sentences_file, n_train: int = 600, n_dev: int = 100, n_test: int = 100,
          nj: int = 2, seed: int = 1, names: Optional[Dict[str, str]] = None,
          min_words: int = 3, max_words: int = 20, force: bool = False,
          engines: Sequence[str] = ENGINES, weights: Optional[Dict[str, float]] = None,
          voice_patterns: Sequence[str] = (), dictionary: Optional[str] = None,
          exclude: Sequence = (), synth: Optional[Synth] = None,
          voices: Optional[Sequence[Voice]] = None, log=print) -> Dict[str, dict]:
    """Build the three subsets; returns each subset's summary.

    `synth` with `voices` (the whole inventory, split here) replaces the real engines.
    """
    workdir, root, sentences_file = Path(workdir), Path(root), Path(sentences_file)
    names = {**{k: f"{k}-tts" for k in KINDS}, **(names or {})}
    counts = {"train": n_train, "dev": n_dev, "test": n_test}
    weights = dict(TRAIN_ENGINE_WEIGHTS if weights is None else weights)
    if not sentences_file.is_file():
        raise StepError(f"--sentences {sentences_file}: no such file")
    for path in exclude:
        if not Path(path).is_file():
            raise StepError(f"--exclude {path}: no such file")
    if dictionary not in (None, "none", DICTIONARY_PACKAGE) and not Path(dictionary).is_file():
        raise StepError(f"--dictionary {dictionary}: no such file (give a word list, "
                         f"'{DICTIONARY_PACKAGE}' or 'none')")
    if any(n < 0 for n in counts.values()):
        raise StepError(f"--n-train/--n-dev/--n-test must be >= 0, got {counts}")
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise StepError(f"--engines {','.join(engines)}: give some of {','.join(ENGINES)}")
    select_voices([], voice_patterns)  # refuses reserved patterns before any work
    config = {"builder_version": BUILDER_VERSION, "sentences_sha256": file_sha256(sentences_file),
              "exclude_sha256": sorted(file_sha256(Path(p)) for p in exclude),
              "counts": counts, "seed": seed, "min_words": min_words, "max_words": max_words,
              "engines": sorted(engines), "train_engine_weights": weights,
              "voices": list(voice_patterns), "dictionary": dictionary or "none",
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
                raise StepError(f"{subset_dir} was built with other settings ({', '.join(changed)} "
                                 f"differ, see {subset_dir / what}); use another --root, or --force.")
        if done is not None:
            log(f"[tts] {subset_dir}: complete ({done['utterances']} utterances), nothing to do")
            summaries[kind] = done
        else:
            todo.append(kind)
    if not todo:
        return summaries

    if synth is None:
        found = prepare_engines(workdir, engines, log=log)
        synth, inventory = found.synthesize, found.voices()
    else:
        inventory = [v for v in voices or () if v.engine in engines]
    by_kind = subset_voices(inventory, voice_patterns)
    for kind in todo:
        if not by_kind[kind]:
            raise StepError(f"no {kind} voice among the engines and --voices given "
                             f"(engines: {','.join(engines)}). {FALLBACK_HINT}")
    vocabulary = get_dictionary(workdir, dictionary, log)
    lines = sentences_file.read_text(encoding="utf-8", errors="replace").splitlines()
    held = frozenset().union(*(transcripts_of(Path(p).read_text(encoding="utf-8", errors="replace")
                                              .splitlines()) for p in exclude))
    candidates = candidate_sentences(lines, min_words, max_words, vocabulary, held)
    try:
        groups = dict(zip(KINDS, pick_sentences(candidates, [counts[k] for k in KINDS], seed)))
    except ValueError:
        raise StepError(
            f"--sentences {sentences_file} has {len(candidates)} usable sentences (plain "
            f"ASCII words, {min_words}-{max_words} words each"
            f"{', all in --dictionary ' + dictionary if vocabulary is not None else ''}"
            f"{', not in --exclude' if exclude else ''}), fewer than --n-train + --n-dev + "
            f"--n-test = {sum(counts.values())}; lower the counts or give a larger file.")

    for kind in todo:
        subset_dir = root / names[kind]
        plan = read_json(subset_dir / PLAN_FILE)
        if plan is None:
            try:
                utts = plan_subset(kind, groups[kind], by_kind[kind], SPEEDS[kind], seed,
                                   weights if kind == "train" else {})
            except ValueError as e:
                raise StepError(f"--engine-weights {weights}: {e}") from None
            plan = {"config": config, "utterances": utts}
            atomic.write_text(subset_dir / PLAN_FILE, json.dumps(plan) + "\n")
        utts = plan["utterances"]
        for u in utts:
            try:
                check_allowed(utterance_voice(u))
            except ReservedVoiceError as e:
                raise StepError(f"{subset_dir / PLAN_FILE}: {e}") from None
        atomic.remove_stale_temps(subset_dir, recursive=True)
        start = time.time()
        errors = render_all(utts, subset_dir, synth, nj, names[kind])
        if errors:
            shown = "\n  ".join(errors[:5])
            raise StepError(f"{len(errors)} of {len(utts)} utterances of {subset_dir} failed "
                             f"(rerun to retry; finished ones are kept):\n  {shown}")
        summaries[kind] = finish_subset(subset_dir, names[kind], utts, config, time.time() - start)
        s = summaries[kind]
        log(f"[tts] {subset_dir}: {s['utterances']} utterances, {s['speakers']} speakers "
            f"({', '.join(f'{e} {n}' for e, n in s['engines'].items())}), "
            f"{s['hours'] * 60:.1f} min of audio, {s['build_seconds']} s")
    return summaries


def main(argv=None) -> int:
    from .tts_cli import main as cli_main
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
