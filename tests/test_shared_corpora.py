"""Optional: the prepared corpora of ../shared (when present) pass the recipes' input checks.
Every other test makes its own data; these are skipped without ../shared/data."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.shared
def test_l10n_corpus_is_line_aligned_utf8(shared_dir):
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.check_corpus", "--prefix",
                          str(shared_dir / "data" / "l10n_en_de"), "--src", "en", "--tgt", "de", "--splits", "train,valid"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "line pairs, UTF-8" in res.stdout


@pytest.mark.shared
def test_tts_corpus_dev_subset_scans_without_skips(shared_dir):
    from sigma_plugin.asr.corpus import scan_subset
    utts, skipped = scan_subset(shared_dir / "data" / "tts_en", "dev-tts")
    assert len(utts) > 0 and skipped == []
