"""Command lines that make each engine speak one sentence at a given rate and pitch into a .wav.

`speed` > 1 speaks faster; `pitch` multiplies the voice's mean F0 (1.0 = the voice's own).
"""
from __future__ import annotations

from typing import List

from .tts_voices import Voice

ESPEAK_BASE_WPM = 175
ESPEAK_BASE_PITCH = 50           # espeak's -p scale is 0..99, 50 the voice's default
FLITE_DIPHONE_F0 = 95.0          # int_f0_target_mean of flite's kal voices; clustergen voices take f0_shift
FESTIVAL_HEAP = "1000000"        # the default heap costs ~0.7 s of page faults per start


def espeak_pitch(pitch: float) -> int:
    """espeak's pitch parameter for a pitch factor (about one octave across 0..99)."""
    return max(0, min(99, round(ESPEAK_BASE_PITCH + 72 * (pitch - 1.0))))


def command(engines, voice: Voice, speed: float, pitch: float, text: str, wav: str) -> List[str]:
    exe = engines.programs.get(voice.engine)
    if not exe:
        raise ValueError(f"engine {voice.engine!r} of voice {voice.label} is not available")
    if voice.engine in ("espeak-ng", "espeak"):
        name = voice.name + (f"+{voice.variant}" if voice.variant else "")
        return [exe, f"--path={engines.espeak_data[voice.engine]}", "-v", name,
                "-s", str(round(ESPEAK_BASE_WPM * speed)), "-p", str(espeak_pitch(pitch)),
                "-w", wav, text]
    if voice.engine == "flite":
        f0 = (["--setf", f"int_f0_target_mean={FLITE_DIPHONE_F0 * pitch:.1f}"] if voice.name.startswith("kal")
              else ["--setf", f"f0_shift={pitch:.3f}"])
        return [exe, "-voice", voice.name, "--setf", f"duration_stretch={1 / speed:.3f}", *f0,
                "-t", text, "-o", wav]
    if voice.engine == "festival":   # reads festival_script() on stdin
        return [exe, "--heap", FESTIVAL_HEAP, "--datadir", engines.festival_data, "--pipe"]
    raise ValueError(f"unknown engine {voice.engine!r} in voice {voice.label}")


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", " ").replace('"', " ") + '"'


def festival_script(voice: Voice, speed: float, pitch: float, text: str, wav: str) -> str:
    """Scheme for `festival --pipe`: select the voice, scale its intonation target and duration."""
    return "\n".join([
        f"(voice_{voice.name})",
        "(if (boundp 'int_lr_params) (set! int_lr_params (cons (list 'target_f0_mean "
        f"(* {pitch:.3f} (cadr (assoc 'target_f0_mean int_lr_params)))) int_lr_params)))",
        f"(Parameter.set 'Duration_Stretch {1 / speed:.3f})",
        f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) {_scheme_string(wav)} 'riff)",
        ""])
