"""The criterion's entropy/σ/γ metrics: interval gating and reduction across workers."""
from collections import Counter

import pytest
import torch
from fairseq.logging import metrics

from _toy_mt import binarize, build_model, write_toy_corpus
from sigma_plugin.criterions.label_smoothed_cross_entropy_with_sigma import (
    LabelSmoothedCrossEntropyWithSigmaCriterion as Criterion)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder)
    task, model, args = build_model(binarize(folder), "--dropout", "0", "--attention-dropout", "0")
    task.load_dataset("valid")
    ds = task.dataset("valid")
    crit = Criterion(task, False, 0.1, sigma_log_interval=2)
    return task, model, crit, ds


def batch(ds, ids):
    return ds.collater([ds[i] for i in ids])


def reduce(logs):
    with metrics.aggregate(new_root=True) as agg:
        Criterion.reduce_metrics(logs)
    return agg.get_smoothed_values()


def fairseq_sum(logs):
    """What fairseq's _fast_stat_sync_sum does with the workers' logging outputs."""
    total = Counter()
    for log in logs:
        for k, v in log.items():
            total[k] += float(v)
    return [dict(total)]


def test_off_interval_updates_pay_nothing(setup):
    _, model, crit, ds = setup
    model.train()
    model.set_num_updates(3)
    _, _, log = crit(model, batch(ds, range(4)))
    assert not any(k.startswith("sigma/") for k in log)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    model.eval()
    model.set_num_updates(4)
    _, _, log = crit(model, batch(ds, range(4)))  # validation never probes
    assert not any(k.startswith("sigma/") for k in log)


def test_metrics_reduce_across_workers_like_one_big_batch(setup):
    _, model, crit, ds = setup
    model.train()
    model.set_num_updates(4)
    a = crit(model, batch(ds, range(0, 6)))[2]
    b = crit(model, batch(ds, range(6, 16)))[2]
    both = crit(model, batch(ds, range(0, 16)))[2]
    two_workers = reduce(fairseq_sum([a, b]))
    one_worker = reduce([both])
    for key in ("ent_enc_self_mean", "ent_enc_self_min", "ent_dec_self_mean", "ent_dec_cross_min",
                "ent_enc_self_L1", "entlb_dec_cross_mean", "sigmaqk_enc_self_max", "gamma_mean",
                "gamma_enc_L0", "sigma_dec_L1"):
        assert two_workers[key] == pytest.approx(one_worker[key], rel=2e-3, abs=1e-3), key
    # sanity of the values themselves
    log_tk = torch.log(torch.tensor(ds.src_sizes[:16].max(), dtype=torch.float)).item()
    assert 0 < one_worker["ent_enc_self_min"] <= one_worker["ent_enc_self_mean"] <= log_tk + 1e-3
    assert one_worker["entlb_enc_self_mean"] <= one_worker["ent_enc_self_mean"]
    assert one_worker["gamma_max"] >= one_worker["gamma_mean"] > 0


def test_summary_only_drops_per_layer_keys(setup):
    task, model, _, ds = setup
    crit = Criterion(task, False, 0.1, sigma_log_interval=1, sigma_log_summary_only=True)
    model.train()
    values = reduce([crit(model, batch(ds, range(4)))[2]])
    assert "ent_enc_self_mean" in values and not any("_L0" in k for k in values)


def test_stock_fairseq_transformer_is_probed_on_interval_only(setup):
    """The criterion works on fairseq's own `transformer` too (it keeps no update count itself)."""
    task, _, crit, ds = setup
    from _toy_mt import build_model
    _, stock, _ = build_model(task.cfg.data, "--arch", "transformer_tiny", "--dropout", "0")
    assert type(stock).__name__ == "TransformerModel"
    stock.train()
    logged = []
    for update in range(4):
        stock.set_num_updates(update)
        log = crit(stock, batch(ds, range(4)))[2]
        logged.append(any(k.startswith("sigma/") for k in log))
    assert logged == [True, False, True, False]  # interval 2
    stock.set_num_updates(6)
    values = reduce([crit(stock, batch(ds, range(4)))[2]])
    assert "ent_enc_self_min" in values and "gamma_mean" not in values  # no σReparam: no γ
