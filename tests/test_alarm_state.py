"""What the entropy metrics keep: gamma_max is the largest γ (not the largest per-layer mean), the
alarm's baseline survives a resume (it is in the metrics fairseq saves), and the alarm knows when
the alarmed head's entropy began to fall."""
import torch
from fairseq.logging import metrics
from torch import nn

from sigma_plugin.criterions.sigma_encoding import logging_entries
from sigma_plugin.criterions.sigma_metrics import _keep_baseline, _restored_baseline, collapse_began
from sigma_plugin.criterions.sigma_reduction import reduce_sigma_values
from sigma_plugin.nn import apply_sigma_reparam, get_sigma_reparam


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)) for _ in range(2))


def test_gamma_max_is_the_largest_gamma_summed_over_workers():
    model = TwoLayers()
    apply_sigma_reparam(model)
    with torch.no_grad():  # layer 0: γ 1 and 3 (mean 2); layer 1: 2.5 and 2.5 (mean 2.5)
        for (layer, i), g in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [1.0, 3.0, 2.5, 2.5]):
            get_sigma_reparam(model.layers[layer][i]).gamma.fill_(g)
    one = logging_entries(model, {}, per_layer=True)
    assert one["sigma/gammamax/enc/0"] == 3.0
    two_workers = {k: 2 * v for k, v in one.items()}  # fairseq sums the workers' logging outputs
    values = reduce_sigma_values([two_workers])
    assert values["gamma_max"] == 3.0 and values["gamma_mean"] == 2.25


def test_alarm_baseline_is_restored_from_the_saved_metrics():
    with metrics.aggregate(new_root=True):  # an isolated metrics state, as one training run
        _keep_baseline({("enc_self.0", 1): 2.5, ("dec_cross.3", 0): 1.25})
        saved = metrics.state_dict()  # what fairseq writes into extra_state["metrics"]
    metrics.reset()
    assert _restored_baseline() == {}
    metrics.load_state_dict(saved)  # what fairseq does on resume
    assert _restored_baseline() == {("enc_self.0", 1): 2.5, ("dec_cross.3", 0): 1.25}
    metrics.reset()


def test_collapse_began_is_the_peak_before_the_final_fall():
    history = [(0, 2.0), (100, 2.1), (200, 1.5), (300, 0.5), (400, 0.01)]
    assert collapse_began(history) == 100
    assert collapse_began([(0, 2.0), (100, 1.0), (200, 1.5), (300, 0.01)]) == 200
    assert collapse_began([(0, 0.01), (100, 0.02)]) is None  # no fall: low from the start
    assert collapse_began([(100, 0.01)]) is None
