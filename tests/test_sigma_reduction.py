"""The entropy/σ/γ metrics' maths without fairseq: reduction of summed logging entries and the
entropy-collapse alarm's thresholds (sigma_plugin.criterions.sigma_reduction)."""
import pytest

from sigma_plugin.criterions.sigma_reduction import (alarm_hits, alarm_message, has_sigma_entries,
                                                     reduce_sigma_values)


def worker(ent_sum, n, qk, gamma, sigma, per_layer=1.0):
    """One worker's entries: enc_self layer 0 with two heads, one σReparam layer enc/0."""
    return {"sigma/workers": 1.0, "sigma/per_layer": per_layer, "sigma/n/enc_self/0": n,
            "sigma/ent/enc_self/0/0": ent_sum[0], "sigma/ent/enc_self/0/1": ent_sum[1],
            "sigma/entn/enc_self/0/0": ent_sum[0] / 2, "sigma/entn/enc_self/0/1": ent_sum[1] / 2,
            "sigma/entlb/enc_self/0/0": 0.0, "sigma/entlb/enc_self/0/1": 0.0,
            "sigma/qk/enc_self/0/0": qk[0], "sigma/qk/enc_self/0/1": qk[1],
            "sigma/gamma/enc/0": gamma, "sigma/sigma/enc/0": sigma, "sigma/count/enc/0": 2.0}


def summed(*logs):
    keys = {k for log in logs for k in log}
    return [{k: sum(log.get(k, 0.0) for log in logs) for k in keys}]


def test_off_interval_is_empty():
    assert not has_sigma_entries([{"loss": 1.0}]) and reduce_sigma_values([{"loss": 1.0}]) == {}


def test_entropy_is_divided_by_queries_and_qk_by_workers():
    a = worker((10.0, 6.0), n=5.0, qk=(2.0, 3.0), gamma=4.0, sigma=2.0)
    b = worker((2.0, 6.0), n=3.0, qk=(2.0, 3.0), gamma=4.0, sigma=2.0)
    v = reduce_sigma_values(summed(a, b))
    assert v["ent_enc_self_min"] == pytest.approx(12 / 8) and v["ent_enc_self_mean"] == pytest.approx((12 / 8 + 12 / 8) / 2)
    assert v["ent_enc_self_L0"] == pytest.approx(1.5) and v["entn_enc_self_min"] == pytest.approx(0.75)
    assert v["sigmaqk_enc_self_max"] == pytest.approx(3.0) and v["sigmaqk_enc_self_L0"] == pytest.approx(3.0)
    assert v["gamma_enc_L0"] == pytest.approx(2.0) and v["sigma_enc_L0"] == pytest.approx(1.0)
    assert v["gamma_mean"] == pytest.approx(2.0) and v["gamma_max"] == pytest.approx(2.0)
    assert "entropy_alarms" not in v and "ent_dec_self_mean" not in v
    # summing first (fairseq's fast stat sync) or reducing one worker gives the same per-query means
    assert reduce_sigma_values([a])["ent_enc_self_L0"] == pytest.approx(16 / 5 / 2)


def test_summary_only_has_no_per_layer_keys():
    v = reduce_sigma_values([worker((1.0, 1.0), 1.0, (1.0, 1.0), 1.0, 1.0, per_layer=0.0)])
    assert "ent_enc_self_mean" in v and not any("_L" in k for k in v)


def test_alarm_absolute_and_relative_thresholds():
    initial = {}
    assert alarm_hits({"enc_self.0": [2.0, 1.0]}, initial, alarm=0.5, alarm_fraction=0.2) == []
    assert initial == {("enc_self.0", 0): 2.0, ("enc_self.0", 1): 1.0}  # the first check is remembered
    hits = alarm_hits({"enc_self.0": [0.3, 0.9]}, initial, alarm=0.5, alarm_fraction=0.2)
    assert hits == [(0.3, "enc_self.0", 0, 2.0, 0.5)]
    hits = alarm_hits({"enc_self.0": [1.0, 0.15]}, initial, alarm=0.0, alarm_fraction=0.2)
    assert hits == [(0.15, "enc_self.0", 1, 1.0, pytest.approx(0.2))]
    assert alarm_message(7, hits).startswith("entropy collapse alarm at update 7: enc_self layer 0 head 1 "
                                            "has attention entropy 0.1500 nats < 0.2000 (first check: 1.0000)")


def test_the_maths_modules_import_no_fairseq():
    """sigma_reduction, sigma_encoding and sigma_snapshot load without fairseq (the criterions
    package around them registers fairseq components, so they are loaded from their files)."""
    import subprocess
    import sys
    from pathlib import Path
    folder = Path(__file__).resolve().parents[1] / "sigma_plugin" / "criterions"
    code = ("import importlib.util, sys\n"
            f"for name in ('sigma_reduction', 'sigma_encoding', 'sigma_snapshot'):\n"
            f"    spec = importlib.util.spec_from_file_location(name, {str(folder)!r} + '/' + name + '.py')\n"
            "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
            "assert 'fairseq' not in sys.modules, 'fairseq imported'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(folder.parents[1]))
    assert res.returncode == 0, res.stderr[-2000:]
