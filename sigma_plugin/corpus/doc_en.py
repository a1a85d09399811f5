"""English prose for language modelling from Debian packages' documentation.

    python -m sigma_plugin.corpus.doc_en --workdir W --out O [--packages a,b,c] [--max-docs N]

Downloads the packages' .debs with `apt-get download` (cached in W/debs, no root needed),
reads their HTML, man pages, POD and text documents into paragraphs with code and markup
removed (cached per package in W/docs), keeps the paragraphs that look like English prose,
drops exact and near-duplicate paragraphs (first occurrence wins) and writes
O/{train,valid,test}.txt (one paragraph per line), O/manifest.tsv (one row per document:
split, package, document, licence, paragraphs, tokens) and O/stats.json. A document's split
is a hash of its id, so no document is in two splits.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from sigma_plugin.util import StepError, atomic, run_cli

from . import debs
from .doc_en_dedup import Deduplicator
from .doc_en_markup import decode, file_paragraphs
from .doc_en_sources import (DEFAULT_SOURCES, Source, copyright_path, licence_summary,
                             sources_for, wants_file)
from .doc_en_text import SPLITS, is_prose, split_of, stable_unit, tokens

BUILDER_VERSION = 1
EXTRACT_VERSION = 3
FALLBACK_HINT = ("Alternatively prepare English text elsewhere and give the language-model "
                 "recipe a folder with train.txt, valid.txt and test.txt (one paragraph per line).")


def log_to(log):
    return lambda m: log(f"[doc_en] {m}")


# --- per-package extraction (cached) -------------------------------------------------------

def extract_package(source: Source, deb: Path, docs_dir: Path) -> dict:
    """Read the package's documents into docs_dir/<package>.jsonl.gz (one JSON line per document:
    its path and raw paragraphs) and docs_dir/<package>.json (licence and document list, written
    last). A finished extraction of the same .deb with the same rule is reused."""
    meta_path = docs_dir / f"{source.package}.json"
    want = {"extract_version": EXTRACT_VERSION, "deb": deb.name, "rule": source.rule()}
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if all(meta.get(k) == v for k, v in want.items()):
            return meta
    copyright_file = copyright_path(source.package)
    copyright_text = None
    docs = []
    with atomic.atomic_path(docs_dir / f"{source.package}.jsonl.gz") as tmp:
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as f:
            for path, data in debs.iter_deb_members(
                    deb, lambda p: p == copyright_file or wants_file(source, p)):
                if path == copyright_file:
                    copyright_text = decode(data)
                    continue
                paragraphs = file_paragraphs(path, data)
                if paragraphs:
                    f.write(json.dumps({"doc": path, "paragraphs": paragraphs}, ensure_ascii=False) + "\n")
                    docs.append(path)
    meta = dict(want, package=source.package, licence=licence_summary(copyright_text),
                docs=docs)
    atomic.write_text(meta_path, json.dumps(meta, ensure_ascii=False) + "\n")
    return meta


def iter_documents(docs_dir: Path, package: str) -> Iterator[Tuple[str, List[str]]]:
    with gzip.open(docs_dir / f"{package}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            yield record["doc"], record["paragraphs"]


def doc_id(package: str, path: str) -> str:
    return f"{package}:{path}"


def chosen_docs(metas: Sequence[dict], max_docs: Optional[int]) -> Optional[set]:
    """At most max_docs document ids, chosen by a stable hash (a smaller slice is a subset of a
    larger one); None keeps them all."""
    if not max_docs:
        return None
    ids = [doc_id(m["package"], d) for m in metas for d in m["docs"]]
    return set(sorted(ids, key=lambda i: stable_unit("keep:" + i))[:max_docs])


# --- the whole build -----------------------------------------------------------------------

def check_writable(directory: Path, flag: str) -> None:
    """Create `directory` and write a file there, or stop with an error naming `flag`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise StepError(f"{flag} {directory}: cannot write there ({e.strerror or e})") from None


def output_files(out: Path) -> List[Path]:
    return [out / f"{s}.txt" for s in SPLITS] + [out / "manifest.tsv"]


