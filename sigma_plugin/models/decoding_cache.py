"""Inference speed of σReparam decoders: within one incremental decoding, each W_hat is computed
once. The sigma_* models build their decoders from module-level subclasses that put
``DecodingCache`` before fairseq's decoder class (through the models' ``build_decoder`` hook)."""
import inspect
from typing import Dict, Optional

import torch

from sigma_plugin.nn import cached_sigma_weights


class DecodingCache:
    """Mixin for fairseq decoders: during one incremental decoding (a beam search calls the
    decoder once per step with the same ``incremental_state``), compute each W_hat once and
    reuse it. Outside that, W_hat is recomputed on every eval forward and can never be stale."""
    _CACHE_KEY = "sigma_plugin.weight_cache"

    def forward(self, *args, **kwargs):
        state = kwargs.get("incremental_state")
        if state is None:
            position = _incremental_state_position(type(self))
            if position is not None and len(args) > position:
                state = args[position]
        if state is None or self.training or torch.is_grad_enabled():
            return super().forward(*args, **kwargs)
        # The token lives in (and dies with) this decoding's incremental_state.
        token = state.setdefault(self._CACHE_KEY, {})
        with cached_sigma_weights(token):
            return super().forward(*args, **kwargs)


def _incremental_state_position(cls: type):
    """Index of ``incremental_state`` among the positional arguments of the decoder's forward."""
    if cls not in _STATE_POSITIONS:
        parent = next(c for c in cls.__mro__[1:] if c is not DecodingCache and "forward" in vars(c))
        names = list(inspect.signature(parent.forward).parameters)[1:]  # without self
        _STATE_POSITIONS[cls] = names.index("incremental_state") if "incremental_state" in names else None
    return _STATE_POSITIONS[cls]


_STATE_POSITIONS: Dict[type, Optional[int]] = {}
