"""Each recipe's default training config stops after a fixed number of updates (the same model on
every machine), not on a wall-clock budget; the README names that number and the time it took."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = sorted((ROOT / "egs").glob("*/*/run.sh"))


def default_config(run_sh: Path) -> Path:
    found = re.findall(r"--train_config (\S+)", run_sh.read_text())
    assert found, f"{run_sh}: no --train_config"
    return run_sh.parent / found[-1]  # the call (comment examples come first)


@pytest.mark.parametrize("run_sh", RUNS, ids=[str(r.parent.relative_to(ROOT / "egs")) for r in RUNS])
def test_default_config_stops_on_updates_not_time(run_sh):
    conf = {k.replace("_", "-"): v for k, v in yaml.safe_load(default_config(run_sh).read_text()).items()}
    assert not conf.get("stop-time-hours"), f"{default_config(run_sh)}: a wall-clock budget"
    assert conf.get("max-update") or conf.get("max-epoch"), f"{default_config(run_sh)}: no fixed length"


@pytest.mark.parametrize("recipe, updates, minutes", [("l10n_en_de/mt1", "2,000", "25"),
                                                      ("tts_en/asr1", "6,825", "60")])
def test_readme_gives_the_default_updates_with_their_time(recipe, updates, minutes):
    run_sh = ROOT / "egs" / recipe / "run.sh"
    conf = default_config(run_sh)
    value = yaml.safe_load(conf.read_text())
    assert value.get("max-update", value.get("max_update")) == int(updates.replace(",", ""))
    readme = (run_sh.parent / "README.md").read_text()
    paragraphs = [" ".join(p.split()) for p in readme.split("\n\n")]
    said = [p for p in paragraphs if conf.name in p and f"{updates} updates" in p and f"{minutes} minutes" in p]
    assert said, f"{recipe}/README.md: no paragraph names {conf.name}, {updates} updates and {minutes} minutes"
