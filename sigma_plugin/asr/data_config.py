"""Global CMVN statistics and the speech_to_text task's ``config.yaml``."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import yaml

from sigma_plugin.util.atomic import atomic_path

from .freq_warp import check_range

# fairseq's SpecAugment policies (examples/speech_to_text/data_utils.py; Park et al. 2019).
SPECAUGMENT_POLICIES: Dict[str, Dict] = {
    "lb": dict(time_warp_W=0, freq_mask_N=1, freq_mask_F=27, time_mask_N=1, time_mask_T=100, time_mask_p=1.0),
    "ld": dict(time_warp_W=0, freq_mask_N=2, freq_mask_F=27, time_mask_N=2, time_mask_T=100, time_mask_p=1.0),
    "sm": dict(time_warp_W=0, freq_mask_N=2, freq_mask_F=15, time_mask_N=2, time_mask_T=70, time_mask_p=0.2),
    "ss": dict(time_warp_W=0, freq_mask_N=2, freq_mask_F=27, time_mask_N=2, time_mask_T=70, time_mask_p=0.2),
}


def cmvn_from_stats(stats_files: Sequence) -> Dict[str, np.ndarray]:
    """Pool per-subset (count, sum, sum of squares): mean and std over all frames."""
    count, total, total_sq = 0, 0.0, 0.0
    for path in stats_files:
        if not Path(path).is_file():
            raise FileNotFoundError(f"feature statistics not found: {path} (run the fbank stage)")
        s = np.load(path)
        count, total, total_sq = count + int(s["count"]), total + s["sum"], total_sq + s["sum_sq"]
    if count == 0:
        raise ValueError(f"no frames in {list(map(str, stats_files))}")
    mean = total / count
    var = np.maximum(total_sq / count - mean ** 2, 1e-8)  # floor as fairseq's cal_gcmvn_stats
    return {"mean": mean.astype(np.float32), "std": np.sqrt(var).astype(np.float32)}


def save_cmvn(path, stats: Dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **stats)


def write_config_yaml(path, data_dir, spm_model: str, vocab_file: str, cmvn_npz: str,
                      specaugment: Optional[str] = None, n_mels: int = 80, freq_warp: float = 0.0,
                      sample_rate: int = 16000) -> Dict:
    """fairseq reads ``global_cmvn`` and ``audio_root`` as given (not relative to the yaml),
    so those are absolute; moving the data folder means rerunning the vocab stage.
    `freq_warp` > 0 adds random vocal-tract length perturbation of training utterances
    (``sigma_plugin.feature_transforms``; alpha in [1 - freq_warp, 1 + freq_warp]) before CMVN."""
    if specaugment is not None and specaugment not in SPECAUGMENT_POLICIES:
        raise ValueError(f"--specaugment must be one of {sorted(SPECAUGMENT_POLICIES)} or none, got {specaugment!r}")
    check_range(freq_warp)
    data_dir = Path(data_dir).resolve()
    cfg = {
        "audio_root": str(data_dir),
        "input_channels": 1,
        "input_feat_per_channel": n_mels,
        "vocab_filename": vocab_file,
        "bpe_tokenizer": {"bpe": "sentencepiece", "sentencepiece_model": str(data_dir / spm_model)},
        "global_cmvn": {"stats_npz_path": str(data_dir / cmvn_npz)},
        "feature_transforms": {"*": ["global_cmvn"]},
    }
    train_transforms = ["global_cmvn"]
    if freq_warp > 0:
        cfg["freq_warp"] = {"max_warp": float(freq_warp), "sample_rate": int(sample_rate)}
        train_transforms.insert(0, "freq_warp")
    if specaugment:
        cfg["specaugment"] = dict(SPECAUGMENT_POLICIES[specaugment])
        train_transforms.append("specaugment")
    if train_transforms != ["global_cmvn"]:
        cfg["feature_transforms"]["_train"] = train_transforms
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return cfg
