"""σReparam: W_hat = (γ / σ(W)) · W  (Zhai et al., ICML 2023, eq. 2).

σ(W) is the spectral norm of W, tracked by power iteration: the right singular vector
``u`` is a buffer, refined by ``n_power_iterations`` steps under ``no_grad`` on every
training forward, and σ = vᵀ W u is then differentiated through W (as in the reference
implementation, apple/ml-sigma-reparam ``SNLinear``). γ is a learned scalar.

Implemented as a ``torch.nn.utils.parametrize`` parametrization of ``weight``, so every
reader of ``module.weight`` -- including fused kernels such as
``F.multi_head_attention_forward`` that never call ``module.forward`` -- sees W_hat.
"""
from __future__ import annotations

import fnmatch
import math
from typing import Iterable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

SUPPORTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
GammaInit = Union[str, float, int]

# Full SVD at registration up to this many elements; a randomized SVD above it
# (a 1024x4096 full SVD costs ~2 s on one CPU core, svd_lowrank ~0.1 s).
_FULL_SVD_MAX_NUMEL = 1 << 20


def _top_right_singular_vector(w2d: torch.Tensor) -> torch.Tensor:
    if w2d.numel() <= _FULL_SVD_MAX_NUMEL:
        _, _, vh = torch.linalg.svd(w2d, full_matrices=False)
        return vh[0]
    # Random matrices have nearly tied top singular values: use a wide sketch and many
    # subspace iterations (1500x1200 Gaussian: σ within 0.3%, ~0.1 s).
    _, _, v = torch.svd_lowrank(w2d, q=min(16, min(w2d.shape)), niter=20)
    return v[:, 0]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


class _SigmaReparam(nn.Module):
    """The parametrization registered on ``module.parametrizations.weight[0]``."""

    def __init__(self, weight: torch.Tensor, gamma_init: GammaInit = "sigma0",
                 n_power_iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        if not isinstance(n_power_iterations, int) or n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be an integer >= 1, got {n_power_iterations!r}")
        if weight.dim() < 2:
            raise ValueError(f"σReparam needs a weight with >= 2 dims, got shape {tuple(weight.shape)}")
        w2d = weight.detach().flatten(1).to(_compute_dtype(weight.dtype))
        if not torch.isfinite(w2d).all():
            raise ValueError("σReparam: the weight contains non-finite values (nan/inf); "
                             "cannot estimate its spectral norm")
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        u = _top_right_singular_vector(w2d)
        # u is kept in fp32 even when the model is cast to fp16/bf16 (see _apply).
        self.register_buffer("u", F.normalize(u, dim=0, eps=eps))
        sigma0 = float(self._sigma(w2d, self.u, update=False))
        self.sigma0 = sigma0
        self.gamma = nn.Parameter(torch.tensor(_gamma_value(gamma_init, sigma0), dtype=torch.float32))
        self.last_sigma = torch.tensor(sigma0)  # detached, for logging (no host sync in forward)
        # (key, W_hat) reused in eval/no-grad mode. The key holds the version counters of W, γ
        # and u, so any update invalidates it; switching to eval (fairseq does it for every
        # validation batch) keeps it.
        self._eval_cache = None

    def _sigma(self, w2d: torch.Tensor, u: torch.Tensor, update: bool) -> torch.Tensor:
        steps = self.n_power_iterations if update else 1
        with torch.no_grad():
            for _ in range(steps):
                v = F.normalize(torch.mv(w2d, u), dim=0, eps=self.eps)
                u = F.normalize(torch.mv(w2d.t(), v), dim=0, eps=self.eps)
            if update:
                self.u.copy_(u)  # copy_ casts back to the buffer's dtype
        # σ = vᵀ W u, with gradient through W only (u, v are constants).
        return torch.dot(v, torch.mv(w2d, u))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        use_cache = not self.training and not torch.is_grad_enabled()
        if use_cache:
            key = (weight.data_ptr(), weight._version, weight.dtype, weight.device,
                   self.gamma.data_ptr(), self.gamma._version, self.u._version)
            if self._eval_cache is not None and self._eval_cache[0] == key:
                return self._eval_cache[1]
        else:
            self._eval_cache = None
        # Power iteration and σ in at least fp32 whatever the module's dtype (fp16 loses σ's precision).
        wc = weight.to(_compute_dtype(weight.dtype))
        sigma = self._sigma(wc.flatten(1), self.u.to(wc.dtype), update=self.training)
        self.last_sigma = sigma.detach()
        w_hat = (self.gamma.to(wc.dtype) / sigma * wc).to(weight.dtype)
        if use_cache:
            self._eval_cache = (key, w_hat)
        return w_hat

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._eval_cache = None
        if self.u.dtype in (torch.float16, torch.bfloat16):  # .half() casts buffers too: undo for u
            self.u.data = self.u.data.float()
        return self

    def extra_repr(self) -> str:
        return f"n_power_iterations={self.n_power_iterations}, gamma={float(self.gamma.detach()):.4g}"


def _gamma_value(gamma_init: GammaInit, sigma0: float) -> float:
    """γ₀ from 'sigma0' (γ₀ = σ₀), 'one', 'C*sigma0' (γ₀ = C·σ₀: the branch scaled by C at
    initialisation) or a positive number."""
    message = f"gamma_init must be 'sigma0', 'one', 'C*sigma0' or a positive number, got {gamma_init!r}"
    if isinstance(gamma_init, bool):
        raise ValueError(message)
    if isinstance(gamma_init, (int, float)):
        if not math.isfinite(gamma_init) or gamma_init <= 0:
            raise ValueError(message)
        return float(gamma_init)
    if gamma_init == "sigma0":
        return sigma0
    if gamma_init == "one":
        return 1.0
    text = str(gamma_init).replace(" ", "")
    factor, star, rest = text.partition("*")
    try:
        if star:
            if rest != "sigma0":
                raise ValueError(message)
            return _gamma_value(float(factor), 1.0) * sigma0
        return _gamma_value(float(text), sigma0)
    except (TypeError, ValueError):
        raise ValueError(message) from None


def validate_gamma_init(gamma_init: GammaInit) -> None:
    """Raise ValueError (naming the value) unless gamma_init is a valid γ₀ specification."""
    _gamma_value(gamma_init, 1.0)


def sigma_reparam(module: nn.Module, gamma_init: GammaInit = "sigma0",
                  n_power_iterations: int = 1, name: str = "weight") -> nn.Module:
    """Reparametrize ``module.<name>`` in place with σReparam and return the module.

    Works on nn.Linear, nn.Conv1d and nn.Conv2d (conv kernels are flattened to
    out × (in·k) for σ). The weight values are kept; with ``gamma_init='sigma0'`` the
    module computes exactly what it computed before.
    """
    if not isinstance(module, SUPPORTED_TYPES):
        raise TypeError(f"σReparam supports {', '.join(t.__name__ for t in SUPPORTED_TYPES)}; "
                        f"got {type(module).__name__}")
    if is_sigma_reparametrized(module, name):
        raise ValueError(f"{type(module).__name__}.{name} already has σReparam")
    weight = getattr(module, name)
    parametrize.register_parametrization(
        module, name, _SigmaReparam(weight, gamma_init, n_power_iterations), unsafe=True)
    return module


def is_sigma_reparametrized(module: nn.Module, name: str = "weight") -> bool:
    return (parametrize.is_parametrized(module, name)
            and any(isinstance(p, _SigmaReparam) for p in module.parametrizations[name]))


def get_sigma_reparam(module: nn.Module, name: str = "weight") -> Optional[_SigmaReparam]:
    """The σReparam parametrization of ``module.<name>`` (holds ``gamma``, ``u``), or None."""
    if not parametrize.is_parametrized(module, name):
        return None
    for p in module.parametrizations[name]:
        if isinstance(p, _SigmaReparam):
            return p
    return None


def sigma_reparam_modules(model: nn.Module):
    """Yield (qualified name, module, parametrization) for every σReparam'd weight."""
    for qname, module in model.named_modules():
        p = get_sigma_reparam(module)
        if p is not None:
            yield qname, module, p


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in patterns)


