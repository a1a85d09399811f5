"""Every invalid --sigma-* value (and fp16/bf16/AMP on CPU) ends fairseq-train with one line naming
the flag: an argparse error or a SigmaOptionError (printed without a traceback), never another
exception from deep inside fairseq."""
import subprocess

import pytest

from _toy_mt import BIN, USER_DIR, binarize, write_toy_corpus

CASES = [
    (["--sigma-reparam", "most"], "--sigma-reparam"),
    (["--sigma-layernorm", "middle"], "--sigma-layernorm"),
    (["--sigma-gamma-init", "-3"], "--sigma-gamma-init"),
    (["--sigma-gamma-init", "0"], "--sigma-gamma-init"),
    (["--sigma-gamma-init", "nan"], "--sigma-gamma-init"),
    (["--sigma-gamma-init", "inf"], "--sigma-gamma-init"),
    (["--sigma-gamma-init", "2*sigma1"], "--sigma-gamma-init"),
    (["--sigma-gamma-init", "big"], "--sigma-gamma-init"),
    (["--sigma-init-scale", "0"], "--sigma-init-scale"),
    (["--sigma-init-scale", "-2"], "--sigma-init-scale"),
    (["--sigma-init-scale", "nan"], "--sigma-init-scale"),
    (["--sigma-init-scale", "x"], "--sigma-init-scale"),
    (["--sigma-power-iterations", "0"], "--sigma-power-iterations"),
    (["--sigma-power-iterations", "1.5"], "--sigma-power-iterations"),
    (["--sigma-exclude", "decoder.layer.*"], "--sigma-exclude"),
    (["--sigma-deepnorm", "--sigma-layernorm", "pre"], "--sigma-deepnorm"),
    (["--sigma-deepnorm", "--sigma-gamma-init", "one"], "--sigma-deepnorm"),
    (["--sigma-reparam-output"], "--sigma-reparam-output"),
    (["--sigma-reparam-output", "--sigma-reparam", "none"], "--sigma-reparam-output"),
    (["--sigma-layernorm", "post", "--encoder-normalize-before"], "--encoder-normalize-before"),
    (["--sigma-log-interval", "-1"], "--sigma-log-interval"),
    (["--sigma-entropy-alarm", "-1"], "--sigma-entropy-alarm"),
    (["--sigma-entropy-alarm", "nan"], "--sigma-entropy-alarm"),
    (["--sigma-entropy-alarm-fraction", "1.5"], "--sigma-entropy-alarm-fraction"),
    (["--sigma-entropy-alarm-fraction", "nan"], "--sigma-entropy-alarm-fraction"),
    (["--sigma-entropy-alarm-stop"], "--sigma-entropy-alarm-stop"),
    (["--sigma-entropy-alarm", "0.1", "--sigma-log-interval", "0"], "--sigma-log-interval"),
    (["--fp16"], "--fp16"),
    (["--bf16"], "--bf16"),
    (["--memory-efficient-fp16"], "--memory-efficient-fp16"),
    (["--memory-efficient-bf16"], "--memory-efficient-bf16"),
    (["--amp"], "--amp"),
]


@pytest.fixture(scope="module")
def toy_bin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    write_toy_corpus(folder, n_train=40, n_valid=8)
    return binarize(folder)


def start_training(data, *extra):
    """What fairseq-train does up to the first update: parse, set up the task, build model and criterion."""
    from fairseq import options, tasks
    from fairseq.utils import import_user_module
    import sigma_plugin
    sigma_plugin.register()
    argv = [str(data), "--user-dir", USER_DIR, "--task", "translation", "--arch", "sigma_transformer_tiny",
            "--cpu", "--share-all-embeddings", "--criterion", "label_smoothed_cross_entropy_with_sigma", *extra]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    import_user_module(args)
    task = tasks.setup_task(args)
    task.build_model(args)
    task.build_criterion(args)


@pytest.mark.parametrize("flags,flag", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_invalid_value_is_a_one_line_error_naming_the_flag(toy_bin, flags, flag, capsys):
    with pytest.raises((SystemExit, ValueError)) as err:
        start_training(toy_bin, *flags)
    if isinstance(err.value, SystemExit):  # argparse: usage + one error line, exit status 2
        assert err.value.code == 2 and flag in capsys.readouterr().err
    else:
        assert getattr(type(err.value), "one_line", False), repr(err.value)  # printed without a traceback
        assert flag in str(err.value) and "\n" not in str(err.value)


def test_fairseq_train_prints_one_line_and_no_traceback(toy_bin, tmp_path):
    for flags, expected in ((["--sigma-init-scale", "nan"], "--sigma-init-scale must be a positive number"),
                            (["--sigma-entropy-alarm", "nan"], "--sigma-entropy-alarm must be"),
                            (["--amp"], "--amp is not supported with --cpu")):
        res = subprocess.run([str(BIN / "fairseq-train"), str(toy_bin), "--user-dir", USER_DIR, "--task",
                              "translation", "--arch", "sigma_transformer_tiny", "--cpu", "--share-all-embeddings",
                              "--criterion", "label_smoothed_cross_entropy_with_sigma", "--optimizer", "sgd",
                              "--lr", "0.1", "--max-tokens", "500", "--max-update", "1", "--save-dir", str(tmp_path), *flags],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith("fairseq-train: error: ") and expected in last, last
        assert not (tmp_path / "checkpoint_last.pt").exists()
