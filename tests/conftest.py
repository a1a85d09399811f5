import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes; excluded from the default run (make test)")
    config.addinivalue_line("markers", "shared: reads the prepared corpora of ../shared; skipped when that "
                                       "folder is absent (every other test makes its own data)")


@pytest.fixture(scope="session")
def shared_dir():
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED}/data is absent: the optional tests on the prepared corpora are skipped")
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    # 2-core machines: keep torch from oversubscribing when tests spawn subprocesses.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)


@pytest.fixture
def weight_hats_made(monkeypatch):
    """Weak references to every W_hat the σReparam parametrizations compute during the test."""
    import weakref
    from sigma_plugin.nn.parametrization import _SigmaReparam
    made = []
    real = _SigmaReparam.forward

    def recording_forward(self, w):
        out = real(self, w)
        made.append(weakref.ref(out))
        return out

    monkeypatch.setattr(_SigmaReparam, "forward", recording_forward)
    return made
