"""The TTS engines unpacked from Debian packages (rootless): which voices they have, and running them."""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile as sf

from . import debs
from .tts_commands import command, festival_script
from .tts_voices import ENGINES, Voice, check_allowed

# Debian packages per engine (English voices only; festvox-us-slt-hts is never fetched).
ENGINE_PACKAGES: Dict[str, Tuple[str, ...]] = {
    "espeak-ng": ("espeak-ng",),
    "espeak": ("espeak",),
    "flite": ("flite",),
    "festival": ("festival", "festvox-kallpc16k", "festvox-kdlpc16k"),
}
# What these need besides a base system (Debian 12); used if apt's simulation fails.
DIRECT_PACKAGES: Dict[str, Tuple[str, ...]] = {
    "espeak-ng": ("libespeak-ng1", "espeak-ng-data", "libpcaudio0", "libsonic0"),
    "espeak": ("libespeak1", "espeak-data", "libpcaudio0", "libsonic0"),
    "flite": ("libflite1",),
    "festival": ("libestools2.5", "festlex-cmu", "festlex-poslex"),
}
# Sex of the non-espeak voices (all are recordings of male speakers).
VOICE_SEX = {"kal": "M", "kal16": "M", "rms": "M", "awb": "M", "kal_diphone": "M", "ked_diphone": "M"}

FALLBACK_HINT = ("Alternatively build the speech corpus elsewhere and point the recipe at a "
                 "prepared LibriSpeech-layout root: TTS_ROOT=/path/with/{train-tts,dev-tts,"
                 "test-tts}/<speaker>/<chapter>/*.flac and *.trans.txt.")


@dataclass
class Engines:
    """Programs of an unpacked tree (None: engine absent) and the environment to run them."""
    root: str
    programs: Dict[str, Optional[str]]
    espeak_data: Dict[str, str] = field(default_factory=dict)   # engine -> directory given as --path
    festival_data: str = ""
    env: Dict[str, str] = field(default_factory=dict)

    def run(self, cmd: List[str], stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, input=stdin)

    @property
    def present(self) -> List[str]:
        return [e for e in ENGINES if self.programs.get(e)]

    def voices(self) -> List[Voice]:
        """Every English voice of every engine present, reserved ones included (split_voices drops them)."""
        out: List[Voice] = []
        for engine in ("espeak-ng", "espeak"):
            if self.programs.get(engine):
                variants = self._espeak_variants(engine)
                for accent in self._espeak_accents(engine):
                    out += [Voice(engine, accent, v, sex) for v, sex in [("", "M")] + variants]
        if self.programs.get("flite"):
            proc = self.run([self.programs["flite"], "-lv"])
            for name in proc.stdout.replace("Voices available:", "").split():
                out.append(Voice("flite", name, "", VOICE_SEX.get(name, "M")))
        if self.programs.get("festival"):
            base = Path(self.festival_data, "voices", "english")
            for d in sorted(base.iterdir()) if base.is_dir() else []:
                out.append(Voice("festival", d.name, "", VOICE_SEX.get(d.name, "M")))
        return out

    def _espeak_accents(self, engine: str) -> List[str]:
        """English accents, mbrola voices (not in Debian main) left out. espeak-ng names them by
        language code, espeak by voice file."""
        proc = self.run([self.programs[engine], f"--path={self.espeak_data[engine]}", "--voices=en"])
        accents = []
        for line in proc.stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) < 5 or cols[1] == "variant" or cols[4].startswith("mb/") or cols[4] == "default":
                continue
            name = cols[1] if engine == "espeak-ng" else cols[4].split("/")[-1]
            if name not in accents:
                accents.append(name)
        return accents

    def _espeak_variants(self, engine: str) -> List[Tuple[str, str]]:
        folder = "espeak-ng-data" if engine == "espeak-ng" else "espeak-data"
        vdir = Path(self.espeak_data[engine], folder, "voices", "!v")
        out = []
        for p in sorted(vdir.iterdir()) if vdir.is_dir() else []:
            text = p.read_text(encoding="utf-8", errors="replace").lower()
            out.append((p.name, "F" if "gender female" in text else "M"))
        return out

    def synthesize(self, voice: Voice, speed: float, pitch: float, text: str) -> Tuple[np.ndarray, int]:
        """Mono float32 samples and their rate."""
        check_allowed(voice)
        with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
            wav = os.path.join(tmp, "out.wav")
            if voice.engine == "festival":
                proc = self.run(command(self, voice, speed, pitch, text, wav),
                                stdin=festival_script(voice, speed, pitch, text, wav))
            else:
                proc = self.run(command(self, voice, speed, pitch, text, wav))
            if proc.returncode != 0 or not os.path.isfile(wav):
                raise RuntimeError(f"{voice.label} failed on {text!r} (exit {proc.returncode}): "
                                   f"{(proc.stderr or proc.stdout).strip()[-300:]}")
            audio, rate = sf.read(wav, dtype="float32", always_2d=True)
        return audio.mean(axis=1), rate


