"""Command line of the speech corpus builder (`python -m sigma_plugin.corpus.tts`)."""
from __future__ import annotations

import argparse
import sys
import time

from sigma_plugin.util import StepError, run_cli

from . import debs, tts
from .tts_engines import prepare_engines
from .tts_voices import (ENGINES, KINDS, TRAIN_ENGINE_WEIGHTS, ReservedVoiceError, check_allowed,
                         parse_weights)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m sigma_plugin.corpus.tts", description=tts.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, help="cache for .debs (W/debs) and the unpacked engines (W/root)")
    p.add_argument("--root", help="LibriSpeech-layout output root (required unless --list-voices)")
    p.add_argument("--sentences", help="text file, one English sentence per line")
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-dev", type=int, default=100)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes (default 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-name", default="train-tts")
    p.add_argument("--dev-name", default="dev-tts")
    p.add_argument("--test-name", default="test-tts")
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=20)
    p.add_argument("--engines", default=",".join(ENGINES),
                   help=f"engines to use, comma-separated (default {','.join(ENGINES)})")
    p.add_argument("--engine-weights", default=",".join(f"{e}={w}" for e, w in TRAIN_ENGINE_WEIGHTS.items()),
                   help="share of training utterances per engine (default %(default)s); dev and "
                        "test give each engine the same share")
    p.add_argument("--voices", default="",
                   help="only voices whose label matches one of these comma-separated shell patterns "
                        "(e.g. 'espeak-ng:en-us*,flite:*'; see --list-voices)")
    p.add_argument("--dictionary", default="wamerican",
                   help="keep sentences whose words are all in this word list: 'wamerican' (the Debian "
                        "package's american-english, default), a file, or 'none'")
    p.add_argument("--exclude", action="append", default=[],
                   help="text file whose sentences never occur in the corpus (repeatable), e.g. the "
                        "dev/test side of the text the sentences come from")
    p.add_argument("--list-voices", action="store_true", help="print each subset's voices and exit")
    p.add_argument("--force", action="store_true", help="delete and rebuild existing subsets")
    return p.parse_args(argv)


def list_voices(args, engines) -> None:
    found = prepare_engines(args.workdir, engines, log=lambda m: print(m, file=sys.stderr))
    inventory = found.voices()
    by_kind = tts.subset_voices(inventory, patterns(args.voices))
    for kind in KINDS:
        print(f"{kind}: {len(by_kind[kind])} voices")
        for v in by_kind[kind]:
            print(f"  {v.label} ({v.sex})")
    reserved = [v.label for v in inventory if is_reserved(v)]
    print(f"refused (reserved for evaluation elsewhere): {' '.join(reserved) or '-'}")


def is_reserved(voice) -> bool:
    try:
        check_allowed(voice)
        return False
    except ReservedVoiceError:
        return True


def patterns(spec: str):
    return [p.strip() for p in spec.split(",") if p.strip()]


def main(argv=None) -> int:
    """The command line: exit status 0, or 2 with ``error: <message>`` on stderr."""
    return run_cli(None, _main, argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    if args.nj < 1:
        raise StepError(f"--nj must be >= 1, got {args.nj}")
    names = {"train": args.train_name, "dev": args.dev_name, "test": args.test_name}
    if len(set(names.values())) != 3:
        raise StepError(f"--train-name/--dev-name/--test-name must differ, got {names}")
    engines = patterns(args.engines)
    if not engines or any(e not in ENGINES for e in engines):
        raise StepError(f"--engines {args.engines}: give some of {','.join(ENGINES)}")
    try:
        weights = parse_weights(args.engine_weights)
    except ValueError as e:
        raise StepError(f"--engine-weights: {e}")
    start = time.time()
    try:
        if args.list_voices:
            tts.select_voices([], patterns(args.voices))
            list_voices(args, engines)
            return 0
        for flag, value in (("--root", args.root), ("--sentences", args.sentences)):
            if not value:
                raise StepError(f"{flag} is required to build a corpus")
        tts.build(args.workdir, args.root, args.sentences, args.n_train, args.n_dev, args.n_test,
                  nj=args.nj, seed=args.seed, names=names, min_words=args.min_words,
                  max_words=args.max_words, force=args.force, engines=engines, weights=weights,
                  voice_patterns=patterns(args.voices), dictionary=args.dictionary,
                  exclude=args.exclude)
    except debs.DebianToolError as e:
        raise StepError(str(e)) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted: finished utterances are kept; rerun the same command to resume")
    print(f"[tts] done in {time.time() - start:.1f} s: {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
