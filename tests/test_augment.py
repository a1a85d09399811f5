"""Waveform augmentation: speed perturbation and additive noise on tiny signals."""
import math

import pytest
import torch

from sigma_plugin.asr import augment

RATE = 16000


def tone(hz=440.0, seconds=1.0, channels=None):
    t = torch.arange(int(RATE * seconds)) / RATE
    w = 0.5 * torch.sin(2 * math.pi * hz * t)
    return w if channels is None else w.repeat(channels, 1)


def peak_hz(w):
    spectrum = torch.fft.rfft(w.reshape(-1, w.shape[-1])[0]).abs()
    return float(spectrum.argmax()) * RATE / w.shape[-1]


@pytest.mark.parametrize("factor, length, hz", [(0.9, 17778, 440 * 0.9), (1.1, 14546, 440 * 1.1)])
def test_speed_perturbation_changes_length_and_pitch_together(factor, length, hz):
    out = augment.speed_perturb(tone(), factor)
    assert out.shape == (length,) and out.dtype == torch.float32
    assert augment.speed_perturbed_frames(RATE, factor) == length
    assert abs(peak_hz(out) - hz) <= 2
    stereo = augment.speed_perturb(tone(channels=2), factor)
    assert stereo.shape == (2, length) and torch.allclose(stereo[0], stereo[1])


def test_speed_one_is_the_identity_and_ids_follow_kaldi():
    w = tone()
    assert augment.speed_perturb(w, 1.0) is w and augment.speed_perturbed_frames(123, 1.0) == 123
    assert augment.SPEED_FACTORS == (0.9, 1.0, 1.1)
    assert [augment.speed_perturbed_id("1000-10000-0003", f) for f in augment.SPEED_FACTORS] == [
        "sp0.9-1000-10000-0003", "1000-10000-0003", "sp1.1-1000-10000-0003"]
    copies = list(augment.speed_perturbed_copies("u1", w))
    assert [i for i, _ in copies] == ["sp0.9-u1", "u1", "sp1.1-u1"]
    assert [c.shape[-1] for _, c in copies] == [17778, 16000, 14546]


@pytest.mark.parametrize("call, error", [
    (lambda: augment.speed_perturb(tone(), 0), r"speed factor must be a number in \[0.25, 4\], got 0"),
    (lambda: augment.speed_perturb(tone(), float("nan")), "speed factor"),
    (lambda: augment.speed_perturb(torch.zeros(2, 2, 5), 1.1), r"waveform must be a tensor shaped"),
    (lambda: augment.speed_perturb(torch.zeros(0), 1.1), "waveform is empty"),
    (lambda: augment.add_noise(tone(), float("inf")), "snr_db must be a finite number"),
    (lambda: augment.add_noise(tone(), 10, colour="blue"), "noise colour must be one of white, pink, brown"),
    (lambda: augment.add_noise(tone(), 10, noise=torch.zeros(0)), "noise is empty"),
    (lambda: augment.random_snr((20, 5)), "low <= high"),
])
def test_mistakes_are_named(call, error):
    with pytest.raises(ValueError, match=error):
        call()


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_generated_noise_is_added_at_the_requested_snr(colour, snr):
    clean = tone(seconds=0.5)
    noisy = augment.add_noise(clean, snr, colour=colour, generator=torch.Generator().manual_seed(0))
    assert noisy.shape == clean.shape
    assert augment.snr_db(clean, noisy) == pytest.approx(snr, abs=0.01)
    again = augment.add_noise(clean, snr, colour=colour, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)                                   # seeded


def test_given_noise_is_looped_from_a_random_offset():
    clean = tone(seconds=0.3, channels=2)
    noise = torch.randn(1000, generator=torch.Generator().manual_seed(1))   # shorter than the speech
    noisy = augment.add_noise(clean, 5.0, noise=noise, generator=torch.Generator().manual_seed(2))
    assert noisy.shape == clean.shape
    assert augment.snr_db(clean[0], noisy[0]) == pytest.approx(5.0, abs=0.01)
    added = noisy[0] - clean[0]
    assert torch.allclose(added[:1000], added[1000:2000], atol=1e-5)   # the noise, looped
    fitted = augment.fit_noise(noise, 10, generator=torch.Generator().manual_seed(3))
    start = int(torch.nonzero(noise == fitted[0])[0])
    assert torch.equal(fitted, torch.cat([noise, noise])[start:start + 10])


def test_pink_noise_has_more_power_at_low_frequencies():
    gen = torch.Generator().manual_seed(0)
    for colour, ratio in (("white", (0.5, 2.0)), ("pink", (5.0, 1e9))):
        n = augment.coloured_noise(RATE, colour, gen)
        power = torch.fft.rfft(n).abs().pow(2)
        low, high = float(power[10:500].mean()), float(power[5000:7000].mean())
        assert ratio[0] < low / high < ratio[1]
        assert float(n.pow(2).mean()) == pytest.approx(1.0, rel=1e-4)


def test_silence_stays_silent_and_snr_draws_stay_in_range():
    silence = torch.zeros(800)
    assert torch.equal(augment.add_noise(silence, 10.0), silence)
    gen = torch.Generator().manual_seed(0)
    draws = [augment.random_snr((5, 20), gen) for _ in range(50)]
    assert all(5 <= d <= 20 for d in draws) and max(draws) - min(draws) > 5
