"""u is made the same on every data-parallel rank at the first training forward after a build or a
load -- never inside build_model / load_state_dict, which may run on one rank alone."""
import pytest
import torch

from _toy_mt import binarize, build_model, write_toy_corpus
from sigma_plugin.models import sigma_options


@pytest.fixture(scope="module")
def toy_bin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder, n_train=40, n_valid=8)
    return binarize(folder)


def test_no_collective_in_build_or_load_one_at_the_first_training_forward(toy_bin, monkeypatch):
    calls = []
    monkeypatch.setattr(sigma_options, "broadcast_sigma_state", lambda model: calls.append(model))
    task, model, _ = build_model(toy_bin)
    model.load_state_dict(model.state_dict())
    assert calls == []  # building and loading alone never wait for other ranks
    src, prev = torch.randint(4, 40, (2, 6)), torch.randint(4, 40, (2, 5))
    model.eval()
    with torch.no_grad():
        model(src, torch.tensor([6, 6]), prev)
    assert calls == []  # eval does not change u
    model.train()
    model(src, torch.tensor([6, 6]), prev)
    model(src, torch.tensor([6, 6]), prev)
    assert calls == [model]  # once, at the first training forward
    model.load_state_dict(model.state_dict())
    model(src, torch.tensor([6, 6]), prev)
    assert len(calls) == 2  # and again after a load (a resume)
