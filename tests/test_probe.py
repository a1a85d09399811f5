import pytest
import torch
import torch.nn.functional as F
from fairseq.modules import MultiheadAttention

from sigma_plugin.nn import (AttentionProbe, apply_sigma_reparam, attention_entropy, attention_probs,
                             get_sigma_reparam, qk_spectral_norm)

E, H = 16, 4


def make_attn(self_attention=True, seed=0):
    torch.manual_seed(seed)
    attn = MultiheadAttention(E, H, self_attention=self_attention,
                              encoder_decoder_attention=not self_attention)
    with torch.no_grad():  # non-zero biases so that the bias terms are exercised
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
            proj.bias.normal_(0, 0.3)
    return attn.eval()


def per_head_reference(attn, query, key, kpm, attn_mask):
    _, weights = F.multi_head_attention_forward(
        query, key, key, E, H, torch.empty([0]),
        torch.cat((attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias)), None, None, False, 0.0,
        attn.out_proj.weight, attn.out_proj.bias, False, kpm, True, attn_mask,
        use_separate_proj_weight=True, q_proj_weight=attn.q_proj.weight,
        k_proj_weight=attn.k_proj.weight, v_proj_weight=attn.v_proj.weight, average_attn_weights=False)
    return weights


def test_probe_probs_match_fairseq_need_weights():
    attn = make_attn()
    T, B = 6, 3
    x = torch.randn(T, B, E)
    kpm = torch.zeros(B, T, dtype=torch.bool)
    kpm[1, 4:] = True
    future = torch.triu(torch.full((T, T), float("-inf")), 1)
    probe = AttentionProbe({"enc_self.0": attn})
    for mask in (None, future):
        with probe.capture(keep_probs=True) as rec:
            _, avg = attn(x, x, x, key_padding_mask=kpm, attn_mask=mask, need_weights=True)
        probs = rec["enc_self.0"].probs[0]
        torch.testing.assert_close(probs.mean(1), avg, rtol=1e-5, atol=1e-6)  # fairseq averages heads
        torch.testing.assert_close(probs, per_head_reference(attn, x, x, kpm, mask), rtol=1e-5, atol=1e-6)


def test_probe_entropy_for_cross_attention_with_query_mask():
    attn = make_attn(self_attention=False)
    tq, tk, B = 4, 7, 2
    q, k = torch.randn(tq, B, E), torch.randn(tk, B, E)
    kpm = torch.zeros(B, tk, dtype=torch.bool)
    kpm[0, 5:] = True
    qpm = torch.zeros(B, tq, dtype=torch.bool)
    qpm[1, 2:] = True
    probe = AttentionProbe({"dec_cross.0": attn}, groups={"dec_cross.0": "decoder"})
    with probe.capture({"decoder": qpm}) as rec:
        attn(q, k, k, key_padding_mask=kpm, need_weights=False)
    r = rec["dec_cross.0"]
    expected = attention_entropy(attention_probs(attn, q, k, kpm), kpm, qpm)
    torch.testing.assert_close(r.mean_entropy(), expected)
    assert r.count == B * tq - 2
    assert (r.mean_entropy() >= r.mean_bound()).all()
    bad = AttentionProbe({"x": attn}, groups={"x": "decoder"})
    with pytest.raises(ValueError, match="x: query padding mask"):
        with bad.capture({"decoder": torch.zeros(B, tq + 1, dtype=torch.bool)}):
            attn(q, k, k, key_padding_mask=kpm)


def test_no_hook_outside_capture_and_incremental_skipped():
    attn = make_attn()
    probe = AttentionProbe({"a": attn})
    x = torch.randn(3, 2, E)
    with probe.capture() as rec:
        pass
    assert len(attn._forward_hooks) == 0
    with probe.capture() as rec:
        attn(x, x, x, incremental_state={})
    assert rec == {}
    with pytest.raises(TypeError, match="no q_proj"):
        AttentionProbe({"lin": torch.nn.Linear(2, 2)})


