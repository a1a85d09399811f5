"""Training configs: ``conf/*.yaml`` → fairseq-train flags, checked against fairseq's own parser.

Keys are fairseq option names (``max-update`` or ``max_update``); ``true`` → a bare flag,
``false``/``null`` → omitted, lists → comma-joined. A key that fairseq-train does not know
for the chosen task/arch/criterion/optimizer stops with a message naming the key and file.

    python -m sigma_plugin.recipe.conf conf/train.yaml [--set max-update=100 ...] [--check DATA]

prints one flag per line (for ``mapfile`` in bash).
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List

import yaml

from sigma_plugin.util import fail, run_cli

# Set by the recipe itself; a conf that sets them would fight the stage script.
RESERVED = {"save-dir", "user-dir", "tensorboard-logdir", "restore-file"}


def load_conf(path: Path) -> Dict[str, object]:
    if not path.is_file():
        fail(f"{path}: config file not found")
    try:
        conf = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        fail(f"{path}: not valid YAML ({e})")
    if not isinstance(conf, dict):
        fail(f"{path}: expected a mapping of fairseq options, got {type(conf).__name__}")
    return conf


def apply_overrides(conf: Dict[str, object], overrides: List[str]) -> Dict[str, object]:
    conf = dict(conf)
    for item in overrides:
        if "=" not in item:
            fail(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        conf[key.strip()] = yaml.safe_load(value)
    return conf


def to_flags(conf: Dict[str, object], source: str) -> List[str]:
    flags: List[str] = []
    for key, value in conf.items():
        name = str(key).replace("_", "-")
        if name in RESERVED:
            fail(f"{source}: key {key!r} is set by the recipe; remove it from the config")
        if value is None or value is False:
            continue
        if value is True:
            flags.append(f"--{name}")
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        flags += [f"--{name}", str(value)]
    return flags


def check_flags(flags: List[str], data: str, source: str) -> None:
    """Parse the flags with fairseq-train's parser (plugin loaded); unknown keys are errors."""
    import sigma_plugin
    sigma_plugin.register()  # the plugin's models/criteria/optimizers
    from fairseq import options

    user_dir = str(Path(sigma_plugin.__file__).parent)
    parser = options.get_training_parser()
    argv = [data, "--user-dir", user_dir, *flags]
    try:
        _, extra = options.parse_args_and_arch(parser, argv, parse_known=True)
    except SystemExit:
        fail(f"{source}: fairseq-train rejected these options (see the message above)")
    unknown = [a for a in extra if a.startswith("--")]
    if unknown:
        keys = ", ".join(a[2:] for a in unknown)
        fail(f"{source}: unknown key(s) for fairseq-train with this task/arch/criterion/optimizer: {keys}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("conf", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key (repeatable)")
    ap.add_argument("--check", metavar="DATA", help="validate against fairseq-train's parser for DATA")
    args = ap.parse_args(argv)
    conf = apply_overrides(load_conf(args.conf), args.set)
    flags = to_flags(conf, str(args.conf))
    if args.check:
        check_flags(flags, args.check, str(args.conf))
    sys.stdout.write("".join(f"{f}\n" for f in flags))


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
