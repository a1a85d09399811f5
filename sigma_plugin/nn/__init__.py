"""Pure-torch σReparam and attention-entropy library (no fairseq import)."""
from .entropy import attention_entropy, entropy_lower_bound
from .power_iteration import power_iteration
from .probe import (AttentionProbe, AttentionRecord, attention_probs, is_probeable_attention,
                    qk_spectral_norm)
from .parametrization import (SUPPORTED_TYPES, apply_sigma_reparam, broadcast_sigma_state,
                            cached_sigma_weights, deferred_sigma_init, frozen_power_iteration,
                            get_sigma_reparam, is_sigma_reparametrized, recomputed_sigma_weights,
                            remove_sigma_reparam, sigma_reparam, sigma_reparam_modules)

__all__ = [
    "attention_entropy", "entropy_lower_bound",
    "power_iteration",
    "AttentionProbe", "AttentionRecord", "attention_probs", "is_probeable_attention", "qk_spectral_norm",
    "SUPPORTED_TYPES", "apply_sigma_reparam", "broadcast_sigma_state", "cached_sigma_weights",
    "deferred_sigma_init", "frozen_power_iteration", "get_sigma_reparam", "is_sigma_reparametrized",
    "recomputed_sigma_weights", "remove_sigma_reparam", "sigma_reparam", "sigma_reparam_modules",
]
