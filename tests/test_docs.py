"""The documentation's promises: the README's fairseq example runs, every flag and arch is documented."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _toy_mt import binarize, write_toy_corpus

ROOT = Path(__file__).resolve().parents[1]
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


def documented(name: str, text: str = None) -> bool:
    """``name`` occurs in the docs as a whole token: not inside a longer flag, arch or word
    ('lars' in 'scalars', '--sigma-entropy-alarm' in '--sigma-entropy-alarm-stop')."""
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", DOCS if text is None else text) is not None


def readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"## {heading}", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_fairseq_example_runs(tmp_path):
    folder = tmp_path / "toy"
    write_toy_corpus(folder, n_train=120, n_valid=12)
    data = binarize(folder)
    # run in a folder without sigma_plugin in it: the example's --user-dir works from anywhere
    block = readme_block("Using it from fairseq").replace(". .venv/bin/activate\n", "")
    # the example as written, shrunk to seconds on a CPU: later flags override earlier ones
    prelude = (
        'fairseq-train() { command fairseq-train "$@" --cpu --max-update 2 --max-tokens 300 '
        '--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 32 --encoder-ffn-embed-dim 32 '
        '--encoder-attention-heads 2 --decoder-attention-heads 2 --sigma-log-interval 1; }\n'
        'fairseq-generate() { command fairseq-generate "$@" --cpu --max-len-b 5; }\nset -e\n')
    env = dict(os.environ, DATA=str(data), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    res = subprocess.run(["bash", "-c", prelude + block], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "ent_enc_self_min" in res.stderr + res.stdout
    # every test sentence is translated (12 of them: not a multiple of fairseq's default batch multiple 8)
    assert sum(line.startswith("H-") for line in res.stdout.splitlines()) == 12
    assert (tmp_path / "tb").is_dir()


def _dataclass_flags(dc):
    return ["--" + name.replace("_", "-") for name in dc.__dataclass_fields__ if not name.startswith("_")]


def test_every_flag_is_documented():
    import fairseq  # noqa: F401
    import sigma_plugin
    sigma_plugin.register()
    from sigma_plugin.criterions.label_smoothed_cross_entropy_with_sigma import SigmaLoggingConfig
    from sigma_plugin.models.sigma_flags import SigmaModelConfig
    from sigma_plugin.optim.lars import FairseqLARSConfig
    flags = _dataclass_flags(SigmaModelConfig) + _dataclass_flags(SigmaLoggingConfig) + \
        [f for f in _dataclass_flags(FairseqLARSConfig) if f != "--lr"]
    missing = [f for f in flags if not documented(f)]
    assert not missing, f"undocumented flags: {missing}"


def test_every_arch_criterion_and_optimizer_is_documented():
    import fairseq  # noqa: F401
    import sigma_plugin
    sigma_plugin.register()
    from fairseq.criterions import CRITERION_REGISTRY
    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY
    from sigma_plugin.criterions import twins as criterion_twins
    from sigma_plugin.models import twins
    from sigma_plugin.models.twins import _twin_arch
    # the hand-written archs and criteria by name; the generated twins (sigma_<arch> of every fairseq
    # arch, <criterion>_with_sigma of every criterion) by their rule
    names = [a for a in ARCH_MODEL_REGISTRY if a.startswith("sigma_")
             and ARCH_MODEL_REGISTRY[a].__module__ != twins.__name__
             and ARCH_CONFIG_REGISTRY[a].__qualname__ != _twin_arch(None, None).__qualname__]
    names += [c for c in CRITERION_REGISTRY if "sigma" in c and CRITERION_REGISTRY[c].__module__ != criterion_twins.__name__]
    assert names and documented("lars") and documented("sigma_transformer_lm") and documented("cross_entropy_with_sigma")
    assert "`sigma_A`" in (ROOT / "docs" / "flags.md").read_text() and "`<criterion>_with_sigma`" in \
        (ROOT / "docs" / "flags.md").read_text()
    missing = [n for n in names if not documented(n)]
    assert not missing, f"undocumented: {missing}"


def test_documented_matches_whole_tokens_only():
    text = "the scalars; --sigma-entropy-alarm-stop N; sigma_transformer_tiny_x and `lars`, --lars-eta"
    assert documented("lars", text) and documented("--lars-eta", text)
    assert not documented("--sigma-entropy-alarm", text) and not documented("sigma_transformer_tiny", text)
    assert not documented("scalar", text) and not documented("--lars", text)
