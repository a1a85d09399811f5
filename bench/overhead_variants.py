"""The model variants of bench/overhead.py: one 6-layer fairseq Transformer encoder stack, and the
same weights reparametrized three ways.

  plain     fairseq's TransformerEncoderLayerBase stack as built
  sigma     σReparam on every Linear (sigma_plugin.nn.apply_sigma_reparam); training forwards run
            inside recomputed_sigma_weights() and eval inside cached_sigma_weights(), one scope per
            step, as the sigma_* models do (per training forward; per incremental decoding)
  sigma_keep  (not in the default grid) σReparam as sigma, but training keeps W_hat for the
            backward pass (no recomputed_sigma_weights): what the recomputation saves and costs
  snlinear  a reference-style layer (apple/ml-sigma-reparam vision/layers.py SNLinear): an
            nn.Linear subclass whose forward does one power-iteration step and uses γ·W/σ, in
            training and in eval alike. fairseq's attention fast path reads q/k/v_proj.weight
            without calling forward, which would silently skip σ: attention modules of this
            variant take fairseq's own Python path (``_set_skip_embed_dim_check``), the price such a
            layer pays in fairseq
  torch_sn  torch.nn.utils.parametrizations.spectral_norm + a learned scale γ; eval inside
            torch's parametrize.cached(), one scope per step
All start from the plain weights with γ₀ = σ₀, so all four compute (nearly) the same function.
"""
from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from fairseq.models.transformer import TransformerConfig
from fairseq.modules.transformer_layer import TransformerEncoderLayerBase

from sigma_plugin.nn import apply_sigma_reparam, cached_sigma_weights, recomputed_sigma_weights

VARIANTS = ("plain", "sigma", "snlinear", "torch_sn", "sigma_keep")


def build_stack(layers: int, dim: int, heads: int, ffn: int) -> nn.ModuleList:
    cfg = TransformerConfig()
    cfg.encoder.embed_dim, cfg.encoder.attention_heads, cfg.encoder.ffn_embed_dim = dim, heads, ffn
    cfg.dropout = cfg.attention_dropout = 0.0
    return nn.ModuleList([TransformerEncoderLayerBase(cfg) for _ in range(layers)])


class SNLinear(nn.Linear):
    """Reference-style σReparam Linear: σ by one power-iteration step inside ``forward``.

    As apple/ml-sigma-reparam's SNLinear: u is a buffer, advanced only in training; σ = vᵀ W u
    with gradient through W; W_hat = γ · W / σ with γ learned, γ₀ = σ₀. Two deviations, neither
    in the step: the weights are kept (the reference re-initialises them) and u starts from
    power iteration instead of an SVD (the bench's build stays fast)."""

    def __init__(self, linear: nn.Linear, init_steps: int = 20):
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            self.weight.copy_(linear.weight)
            if linear.bias is not None:
                self.bias.copy_(linear.bias)
            u = F.normalize(torch.randn(self.in_features, generator=torch.Generator().manual_seed(0)), dim=0)
            for _ in range(init_steps):
                u = F.normalize(self.weight.t() @ F.normalize(self.weight @ u, dim=0), dim=0)
            self.register_buffer("u", u)
            v = F.normalize(self.weight @ u, dim=0)
            self.gamma = nn.Parameter(torch.dot(v, self.weight @ F.normalize(self.weight.t() @ v, dim=0)))

    def _weight_hat(self) -> torch.Tensor:
        # in fp32 under autocast, as the reference's FP32SpectralNormedWeight wrapper does
        with torch.autocast(self.weight.device.type, enabled=False):
            with torch.no_grad():
                v = F.normalize(self.weight @ self.u, dim=0)
                u = F.normalize(self.weight.t() @ v, dim=0)
                if self.training:
                    self.u.copy_(u)
            return self.gamma / torch.dot(v, self.weight @ u) * self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self._weight_hat(), self.bias)


def to_snlinear(stack: nn.Module) -> nn.Module:
    for module in list(stack.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, SNLinear(child))
        if hasattr(module, "_set_skip_embed_dim_check"):  # fairseq MultiheadAttention
            module._set_skip_embed_dim_check()
    return stack


class _Scale(nn.Module):
    def __init__(self, gamma: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))

    def forward(self, w):
        return self.gamma * w


def to_torch_sn(stack: nn.Module) -> nn.Module:
    for m in stack.modules():
        if isinstance(m, nn.Linear):
            w = m.weight.detach().clone()
            spectral_norm(m)  # W / σ, σ from u, v (15 power-iteration steps at registration)
            m.eval()  # read σ (and register γ) without advancing u
            with torch.no_grad():
                sigma0 = w.norm() / m.weight.norm()  # torch's σ estimate: W/σ has norm ‖W‖/σ
            parametrize.register_parametrization(m, "weight", _Scale(sigma0))
            m.train()
    return stack


def make_variant(name: str, plain: nn.Module) -> nn.Module:
    if name == "plain":
        return plain
    stack = copy.deepcopy(plain)
    if name in ("sigma", "sigma_keep"):
        apply_sigma_reparam(stack)
        return stack
    if name == "snlinear":
        return to_snlinear(stack)
    if name == "torch_sn":
        return to_torch_sn(stack)
    raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


def train_scope(name: str):
    """The scope a training forward of this variant runs in: the sigma_* models run theirs inside
    recomputed_sigma_weights() (W_hat rebuilt in the backward pass instead of kept)."""
    if name == "sigma":
        return recomputed_sigma_weights()
    return contextlib.nullcontext()


def eval_scope(name: str):
    """The scope an inference step of this variant runs in (one per step: one batch)."""
    if name in ("sigma", "sigma_keep"):
        return cached_sigma_weights()
    if name == "torch_sn":
        return parametrize.cached()
    return contextlib.nullcontext()


def forward(stack: nn.Module, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    for layer in stack:
        x = layer(x, pad)
    return x