def test_qk_spectral_norm_matches_direct_computation():
    attn = make_attn()
    d = E // H
    got = qk_spectral_norm(attn)
    got_nobias = qk_spectral_norm(attn, include_bias=False)
    for h in range(H):
        rows = slice(h * d, (h + 1) * d)
        wq = torch.cat([attn.q_proj.weight[rows], attn.q_proj.bias[rows, None]], 1)
        wk = torch.cat([attn.k_proj.weight[rows], attn.k_proj.bias[rows, None]], 1)
        direct = attn.scaling * torch.linalg.matrix_norm(wq.T @ wk, 2)
        assert got[h].item() == pytest.approx(direct.item(), rel=1e-4)
        direct_nb = attn.scaling * torch.linalg.matrix_norm(attn.q_proj.weight[rows].T @ attn.k_proj.weight[rows], 2)
        assert got_nobias[h].item() == pytest.approx(direct_nb.item(), rel=1e-4)


def test_sigma_reparam_acts_through_fused_attention(monkeypatch):
    """fairseq's MultiheadAttention hands q_proj.weight etc. straight to F.multi_head_attention_forward;
    σReparam (a parametrization) must be what that kernel sees."""
    attn = make_attn()
    x = torch.randn(5, 2, E)
    plain_out, _ = attn(x, x, x, need_weights=False)
    apply_sigma_reparam(attn, gamma_init="one")  # W_hat = W/σ(W) ≠ W
    calls = []
    real = F.multi_head_attention_forward

    def spy(*args, **kwargs):
        calls.append(kwargs["q_proj_weight"])
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "multi_head_attention_forward", spy)
    attn.train()
    attn.dropout_module.p = 0.0
    out, _ = attn(x, x, x, need_weights=False)
    assert len(calls) == 1  # the fused path ran
    p = get_sigma_reparam(attn.q_proj)
    w = attn.q_proj.parametrizations.weight.original
    torch.testing.assert_close(calls[0], p.gamma / p.last_sigma * w, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out, plain_out, atol=1e-3)
    out.pow(2).sum().backward()
    for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
        sr = get_sigma_reparam(proj)
        assert sr.gamma.grad is not None and sr.gamma.grad.abs() > 0
        assert proj.parametrizations.weight.original.grad.abs().sum() > 0


def test_normalised_entropy_counts_causal_keys():
    """Uniform causal attention (all logits equal) has normalised entropy exactly 1 per query."""
    attn = make_attn()
    with torch.no_grad():
        attn.q_proj.weight.zero_(), attn.q_proj.bias.zero_()  # all logits 0 -> uniform over allowed keys
    T, B = 5, 2
    x = torch.randn(T, B, E)
    future = torch.triu(torch.full((T, T), float("-inf")), 1)
    kpm = torch.zeros(B, T, dtype=torch.bool)
    probe = AttentionProbe({"dec_self.0": attn})
    with probe.capture() as rec:
        attn(x, x, x, key_padding_mask=kpm, attn_mask=future)
    r = rec["dec_self.0"]
    # every query, the first one (a single key) included, is exactly 1
    torch.testing.assert_close(r.mean_norm_entropy(), torch.ones(H))


