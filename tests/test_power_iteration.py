"""The one power-iteration function equals, bit for bit, the inline loops it replaced (the
σReparam forward in training and eval, its initialisation, the state-dict reader and checkpoint
averaging)."""
import pytest
import torch
import torch.nn.functional as F

from sigma_plugin.cli.sigma_state import eval_sigma
from sigma_plugin.nn import power_iteration
from sigma_plugin.recipe.average import _refresh_power_iteration


def _weight_and_u(dtype=torch.float32, shape=(24, 16)):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    u = F.normalize(torch.randn(shape[1], generator=g, dtype=torch.float64), dim=0).to(dtype)
    return w, u


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("steps", [1, 3])
def test_equals_the_old_inline_loop(dtype, steps):
    w, u0 = _weight_and_u(dtype)
    u = u0
    with torch.no_grad():  # the loop as it stood in nn/parametrization.py and cli/sigma_state.py
        for _ in range(steps):
            v = F.normalize(torch.mv(w, u), dim=0, eps=1e-12)
            u = F.normalize(torch.mv(w.t(), v), dim=0, eps=1e-12)
    sigma_ref = torch.dot(v, torch.mv(w, u))
    sigma, u_new = power_iteration(w, u0, steps)
    assert torch.equal(sigma, sigma_ref) and torch.equal(u_new, u)


def test_init_step_equals_the_old_inline_loop():
    w, u0 = _weight_and_u()
    u = u0
    for _ in range(10):
        u = torch.mv(w.t(), torch.mv(w, u))
        u = u / torch.linalg.vector_norm(u)
    sigma, u_new = power_iteration(w, u0, 10, normalize_v=False)
    assert sigma is None and torch.equal(u_new, u)


def test_gradient_flows_through_the_weight_only():
    w, u0 = _weight_and_u()
    w.requires_grad_(True)
    sigma, u = power_iteration(w, u0, 2)
    assert sigma.requires_grad and not u.requires_grad
    sigma.backward()
    # dσ/dW = v uᵀ for the final unit vectors: a rank-one matrix of norm 1
    assert torch.linalg.matrix_norm(w.grad, ord=2).item() == pytest.approx(1.0, rel=1e-5)


def test_converges_to_the_spectral_norm():
    w, u0 = _weight_and_u(torch.float64)
    sigma, _ = power_iteration(w, u0, 500)
    assert sigma.item() == pytest.approx(torch.linalg.matrix_norm(w, ord=2).item(), rel=1e-6)


def test_state_dict_reader_and_averaging_use_it():
    w, u0 = _weight_and_u(shape=(12, 4, 2))  # a conv kernel: flattened to 12 x 8
    w2d = w.flatten(1)
    u0 = F.normalize(torch.ones(8), dim=0)
    assert torch.equal(eval_sigma(w, u0), power_iteration(w2d, u0, 1)[0])
    state = {"m.parametrizations.weight.original": w, "m.parametrizations.weight.0.u": u0}
    _refresh_power_iteration(state, steps=20)
    u = u0.double()
    for _ in range(20):  # the loop as it stood in recipe/average.py
        v = F.normalize(w2d.double() @ u, dim=0)
        u = F.normalize(w2d.double().t() @ v, dim=0)
    assert torch.equal(state["m.parametrizations.weight.0.u"], u.float())


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_rejects_bad_step_counts(bad):
    w, u0 = _weight_and_u()
    with pytest.raises(ValueError, match=f"n_steps must be an integer >= 1, got {bad}"):
        power_iteration(w, u0, bad)
    with pytest.raises(ValueError, match="2-D weight"):
        power_iteration(w[0], u0)
