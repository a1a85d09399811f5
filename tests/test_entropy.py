import math

import pytest
import torch

from sigma_plugin.nn import attention_entropy, entropy_lower_bound


def test_uniform_one_hot_and_padding():
    b, h, tq, tk = 2, 3, 4, 5
    uniform = torch.full((b, h, tq, tk), 1 / tk)
    torch.testing.assert_close(attention_entropy(uniform), torch.full((h,), math.log(tk)))
    one_hot = torch.zeros(b, h, tq, tk)
    one_hot[..., 0] = 1.0
    ent = attention_entropy(one_hot)
    assert torch.equal(ent, torch.zeros(h))  # exact zeros: 0·log 0 = 0, no nan
    # example 1 has only 2 valid keys (uniform over them) and 1 valid query
    probs = torch.full((b, h, tq, tk), 1 / tk)
    probs[1] = 0.0
    probs[1, :, :, :2] = 0.5
    probs[1, :, 1:, :] = 7.0  # garbage in padded query rows must be ignored
    kpm = torch.zeros(b, tk, dtype=torch.bool)
    kpm[1, 2:] = True
    qpm = torch.zeros(b, tq, dtype=torch.bool)
    qpm[1, 1:] = True
    expected = (tq * math.log(tk) + 1 * math.log(2)) / (tq + 1)
    torch.testing.assert_close(attention_entropy(probs, kpm, qpm), torch.full((h,), expected))
    total, count = attention_entropy(probs, kpm, qpm, reduce=False)
    assert count.item() == tq + 1
    torch.testing.assert_close(total / count, torch.full((h,), expected))


def test_shape_errors():
    with pytest.raises(ValueError, match="batch, heads"):
        attention_entropy(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="key_padding_mask"):
        attention_entropy(torch.rand(2, 1, 3, 4), key_padding_mask=torch.zeros(2, 3, dtype=torch.bool))


def _entropy_of_logits(z):
    p = torch.softmax(z, -1)
    return -(torch.special.xlogy(p, p)).sum(-1)


@pytest.mark.parametrize("T", [2, 5, 64])
def test_bound_holds_for_random_logits(T):
    torch.manual_seed(T)
    for scale in (0.1, 1.0, 3.0, 10.0, 30.0):
        z = torch.randn(4000, T, dtype=torch.float64) * scale
        z[:1000] = torch.zeros(1000, T, dtype=torch.float64).scatter_(1, torch.randint(T, (1000, 1)), scale)
        s = (z - z.mean(-1, keepdim=True)).norm(dim=-1)
        ent = _entropy_of_logits(z)
        assert (ent >= entropy_lower_bound(s, T) - 1e-9).all()


@pytest.mark.parametrize("T", [2, 8, 100])
def test_bound_is_tight_for_the_extremal_logits(T):
    # one logit a gap g = s·√(T/(T−1)) above the T−1 others has centred norm exactly s
    for s in (0.0, 0.5, 2.0, 8.0):
        g = s * math.sqrt(T / (T - 1))
        z = torch.zeros(T, dtype=torch.float64)
        z[0] = g
        assert (z - z.mean()).norm().item() == pytest.approx(s, abs=1e-12)
        assert _entropy_of_logits(z).item() == pytest.approx(entropy_lower_bound(s, T).item(), abs=1e-10)


def test_bound_is_the_minimum_found_by_optimisation():
    # gradient descent on the sphere ‖z − mean z‖ = s never gets below the bound
    torch.manual_seed(0)
    T, s = 10, 4.0
    z = torch.randn(64, T, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(300):
        zc = z - z.mean(-1, keepdim=True)
        zc = zc / zc.norm(dim=-1, keepdim=True) * s
        loss = _entropy_of_logits(zc).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    zc = z - z.mean(-1, keepdim=True)
    zc = zc / zc.norm(dim=-1, keepdim=True) * s
    found = _entropy_of_logits(zc).min().item()
    bound = entropy_lower_bound(s, T).item()
    assert found >= bound - 1e-9
    assert found == pytest.approx(bound, abs=1e-3)


def test_bound_limits_and_errors():
    assert entropy_lower_bound(0.0, 7).item() == pytest.approx(math.log(7))
    assert entropy_lower_bound(200.0, 7).item() < 1e-50
    with pytest.raises(ValueError, match="T >= 2"):
        entropy_lower_bound(1.0, 1)
    with pytest.raises(ValueError, match="s >= 0"):
        entropy_lower_bound(-1.0, 4)


def test_normalised_entropy_is_length_free():
    b, h, tq = 2, 1, 3
    probs = torch.zeros(b, h, tq, 8)
    probs[0, :, :, :] = 1 / 8          # uniform over 8 keys
    probs[1, :, :, :4] = 1 / 4         # uniform over its 4 valid keys
    kpm = torch.zeros(b, 8, dtype=torch.bool)
    kpm[1, 4:] = True
    torch.testing.assert_close(attention_entropy(probs, kpm, normalize=True), torch.ones(h))
    assert attention_entropy(probs, kpm).item() == pytest.approx((math.log(8) + math.log(4)) / 2)
