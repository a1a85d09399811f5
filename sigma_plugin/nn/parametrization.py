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

import contextlib
import dataclasses
import fnmatch
import functools
import gc
import math
import weakref
from typing import Iterable, List, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn.utils import parametrize

from .power_iteration import power_iteration

SUPPORTED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
GammaInit = Union[str, float, int]

# Power-iteration steps that initialise u at registration (no SVD: building a 100-layer model
# stays about as fast as the plain one; loading a checkpoint skips them, see
# deferred_sigma_init). σ₀ is
# the estimate from that u, computed exactly as eval mode computes σ, so γ₀ = σ₀ reproduces
# the plain weight exactly whatever the accuracy of u. Random matrices have nearly tied top
# singular values: after 10 steps σ₀ is within a few % of ‖W‖₂ (2-5 % for 256-1024 wide
# random layers), and each training forward
# (one more step) keeps closing the gap (≤ 0.1 % within ~50-200 updates, see the tests).
INIT_POWER_ITERATIONS = 10

@dataclasses.dataclass
class SigmaMode:
    """How σReparam weights behave when they are read, for this process: one object, changed only
    by the context managers below, each of which restores it on exit (they nest).

    - ``scope``: the current inference scope (``cached_sigma_weights``): W_hat's γ/σ is cached only
      inside one; None outside.
    - ``frozen``: training-mode reads do not advance u (``frozen_power_iteration``: the probe).
    - ``deferred``: σReparam registered now computes u and γ₀ at first use, unless a load brings
      them first (``deferred_sigma_init``: building a model whose checkpoint is loaded next).
    - ``recompute``: W_hat is saved for the backward pass as a recipe (``recomputed_sigma_weights``).
    """
    scope: Optional[object] = None
    frozen: bool = False
    deferred: bool = False
    recompute: bool = False


MODE = SigmaMode()


