"""sigma-export on a speech model: a sigma_s2t_transformer with a CTC head (post-LN and pre-LN)
becomes a stock s2t_transformer checkpoint that stock fairseq-generate (no --user-dir) decodes to
exactly the plugin model's hypotheses and scores."""
import pytest
import torch

from _asr_corpus import prepare, write_corpus
from _tiny_mt import generate
from _toy_mt import BIN, USER_DIR, run
from sigma_plugin.cli.export import main


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"), n_train=8, n_dev=4)
    return prepare(root, tmp_path_factory.mktemp("dump"))


def train(dump, save_dir, layernorm):
    run([str(BIN / "fairseq-train"), str(dump), "--user-dir", USER_DIR, "--task", "speech_to_text",
         "--config-yaml", "config.yaml", "--train-subset", "train-tone", "--valid-subset", "dev-tone",
         "--arch", "sigma_s2t_transformer_tiny", "--sigma-layernorm", layernorm, "--sigma-ctc-weight", "0.3",
         "--criterion", "sigma_ctc_attention", "--label-smoothing", "0.1",
         "--optimizer", "lars", "--lr", "1.0", "--lr-scheduler", "fixed", "--max-tokens", "3000",
         "--max-update", "3", "--cpu", "--seed", "1", "--num-workers", "0", "--no-epoch-checkpoints",
         "--disable-validation", "--required-batch-size-multiple", "1",
         "--save-dir", str(save_dir)])
    return save_dir / "checkpoint_last.pt"


S2T_GENERATE = ("--task", "speech_to_text", "--config-yaml", "config.yaml", "--max-tokens", "5000",
                "--max-len-b", "8", "--required-batch-size-multiple", "1")


@pytest.mark.parametrize("layernorm", ["post", "pre"])
def test_stock_s2t_generate_matches_plugin(dump, tmp_path, layernorm):
    ckpt = train(dump, tmp_path / "ckpt", layernorm)
    out = tmp_path / "stock.pt"
    assert main([str(ckpt), str(out)]) == 0
    state = torch.load(out, weights_only=True)  # plain: no allowlist, no plugin classes
    cfg = state["cfg"]["model"]
    assert cfg["arch"].startswith("s2t_transformer") and cfg["user_dir"] is None
    assert not any(k.startswith("sigma_") for k in cfg)
    assert not any("parametrizations" in k for k in state["model"])
    plugin = generate(dump, ckpt, True, *S2T_GENERATE, subset="dev-tone")
    stock = generate(dump, out, False, *S2T_GENERATE, subset="dev-tone")
    assert sum(line.startswith("H-") for line in plugin) == 4
    assert stock == plugin
