"""Training-data augmentation in the fbank step (speed perturbation, additive noise) on tone corpora."""
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _asr_corpus import write_chapter, write_corpus, sentence
from sigma_plugin.asr.manifest import read_tsv
from sigma_plugin.asr.prep_fbank import prep_subset

ROOT = Path(__file__).resolve().parents[1]


def frames(tsv):
    return {r["id"]: int(r["n_frames"]) for r in read_tsv(tsv)}


def load(out_dir, row):
    zip_name, offset, length = row["audio"].rsplit(":", 2)
    with open(out_dir / zip_name, "rb") as f:
        f.seek(int(offset))
        data = f.read(int(length))

    return np.load(io.BytesIO(data))


def test_speed_copies_of_training_subsets_only(tmp_path):
    root = write_corpus(tmp_path / "c", n_train=4, n_dev=2)
    out = tmp_path / "out"
    train = prep_subset(root, "train-tone", out, speed_perturb=(0.9, 1.0, 1.1))
    rows = read_tsv(train)
    assert [r["id"] for r in rows[:3]] == ["sp0.9-11-5-0000", "11-5-0000", "sp1.1-11-5-0000"]
    assert [r["speaker"] for r in rows[:3]] == ["sp0.9-11", "11", "sp1.1-11"]
    assert len({r["tgt_text"] for r in rows[:3]}) == 1 and len(rows) == 12
    n = frames(train)
    # a factor-0.9 copy is 1/0.9 as long, a factor-1.1 copy 1/1.1
    assert abs(n["sp0.9-11-5-0000"] / n["11-5-0000"] - 1 / 0.9) < 0.03
    assert abs(n["sp1.1-11-5-0000"] / n["11-5-0000"] - 1 / 1.1) < 0.03
    stats = np.load(out / "train-tone.fbank_stats.npz")
    assert int(stats["count"]) == sum(n.values())  # CMVN over every copy
    dev = read_tsv(prep_subset(root, "dev-tone", out, speed_perturb=(0.9, 1.0, 1.1), noise_snr=(0, 5)))
    assert [r["id"] for r in dev] == ["22-5-0000", "22-5-0001"]


def test_noise_is_seeded_and_changes_the_features(tmp_path):
    root = write_corpus(tmp_path / "c", n_train=3, n_dev=1)
    clean = prep_subset(root, "train-tone", tmp_path / "clean")
    a = prep_subset(root, "train-tone", tmp_path / "a", noise_snr=(5, 10), seed=3)
    b = prep_subset(root, "train-tone", tmp_path / "b", noise_snr=(5, 10), seed=3, nj=2)
    c = prep_subset(root, "train-tone", tmp_path / "c2", noise_snr=(5, 10), seed=4)
    rows = {p: read_tsv(p) for p in (clean, a, b, c)}
    assert [r["id"] for r in rows[a]] == [r["id"] for r in rows[clean]]  # noise alone makes no copies
    fa, fb, fc, f0 = (load(p.parent, rows[p][0]) for p in (a, b, c, clean))
    assert np.array_equal(fa, fb)                         # same seed: same noise, in 1 or 2 processes
    assert not np.array_equal(fa, fc) and not np.allclose(fa, f0, atol=1.0)
    assert fa.mean() > f0.mean()                          # noise fills the tone's empty mel bands


@pytest.mark.parametrize("args, message", [
    (["--speed-perturb", "0.9", "0.9"], "error: --speed-perturb: factors repeat: 0.9 0.9"),
    (["--speed-perturb", "5"], "error: --speed-perturb: speed factor must be a number in [0.25, 4], got 5.0"),
    (["--noise-snr", "30,10"], "error: --noise-snr must be LOW,HIGH in dB with LOW <= HIGH, got (30.0, 10.0)"),
    (["--noise-snr", "loud"], "argument --noise-snr: expected LOW,HIGH in dB (e.g. 10,30), got 'loud'"),
])
def test_cli_names_bad_augmentation_flags(tmp_path, args, message):
    root = write_corpus(tmp_path / "c", n_train=2, n_dev=1)
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.prep_fbank", "--root", str(root),
                          "--subsets", "train-tone", "--out-dir", str(tmp_path / "o"), *args],
                         capture_output=True, text=True)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_docs_example_runs(tmp_path):
    """The augmentation example of docs/asr.md, on a tone corpus in its folder names."""
    doc = (ROOT / "docs" / "asr.md").read_text()
    m = re.search(r"^(python -m sigma_plugin\.asr\.prep_fbank --root corpus .*--speed-perturb.*)$", doc, re.M)
    assert m, "docs/asr.md lost its prep_fbank augmentation example"
    for subset in ("train-tts", "dev-tts"):
        write_chapter(tmp_path / "corpus" / subset, "7" if subset == "dev-tts" else "5", "1",
                      {f"{i:04d}": sentence(i) for i in range(2)})
    res = subprocess.run([sys.executable, *shlex.split(m.group(1))[1:]], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    ids = [r["id"] for r in read_tsv(tmp_path / "dump" / "train-tts.tsv")]
    assert ids == ["sp0.9-5-1-0000", "5-1-0000", "sp1.1-5-1-0000", "sp0.9-5-1-0001", "5-1-0001", "sp1.1-5-1-0001"]
    assert len(read_tsv(tmp_path / "dump" / "dev-tts.tsv")) == 2