@contextlib.contextmanager
def _mode(**changes):
    previous = {name: getattr(MODE, name) for name in changes}
    for name, value in changes.items():
        setattr(MODE, name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            setattr(MODE, name, value)


@contextlib.contextmanager
def deferred_sigma_init():
    """σReparam registered inside this block postpones its initialisation (the power iteration
    for u, σ₀ and γ₀) to the first forward; a ``load_state_dict`` that brings u and γ first
    makes it unnecessary. For building a model whose state is loaded right afterwards (a
    checkpoint): nothing reads γ before the load."""
    with _mode(deferred=True):
        yield


@contextlib.contextmanager
def cached_sigma_weights(token: Optional[object] = None):
    """Inside this block, in eval mode without grad, each σReparam weight computes σ (the power
    iteration) once and reuses γ/σ: each later read costs one scaling of W, and no copy of the
    weights is kept (memory as a plain model's). The caller promises not to change
    weights, γ or u inside the block; outside any block W_hat is recomputed on every access, so
    it can never be stale (in-place updates through ``.data``, ``functional_call``, ...).
    ``token`` identifies a scope that is entered several times (e.g. one beam search whose
    decoder steps are separate calls); by default each block is a new scope."""
    with _mode(scope=object() if token is None else token):
        yield


@contextlib.contextmanager
def recomputed_sigma_weights():
    """Training forwards inside this block do not keep W_hat alive for the backward pass: autograd
    saves W (a parameter, kept anyway) and the scalar γ/σ instead, and W_hat = (γ/σ)·W is rebuilt,
    bit for bit, when the backward pass needs it. A plain model's memory for one more scaling of
    each weight per update. The saved-tensor hooks act only on tensors saved inside the block; the
    backward pass may run after it."""
    with _mode(recompute=True), torch.autograd.graph.saved_tensors_hooks(_pack_saved, _unpack_saved):
        yield


def _pack_saved(tensor: torch.Tensor):
    # A saved W_hat, or a view of it (F.linear saves W_hatᵀ), becomes (recipe, view geometry).
    base = tensor if tensor._base is None else tensor._base
    recipe = getattr(base, "_sigma_recipe", None)
    if recipe is None:
        return tensor
    return recipe, tensor.size(), tensor.stride(), tensor.storage_offset(), tensor is base


def _unpack_saved(packed):
    if isinstance(packed, torch.Tensor):
        return packed
    (weight, scale), size, stride, offset, is_base = packed
    w_hat = scale * weight
    return w_hat if is_base else w_hat.as_strided(size, stride, offset)


@contextlib.contextmanager
def frozen_power_iteration():
    """Inside this block training-mode reads of σReparam weights do not advance u (nor change
    ``last_sigma``): for measurements that must leave training exactly as it would be without
    them (the attention probe)."""
    with _mode(frozen=True):
        yield


@functools.lru_cache(maxsize=64)
def _start_vector(n: int) -> torch.Tensor:
    # A fixed pseudo-random start (a private generator: the global RNG, and so the rest of the
    # model's initialisation, is untouched; every rank and every build starts from the same u).
    # Cached: callers copy it.
    return torch.randn(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)


def _fp32_region(device: torch.device):
    """Autocast off: the power iteration and σ stay in (at least) fp32 under torch.autocast."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # a device type autocast does not know
        return contextlib.nullcontext()


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
        _gamma_value(gamma_init, 1.0)  # validate before any work
        self.n_power_iterations = n_power_iterations
        self.eps = eps
        # u is kept in fp32 even when the model is cast to fp16/bf16 (see _apply).
        self.register_buffer("u", _start_vector(weight.shape[1:].numel()).to(
            device=weight.device, dtype=_compute_dtype(weight.dtype), copy=True))
        self.gamma = nn.Parameter(torch.ones((), dtype=torch.float32, device=weight.device))
        self.gamma_init = gamma_init  # the γ₀ rule, also applied to a plain weight imported later
        self.imported = False  # set when a plain (stock) weight was loaded into it
        self.sigma0 = float("nan")
        self.last_sigma = torch.tensor(float("nan"))  # detached, for logging (no host sync in forward)
        # (scope, W, γ, versions, γ/σ): reused only inside a cached_sigma_weights() scope.
        self._eval_cache = None
        self._pending_gamma_init = gamma_init
        if not MODE.deferred:
            self._initialise(weight)

    @torch.no_grad()
    def initial_state(self, weight: torch.Tensor):
        """(u, σ₀, γ₀) for ``weight``: u from INIT_POWER_ITERATIONS steps from the fixed start,
        σ₀ = vᵀWu exactly as eval computes it from that u, γ₀ from the γ₀ rule. With γ₀ = σ₀ the
        module computes exactly W whatever the accuracy of u (W_hat = (σ₀/σ₀)·W)."""
        w2d = weight.detach().flatten(1).to(_compute_dtype(weight.dtype))
        # a sum is much cheaper than isfinite() and finite for finite weights (barring overflow)
        if not torch.isfinite(w2d.sum()) and not torch.isfinite(w2d).all():
            raise ValueError("σReparam: the weight contains non-finite values (nan/inf); "
                             "cannot estimate its spectral norm")
        start = _start_vector(w2d.shape[1]).to(device=w2d.device, dtype=w2d.dtype)
        with _fp32_region(w2d.device):
            # u ← WᵀW u / ‖WᵀW u‖ (v = W u need not be normalised in between)
            _, u = power_iteration(w2d, start, INIT_POWER_ITERATIONS, normalize_v=False)
            if not torch.isfinite(u).all():  # W u = 0 (a zero weight) or overflow: keep the start
                u = start
            sigma0 = float(power_iteration(w2d, u, 1, self.eps)[0])
        return u, sigma0, _gamma_value(self.gamma_init, sigma0)

    @torch.no_grad()
    def _initialise(self, weight: torch.Tensor) -> None:
        u, sigma0, gamma0 = self.initial_state(weight)
        self.u.copy_(u)
        self.sigma0 = sigma0
        self.gamma.fill_(gamma0)
        self.last_sigma = torch.tensor(sigma0)
        self._pending_gamma_init = None
        self.__dict__.pop("_weight_ref", None)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        weight = self._weight() if self._pending_gamma_init is not None else None
        if weight is not None:
            self._initialise(weight)  # deferred and never used nor loaded: initialise now
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _weight(self):
        ref = getattr(self, "_weight_ref", None)
        return ref() if ref is not None else None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if prefix + "u" in state_dict and prefix + "gamma" in state_dict:
            self._pending_gamma_init = None  # u and γ come from the state: no initialisation
            self.__dict__.pop("_weight_ref", None)

    def _sigma(self, w2d: torch.Tensor, u: torch.Tensor, update: bool) -> torch.Tensor:
        # σ = vᵀ W u, with gradient through W only (u, v are constants).
        sigma, u = power_iteration(w2d, u, self.n_power_iterations if update else 1, self.eps)
        if update:
            with torch.no_grad():
                self.u.copy_(u)  # copy_ casts back to the buffer's dtype
        return sigma

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self._pending_gamma_init is not None:
            self._initialise(weight)
        scope = MODE.scope
        use_cache = scope is not None and not self.training and not torch.is_grad_enabled()
        with _fp32_region(weight.device):
            # Power iteration and σ in at least fp32 whatever the module's dtype (fp16 loses σ's
            # precision); W_hat in the weight's own dtype, scaled by the 0-dim fp32 γ/σ (no fp32
            # copy of a half-precision weight is kept for the backward pass).
            compute = _compute_dtype(weight.dtype)
            if use_cache:
                c = self._eval_cache
                if (c is not None and c[0] is scope and c[1] is weight and c[2] is self.gamma
                        and c[3] == (weight._version, self.gamma._version, self.u._version)):
                    return c[4] * weight
            self._eval_cache = None
            update = self.training and not MODE.frozen
            sigma = self._sigma(weight.flatten(1), self.u.to(compute), update=update)
            scale = self.gamma.to(compute) / sigma  # γ/σ of eq. 2
            w_hat = scale * weight
            if MODE.recompute and w_hat.requires_grad:
                # what autograd may store instead of W_hat (see recomputed_sigma_weights)
                w_hat._sigma_recipe = (weight.detach(), scale.detach())
        if not MODE.frozen:
            self.last_sigma = sigma.detach()
        if use_cache:
            # Only the scalar γ/σ is kept, not W_hat: no resident copy of the weights in eval.
            self._eval_cache = (scope, weight, self.gamma,
                                (weight._version, self.gamma._version, self.u._version), scale)
        return w_hat

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._eval_cache = None
        if self.u.dtype in (torch.float16, torch.bfloat16):  # .half() casts buffers too: undo for u
            self.u.data = self.u.data.float()
        return self

    def train(self, mode: bool = True):
        self._eval_cache = None
        return super().train(mode)

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
    p = _SigmaReparam(weight, gamma_init, n_power_iterations)
    parametrize.register_parametrization(module, name, p, unsafe=True)
    if p._pending_gamma_init is not None:  # deferred: the raw weight, should state_dict() come first
        p._weight_ref = weakref.ref(module.parametrizations[name].original)
    if name == "weight":
        module.register_load_state_dict_pre_hook(_import_plain_weight)
    return module


def _import_plain_weight(module, state_dict, prefix, *unused) -> None:
    """Load-state-dict pre-hook (as torch's ``weight_norm`` renames its old keys): a state dict
    with a plain ``<prefix>weight`` (a stock model's checkpoint) loads into the σReparam module.
    The weight becomes ``parametrizations.weight.original``; u and γ, absent from a stock state,
    are computed from the *loaded* weight by ``initial_state`` (u: INIT_POWER_ITERATIONS power
    steps, σ₀ from that u, γ₀ from the module's γ₀ rule: with 'sigma0' the imported module
    computes exactly the stock weight). Training then refines u by one step per update."""
    p = get_sigma_reparam(module)
    plain = prefix + "weight"
    if p is None or plain not in state_dict or prefix + "parametrizations.weight.original" in state_dict:
        return
    weight = state_dict.pop(plain)
    state_dict[prefix + "parametrizations.weight.original"] = weight
    u, p.sigma0, gamma0 = p.initial_state(weight)
    state_dict[prefix + "parametrizations.weight.0.u"] = u.to(p.u.dtype)
    state_dict[prefix + "parametrizations.weight.0.gamma"] = torch.tensor(gamma0, dtype=p.gamma.dtype)
    p.imported = True


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
    with _cyclic_gc_paused():
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


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Registering thousands of parametrizations creates many long-lived objects (a module, a
    class and a property per weight); Python's cyclic collector then rescans all of them again
    and again, which costs more than the registration itself (docs/overhead.md, build and
    load). Nothing collectable is made here, so the collector waits until the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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


@torch.no_grad()
def broadcast_sigma_state(model: nn.Module, src: int = 0, group=None) -> int:
    """Copy every σReparam ``u`` from rank ``src`` to all ranks of ``torch.distributed``.

    u is a buffer that data-parallel training does not synchronise by itself (DDP's buffer
    broadcast is often off); with the same W on every rank each rank then advances the same u.
    A no-op (returns 0) unless a process group with several ranks is initialised; otherwise
    returns the number of buffers broadcast (one collective call).
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) < 2:
        return 0
    us = [p.u for _, _, p in sigma_reparam_modules(model)]
    if not us:
        return 0
    device = us[0].device
    if dist.get_backend(group) == "nccl":  # NCCL only moves CUDA tensors
        device = torch.device("cuda", torch.cuda.current_device())
    flat = torch.cat([u.detach().to(device=device, dtype=torch.float32).flatten() for u in us])
    dist.broadcast(flat, src, group=group)
    offset = 0
    for u in us:
        u.copy_(flat[offset:offset + u.numel()].view_as(u))
        offset += u.numel()
    return len(us)
