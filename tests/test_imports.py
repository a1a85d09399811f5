"""The fairseq-free parts import without fairseq: the σReparam/entropy library, the CTC decoders,
the metric maths of the criteria and the model introspection."""
import subprocess
import sys

FAIRSEQ_FREE = ["sigma_plugin.nn", "sigma_plugin.decoding.ctc_beam", "sigma_plugin.decoding.ngram_lm",
                "sigma_plugin.criterions.sigma_reduction", "sigma_plugin.criterions.sigma_encoding",
                "sigma_plugin.criterions.sigma_snapshot", "sigma_plugin.models.introspection"]


def test_fairseq_free_modules_import_without_fairseq():
    code = "import sys\n" + "".join(f"import {m}\n" for m in FAIRSEQ_FREE) + "print('fairseq' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "False", res.stderr[-2000:]


def test_nn_names_one_thing_each():
    import sigma_plugin.nn as nn_lib
    from sigma_plugin.nn import parametrization
    assert callable(nn_lib.sigma_reparam) and nn_lib.sigma_reparam is parametrization.sigma_reparam
    assert not hasattr(nn_lib, "max_entropy")