def prepare_engines(workdir, engines: Sequence[str] = ENGINES, log=print) -> Engines:
    """Download the engines and the libraries this system lacks; unpack into WORKDIR/root."""
    workdir = Path(workdir)
    debs.require_tools("Building the speech corpus", FALLBACK_HINT)
    top = [p for e in engines for p in ENGINE_PACKAGES[e]]
    packages = debs.install_closure(top)
    if packages == top:  # simulation failed or everything else installed
        packages = list(dict.fromkeys(top + [p for e in engines for p in DIRECT_PACKAGES[e]]))
    log(f"[tts] Debian packages: {' '.join(packages)}")
    found = debs.download(packages, workdir / "debs", FALLBACK_HINT, log=lambda m: log(f"[tts] {m}"))
    root = workdir / "root"
    for deb in found.values():
        debs.unpack_into(deb, root, FALLBACK_HINT)
    got = engines_in(root, engines)
    absent = [e for e in engines if e not in got.present]
    if absent:
        log(f"[tts] engines not available, left out: {' '.join(absent)}")
    return got


def engines_in(root: Path, wanted: Sequence[str] = ENGINES) -> Engines:
    """The Engines of an unpacked tree; each engine present must start, at least one must be."""
    root = Path(root)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        debs.library_dirs(root) + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    programs: Dict[str, Optional[str]] = {}
    data: Dict[str, str] = {}
    for engine, folder in (("espeak-ng", "espeak-ng-data"), ("espeak", "espeak-data")):
        phontab = sorted(p for p in root.rglob(f"{folder}/phontab"))
        exe = root / "usr/bin" / engine
        if engine in wanted and exe.is_file() and phontab:
            programs[engine], data[engine] = str(exe), str(phontab[0].parent.parent)
    for engine in ("flite", "festival"):
        exe = root / "usr/bin" / engine
        programs[engine] = str(exe) if engine in wanted and exe.is_file() else None
    festival_data = root / "usr/share/festival"
    if programs.get("festival") and not (festival_data / "init.scm").is_file():
        programs["festival"] = None
    engines = Engines(str(root), programs, data, str(festival_data), env)
    checks = {"espeak-ng": ["--version"], "espeak": ["--version"], "flite": ["-lv"],
              "festival": ["--version"]}
    for engine in engines.present:
        cmd = [programs[engine], *checks[engine]]
        proc = engines.run(cmd)
        if proc.returncode != 0:
            raise debs.DebianToolError(f"`{' '.join(cmd)}` does not run (exit {proc.returncode}): "
                                       f"{proc.stderr.strip()[-300:]}. {FALLBACK_HINT}")
    if not engines.present:
        raise debs.DebianToolError(f"none of the engines {', '.join(wanted)} is under {root} after "
                                   f"unpacking. {FALLBACK_HINT}")
    return engines


def resample(audio: np.ndarray, rate: int, target: int = 16000) -> np.ndarray:
    """Band-limited resampling by FFT (the signal is short, so one transform is cheap)."""
    if rate == target or len(audio) == 0:
        return audio.astype(np.float32)
    n_out = int(round(len(audio) * target / rate))
    spectrum = np.fft.rfft(audio.astype(np.float64))
    keep = min(len(spectrum), n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=np.complex128)
    out_spec[:keep] = spectrum[:keep]
    out = np.fft.irfft(out_spec, n=n_out) * (n_out / len(audio))
    return out.astype(np.float32)
