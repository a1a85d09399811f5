import pytest
import torch

from sigma_plugin.nn.lars import LARS


def test_lars_step_matches_the_formula():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(torch.randn(4))
    w.grad, b.grad = torch.randn(4, 3), torch.randn(4)
    w0, b0, gw, gb = w.detach().clone(), b.detach().clone(), w.grad.clone(), b.grad.clone()
    opt = LARS([w, b], lr=0.1, momentum=0.9, weight_decay=0.01, trust_coefficient=0.02)
    opt.step()
    d = gw + 0.01 * w0
    trust = 0.02 * w0.norm() / d.norm()
    torch.testing.assert_close(w.detach(), w0 - 0.1 * trust * d)
    torch.testing.assert_close(b.detach(), b0 - 0.1 * gb)  # 1-D: no trust ratio, no weight decay
    # second step: momentum buffer v = 0.9 v + trust·d
    w.grad = gw.clone()
    w1 = w.detach().clone()
    opt.step()
    d2 = gw + 0.01 * w1
    v = 0.9 * trust * d + 0.02 * w1.norm() / d2.norm() * d2
    torch.testing.assert_close(w.detach(), w1 - 0.1 * v)


def test_lars_zero_weight_uses_plain_step_and_bad_args():
    w = torch.nn.Parameter(torch.zeros(2, 2))
    w.grad = torch.ones(2, 2)
    LARS([w], lr=0.5, momentum=0.0).step()
    torch.testing.assert_close(w.detach(), torch.full((2, 2), -0.5))
    for kw, msg in (({"lr": 0}, "lr"), ({"lr": 1, "momentum": 1.0}, "momentum"),
                    ({"lr": 1, "trust_coefficient": 0}, "trust_coefficient"), ({"lr": 1, "weight_decay": -1}, "weight_decay")):
        with pytest.raises(ValueError, match=msg):
            LARS([w], **kw)


def test_lars_in_fairseq_train(tmp_path):
    """One fairseq update with --optimizer lars moves every matrix by exactly lr·η·‖W‖ (LARS's
    trust ratio η‖W‖/‖g + wd·W‖ times the step), whatever its gradient."""
    import sigma_plugin
    from _toy_mt import binarize, build_model, run, train_args, write_toy_corpus
    write_toy_corpus(tmp_path, n_train=100, n_valid=10)
    data = binarize(tmp_path)
    args = train_args(data, tmp_path / "ckpt", max_update=1)
    args[args.index("sgd")] = "lars"
    args[args.index("--momentum") + 1] = "0.9"
    args += ["--lars-trust-coefficient", "0.01", "--weight-decay", "0.0001"]
    out = run(args)
    assert "'_name': 'lars'" in out.stdout + out.stderr
    sigma_plugin.register()
    after = torch.load(str(tmp_path / "ckpt" / "checkpoint_last.pt"), weights_only=True)["model"]
    _, model, _ = build_model(data, "--seed", "1")  # the initial weights of that run
    before = model.state_dict()
    lr, eta = 0.1, 0.01
    matrices = [k for k, v in before.items() if v.dim() >= 2 and v.dtype.is_floating_point]
    assert len(matrices) > 30
    for k in matrices:
        step = (after[k] - before[k]).norm() / before[k].norm()
        assert step.item() == pytest.approx(lr * eta, rel=1e-3), k
