"""The entropy alarm's advice: it names the newest checkpoint saved before the collapse (never the
collapsed checkpoint_last.pt, never a file that does not exist), and resuming from it with a lower
learning rate trains on; an alarm snapshot exports to a stock checkpoint."""
import re
import subprocess

import pytest
import torch

from _toy_mt import BIN, USER_DIR, binarize, write_toy_corpus
from sigma_plugin.criterions.sigma_snapshot import checkpoint_update, resume_advice


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder, n_train=120, n_valid=12)
    return binarize(folder)


def train(data, save, lr, max_update, save_every, *extra):
    """Stock post-LN (no σReparam), Adam without warmup: at lr 0.05 its attention collapses."""
    cmd = [str(BIN / "fairseq-train"), str(data), "--user-dir", USER_DIR, "--task", "translation",
           "--arch", "sigma_transformer_tiny", "--sigma-reparam", "none", "--sigma-layernorm", "post",
           "--share-all-embeddings", "--criterion", "label_smoothed_cross_entropy_with_sigma",
           "--optimizer", "adam", "--lr", str(lr), "--lr-scheduler", "fixed", "--max-tokens", "500",
           "--max-update", str(max_update), "--save-interval-updates", str(save_every), "--no-epoch-checkpoints",
           "--disable-validation", "--sigma-log-interval", "2", "--sigma-entropy-alarm-fraction", "0.5",
           "--sigma-entropy-alarm-stop", "--sigma-entropy-alarm-dir", str(save), "--save-dir", str(save),
           "--cpu", "--seed", "1", "--log-format", "json", "--log-interval", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_following_the_advice_trains_on(data, tmp_path):
    save = tmp_path / "ckpt"
    healthy = train(data, save, 1e-4, 8, 4)  # 8 calm updates, checkpoints at 4 and 8
    assert healthy.returncode == 0, healthy.stderr[-3000:]
    collapse = train(data, save, 0.05, 60, 2)  # the same run at 0.05: a checkpoint every 2 updates
    assert collapse.returncode == 1, collapse.stderr[-3000:]
    alarm = re.search(r"entropy collapse alarm at update (\d+)", collapse.stderr)
    assert alarm, collapse.stderr[-3000:]
    n = int(alarm.group(1))
    assert n > 8 and checkpoint_update(str(save / "checkpoint_last.pt")) == n  # the collapsed model
    advice = collapse.stderr[collapse.stderr.index("Training stopped by"):].splitlines()[0]
    named = re.search(r"resume from (\S+) \(update (\d+), the newest checkpoint saved before the (?:alarm|entropy started to fall)", advice)
    assert named, advice
    assert int(named.group(2)) < n and "checkpoint_last.pt" not in named.group(1)
    assert (save / named.group(1).split("/")[-1]).is_file()
    resumed = train(data, save, 1e-4, n + 12, 4, "--restore-file", named.group(1))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "entropy collapse alarm" not in resumed.stderr
    assert checkpoint_update(str(save / "checkpoint_last.pt")) == n + 12

    # the alarm snapshot exports to a stock checkpoint that stock fairseq-generate reads
    snapshot = save / f"entropy_alarm_u{n}.pt"
    out = tmp_path / "stock.pt"
    res = subprocess.run([str(BIN / "sigma-export"), str(snapshot), str(out)], capture_output=True, text=True)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    gen = subprocess.run([str(BIN / "fairseq-generate"), str(data), "--path", str(out), "--cpu", "--beam", "2",
                          "--gen-subset", "valid", "--required-batch-size-multiple", "1"],
                         capture_output=True, text=True)
    assert gen.returncode == 0 and "Translated 12 sentences" in gen.stdout + gen.stderr, gen.stderr[-2000:]


def _ckpt(path, updates):
    torch.save({"optimizer_history": [{"num_updates": updates}], "model": {}}, path)


def test_advice_names_only_checkpoints_saved_before_the_alarm(tmp_path):
    # before the first save: no file is named
    torch.save({}, tmp_path / "entropy_alarm_u30.pt")
    advice = resume_advice(str(tmp_path))
    assert f"no checkpoint has been saved in {tmp_path} before the alarm at update 30" in advice
    assert ".pt" not in advice.split("restart")[0].replace("entropy_alarm", "")
    # checkpoint_last.pt at the alarm update holds the collapsed model: an earlier one is named
    _ckpt(tmp_path / "checkpoint_1_10.pt", 10)
    _ckpt(tmp_path / "checkpoint_2_20.pt", 20)
    _ckpt(tmp_path / "checkpoint_3_30.pt", 30)
    _ckpt(tmp_path / "checkpoint_last.pt", 30)
    _ckpt(tmp_path / "checkpoint_best.pt", 25)
    advice = resume_advice(str(tmp_path))
    assert f"resume from {tmp_path / 'checkpoint_best.pt'} (update 25" in advice
    assert f"--restore-file {tmp_path / 'checkpoint_best.pt'} --lr LOWER" in advice
    # when the caller knows where the entropy started to fall, the checkpoint before it
    advice = resume_advice(str(tmp_path), update=30, collapse_began=12)
    assert f"resume from {tmp_path / 'checkpoint_1_10.pt'} (update 10" in advice
    assert "before the entropy started to fall (after update 12)" in advice


def test_weights_only_snapshot_of_an_older_version_is_named(tmp_path, capsys):
    from sigma_plugin.cli.export import main
    old = tmp_path / "entropy_alarm_u5.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "num_updates": 5, "alarm": "entropy collapse alarm"}, old)
    assert main([str(old), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert "an entropy-alarm snapshot of an older sigma_plugin version" in err and "best_loss" not in err
