"""fairseq feature transform ``freq_warp``: random vocal-tract length perturbation (VTLP) of
training utterances (the maths in ``sigma_plugin.asr.freq_warp``).

Listed in the data's ``config.yaml`` (``python -m sigma_plugin.asr.prep_vocab --freq-warp 0.1``
writes it) before global CMVN, like this::

    freq_warp: {max_warp: 0.1, sample_rate: 16000}
    feature_transforms:
      _train: [freq_warp, global_cmvn, specaugment]

Each training utterance gets a warp factor drawn uniformly from [1 - max_warp, 1 + max_warp]
(numpy's generator, as fairseq's SpecAugment).
"""
import numpy as np
from fairseq.data.audio.feature_transforms import AudioFeatureTransform, register_audio_feature_transform

from sigma_plugin.asr.freq_warp import check_range, warp_log_mel


class FreqWarpConfigError(ValueError):
    one_line = True


@register_audio_feature_transform("freq_warp")
class FreqWarpTransform(AudioFeatureTransform):
    @classmethod
    def from_config_dict(cls, config=None):
        config = config or {}
        unknown = set(config) - {"max_warp", "sample_rate"}
        if unknown:
            raise FreqWarpConfigError(f"config.yaml freq_warp: unknown keys {sorted(unknown)} "
                                      f"(expected max_warp, sample_rate)")
        return cls(config.get("max_warp", 0.1), config.get("sample_rate", 16000))

    def __init__(self, max_warp: float = 0.1, sample_rate: int = 16000):
        try:
            self.low, self.high = check_range(max_warp)
        except ValueError as e:
            raise FreqWarpConfigError(f"config.yaml {e}") from None
        self.sample_rate = int(sample_rate)

    def __repr__(self):
        return f"{type(self).__name__}(alpha in [{self.low:g}, {self.high:g}], sample_rate={self.sample_rate})"

    def __call__(self, feats):
        return warp_log_mel(feats, float(np.random.uniform(self.low, self.high)), self.sample_rate)
