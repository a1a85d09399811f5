"""Waveform augmentation for speech training data: speed perturbation and additive noise.

Pure functions on torch tensors shaped (time,) or (channels, time); nothing here reads files.

* Speed perturbation as Kaldi/ESPnet do it (sox `speed`): resampling by 1/factor and reading
  the result at the original rate, so tempo and pitch change together and a factor-1.1 copy
  is 1/1.1 as long. The usual factors are 0.9, 1.0 and 1.1, each copy a new utterance
  (`speed_perturbed_id`) with the same transcript.
* Additive noise at a signal-to-noise ratio in dB, from a given noise signal (looped or cut
  to length at a seeded offset) or from generated coloured noise (white, pink, brown).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterator, Optional, Sequence, Tuple

import torch
import torchaudio.functional as F

SPEED_FACTORS = (0.9, 1.0, 1.1)
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}   # power spectrum ~ 1 / f^exponent


def _check_wave(waveform: torch.Tensor, what: str = "waveform") -> None:
    if not isinstance(waveform, torch.Tensor) or waveform.dim() not in (1, 2):
        raise ValueError(f"{what} must be a tensor shaped (time,) or (channels, time), "
                         f"got {getattr(waveform, 'shape', type(waveform).__name__)}")
    if waveform.shape[-1] == 0:
        raise ValueError(f"{what} is empty (0 samples)")


def speed_ratio(factor: float, max_denominator: int = 1000) -> Fraction:
    """The speed factor as a small fraction (0.9 -> 9/10), which keeps resampling cheap."""
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and 0.25 <= factor <= 4):
        raise ValueError(f"speed factor must be a number in [0.25, 4], got {factor!r}")
    return Fraction(factor).limit_denominator(max_denominator)


def speed_perturb(waveform: torch.Tensor, factor: float) -> torch.Tensor:
    """Play `factor` times faster (1.1: 10 % shorter, pitch up); 1.0 returns the input."""
    _check_wave(waveform)
    ratio = speed_ratio(factor)
    if ratio == 1:
        return waveform
    # n samples at rate r*factor, read at rate r: resample from numerator to denominator.
    return F.resample(waveform, orig_freq=ratio.numerator, new_freq=ratio.denominator)


def speed_perturbed_id(utt_id: str, factor: float) -> str:
    """Kaldi's naming of a perturbed copy: `sp0.9-<id>`; factor 1.0 keeps the id."""
    speed_ratio(factor)
    return utt_id if factor == 1.0 else f"sp{factor:g}-{utt_id}"


def speed_perturbed_copies(utt_id: str, waveform: torch.Tensor, factors: Sequence[float] = SPEED_FACTORS
                           ) -> Iterator[Tuple[str, torch.Tensor]]:
    """(id, waveform) of each perturbed copy, e.g. for writing the features of a training set."""
    for factor in factors:
        yield speed_perturbed_id(utt_id, factor), speed_perturb(waveform, factor)


def speed_perturbed_frames(n_samples: int, factor: float) -> int:
    """Length of speed_perturb's output for an input of n_samples (for manifests without audio)."""
    ratio = speed_ratio(factor)
    return n_samples if ratio == 1 else math.ceil(n_samples * ratio.denominator / ratio.numerator)


def coloured_noise(n_samples: int, colour: str = "white", generator: Optional[torch.Generator] = None
                   ) -> torch.Tensor:
    """Unit-RMS noise of n_samples whose power spectrum falls as 1/f^k (white 0, pink 1, brown 2)."""
    if colour not in NOISE_COLOURS:
        raise ValueError(f"noise colour must be one of {', '.join(NOISE_COLOURS)}, got {colour!r}")
    if n_samples < 1:
        raise ValueError(f"noise length must be >= 1 sample, got {n_samples}")
    white = torch.randn(n_samples, generator=generator)
    exponent = NOISE_COLOURS[colour]
    if exponent:
        spectrum = torch.fft.rfft(white)
        f = torch.arange(spectrum.numel(), dtype=torch.float32)
        f[0] = 1.0                                 # keep the mean finite
        white = torch.fft.irfft(spectrum / f.pow(exponent / 2), n=n_samples)
    return white / white.pow(2).mean().sqrt().clamp_min(1e-12)


def fit_noise(noise: torch.Tensor, n_samples: int, generator: Optional[torch.Generator] = None
              ) -> torch.Tensor:
    """`noise` (time,) looped and cut to n_samples, starting at a random offset."""
    _check_wave(noise, "noise")
    noise = noise.reshape(-1) if noise.dim() == 1 else noise.mean(dim=0)
    start = int(torch.randint(noise.numel(), (1,), generator=generator))
    reps = math.ceil((start + n_samples) / noise.numel())
    return noise.repeat(reps)[start:start + n_samples]


def add_noise(waveform: torch.Tensor, snr_db: float, noise: Optional[torch.Tensor] = None,
              colour: str = "white", generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """`waveform` plus noise at `snr_db` (10·log10 of signal power over noise power).

    `noise` (any length; looped and cut at a random offset) or, without it, generated noise of
    `colour`. Silence stays silence (no signal power to scale the noise to).
    """
    _check_wave(waveform)
    if not (isinstance(snr_db, (int, float)) and math.isfinite(snr_db)):
        raise ValueError(f"snr_db must be a finite number of dB, got {snr_db!r}")
    n = waveform.shape[-1]
    fitted = coloured_noise(n, colour, generator) if noise is None else fit_noise(noise, n, generator)
    fitted = fitted.to(waveform.dtype).expand_as(waveform).contiguous()
    if fitted.pow(2).sum() == 0 or waveform.pow(2).sum() == 0:
        return waveform.clone()
    lead = waveform.shape[:-1]
    snr = torch.full(lead, float(snr_db), dtype=waveform.dtype)
    return F.add_noise(waveform, fitted, snr)


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """The SNR of `noisy` against `clean`, in dB (for checks and logs)."""
    noise = noisy - clean
    return 10 * math.log10(float(clean.pow(2).sum()) / max(float(noise.pow(2).sum()), 1e-20))


def random_snr(snr_range: Sequence[float], generator: Optional[torch.Generator] = None) -> float:
    """An SNR drawn uniformly from (low, high) dB."""
    low, high = (float(x) for x in snr_range)
    if low > high:
        raise ValueError(f"SNR range must be (low, high) with low <= high, got {tuple(snr_range)}")
    return low + (high - low) * float(torch.rand(1, generator=generator))