def apply_sigma_reparam(model: nn.Module, include: Optional[Iterable[str]] = None,
                        exclude: Optional[Iterable[str]] = None, gamma_init: GammaInit = "sigma0",
                        n_power_iterations: int = 1,
                        types: Sequence[type] = SUPPORTED_TYPES) -> List[str]:
    """Convert ``model`` in place; return the qualified names of the converted modules.

    ``include`` / ``exclude`` are shell-style patterns on qualified module names
    (``"encoder.layers.*.self_attn.*"``); by default every Linear/Conv1d/Conv2d is
    converted. Each include pattern must match at least one module of a supported type.
    Weights are kept (no re-initialisation).
    """
    include = list(include) if include is not None else None
    exclude = list(exclude or [])
    for t in types:
        if not (isinstance(t, type) and issubclass(t, SUPPORTED_TYPES)):
            raise TypeError(f"types: {t!r} is not one of the supported module types "
                            f"{[s.__name__ for s in SUPPORTED_TYPES]}")
    _check_arg_types(gamma_init, n_power_iterations)
    candidates = [(n, m) for n, m in model.named_modules() if isinstance(m, tuple(types)) and n]
    if include is not None:
        for pat in include:
            if not any(fnmatch.fnmatchcase(n, pat) for n, _ in candidates):
                raise ValueError(f"include pattern {pat!r} matches no {'/'.join(t.__name__ for t in types)} "
                                 f"module of {type(model).__name__}")
    converted = []
    for qname, module in candidates:
        if include is not None and not _matches(qname, include):
            continue
        if _matches(qname, exclude) or is_sigma_reparametrized(module):
            continue
        try:
            sigma_reparam(module, gamma_init, n_power_iterations)
        except ValueError as e:
            raise ValueError(f"{qname}: {e}") from None
        converted.append(qname)
    return converted


def _check_arg_types(gamma_init, n_power_iterations):
    if not isinstance(n_power_iterations, int) or isinstance(n_power_iterations, bool) or n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be an integer >= 1, got {n_power_iterations!r}")
    validate_gamma_init(gamma_init)


@torch.no_grad()
def remove_sigma_reparam(model: nn.Module) -> List[str]:
    """Fold γ/σ into plain weights; return the names of the modules that were folded.

    The result is an ordinary model whose state_dict has plain ``weight`` entries. The
    folded weight is W_hat as eval mode computes it (u is not advanced).
    """
    folded = []
    for qname, module, p in list(sigma_reparam_modules(model)):
        was_training = p.training
        p.eval()
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        p.train(was_training)
        folded.append(qname)
    return folded
