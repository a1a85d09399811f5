"""Vocal-tract length perturbation of stored log-mel features (sigma_plugin.asr.freq_warp) and its
fairseq feature transform ``freq_warp`` (sigma_plugin.feature_transforms)."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi
import yaml

from sigma_plugin.asr.data_config import write_config_yaml
from sigma_plugin.asr.features import log_mel_fbank
from sigma_plugin.asr.freq_warp import check_range, source_bins, warp_log_mel

SR = 16000


def vowel_like(seconds=0.5, f0=120.0, formants=(700, 1200, 2600)):
    """A harmonic tone shaped by three formant peaks: a crude vowel with a clear spectral envelope."""
    t = np.arange(int(seconds * SR)) / SR
    wave = np.zeros_like(t)
    for k in range(1, int(7000 / f0)):
        h = k * f0
        gain = sum(np.exp(-((h - f) / 120.0) ** 2) for f in formants) + 0.01
        wave += gain * np.sin(2 * np.pi * h * t)
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.mark.parametrize("alpha", [0.85, 0.9, 1.1, 1.15])
def test_warping_stored_features_matches_kaldi_vtln(alpha):
    wav = vowel_like()
    plain = log_mel_fbank(wav, SR)
    x = torch.from_numpy(wav * 32768).unsqueeze(0)
    kaldi_warped = kaldi.fbank(x, num_mel_bins=80, sample_frequency=SR, frame_length=25.0, frame_shift=10.0,
                               dither=0.0, vtln_warp=alpha).numpy()
    ours = warp_log_mel(plain, alpha, SR)
    assert ours.shape == plain.shape and ours.dtype == plain.dtype
    err_unwarped = np.abs(kaldi_warped - plain).mean()
    err_ours = np.abs(kaldi_warped - ours).mean()
    assert err_ours < 0.35 * err_unwarped, (err_ours, err_unwarped)


def test_alpha_above_one_moves_a_formant_up_and_one_is_the_identity():
    plain = log_mel_fbank(vowel_like(formants=(1500,)), SR)
    assert warp_log_mel(plain, 1.0, SR) is plain
    peak = lambda f: int(np.argmax(f.mean(axis=0)))  # noqa: E731
    assert peak(warp_log_mel(plain, 1.15, SR)) > peak(plain) > peak(warp_log_mel(plain, 0.85, SR))
    src = source_bins(1.1, 80, SR)
    assert np.all(np.diff(src) >= 0) and src.min() >= 0 and src.max() <= 79


@pytest.mark.parametrize("call, message", [
    (lambda: warp_log_mel(np.zeros((3, 80, 1), np.float32), 1.1), "must be shaped (frames, n_mels)"),
    (lambda: warp_log_mel(np.zeros((3, 80), np.float32), 3.0), "warp factor must be in [0.5, 2]"),
    (lambda: check_range(0.5), "freq_warp must be a number in [0, 0.3]"),
    (lambda: check_range(-0.1), "freq_warp must be a number in [0, 0.3]"),
])
def test_mistakes_are_named(call, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        call()


def test_config_yaml_puts_the_warp_before_cmvn_and_fairseq_builds_it(tmp_path):
    pytest.importorskip("fairseq")
    import sigma_plugin
    sigma_plugin.register()
    from fairseq.data.audio.data_cfg import S2TDataConfig
    from fairseq.data.audio.feature_transforms import CompositeAudioFeatureTransform

    np.savez(tmp_path / "gcmvn.npz", mean=np.zeros(80, np.float32), std=np.ones(80, np.float32))
    cfg = write_config_yaml(tmp_path / "config.yaml", tmp_path, "spm_char.model", "spm_char.txt", "gcmvn.npz",
                            "ss", 80, freq_warp=0.1)
    assert cfg["feature_transforms"]["_train"] == ["freq_warp", "global_cmvn", "specaugment"]
    assert cfg["freq_warp"] == {"max_warp": 0.1, "sample_rate": 16000}
    data_cfg = S2TDataConfig(tmp_path / "config.yaml")
    train = CompositeAudioFeatureTransform.from_config_dict(data_cfg.get_feature_transforms("train", True))
    evaluation = CompositeAudioFeatureTransform.from_config_dict(data_cfg.get_feature_transforms("dev", False))
    assert "FreqWarpTransform(alpha in [0.9, 1.1]" in repr(train) and "FreqWarp" not in repr(evaluation)
    warp = train.transforms[0]
    feats = log_mel_fbank(vowel_like(), SR)
    np.random.seed(0)
    out = warp(feats)
    assert out.shape == feats.shape and not np.allclose(out, feats)
    # without the flag nothing changes: no warp in the file
    plain = write_config_yaml(tmp_path / "plain.yaml", tmp_path, "spm_char.model", "spm_char.txt", "gcmvn.npz",
                              "ss", 80)
    assert "freq_warp" not in yaml.safe_dump(plain)


def test_bad_warp_config_is_one_line(tmp_path):
    pytest.importorskip("fairseq")
    import sigma_plugin
    sigma_plugin.register()
    from fairseq.data.audio.feature_transforms import get_audio_feature_transform
    cls = get_audio_feature_transform("freq_warp")
    with pytest.raises(ValueError, match="config.yaml freq_warp must be a number in"):
        cls.from_config_dict({"max_warp": 0.9})
    with pytest.raises(ValueError, match="unknown keys"):
        cls.from_config_dict({"max_wrap": 0.1})


def test_prep_vocab_names_a_bad_freq_warp(tmp_path):
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.prep_vocab", "--data-dir", str(tmp_path),
                          "--train-subsets", "train", "--freq-warp", "0.5"], capture_output=True, text=True)
    assert res.returncode == 2 and "--freq-warp: freq_warp must be a number in [0, 0.3]" in res.stderr
    assert "Traceback" not in res.stderr