def existing_build(out: Path, config: dict, force: bool) -> Optional[dict]:
    stats_path = out / "stats.json"
    if force or not stats_path.is_file() or not all(p.is_file() for p in output_files(out)):
        return None
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    old = stats.get("config") or {}
    changed = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
    if changed:
        raise StepError(f"--out {out} already holds a corpus built with other settings "
                        f"({', '.join(changed)} differ, see {stats_path}); use another --out, "
                        f"or --force to rebuild.")
    return stats


def validate(valid_frac: float, test_frac: float, min_words: int, max_words: int,
             max_docs: Optional[int]) -> None:
    for flag, value in (("--valid-frac", valid_frac), ("--test-frac", test_frac)):
        if not 0 <= value < 1:
            raise StepError(f"{flag} must be in [0, 1), got {value}")
    if valid_frac + test_frac >= 1:
        raise StepError(f"--valid-frac {valid_frac} + --test-frac {test_frac} must be below 1")
    if min_words < 1:
        raise StepError(f"--min-words must be at least 1, got {min_words}")
    if max_words < min_words:
        raise StepError(f"--max-words {max_words} must be at least --min-words {min_words}")
    if max_docs is not None and max_docs <= 0:
        raise StepError(f"--max-docs must be positive, got {max_docs}")


def assemble(metas: Sequence[dict], docs_dir: Path, out: Path, valid_frac: float,
             test_frac: float, min_words: int, max_words: int, max_docs: Optional[int],
             near_dup: bool, log) -> dict:
    """Filter, deduplicate and split the extracted documents into O's text files."""
    keep = chosen_docs(metas, max_docs)
    dedup = Deduplicator(near=near_dup)
    counts = {s: {"documents": 0, "paragraphs": 0, "tokens": 0} for s in SPLITS}
    per_package: Dict[str, dict] = {}
    not_prose = 0
    with atomic.atomic_open(out / "train.txt") as train, atomic.atomic_open(out / "valid.txt") as valid, \
            atomic.atomic_open(out / "test.txt") as test, atomic.atomic_open(out / "manifest.tsv") as manifest:
        files = {"train": train, "valid": valid, "test": test}
        manifest.write("split\tpackage\tdocument\tlicence\tparagraphs\ttokens\n")
        for meta in metas:
            package = meta["package"]
            stats = per_package[package] = {"licence": meta["licence"], "deb": meta["deb"],
                                            **{s: [0, 0] for s in SPLITS}}
            for path, paragraphs in iter_documents(docs_dir, package):
                ident = doc_id(package, path)
                if keep is not None and ident not in keep:
                    continue
                kept = []
                for p in paragraphs:
                    if not is_prose(p, min_words=min_words, max_words=max_words):
                        not_prose += 1
                    elif dedup.keep(p):
                        kept.append(p)
                if not kept:
                    continue
                split = split_of(ident, valid_frac, test_frac)
                n_tokens = sum(tokens(p) for p in kept)
                files[split].write("".join(p + "\n" for p in kept))
                manifest.write(f"{split}\t{package}\t{path}\t{meta['licence']}\t{len(kept)}\t{n_tokens}\n")
                c = counts[split]
                c["documents"] += 1
                c["paragraphs"] += len(kept)
                c["tokens"] += n_tokens
                stats[split][0] += 1
                stats[split][1] += n_tokens
            log(f"{package}: train {stats['train'][0]} docs / {stats['train'][1]:,} tokens, "
                f"valid {stats['valid'][0]} / {stats['valid'][1]:,}, "
                f"test {stats['test'][0]} / {stats['test'][1]:,}")
    dropped = {"not_prose": not_prose, "exact_duplicate": dedup.dropped_exact,
               "near_duplicate": dedup.dropped_near}
    return {"counts": counts, "dropped": dropped, "packages": per_package}


