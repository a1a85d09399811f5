"""English→German (or →French, ...) parallel text from Debian packages' gettext catalogs.

    python -m sigma_plugin.corpus.l10n --workdir W --out O [--tgt de] [--packages a,b,c]

Downloads the packages' .debs with `apt-get download` (cached in W/debs, no root needed),
takes their `*/<tgt>/LC_MESSAGES/*.mo` catalogs (kept in W/pkgs), turns msgid → msgstr
into cleaned, deduplicated pairs and writes O/{train,valid,test}.{en,<tgt>} and
O/stats.json. The split is a hash of the normalised English, so near-duplicates share a
split and the split of a sentence never depends on the rest of the corpus.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from sigma_plugin.util import StepError, atomic, run_cli

from . import debs
from .l10n_text import assign_split, clean_entry, split_key, stable_unit
from .mo_file import MoFormatError, parse_mo

BUILDER_VERSION = 1
SPLITS = ("train", "valid", "test")

# Packages with large gettext catalogs (German ones measured: ~98k pairs from ~96 MB of
# .debs in Debian 12). `{tgt}` is replaced by the target language. Names a distribution
# lacks (e.g. Ubuntu's language-pack-*-base on Debian) are skipped with a warning.
DEFAULT_PACKAGES = (
    "iso-codes", "coreutils", "git", "tar", "bash", "grep", "sed", "findutils", "diffutils",
    "gawk", "wget", "make", "gettext", "binutils-common", "gcc-12-locales", "libc-l10n",
    "util-linux-locales", "e2fsprogs-l10n", "apt", "dpkg", "debconf-i18n", "aptitude-common",
    "gnupg-l10n", "libgtk-3-common", "libglib2.0-data", "gimp-data", "gnucash-common",
    "evolution-common", "gedit-common", "nautilus-data", "gnome-control-center-data",
    "gnome-shell-common", "gnome-terminal-data", "pidgin-data", "hexchat-common",
    "gnumeric-common", "geany-common", "synaptic", "claws-mail-i18n", "sylpheed-i18n",
    "rhythmbox-data", "shotwell-common", "ktexteditor-data", "thunar-data", "xfce4-panel",
    "mate-desktop-common", "libreoffice-l10n-{tgt}", "language-pack-{tgt}-base",
)


def package_names(packages: Sequence[str], tgt: str) -> List[str]:
    return list(dict.fromkeys(p.replace("{tgt}", tgt) for p in packages))


FALLBACK_HINT = ("Alternatively prepare the parallel text elsewhere and point the recipe at it: "
                 "L10N_DATA=/path/with/{train,valid,test}.{en,de} (one sentence per line, "
                 "lines aligned).")


def catalog_filter(lang: str):
    def wanted(path: str) -> bool:
        parts = path.split("/")
        return (len(parts) >= 3 and parts[-1].endswith(".mo") and parts[-2] == "LC_MESSAGES"
                and parts[-3] == lang)
    return wanted


def extract_catalogs(package: str, deb: Path, pkgs_dir: Path, lang: str) -> List[Path]:
    """The package's `<lang>` .mo files, unpacked once into pkgs_dir/<package>.<lang>/."""
    dest = pkgs_dir / f"{package}.{lang}"
    if not dest.is_dir():
        tmp = pkgs_dir / f".{package}.{lang}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        for rel, data in debs.iter_deb_members(deb, catalog_filter(lang)):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        tmp.mkdir(parents=True, exist_ok=True)  # a package without catalogs still gets a dir
        os.replace(tmp, dest)
    return sorted(dest.rglob(f"{lang}/LC_MESSAGES/*.mo"))


def collect_pairs(catalogs: Sequence[Path], max_words: int, seen: Dict[str, None],
                  dropped: Dict[str, int]) -> List[Tuple[str, str]]:
    """Cleaned pairs of these catalogs whose English is not yet in `seen` (which is updated)."""
    pairs = []
    for mo in catalogs:
        try:
            entries = parse_mo(mo.read_bytes(), name=str(mo))
        except MoFormatError as e:
            print(f"warning: skipping {e}", file=sys.stderr)
            continue
        for msgid, msgstr in entries:
            pair, reason = clean_entry(msgid, msgstr, max_words=max_words)
            if pair is None:
                dropped[reason] = dropped.get(reason, 0) + 1
            elif pair[0] in seen:
                dropped["duplicate"] = dropped.get("duplicate", 0) + 1
            else:
                seen[pair[0]] = None
                pairs.append(pair)
    return pairs


def split_pairs(pairs: Sequence[Tuple[str, str]], valid_frac: float, test_frac: float
                ) -> Dict[str, List[Tuple[str, str]]]:
    out: Dict[str, List[Tuple[str, str]]] = {s: [] for s in SPLITS}
    for en, tgt in pairs:
        out[assign_split(split_key(en), valid_frac, test_frac)].append((en, tgt))
    return out


def cap_pairs(pairs: List[Tuple[str, str]], max_pairs: Optional[int]) -> List[Tuple[str, str]]:
    """At most max_pairs pairs, chosen by a stable hash (a smaller cap keeps a subset)."""
    if not max_pairs or len(pairs) <= max_pairs:
        return pairs
    keep = set(sorted(range(len(pairs)), key=lambda i: stable_unit(pairs[i][0], "keep:"))[:max_pairs])
    return [p for i, p in enumerate(pairs) if i in keep]


def output_files(out: Path, tgt: str) -> List[Path]:
    return [out / f"{s}.{lang}" for s in SPLITS for lang in ("en", tgt)]


