"""espeak-ng and flite unpacked from Debian packages (rootless) and run as subprocesses."""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Set, Tuple

import numpy as np
import soundfile as sf

from . import debs
from .tts_voices import ESPEAK_BASE_WPM, Voice

TOP_PACKAGES = ("espeak-ng", "flite")
# What these need besides a base system (Debian 12); used if apt's simulation fails.
DIRECT_PACKAGES = ("espeak-ng", "libespeak-ng1", "espeak-ng-data", "libpcaudio0", "libsonic0",
                   "flite", "libflite1")

FALLBACK_HINT = ("Alternatively build the speech corpus elsewhere and point the recipe at a "
                 "prepared LibriSpeech-layout root: TTS_ROOT=/path/with/{train-tts,dev-tts,"
                 "test-tts}/<speaker>/<chapter>/*.flac and *.trans.txt.")


@dataclass
class Engines:
    """Paths and environment to run the unpacked espeak-ng and flite."""
    espeak: str
    espeak_data_parent: str          # the directory holding espeak-ng-data/
    flite: str
    env: Dict[str, str] = field(default_factory=dict)

    def run(self, cmd: List[str]) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True)

    def espeak_languages(self) -> Set[str]:
        proc = self.run([self.espeak, f"--path={self.espeak_data_parent}", "--voices=en"])
        return {line.split()[1] for line in proc.stdout.splitlines()[1:] if len(line.split()) > 1}

    def espeak_variants(self) -> Set[str]:
        return {p.name for p in Path(self.espeak_data_parent, "espeak-ng-data", "voices", "!v").iterdir()}

    def flite_voices(self) -> Set[str]:
        proc = self.run([self.flite, "-lv"])
        return set(proc.stdout.replace("Voices available:", "").split())

    def command(self, voice: Voice, speed: float, text: str, wav: str) -> List[str]:
        if voice.engine == "espeak-ng":
            name = voice.name + (f"+{voice.variant}" if voice.variant else "")
            return [self.espeak, f"--path={self.espeak_data_parent}", "-v", name,
                    "-s", str(round(ESPEAK_BASE_WPM * speed)), "-w", wav, text]
        if voice.engine == "flite":
            return [self.flite, "-voice", voice.name, "--setf", f"duration_stretch={1 / speed:.3f}",
                    "-t", text, "-o", wav]
        raise ValueError(f"unknown engine {voice.engine!r} in voice {voice.label}")

    def synthesize(self, voice: Voice, speed: float, text: str) -> Tuple[np.ndarray, int]:
        """Mono float32 samples and their rate."""
        with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
            wav = os.path.join(tmp, "out.wav")
            proc = self.run(self.command(voice, speed, text, wav))
            if proc.returncode != 0 or not os.path.isfile(wav):
                raise RuntimeError(f"{voice.label} failed on {text!r} (exit {proc.returncode}): "
                                   f"{proc.stderr.strip()[-300:]}")
            audio, rate = sf.read(wav, dtype="float32", always_2d=True)
        return audio.mean(axis=1), rate


def prepare_engines(workdir, log=print) -> Engines:
    """Download espeak-ng, flite and the libraries this system lacks; unpack into WORKDIR/root."""
    workdir = Path(workdir)
    debs.require_tools("Building the speech corpus", FALLBACK_HINT)
    packages = debs.install_closure(TOP_PACKAGES)
    if packages == list(TOP_PACKAGES):  # simulation failed or everything else installed
        packages = list(DIRECT_PACKAGES)
    log(f"[tts] Debian packages: {' '.join(packages)}")
    found = debs.download(packages, workdir / "debs", FALLBACK_HINT, log=lambda m: log(f"[tts] {m}"))
    for name in TOP_PACKAGES:
        if name not in found:
            raise debs.DebianToolError(f"Debian package {name!r} could not be downloaded. {FALLBACK_HINT}")
    root = workdir / "root"
    for deb in found.values():
        debs.unpack_into(deb, root, FALLBACK_HINT)
    return engines_in(root)


def engines_in(root: Path) -> Engines:
    """The Engines of an unpacked tree; checks that both programs start."""
    root = Path(root)
    phontab = sorted(root.rglob("espeak-ng-data/phontab"))
    espeak, flite = root / "usr/bin/espeak-ng", root / "usr/bin/flite"
    for need, what in ((espeak, "espeak-ng"), (flite, "flite")):
        if not need.is_file():
            raise debs.DebianToolError(f"{need} is missing after unpacking {what}. {FALLBACK_HINT}")
    if not phontab:
        raise debs.DebianToolError(f"no espeak-ng-data/phontab under {root}. {FALLBACK_HINT}")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        debs.library_dirs(root) + [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p])
    engines = Engines(str(espeak), str(phontab[0].parent.parent), str(flite), env)
    for cmd in ([engines.espeak, f"--path={engines.espeak_data_parent}", "--version"],
                [engines.flite, "-lv"]):
        proc = engines.run(cmd)
        if proc.returncode != 0:
            raise debs.DebianToolError(f"`{' '.join(cmd)}` does not run (exit {proc.returncode}): "
                                       f"{proc.stderr.strip()[-300:]}. {FALLBACK_HINT}")
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