@pytest.mark.parametrize("kind", ["enc_self", "dec_self", "dec_cross"])
@pytest.mark.parametrize("weight_scale", [0.05, 1.0, 8.0])
def test_bound_below_entropy_for_every_query_with_causal_and_padding_masks(kind, weight_scale):
    """Theorem 3.1 with T = the keys each query may attend to: bound ≤ entropy row by row and on
    average, for small logits (bound ≈ log T_i, tight) up to large ones."""
    from sigma_plugin.nn.probe import _key_counts, bound_rows
    attn = make_attn(self_attention=kind != "dec_cross", seed=3)
    with torch.no_grad():
        attn.q_proj.weight.mul_(weight_scale), attn.k_proj.weight.mul_(weight_scale)
    tq, B = 6, 3
    tk = tq if kind != "dec_cross" else 8
    q = torch.randn(tq, B, E)
    k = q if kind != "dec_cross" else torch.randn(tk, B, E)
    kpm = torch.zeros(B, tk, dtype=torch.bool)
    kpm[1, tk - 2:] = True
    kpm[2, tk - 1:] = True
    mask = torch.triu(torch.full((tq, tk), float("-inf")), 1) if kind == "dec_self" else None
    qpm = kpm if kind != "dec_cross" else torch.zeros(B, tq, dtype=torch.bool)
    probe = AttentionProbe({f"{kind}.0": attn})
    with probe.capture(keep_probs=True) as rec:
        attn(q, k, k, key_padding_mask=kpm, attn_mask=mask)
    r = rec[f"{kind}.0"]
    assert (r.mean_bound() <= r.mean_entropy() + 1e-5).all(), (r.mean_bound(), r.mean_entropy())
    probs = r.probs[0]
    ent = -torch.special.xlogy(probs, probs).sum(-1).permute(1, 0, 2)  # (H, B, Tq)
    counts = _key_counts(kpm, mask, probs)
    lb = bound_rows(qk_spectral_norm(attn), q, k, kpm, counts, qpm)
    valid = ~qpm[None].expand_as(ent)
    assert (lb[valid] <= ent[valid] + 1e-5).all()
    if kind == "dec_self":
        assert (lb[:, :, 0] == 0).all()  # the first query sees one key: entropy 0, bound 0
        if weight_scale == 0.05:  # small logits: a bound that says something (up to log 6 = 1.79)
            assert lb.max() > 1.5


def test_probe_does_not_advance_the_power_iteration():
    """A probed training forward leaves u (and the logged σ) as an unprobed one does."""
    attn = make_attn()
    apply_sigma_reparam(attn)
    attn.train()
    attn.dropout_module.p = 0.0
    x = torch.randn(5, 2, E)
    start = {n: get_sigma_reparam(getattr(attn, n)).u.clone() for n in ("q_proj", "k_proj", "v_proj")}
    attn(x, x, x)
    plain = {n: (get_sigma_reparam(getattr(attn, n)).u.clone(), get_sigma_reparam(getattr(attn, n)).last_sigma)
             for n in start}
    for n, u in start.items():
        get_sigma_reparam(getattr(attn, n)).u.copy_(u)
    with AttentionProbe({"enc_self.0": attn}).capture():
        attn(x, x, x)
    for n, (u, sigma) in plain.items():
        p = get_sigma_reparam(getattr(attn, n))
        assert torch.equal(p.u, u), n
        assert torch.equal(p.last_sigma, sigma), n


@pytest.mark.parametrize("mask_kind", ["-inf", "-1e8", "-1e4", "bool", "3d-per-batch-head"])
def test_key_counts_see_large_negative_and_3d_masks(mask_kind):
    """Uniform causal attention has normalised entropy exactly 1 whatever form the causal mask takes:
    -inf, fairseq's large negatives (-1e8, fp16's -1e4), a bool mask, or a (B·H, Tq, Tk) float mask.
    The keys behind the mask are not counted, so the bound and the normalisation stay right."""
    attn = make_attn()
    with torch.no_grad():
        attn.q_proj.weight.zero_(), attn.q_proj.bias.zero_()
    T, B = 5, 2
    x = torch.randn(T, B, E)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    if mask_kind == "bool":
        mask = future
    elif mask_kind == "3d-per-batch-head":
        mask = torch.zeros(T, T).masked_fill(future, -1e8).expand(B * H, T, T).contiguous()
    else:
        mask = torch.zeros(T, T).masked_fill(future, float(mask_kind))
    probe = AttentionProbe({"dec_self.0": attn})
    with probe.capture() as rec:
        attn(x, x, x, attn_mask=mask)
    r = rec["dec_self.0"]
    torch.testing.assert_close(r.mean_norm_entropy(), torch.ones(H))
    assert torch.all(r.mean_bound() <= r.mean_entropy() + 1e-6)
