import io

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from sigma_plugin.nn import (apply_sigma_reparam, cached_sigma_weights, get_sigma_reparam,
                             remove_sigma_reparam, sigma_reparam)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def exact_sigma(w):
    return torch.linalg.matrix_norm(w.detach().flatten(1).double(), ord=2).item()


def ill_conditioned(m, n, cond=1e4, gap=1.5):
    u, _ = torch.linalg.qr(torch.randn(m, m))
    v, _ = torch.linalg.qr(torch.randn(n, n))
    k = min(m, n)
    s = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), k)
    s[0] *= gap
    return u[:, :k] @ torch.diag(s) @ v[:, :k].T


@pytest.mark.parametrize("kind", ["random", "ill"])
def test_sigma_estimate_tracks_spectral_norm_during_training(kind):
    torch.manual_seed(0)
    lin = nn.Linear(48, 32)
    sigma_reparam(lin)
    p = get_sigma_reparam(lin)
    opt = torch.optim.SGD(lin.parameters(), lr=0.05)
    for step in range(20):
        if step == 10 and kind == "ill":  # jump to a very different, ill-conditioned matrix
            with torch.no_grad():
                lin.parametrizations.weight.original.copy_(ill_conditioned(32, 48))
        lin.train()
        lin(torch.randn(8, 48)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    for _ in range(3):  # "a few steps" on the final matrix
        _ = lin.weight
    w = lin.parametrizations.weight.original
    assert abs(p.last_sigma - exact_sigma(w)) / exact_sigma(w) < 0.01


def test_sigma_at_registration_is_close_and_converges_while_training():
    """u starts from a few power-iteration steps (no SVD): σ₀ within a few % of ‖W‖₂ for a random
    matrix with nearly tied top singular values, and each training forward closes the gap."""
    torch.manual_seed(1)
    lin = nn.Linear(768, 512)
    sigma_reparam(lin)
    p = get_sigma_reparam(lin)
    exact = exact_sigma(lin.parametrizations.weight.original)
    assert p.sigma0 <= exact * (1 + 1e-5) and (exact - p.sigma0) / exact < 0.05
    lin.train()
    with torch.no_grad():
        for _ in range(400):
            _ = lin.weight  # one training forward = one more power-iteration step
    assert (exact - float(p.last_sigma)) / exact < 2e-3


def test_registration_and_loading_do_no_svd(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("SVD called")
    for name in ("svd", "svdvals"):
        monkeypatch.setattr(torch.linalg, name, refuse)
    monkeypatch.setattr(torch, "svd_lowrank", refuse)
    monkeypatch.setattr(torch, "svd", refuse)
    model = nn.Sequential(nn.Linear(64, 256), nn.Conv1d(4, 8, 3), nn.Linear(2048, 64))
    apply_sigma_reparam(model)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    fresh = nn.Sequential(nn.Linear(64, 256), nn.Conv1d(4, 8, 3), nn.Linear(2048, 64))
    apply_sigma_reparam(fresh)
    fresh.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert torch.equal(get_sigma_reparam(fresh[2]).u, get_sigma_reparam(model[2]).u)


def test_deferred_initialisation_is_skipped_by_loading_and_done_at_first_use(monkeypatch):
    from sigma_plugin.nn import deferred_sigma_init
    from sigma_plugin.nn.parametrization import _SigmaReparam
    torch.manual_seed(0)
    trained = sigma_reparam(nn.Linear(32, 24))
    trained.train()
    trained(torch.randn(3, 32))
    state = trained.state_dict()
    real = _SigmaReparam._initialise
    calls = []
    monkeypatch.setattr(_SigmaReparam, "_initialise", lambda self, w: (calls.append(1), real(self, w))[1])
    with deferred_sigma_init():
        loaded = sigma_reparam(nn.Linear(32, 24))
        fresh = sigma_reparam(nn.Linear(32, 24))
        saved_first = sigma_reparam(nn.Linear(32, 24))
    assert calls == []  # nothing computed at build
    loaded.load_state_dict(state)
    trained.eval(), loaded.eval()
    x = torch.randn(4, 32)
    assert torch.equal(loaded(x), trained(x)) and calls == []  # u and γ from the state: never initialised
    w0 = fresh.parametrizations.weight.original.detach().clone()
    fresh.eval()
    torch.testing.assert_close(fresh.weight, w0, rtol=1e-5, atol=1e-6)  # initialised at first use: γ₀ = σ₀
    assert len(calls) == 1
    sd = saved_first.state_dict()  # saved before any use: initialised first, never the placeholder
    assert len(calls) == 2 and sd["parametrizations.weight.0.gamma"] != 1.0


def test_initial_u_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    sigma_reparam(nn.Linear(30, 20))
    after_sigma = torch.rand(3)
    torch.manual_seed(5)
    nn.Linear(30, 20)
    assert torch.equal(torch.rand(3), after_sigma)


def test_gamma_init_options():
    torch.manual_seed(0)
    a, b, c = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6)
    sigma_reparam(a, gamma_init="one")
    sigma_reparam(b, gamma_init=2.5)
    sigma_reparam(c)
    assert get_sigma_reparam(a).gamma.item() == 1.0
    assert get_sigma_reparam(b).gamma.item() == 2.5
    assert get_sigma_reparam(c).gamma.item() == pytest.approx(get_sigma_reparam(c).sigma0)
    a.eval()
    assert exact_sigma(a.weight) == pytest.approx(1.0, rel=1e-4)  # W_hat has spectral norm γ
    d = nn.Linear(6, 6)
    w0 = d.weight.detach().clone()
    sigma_reparam(d, gamma_init="0.25*sigma0")
    d.eval()
    torch.testing.assert_close(d.weight, 0.25 * w0, rtol=1e-4, atol=1e-5)  # the branch scaled by C
    with pytest.raises(ValueError, match="C\\*sigma0"):
        sigma_reparam(nn.Linear(3, 3), gamma_init="0*sigma0")


def test_gradcheck_float64():
    torch.manual_seed(0)
    lin = nn.Linear(5, 4).double()
    sigma_reparam(lin)
    with torch.no_grad():  # converge u: σ = vᵀWu is differentiated through W only, exact at the
        for _ in range(200):  # singular vectors (where σ is stationary in u and v)
            _ = lin.weight
    lin.eval()  # fixed u so the function is deterministic for gradcheck
    p = get_sigma_reparam(lin)
    w = lin.parametrizations.weight.original

    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    wt = w.detach().clone().requires_grad_(True)
    g = p.gamma.detach().clone().double().requires_grad_(True)

    def reparam_linear(weight, gamma, inp):
        sigma = p._sigma(weight, p.u.double(), update=False)
        return nn.functional.linear(inp, gamma / sigma * weight)

    assert gradcheck(reparam_linear, (wt, g, x), eps=1e-6, atol=1e-5)
    # and the registered module's own autograd graph agrees with the analytic one
    lin.zero_grad()
    x2 = x.detach()
    lin(x2).sum().backward()
    wt2 = w.detach().clone().requires_grad_(True)
    g2 = p.gamma.detach().clone().double().requires_grad_(True)
    reparam_linear(wt2, g2, x2).sum().backward()
    torch.testing.assert_close(w.grad, wt2.grad)
    torch.testing.assert_close(p.gamma.grad.double(), g2.grad)


def test_eval_does_not_touch_buffers_and_caches_only_inside_a_scope():
    torch.manual_seed(0)
    lin = sigma_reparam(nn.Linear(8, 8))
    p = get_sigma_reparam(lin)
    lin.train()
    lin(torch.randn(2, 8))
    u_before = p.u.clone()
    lin.eval()
    sigma_calls = []
    real_sigma = p._sigma
    p._sigma = lambda *a, **k: (sigma_calls.append(1), real_sigma(*a, **k))[1]
    with torch.no_grad(), cached_sigma_weights():
        w1 = lin.weight
        lin(torch.randn(2, 8))
        w2 = lin.weight
        assert len(sigma_calls) == 1  # cached γ/σ: one power iteration per scope ...
        assert torch.equal(w1, w2) and w1 is not w2  # ... and no resident copy of W_hat
        lin.parametrizations.weight.original.mul_(2)  # an in-place change is still seen
        w3 = lin.weight
        assert len(sigma_calls) == 2
        torch.testing.assert_close(w3, w1)  # γ/σ·W is scale invariant in W
        p.gamma.mul_(3)
        torch.testing.assert_close(lin.weight, 3 * w1)
    assert torch.equal(p.u, u_before)
    with torch.no_grad():
        lin.weight
        assert len(sigma_calls) == 4  # outside a scope: recomputed, never stale
    assert p._eval_cache is None


def _fresh_output(lin, x):
    """What the layer computes, from scratch: γ/σ(W)·W with σ from the stored u, as eval does."""
    p = get_sigma_reparam(lin)
    w = lin.parametrizations.weight.original.detach()
    sigma = p._sigma(w, p.u.clone(), update=False)
    return nn.functional.linear(x, p.gamma.detach() / sigma * w, lin.bias)


def test_eval_weight_never_stale_after_data_updates_and_functional_call():
    torch.manual_seed(0)
    lin = sigma_reparam(nn.Linear(16, 12))
    lin.eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        lin(x)
        # updates through .data do not bump the version counter (fairseq's optimizers, EMA)
        lin.parametrizations.weight.original.data.copy_(torch.randn(12, 16))
        torch.testing.assert_close(lin(x), _fresh_output(lin, x))
        get_sigma_reparam(lin).gamma.data.fill_(0.5)
        torch.testing.assert_close(lin(x), _fresh_output(lin, x))
        # functional_call in a loop: new tensors, possibly at a freed tensor's address
        name = "parametrizations.weight.original"
        for _ in range(3):
            w = torch.randn(12, 16)
            out = torch.func.functional_call(lin, {name: w}, (x,))
            p = get_sigma_reparam(lin)
            sigma = p._sigma(w, p.u.clone(), update=False)
            torch.testing.assert_close(out, nn.functional.linear(x, p.gamma / sigma * w, lin.bias))
            del w, out
        with cached_sigma_weights():  # inside a scope .data updates are the caller's business,
            lin(x)                    # but leaving the scope drops the cache
        lin.parametrizations.weight.original.data.mul_(-1.5)
        torch.testing.assert_close(lin(x), _fresh_output(lin, x))


def test_sigma_stays_fp32_under_autocast(monkeypatch):
    torch.manual_seed(0)
    lin = sigma_reparam(nn.Linear(64, 48))
    ref = sigma_reparam(nn.Linear(64, 48))
    ref.load_state_dict(lin.state_dict())
    lin.train(), ref.train()
    x = torch.randn(8, 64)
    ref(x)
    autocast_in_mv = []  # (CUDA autocast runs torch.mv in fp16: the power iteration must run without it)
    real_mv = torch.mv
    monkeypatch.setattr(torch, "mv", lambda *a: (autocast_in_mv.append(torch.is_autocast_enabled("cpu")),
                                                 real_mv(*a))[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lin(x)
    assert autocast_in_mv and not any(autocast_in_mv)
    p, q = get_sigma_reparam(lin), get_sigma_reparam(ref)
    assert y.dtype == torch.bfloat16  # the layer itself does run in bf16
    assert p.last_sigma.dtype == torch.float32 and p.u.dtype == torch.float32
    assert torch.equal(p.u, q.u) and torch.equal(p.last_sigma, q.last_sigma)  # bit for bit the fp32 values


def test_training_forward_updates_u_in_place():
    torch.manual_seed(0)
    lin = sigma_reparam(nn.Linear(20, 30))
    p = get_sigma_reparam(lin)
    with torch.no_grad():
        lin.parametrizations.weight.original.copy_(torch.randn(30, 20))
    u_ref = p.u
    before = p.u.clone()
    lin.train()
    lin(torch.randn(2, 20))
    assert p.u is u_ref and not torch.equal(p.u, before)


def test_state_dict_roundtrip_restores_u_and_gamma():
    torch.manual_seed(0)
    a = sigma_reparam(nn.Linear(6, 5))
    a.train()
    opt = torch.optim.SGD(a.parameters(), lr=0.1)
    for _ in range(3):
        a(torch.randn(4, 6)).sum().backward()
        opt.step()
        opt.zero_grad()
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    sd = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    assert {"parametrizations.weight.original", "parametrizations.weight.0.u",
            "parametrizations.weight.0.gamma"} <= set(sd)
    b = sigma_reparam(nn.Linear(6, 5))
    b.load_state_dict(sd)
    pa, pb = get_sigma_reparam(a), get_sigma_reparam(b)
    assert torch.equal(pa.u, pb.u) and torch.equal(pa.gamma, pb.gamma)
    a.eval(), b.eval()
    x = torch.randn(3, 6)
    assert torch.equal(a(x), b(x))


def test_remove_folds_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    apply_sigma_reparam(model, gamma_init="one")
    model.train()
    model(torch.randn(3, 8))  # move u away from its init
    model.eval()
    x = torch.randn(5, 8)
    with torch.no_grad():
        ref = model(x)
    folded = remove_sigma_reparam(model)
    assert folded == ["0", "2"]
    assert set(model.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    plain = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain(x), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_modules_keep_fp32_power_iteration(dtype):
    torch.manual_seed(0)
    lin = sigma_reparam(nn.Linear(64, 64))
    with torch.no_grad():  # converge u first: this test is about precision, not initialisation
        for _ in range(100):
            _ = lin.weight
    lin.eval()
    with torch.no_grad():
        ref_w = lin.weight.clone()
    lin.to(dtype)
    p = get_sigma_reparam(lin)
    assert p.u.dtype == torch.float32
    assert lin.parametrizations.weight.original.dtype == dtype
    lin.train()
    w = lin.weight
    assert w.dtype == dtype and torch.isfinite(w).all()
    torch.testing.assert_close(w.float(), ref_w, rtol=2e-2, atol=2e-2)
    assert abs(p.last_sigma - exact_sigma(lin.parametrizations.weight.original.float())) < 1e-2 * p.last_sigma
    x = torch.randn(4, 64, dtype=dtype)
    lin(x).float().sum().backward()
    assert torch.isfinite(lin.parametrizations.weight.original.grad.float()).all()


def test_apply_include_exclude_and_keeps_weights():
    torch.manual_seed(0)
    model = nn.ModuleDict({"enc": nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)),
                           "out": nn.Linear(4, 2), "emb": nn.Embedding(5, 4)})
    w0 = model["enc"][0].weight.detach().clone()
    names = apply_sigma_reparam(model, include=["enc.*"], exclude=["enc.1"])
    assert names == ["enc.0"]
    torch.testing.assert_close(model["enc"][0].parametrizations.weight.original, w0)
    assert get_sigma_reparam(model["out"]) is None
    assert apply_sigma_reparam(model) == ["enc.1", "out"]  # already-converted modules are skipped


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="n_power_iterations.*0"):
        sigma_reparam(nn.Linear(3, 3), n_power_iterations=0)
    with pytest.raises(ValueError, match="n_power_iterations"):
        apply_sigma_reparam(nn.Linear(3, 3), n_power_iterations=-2)
    with pytest.raises(TypeError, match="Embedding"):
        sigma_reparam(nn.Embedding(4, 3))
    with pytest.raises(ValueError, match="'decoder.\\*'"):
        apply_sigma_reparam(nn.Sequential(nn.Linear(2, 2)), include=["decoder.*"])
    bad = nn.Linear(3, 3)
    with torch.no_grad():
        bad.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        sigma_reparam(bad)
    with pytest.raises(ValueError, match="0: .*non-finite"):
        apply_sigma_reparam(nn.Sequential(bad))
    with pytest.raises(ValueError, match="gamma_init.*'big'"):
        sigma_reparam(nn.Linear(3, 3), gamma_init="big")
    with pytest.raises(ValueError, match="gamma_init.*-1"):
        sigma_reparam(nn.Linear(3, 3), gamma_init=-1.0)
    with pytest.raises(TypeError, match="types"):
        apply_sigma_reparam(nn.Linear(2, 2), types=[nn.Embedding])
    lin = sigma_reparam(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="already"):
        sigma_reparam(lin)


def test_recomputed_weights_keep_no_w_hat_and_give_the_same_gradients(weight_hats_made):
    import copy
    from sigma_plugin.nn import recomputed_sigma_weights
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6, 16), nn.ReLU(),
                        nn.Linear(16, 5))
    apply_sigma_reparam(net)
    twin = copy.deepcopy(net)
    x = torch.randn(3, 4, 8)
    made = weight_hats_made
    with recomputed_sigma_weights():
        loss = net(x).pow(2).sum()
    assert len(made) == 3 and all(ref() is None for ref in made)  # nothing holds W_hat ...
    loss.backward()  # ... and the backward pass (outside the block) rebuilds it
    made.clear()
    twin_loss = twin(x).pow(2).sum()
    assert all(ref() is not None for ref in made)  # without the block autograd keeps each W_hat
    twin_loss.backward()
    assert torch.equal(loss, twin_loss)
    for (name, a), (_, b) in zip(net.named_parameters(), twin.named_parameters()):
        assert torch.equal(a.grad, b.grad), name
    for (name, a), (_, b) in zip(net.named_buffers(), twin.named_buffers()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_keep_no_fp32_copy_for_backward(dtype):
    """--fp16/--bf16 cast the weights: σ is computed in fp32, but autograd keeps no fp32 copy of W
    (W_hat is the weight's dtype scaled by the 0-dim fp32 γ/σ; dσ/dW = v uᵀ from the vectors)."""
    lin = sigma_reparam(nn.Linear(32, 48)).to(dtype)
    lin.train()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append((t.dtype, t.numel())), t)[1], lambda t: t):
        out = lin(torch.randn(4, 32, dtype=dtype))
    assert out.dtype == dtype
    assert not [s for s in saved if s == (torch.float32, 32 * 48)], saved
    out.float().sum().backward()
    p = get_sigma_reparam(lin)
    w = lin.parametrizations.weight.original
    assert w.grad is not None and w.grad.dtype == dtype and p.gamma.grad is not None
    assert p.u.dtype == torch.float32 and torch.isfinite(p.gamma.grad)