def build(workdir, out, packages: Sequence[str] = tuple(s.package for s in DEFAULT_SOURCES),
          valid_frac: float = 0.01, test_frac: float = 0.01, min_words: int = 6,
          max_words: int = 1000, max_docs: Optional[int] = None, near_dup: bool = True,
          force: bool = False, log=print) -> dict:
    workdir, out = Path(workdir), Path(out)
    say = log_to(log)
    validate(valid_frac, test_frac, min_words, max_words, max_docs)
    sources = sources_for(list(packages))
    config = {"builder_version": BUILDER_VERSION, "sources": [f"{s.package} {s.rule()}" for s in sources],
              "valid_frac": valid_frac, "test_frac": test_frac, "min_words": min_words,
              "max_words": max_words, "max_docs": max_docs, "near_dup": near_dup}
    done = existing_build(out, config, force)
    if done is not None:
        say(f"{out}: already built ({_summary(done['counts'])}), nothing to do")
        return done
    check_writable(workdir, "--workdir")
    check_writable(out, "--out")

    start = time.time()
    debs.require_tools("Building the English documentation corpus", FALLBACK_HINT)
    say(f"downloading {len(sources)} packages into {workdir / 'debs'} (cached)")
    found = debs.download([s.package for s in sources], workdir / "debs", FALLBACK_HINT, log=say)

    docs_dir = workdir / "docs"
    docs_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_temps(docs_dir)
    metas = []
    for i, source in enumerate(sources, 1):
        if source.package not in found:
            continue
        t0 = time.time()
        meta = extract_package(source, found[source.package], docs_dir)
        metas.append(meta)
        say(f"{i}/{len(sources)} {source.package}: {len(meta['docs'])} documents "
            f"({meta['licence']}) [{time.time() - t0:.0f} s]")
    if not any(m["docs"] for m in metas):
        raise StepError(f"no documents found in the downloaded packages ({', '.join(found)}); "
                        f"check --packages. {FALLBACK_HINT}")

    atomic.remove_stale_temps(out)
    say("filtering, deduplicating and splitting")
    result = assemble(metas, docs_dir, out, valid_frac, test_frac, min_words, max_words,
                      max_docs, near_dup, say)
    stats = dict(config=config, **result,
                 missing_packages=[s.package for s in sources if s.package not in found],
                 deb_bytes_total=sum(found[m["package"]].stat().st_size for m in metas),
                 file_bytes={p.name: p.stat().st_size for p in output_files(out)},
                 seconds=round(time.time() - start, 1))
    atomic.write_text(out / "stats.json", json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    say(f"wrote {out}: {_summary(stats['counts'])}; dropped {stats['dropped']}; "
        f"{stats['seconds']:.0f} s")
    return stats


def _summary(counts: dict) -> str:
    return ", ".join(f"{s} {c['documents']:,} documents / {c['tokens']:,} tokens"
                     for s, c in counts.items())


# --- command line --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m sigma_plugin.corpus.doc_en", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, help="cache for .debs (W/debs) and extracted documents (W/docs)")
    p.add_argument("--out", required=True, help="output directory for {train,valid,test}.txt and manifest.tsv")
    p.add_argument("--packages", default=None,
                   help="comma-separated Debian package names (default: the built-in list of "
                        f"{len(DEFAULT_SOURCES)})")
    p.add_argument("--max-docs", type=int, default=None,
                   help="keep at most N documents, chosen by a stable hash (a small slice)")
    p.add_argument("--valid-frac", type=float, default=0.01, help="share of documents in valid (default 0.01)")
    p.add_argument("--test-frac", type=float, default=0.01, help="share of documents in test (default 0.01)")
    p.add_argument("--min-words", type=int, default=6, help="drop shorter paragraphs (default 6)")
    p.add_argument("--max-words", type=int, default=1000, help="drop longer paragraphs (default 1000)")
    p.add_argument("--no-near-dup", action="store_true", help="drop exact duplicates only")
    p.add_argument("--force", action="store_true", help="rebuild even if OUT is complete")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """The command line: exit status 0, or 2 with ``error: <message>`` on stderr."""
    return run_cli(None, _main, argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    packages = tuple(s.package for s in DEFAULT_SOURCES)
    if args.packages is not None:
        packages = tuple(p.strip() for p in args.packages.split(",") if p.strip())
        if not packages:
            raise StepError("--packages is empty")
    try:
        build(args.workdir, args.out, packages=packages, valid_frac=args.valid_frac,
              test_frac=args.test_frac, min_words=args.min_words, max_words=args.max_words,
              max_docs=args.max_docs, near_dup=not args.no_near_dup, force=args.force)
    except debs.DebianToolError as e:
        raise StepError(str(e)) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted: downloads and extracted packages are kept; rerun the "
                         "same command to resume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
