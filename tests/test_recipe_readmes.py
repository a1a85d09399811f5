"""Every recipe folder has a README whose first lines say how to run it with the project's
environment; recipes without recorded runs say so, and nothing claims scores match published ones."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.parent for p in (ROOT / "egs").glob("*/*/run.sh"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(ROOT / "egs")) for r in RECIPES])
def test_readme_first_lines_name_the_environment(recipe):
    readme = recipe / "README.md"
    assert readme.is_file(), f"{recipe}: no README.md"
    head = " ".join(readme.read_text(encoding="utf-8").splitlines()[:6])
    assert ".venv/bin/activate" in head and ("PYTHON=" in head or "--python" in head), readme


@pytest.mark.parametrize("recipe", ["wmt17_en_de/mt1", "iwslt14_de_en/mt1"])
def test_recipes_never_run_here_say_so(recipe):
    text = (ROOT / "egs" / recipe / "README.md").read_text(encoding="utf-8")
    assert "has not been run here" in text


def test_no_claim_that_scores_match_published_ones():
    for path in list((ROOT / "egs").rglob("*.sh")) + list((ROOT / "egs").rglob("*.md")):
        text = " ".join(path.read_text(encoding="utf-8").split()).lower()
        assert "match published" not in text or "nothing says its scores would match published" in text, path


def test_every_documented_fairseq_generate_keeps_every_sentence():
    """fairseq 0.12.3.1 drops a subset's last batch unless --required-batch-size-multiple 1."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        inline = re.findall(r"`(fairseq-generate [^`]*(?:DATA|data-bin)[^`]*)`", text)  # `fairseq-generate DATA ...`
        blocks = re.findall(r"^(fairseq-generate \S+.*(?:\\\n.*)*)$", text, re.M)  # in code blocks, with \ lines
        commands = [c for c in inline + blocks if re.match(r"fairseq-generate \$?(DATA|data-bin)", c)]
        for command in commands:
            assert "--required-batch-size-multiple 1" in command, f"{path.name}: {command[:120]}"
