"""Audio reading and 80-dim log-mel filterbanks (Kaldi-compatible, torchaudio)."""
from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as kaldi

FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0


class AudioFormatError(ValueError):
    """The file is readable but not in the format the whole corpus must have (rate, channels)."""


class BadAudio(ValueError):
    """This one file cannot be used (unreadable, empty, shorter than one frame)."""


def load_waveform(path: str, sample_rate: int) -> np.ndarray:
    """Mono float32 samples in [-1, 1]."""
    try:
        wav, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError for damaged files
        raise BadAudio(f"unreadable audio: {e}") from e
    if sr != sample_rate:
        raise AudioFormatError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz "
                               f"(resample the corpus or pass --sample-rate {sr})")
    if wav.shape[1] != 1:
        raise AudioFormatError(f"{path}: {wav.shape[1]} channels, expected mono")
    wav = wav[:, 0]
    if wav.size == 0:
        raise BadAudio("empty audio (0 samples)")
    if wav.size < int(sample_rate * FRAME_LENGTH_MS / 1000):
        raise BadAudio(f"audio shorter than one {FRAME_LENGTH_MS:g} ms frame ({wav.size} samples)")
    return wav


def log_mel_fbank(wav: np.ndarray, sample_rate: int, n_mels: int = 80) -> np.ndarray:
    """(frames, n_mels) float32; Kaldi expects 16-bit integer amplitudes, hence the scaling."""
    x = torch.from_numpy(wav * 32768.0).unsqueeze(0)
    feats = kaldi.fbank(x, num_mel_bins=n_mels, sample_frequency=sample_rate,
                        frame_length=FRAME_LENGTH_MS, frame_shift=FRAME_SHIFT_MS, dither=0.0)
    return feats.numpy().astype(np.float32)
