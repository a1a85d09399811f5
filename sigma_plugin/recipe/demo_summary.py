"""Final table of the demo (recipes/demo.sh): scores and where the outputs are, then a few
example outputs of each model (source / reference / hypothesis), and the ASR character error
rate of every voice of the scored subsets (per_voice.tsv).

    python -m sigma_plugin.recipe.demo_summary --workdir demo [--examples 3]

The demo's terminal (--console LOG): copy standard input to LOG unchanged, and show on the
terminal only stage headers, errors, progress bars (tqdm's, and one for fairseq training built
from its JSON log lines: updates done of --max-update, loss) and validation results.

    some-command 2>&1 | python -m sigma_plugin.recipe.demo_summary --console run.log
"""
import argparse
import codecs
import csv
import json
import os
import re
import shutil
import sys
from pathlib import Path

from sigma_plugin.util import run_cli


def mt_rows(workdir: Path):
    for res in sorted(workdir.glob("mt/exp/*/decode_*/results.json")):
        r = json.loads(res.read_text(encoding="utf-8"))
        yield ("MT " + r["name"], f"BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}", str(res.parent),
               str(res.parents[1] / "plots"))


def lm_rows(workdir: Path):
    for res in sorted(workdir.glob("lm/exp/*/eval_*/results.json")):
        r = json.loads(res.read_text(encoding="utf-8"))
        yield ("LM " + r["name"], f"perplexity {r['ppl_per_token']:.1f}/token  {r['ppl_per_word']:.1f}/word",
               str(res.parent), str(res.parents[1] / "plots"))