def existing_build(out: Path, tgt: str, config: dict, force: bool) -> Optional[dict]:
    """The stats of a finished build with the same settings, else None (or an error)."""
    stats_path = out / "stats.json"
    if force or not stats_path.is_file() or not all(p.is_file() for p in output_files(out, tgt)):
        return None
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    old = stats.get("config") or {}
    changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
    if changed:
        raise StepError(
            f"{out} already holds a corpus built with other settings "
            f"({', '.join(changed)} differ, see {stats_path}); use another --out, or --force "
            f"to rebuild.")
    return stats


def build(workdir, out, tgt: str = "de", packages: Sequence[str] = DEFAULT_PACKAGES,
          max_pairs: Optional[int] = None, valid_frac: float = 0.015, test_frac: float = 0.015,
          max_words: int = 60, force: bool = False, log=print) -> dict:
    workdir, out = Path(workdir), Path(out)
    packages = package_names(packages, tgt)
    config = {"builder_version": BUILDER_VERSION, "tgt": tgt, "packages": list(packages),
              "max_pairs": max_pairs, "valid_frac": valid_frac, "test_frac": test_frac,
              "max_words": max_words}
    done = existing_build(out, tgt, config, force)
    if done is not None:
        log(f"[l10n] {out}: already built ({done['counts']}), nothing to do")
        return done
    if not 0 <= valid_frac < 1 or not 0 <= test_frac < 1 or valid_frac + test_frac >= 1:
        raise StepError(f"--valid-frac {valid_frac} / --test-frac {test_frac} must be in "
                         f"[0, 1) and sum to less than 1")

    start = time.time()
    debs.require_tools("Building the l10n corpus", FALLBACK_HINT)
    log(f"[l10n] downloading {len(packages)} packages into {workdir / 'debs'} (cached)")
    found = debs.download(packages, workdir / "debs", FALLBACK_HINT,
                          log=lambda m: log(f"[l10n] {m}"))

    atomic.remove_stale_temps(workdir / "pkgs")
    seen: Dict[str, None] = {}
    dropped: Dict[str, int] = {}
    pairs: List[Tuple[str, str]] = []
    per_package = {}
    for i, name in enumerate(packages, 1):
        if name not in found:
            continue
        deb = found[name]
        catalogs = extract_catalogs(name, deb, workdir / "pkgs", tgt)
        new = collect_pairs(catalogs, max_words, seen, dropped)
        pairs.extend(new)
        per_package[name] = {"deb": deb.name, "deb_bytes": deb.stat().st_size,
                             "catalogs": len(catalogs), "new_pairs": len(new)}
        log(f"[l10n] {i}/{len(packages)} {name}: {deb.stat().st_size / 1e6:.1f} MB, "
            f"{len(catalogs)} {tgt} catalogs, +{len(new)} pairs (total {len(pairs)})")
    if not pairs:
        raise StepError(f"no {tgt!r} translations found in the downloaded packages "
                         f"({', '.join(found)}); check --tgt and --packages. {FALLBACK_HINT}")

    pairs = cap_pairs(pairs, max_pairs)
    atomic.remove_stale_temps(out)
    splits = split_pairs(pairs, valid_frac, test_frac)
    for split, rows in splits.items():
        atomic.write_lines(out / f"{split}.en", (en for en, _ in rows))
        atomic.write_lines(out / f"{split}.{tgt}", (t for _, t in rows))
    stats = {
        "config": config,
        "counts": {s: len(rows) for s, rows in splits.items()},
        "words_en": {s: sum(len(en.split()) for en, _ in rows) for s, rows in splits.items()},
        "dropped": dict(sorted(dropped.items())),
        "packages": per_package,
        "missing_packages": [p for p in packages if p not in found],
        "deb_bytes_total": sum(p["deb_bytes"] for p in per_package.values()),
        "file_bytes": {p.name: p.stat().st_size for p in output_files(out, tgt)},
        "seconds": round(time.time() - start, 1),
    }
    atomic.write_text(out / "stats.json", json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    log(f"[l10n] wrote {out}: {stats['counts']} in {stats['seconds']} s")
    return stats


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m sigma_plugin.corpus.l10n", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, help="cache for .debs (W/debs) and catalogs (W/pkgs)")
    p.add_argument("--out", required=True, help="output directory for {train,valid,test}.{en,TGT}")
    p.add_argument("--tgt", default="de", help="target language code of the catalogs (default de)")
    p.add_argument("--packages", default=None,
                   help="comma-separated Debian package names; {tgt} stands for --tgt "
                        "(default: a built-in list of ~50)")
    p.add_argument("--max-pairs", type=int, default=None, help="keep at most N pairs in total")
    p.add_argument("--valid-frac", type=float, default=0.015, help="share of valid (default 0.015)")
    p.add_argument("--test-frac", type=float, default=0.015, help="share of test (default 0.015)")
    p.add_argument("--max-words", type=int, default=60, help="drop pairs with longer English")
    p.add_argument("--force", action="store_true", help="rebuild even if OUT is complete")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """The command line: exit status 0, or 2 with ``error: <message>`` on stderr."""
    return run_cli(None, _main, argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    packages = DEFAULT_PACKAGES
    if args.packages:
        packages = tuple(p.strip() for p in args.packages.split(",") if p.strip())
        if not packages:
            raise StepError("--packages is empty")
    if args.max_pairs is not None and args.max_pairs <= 0:
        raise StepError(f"--max-pairs must be positive, got {args.max_pairs}")
    try:
        build(args.workdir, args.out, tgt=args.tgt, packages=packages, max_pairs=args.max_pairs,
              valid_frac=args.valid_frac, test_frac=args.test_frac, max_words=args.max_words,
              force=args.force)
    except debs.DebianToolError as e:
        raise StepError(str(e)) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted: downloaded packages are kept; rerun the same command to resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
