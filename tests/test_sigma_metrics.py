"""The criterion's entropy/σ/γ metrics: interval gating and reduction across workers."""
from collections import Counter

import pytest
import torch
from fairseq.logging import metrics

from _toy_mt import binarize, build_model, write_toy_corpus
from sigma_plugin.criterions.label_smoothed_cross_entropy_with_sigma import (
    LabelSmoothedCrossEntropyWithSigmaConfig as Config, LabelSmoothedCrossEntropyWithSigmaCriterion as Criterion)


def make_criterion(task, **kw):
    return Criterion(Config(sentence_avg=False, label_smoothing=0.1, **kw), task)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder)
    task, model, args = build_model(binarize(folder), "--dropout", "0", "--attention-dropout", "0")
    task.load_dataset("valid")
    ds = task.dataset("valid")
    crit = make_criterion(task, sigma_log_interval=2)
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
    crit = make_criterion(task, sigma_log_interval=1, sigma_log_summary_only=True)
    model.train()
    values = reduce([crit(model, batch(ds, range(4)))[2]])
    assert "ent_enc_self_mean" in values and not any("_L0" in k for k in values)


def test_stock_fairseq_transformer_is_probed_on_interval_only(setup):
    """The criterion works on fairseq's own `transformer` too: it keeps no update count itself,
    the criterion reads the one fairseq's trainer logs (Trainer.set_num_updates), and the model
    gets nothing added."""
    task, _, crit, ds = setup
    from _toy_mt import build_model
    _, stock, _ = build_model(task.cfg.data, "--arch", "transformer_tiny", "--dropout", "0")
    assert type(stock).__name__ == "TransformerModel"
    modules = list(stock.modules())
    stock.train()

    def trainer_sets(update):  # what fairseq's Trainer.set_num_updates logs, and task.train_step passes on
        metrics.log_scalar("num_updates", update, weight=0, priority=200)
        stock.set_num_updates(update)
    logged = []
    for update in range(4):
        trainer_sets(update)
        log = crit(stock, batch(ds, range(4)))[2]
        logged.append(any(k.startswith("sigma/") for k in log))
    assert logged == [True, False, True, False]  # interval 2
    assert list(stock.modules()) == modules
    trainer_sets(6)
    values = reduce([crit(stock, batch(ds, range(4)))[2]])
    assert "ent_enc_self_min" in values and "gamma_mean" not in values  # no σReparam: no γ


def test_entropy_alarm_fires_on_forced_collapse_only(setup, tmp_path, caplog):
    from sigma_plugin.criterions.sigma_metrics import EntropyCollapse
    from sigma_plugin.nn import get_sigma_reparam
    task, model, _, ds = setup
    crit = make_criterion(task, sigma_log_interval=1, sigma_entropy_alarm=0.05, sigma_entropy_alarm_fraction=0.2,
                          sigma_entropy_alarm_stop=True, sigma_entropy_alarm_dir=str(tmp_path))
    model.train()
    for update in range(3):  # a healthy model: no alarm
        model.set_num_updates(update)
        log = crit(model, batch(ds, range(8)))[2]
        assert log["sigma/alarms"] == 0
    attn = model.encoder.layers[1].self_attn
    saved = {n: get_sigma_reparam(getattr(attn, n)).gamma.detach().clone() for n in ("q_proj", "k_proj")}
    try:
        with torch.no_grad():  # force collapse: huge q/k spectral norms -> one-hot attention
            for n in saved:
                get_sigma_reparam(getattr(attn, n)).gamma.fill_(300.0)
        model.set_num_updates(3)
        with pytest.raises(EntropyCollapse, match="update 3: enc_self layer 1 head") as stopped:
            crit(model, batch(ds, range(8)))
    finally:
        with torch.no_grad():
            for n, g in saved.items():
                get_sigma_reparam(getattr(attn, n)).gamma.copy_(g)
    assert "entropy collapse alarm at update 3: enc_self layer 1" in caplog.text
    snap = torch.load(tmp_path / "entropy_alarm_u3.pt", weights_only=True)
    assert any("gamma" in k for k in snap["model"])
    # the snapshot is a checkpoint that sigma-inspect reads, with the collapsed layer in view
    from sigma_plugin.cli.inspect import inspect_checkpoint
    report = inspect_checkpoint(str(tmp_path / "entropy_alarm_u3.pt"))
    assert report["num_updates"] == 3 and report["arch"] == "sigma_transformer_tiny"
    gammas = {w["module"]: w["gamma"] for w in report["weights"]}
    assert gammas["encoder.layers.1.self_attn.q_proj"] == pytest.approx(300.0)
    # no checkpoint has been saved in that folder: the advice must not name one
    assert "checkpoint_last.pt" not in str(stopped.value) and "no checkpoint has been saved" in str(stopped.value)
    # a checkpoint saved at the alarm holds the collapsed model; one saved before it is named
    for name, updates in (("checkpoint_last.pt", 3), ("checkpoint_1_2.pt", 2)):
        torch.save({"optimizer_history": [{"num_updates": updates}], "model": {}}, tmp_path / name)
    assert f"resume from {tmp_path / 'checkpoint_1_2.pt'} (update 2" in crit.sigma_metrics.resume_advice()


def test_alarm_stop_decision_is_shared_by_all_ranks(setup, tmp_path, monkeypatch):
    """One worker's batch alarms, the other's does not: both stop, only rank 0 writes the snapshot."""
    from sigma_plugin.criterions import sigma_metrics
    task, model, _, ds = setup
    crit = make_criterion(task, sigma_log_interval=1, sigma_entropy_alarm=0.05, sigma_entropy_alarm_stop=True,
                          sigma_entropy_alarm_dir=str(tmp_path))
    calls = []
    monkeypatch.setattr(sigma_metrics, "_any_rank", lambda flag: (calls.append(flag), (1, True))[1])
    monkeypatch.setattr(sigma_metrics, "_barrier", lambda: calls.append("barrier"))
    model.train()
    model.set_num_updates(5)
    with pytest.raises(sigma_metrics.EntropyCollapse, match="update 5 on another worker"):
        crit(model, batch(ds, range(8)))  # a healthy batch on "rank 1"
    assert calls == [False, "barrier"]
    assert not (tmp_path / "entropy_alarm_u5.pt").exists()  # rank 1 writes nothing


def test_alarm_flag_errors(setup, tmp_path):
    from sigma_plugin.models.sigma_flags import SigmaOptionError
    task = setup[0]
    for kw, message in (({"sigma_entropy_alarm": float("nan")}, "--sigma-entropy-alarm must be"),
                        ({"sigma_entropy_alarm": -1.0}, "--sigma-entropy-alarm must be"),
                        ({"sigma_entropy_alarm_fraction": float("nan")}, "--sigma-entropy-alarm-fraction must be"),
                        ({"sigma_entropy_alarm_fraction": 1.0}, "--sigma-entropy-alarm-fraction must be"),
                        ({"sigma_log_interval": -1}, "--sigma-log-interval must be"),
                        ({"sigma_entropy_alarm": 0.1, "sigma_entropy_alarm_stop": True,
                          "sigma_entropy_alarm_dir": str(tmp_path / "f")}, "is a file")):
        (tmp_path / "f").write_text("")
        with pytest.raises(SigmaOptionError, match=message):
            make_criterion(task, **kw)
    with pytest.raises(ValueError, match="needs --sigma-entropy-alarm"):
        make_criterion(task, sigma_entropy_alarm_stop=True)
    with pytest.raises(ValueError, match="--sigma-log-interval, which is 0"):
        make_criterion(task, sigma_log_interval=0, sigma_entropy_alarm=0.1)