def decoding_of(decode_dir: Path) -> str:
    """decode_checkpoint_avg_ctc_beam5 -> avg_ctc_beam5: the checkpoint and the decoding method
    (the ASR recipe's decode folder names)."""
    name = decode_dir.name
    for prefix in ("decode_checkpoint_", "decode_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def asr_rows(workdir: Path):
    for res in sorted(workdir.glob("asr/exp/*/decode_*/RESULTS.tsv")):
        with open(res, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                yield (f"ASR {res.parents[1].name}/{row['subset']} {decoding_of(res.parent)}",
                       f"WER {float(row['wer']):.2f}  CER {float(row['cer']):.2f}", str(res.parent),
                       str(res.parents[1] / "plots"))


def voice_tables(workdir: Path):
    """(name, decodings, [(voice, [CER per decoding])]) per ASR experiment and subset that has
    per_voice.tsv files (written by the scorer when the corpus has SPEAKERS.txt)."""
    groups = {}
    for tsv in sorted(workdir.glob("asr/exp/*/decode_*/*/per_voice.tsv")):
        key = f"ASR {tsv.parents[2].name}/{tsv.parent.name}"
        with open(tsv, encoding="utf-8") as f:
            cer = {r["voice"]: float(r["cer"]) for r in csv.DictReader(f, delimiter="\t")}
        groups.setdefault(key, {})[decoding_of(tsv.parents[1])] = cer
    for name, by_decoding in groups.items():
        decodings = sorted(by_decoding)
        voices = sorted({v for cer in by_decoding.values() for v in cer})
        yield name, decodings, [(v, [by_decoding[d].get(v) for d in decodings]) for v in voices]


def print_voice_tables(workdir: Path):
    for name, decodings, rows in voice_tables(workdir):
        width = max(len(v) for v, _ in rows)
        print(f"\n{name}: CER (%) per voice (voices never heard in training)")
        cols = [max(10, len(d)) for d in decodings]
        print(f"  {'voice':<{width}}  " + "  ".join(f"{d:>{w}}" for d, w in zip(decodings, cols)))
        for voice, cers in rows:
            print(f"  {voice:<{width}}  " + "  ".join(f"{'-':>{w}}" if c is None else f"{c:{w}.2f}"
                                                     for c, w in zip(cers, cols)))


def mt_examples(workdir: Path, n: int):
    """(name, [(source, reference, hypothesis)]) from fairseq-generate's S-/T-/D- lines, by sentence id."""
    for gen in sorted(workdir.glob("mt/exp/*/decode_*/generate.out")):
        by_id = {}
        for line in gen.read_text(encoding="utf-8").splitlines():
            kind, _, rest = line.partition("-")
            sid, _, fields = rest.partition("\t")
            if kind in ("S", "T", "D") and sid.isdigit():
                text = fields.split("\t")[-1] if kind == "D" else fields
                by_id.setdefault(int(sid), {})[kind] = text
        rows = [(v.get("S", ""), v.get("T", ""), v.get("D", "")) for _, v in sorted(by_id.items())[:n]]
        yield f"MT {gen.parents[1].name}/{gen.parent.name[len('decode_'):]}", rows


def asr_examples(workdir: Path, n: int):
    """(name, [(utterance id, reference, [(decoding, hypothesis)])]) from the scorer's hyp_ref.tsv
    files, the decodings of one model and subset side by side."""
    groups = {}
    for tsv in sorted(workdir.glob("asr/exp/*/decode_*/*/hyp_ref.tsv")):
        with open(tsv, encoding="utf-8") as f:
            rows = [(r["id"], r["ref"], r["hyp"]) for _, r in zip(range(n), csv.DictReader(f, delimiter="\t"))]
        groups.setdefault(f"ASR {tsv.parents[2].name}/{tsv.parent.name}", []).append((decoding_of(tsv.parents[1]), rows))
    for name, decodings in groups.items():
        first = decodings[0][1]
        yield name, [(utt, ref, [(d, rows[i][2]) for d, rows in decodings if i < len(rows)])
                     for i, (utt, ref, _) in enumerate(first)]


def print_examples(workdir: Path, n: int):
    for name, rows in mt_examples(workdir, n):
        print(f"\n{name}: first {len(rows)} example(s)")
        for src, ref, hyp in rows:
            print(f"  src: {src}\n  ref: {ref}\n  hyp: {hyp}")
    for name, rows in asr_examples(workdir, n):
        print(f"\n{name}: first {len(rows)} example(s)")
        for utt, ref, hyps in rows:
            print(f"  utt: {utt}\n  ref: {ref}")
            width = max(len(d) for d, _ in hyps)
            for d, hyp in hyps:
                print(f"  {'hyp ' + d + ':':<{width + 5}} {hyp}")


# ---- the demo's terminal ----------------------------------------------------------------

SHOWN = re.compile(r"==== stage |\| error: |^error: |: error: |^\S+Error: |^\S+: perplexity [\d.]+ per token")
BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d+")                      # a tqdm progress bar
MAX_UPDATE = re.compile(r"'max_update': (\d+)")                   # fairseq's printed config
FAIRSEQ_JSON = re.compile(r"\| ([\w.-]+) \| (\{.*\})\s*$")             # tag: train_inner, train, or the valid subset


class Console:
    """Filters a command's output for the terminal (see the module doc); feed() text, then close()."""

    def __init__(self, out, tty: bool, width: int = 100):
        self.out, self.tty, self.width = out, tty, width
        self.bar = None            # the progress bar being redrawn (tty) or last seen (not a tty)
        self.max_update = None
        self.rest = ""

    def _write(self, text):
        self.out.write(text)
        self.out.flush()

    def _end_bar(self):
        if self.bar is not None:
            self._write("\n" if self.tty else self.bar + "\n")
            self.bar = None

    def _show_bar(self, text):
        text = text[:self.width - 1]
        if self.tty:
            self._write("\r" + text.ljust(len(self.bar or "")))
        self.bar = text

    def _line(self, line):
        m = MAX_UPDATE.search(line)
        if m:
            self.max_update = int(m.group(1))
        m = FAIRSEQ_JSON.search(line)
        if m:
            try:
                stats = json.loads(m.group(2))
            except ValueError:
                stats = None
            if isinstance(stats, dict):
                return self._fairseq(m.group(1), stats)
        if SHOWN.search(line):
            self._end_bar()
            self._write(line + "\n")

    def _fairseq(self, kind, stats):
        if kind == "train_inner":
            done = int(float(stats.get("num_updates", 0)))
            total = self.max_update
            frac = min(done / total, 1.0) if total else 0.0
            bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
            self._show_bar(f"  training: update {done}{'/' + str(total) if total else ''} [{bar}] "
                           f"epoch {stats.get('epoch', '?')}  loss {stats.get('loss', '?')}")
        elif kind != "train" and f"{kind}_loss" in stats:   # validation: keys prefixed by the subset's name
            self._end_bar()
            extra = "".join(f"  {k} {stats[kind + '_' + k]}" for k in ("ctc_tok_err", "ctc_word_err", "bleu")
                            if f"{kind}_{k}" in stats)
            self._write(f"  validation on {kind}: epoch {stats.get('epoch', '?')}  update "
                        f"{stats.get(kind + '_num_updates', '?')}  loss {stats[kind + '_loss']}{extra}\n")

    def feed(self, text):
        text = self.rest + text
        parts = re.split(r"(\r|\n)", text)
        self.rest = parts.pop()                        # an unterminated tail waits for more
        for seg, term in zip(parts[0::2], parts[1::2]):
            if BAR.search(seg):
                self._show_bar(seg.strip())
                if term == "\n":
                    self._end_bar()
            elif seg.strip():
                self._line(seg)
            elif term == "\n" and self.bar is not None and BAR.search(self.bar):
                self._end_bar()                        # tqdm's closing newline

    def close(self):
        if self.rest:
            self.feed("\n")
        self._end_bar()


def console(log: Path, inp=None, out=None) -> None:
    """Copy inp (default: standard input, bytes) to log, filtered text to out (default stdout)."""
    inp = inp if inp is not None else sys.stdin.buffer
    out = out if out is not None else sys.stdout
    tty = out.isatty()
    con = Console(out, tty, shutil.get_terminal_size((100, 24)).columns if tty else 100)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as f:
        fd = inp.fileno() if hasattr(inp, "fileno") else None
        while True:
            chunk = os.read(fd, 65536) if fd is not None else inp.read(65536)
            if not chunk:
                break
            f.write(chunk)
            f.flush()
            con.feed(decoder.decode(chunk))
    con.feed(decoder.decode(b"", final=True))
    con.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("demo"))
    ap.add_argument("--examples", type=int, default=3, help="example outputs per model and test set (0: none)")
    ap.add_argument("--console", type=Path, metavar="LOG",
                    help="filter standard input for the terminal, copying all of it to LOG (see above)")
    args = ap.parse_args(argv)
    if args.console:
        console(args.console)
        return
    rows = list(mt_rows(args.workdir)) + list(lm_rows(args.workdir)) + list(asr_rows(args.workdir))
    if not rows:
        print(f"demo_summary: no results under {args.workdir} yet")
        return
    width = max(len(r[0]) for r in rows)
    print(f"{'run':<{width}}  {'score':<24}  outputs / plots")
    for name, score, out, plots in rows:
        print(f"{name:<{width}}  {score:<24}  {out}  |  {plots}")
    print_voice_tables(args.workdir)
    if args.examples > 0:
        print_examples(args.workdir, args.examples)


if __name__ == "__main__":
    sys.exit(run_cli(None, main))
