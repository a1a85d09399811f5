"""Vocal-tract length perturbation (VTLP) of stored log-mel filterbank features.

A speaker's vocal-tract length scales the frequencies of their formants. Kaldi's VTLN models
this as a piecewise-linear warp of the frequency axis (torchaudio's ``vtln_warp_freq``:
f -> f / alpha between the cut-offs, linear towards the band edges). Jaitly & Hinton (2013,
"Vocal Tract Length Perturbation improves speech recognition") draw a random alpha per
utterance in training, which makes new pseudo-speakers out of the ones in the data.

Here the warp is applied to features already computed (``features.log_mel_fbank``): each
output mel bin reads the input at the frequency Kaldi's warped filterbank would have read,
by linear interpolation between neighbouring bins. That matches recomputing the filterbank
with ``kaldi.fbank(..., vtln_warp=alpha)`` up to the bins' width (tested), at the cost of a
gather per utterance instead of re-reading the audio.
"""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np

# Kaldi's defaults (torchaudio.compliance.kaldi.fbank), which features.log_mel_fbank uses.
LOW_FREQ = 20.0
VTLN_LOW = 100.0
VTLN_HIGH_BELOW_NYQUIST = 500.0


@functools.lru_cache(maxsize=256)
def source_bins(alpha: float, n_mels: int, sample_rate: int) -> np.ndarray:
    """(n_mels,) fractional input-bin index each output bin reads for warp factor `alpha`."""
    if not (0.5 <= alpha <= 2.0):
        raise ValueError(f"warp factor must be in [0.5, 2], got {alpha!r}")
    import torch  # here, not at the top: prep_vocab imports this module for check_range alone
    import torchaudio.compliance.kaldi as kaldi
    nyquist = sample_rate / 2.0
    mel_low, mel_high = kaldi.mel_scale_scalar(LOW_FREQ), kaldi.mel_scale_scalar(nyquist)
    step = (mel_high - mel_low) / (n_mels + 1)
    centres_hz = kaldi.inverse_mel_scale(mel_low + step * torch.arange(1, n_mels + 1, dtype=torch.float64))
    # Kaldi's warped filterbank puts filter c's peak at the input frequency warp(c)
    # (vtln_warp_freq: c / alpha between the cut-offs).
    source_hz = kaldi.vtln_warp_freq(VTLN_LOW, nyquist - VTLN_HIGH_BELOW_NYQUIST, LOW_FREQ, nyquist,
                                     float(alpha), centres_hz)
    src = (kaldi.mel_scale(source_hz) - mel_low) / step - 1.0
    return src.clamp(0.0, n_mels - 1.0).numpy()


def warp_log_mel(feats: np.ndarray, alpha: float, sample_rate: int = 16000) -> np.ndarray:
    """(frames, n_mels) log-mel features as Kaldi's VTLN with warp factor `alpha` gives them
    (alpha > 1: each bin reads a lower frequency, so formants move up, as with a shorter vocal tract)."""
    if feats.ndim != 2:
        raise ValueError(f"features must be shaped (frames, n_mels), got {feats.shape}")
    if alpha == 1.0:
        return feats
    src = source_bins(round(float(alpha), 4), feats.shape[1], int(sample_rate))
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, feats.shape[1] - 1)
    frac = (src - lo).astype(feats.dtype)
    return feats[:, lo] * (1 - frac) + feats[:, hi] * frac


def check_range(max_warp: float) -> Tuple[float, float]:
    """The alpha range (1 - max_warp, 1 + max_warp); raises ValueError naming the problem."""
    if not (isinstance(max_warp, (int, float)) and 0.0 <= max_warp <= 0.3):
        raise ValueError(f"freq_warp must be a number in [0, 0.3] (0 = off; 0.1 draws alpha "
                         f"in [0.9, 1.1]), got {max_warp!r}")
    return 1.0 - max_warp, 1.0 + max_warp
