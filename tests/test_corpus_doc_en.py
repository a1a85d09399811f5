"""The English documentation corpus builder: markup and code stripping, the prose filter,
exact and near-duplicate removal, the split by document, and the command line's errors.
All on text made here; the build test packs a tiny .deb with dpkg-deb (no network)."""
import gzip
import json
import random
import shutil
import subprocess

import pytest

from sigma_plugin.corpus import doc_en
from sigma_plugin.corpus.doc_en_dedup import Deduplicator, deduplicate, exact_key
from sigma_plugin.corpus.doc_en_markup import (file_paragraphs, html_paragraphs, pod_paragraphs,
                                               roff_paragraphs, text_paragraphs)
from sigma_plugin.corpus.doc_en_sources import Source, licence_summary, wants_file
from sigma_plugin.corpus.doc_en_text import english_share, is_prose, split_of

PROSE = ("The package manager keeps a list of the software that is installed on the system, "
         "and it can tell you which files belong to each of the packages.")


# --- markup and code stripping ------------------------------------------------------------

def test_html_keeps_blocks_whole_and_drops_code_scripts_and_navigation():
    page = """<?xml version="1.0" encoding="utf-8"?>
    <html><head><title>T</title><style>p {color: red}</style></head><body>
    <nav><a href="/">Home</a> | <a href="next.html">Next</a></nav>
    <h1>Installing<a class="headerlink" href="#x">¶</a></h1>
    <p>Use <code>apt install</code> to add a
       <b>new</b> package.</p>
    <pre>$ apt install hello
hello is already the newest version</pre>
    <div class="highlight-python"><div class="highlight"><span>print(1)</span></div></div>
    <ul><li>First item of a list</li><li>Second <i>item</i></li></ul>
    <script>var x = "<p>not text</p>";</script>
    <table><tr><td>cell one</td><td>cell two</td></tr></table>
    trailing text after the table</body></html>"""
    assert html_paragraphs(page) == [
        "Installing", "Use apt install to add a new package.", "First item of a list",
        "Second item", "cell one", "cell two", "trailing text after the table"]
    assert html_paragraphs("<p>Fix a leak in the parser (A. Author) <a href='#x'>§</a></p>") == [
        "Fix a leak in the parser (A. Author)"]
    assert html_paragraphs("") == [] and html_paragraphs("   \n") == []


def test_roff_drops_comments_examples_and_font_escapes():
    page = r""".\" a comment that is not text
.TH LS 1 2024
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
List information about the \fIFILE\fPs (the current directory by default).
Sort entries \fBalphabetically\fR if none of
.B \-cftuvSUX
is given.
.PP
.nf
$ ls -l /tmp
total 0
.fi
.TP
.BR \-a ", " \-\-all
do not ignore entries starting with \(lq.\(rq
"""
    assert roff_paragraphs(page) == [
        "NAME", "ls - list directory contents", "DESCRIPTION",
        "List information about the FILEs (the current directory by default). Sort entries "
        "alphabetically if none of -cftuvSUX is given.",
        "-a, --all do not ignore entries starting with \u201c.\u201d"]


def test_pod_drops_verbatim_code_and_formatting_codes():
    pod = """=head1 NAME

perlintro - a brief introduction

=head2 Running Perl programs

To run a Perl program from the Unix command line, use B<perl> with
the name of the file, see L<perlrun|perlrun> and E<lt>thisE<gt>.

    perl progname.pl

=begin html

<p>raw html</p>

=end html

=cut

sub not_pod { }
"""
    assert pod_paragraphs(pod) == [
        "NAME", "perlintro - a brief introduction", "Running Perl programs",
        "To run a Perl program from the Unix command line, use perl with the name of the file, "
        "see perlrun and <this>."]


def test_text_drops_fenced_and_indented_code_and_markdown_markup():
    text = """Title
=====

Read the [user guide](https://example.org/guide) for **all** the `details`,
or the reference.

```python
print("code")
```

Literal block follows::

    x = 1
    y = 2

.. note::

   A directive body.

# A heading

- a list item
  that wraps
"""
    assert text_paragraphs(text) == [
        "Title", "Read the user guide for all the details, or the reference.",
        "Literal block follows:", "A heading", "a list item that wraps"]


def test_file_readers_are_chosen_by_name_and_gunzip():
    html = b"<p>Hello there, this is a page.</p>"
    assert file_paragraphs("doc/x.html", html) == ["Hello there, this is a page."]
    assert file_paragraphs("man/man1/ls.1.gz", gzip.compress(b".SH NAME\nls \\- list\n")) == [
        "NAME", "ls - list"]
    assert file_paragraphs("doc/x.png", b"\x89PNG") == []
    assert file_paragraphs("doc/bad.txt.gz", b"not gzip") == []


# --- the prose filter ---------------------------------------------------------------------

def test_is_prose_keeps_english_sentences_only():
    assert is_prose(PROSE)
    assert not is_prose("Installing packages")                                  # heading
    assert not is_prose("Der Paketmanager verwaltet die Liste der installierten Programme "
                        "und weiß, welche Dateien zu welchem Paket gehören.")     # German
    assert not is_prose("0x00ff 0x1234 0xdead 0xbeef 12.5 33.1 99 100 1 2 3")   # numbers
    assert not is_prose("for (i = 0; i < n; i++) { a[i] = b[i] * c[i]; }")      # code
    assert not is_prose("impl<I, P> Clone for Filter<I, P> where I: Clone, P: Clone")  # signature
    assert not is_prose("在这个例子中 we call the out 指令将 cmd 变量的内容输出到 the port")  # Chinese
    assert not is_prose(PROSE, max_words=10)
    assert english_share("the cat of the house") == pytest.approx(0.6)


# --- exact and near duplicates -----------------------------------------------------------

def test_exact_duplicates_ignore_case_digits_and_punctuation():
    assert exact_key("Python 3.11 docs.") == exact_key("python 3.12 Docs")
    assert exact_key("Python docs") != exact_key("Perl docs")
    assert deduplicate([PROSE, PROSE.upper(), PROSE + "!!", "Another sentence entirely."],
                       near=False) == [PROSE, "Another sentence entirely."]


def test_near_duplicates_one_word_apart_are_dropped_distinct_text_kept():
    variant = PROSE.replace("software", "programs")
    other = ("Each user can keep private settings in a hidden directory of the home folder, "
             "which the desktop reads when the session starts.")
    dedup = Deduplicator()
    assert [dedup.keep(p) for p in (PROSE, variant, other, other)] == [True, False, True, False]
    assert (dedup.dropped_near, dedup.dropped_exact) == (1, 1)
    assert deduplicate([PROSE, variant], near=False) == [PROSE, variant]


def test_near_duplicate_detection_is_deterministic():
    texts = [f"Sentence number {w} talks about the {w} topic in the manual of the system."
             for w in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")]
    assert deduplicate(texts) == deduplicate(texts)


# --- split by document --------------------------------------------------------------------

def test_split_by_document_is_deterministic_and_proportional():
    ids = [f"pkg:usr/share/doc/pkg/page{i}.html" for i in range(4000)]
    first = [split_of(i, 0.1, 0.05) for i in ids]
    assert first == [split_of(i, 0.1, 0.05) for i in ids]
    share = {s: first.count(s) / len(ids) for s in ("train", "valid", "test")}
    assert share["valid"] == pytest.approx(0.1, abs=0.02)
    assert share["test"] == pytest.approx(0.05, abs=0.02)
    assert split_of(ids[0], 0.0, 0.0) == "train"


# --- which files, which licence -----------------------------------------------------------

def test_wants_file_follows_the_rules():
    debian = Source("d", lang_suffix=True)
    assert wants_file(debian, "usr/share/doc/d/ch01.en.html")
    assert not wants_file(debian, "usr/share/doc/d/ch01.de.html")
    assert wants_file(Source("p"), "usr/share/doc/p/html/tutorial/index.html")
    assert not wants_file(Source("p"), "usr/share/doc/p/html/_sources/index.rst.txt")
    assert not wants_file(Source("p"), "usr/share/doc/p/html/genindex-A.html")
    assert not wants_file(Source("p"), "usr/share/doc/p/logo.png")
    assert not wants_file(Source("h", include="/en-US/"), "usr/share/doc/h/html/fr-FR/a.html")
    assert not wants_file(Source("h"), "usr/share/doc/h/html/pt_BR/a.html")
    assert wants_file(Source("h"), "usr/share/doc/h/html/en-US/a.html")


def test_licence_summary_reads_machine_readable_and_free_form_files():
    dep5 = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nLicense: GPL-2+\n\nFiles: doc/*\nLicense: CC-BY-SA-3.0\n"
            "License: GPL-2+\n This program is free software.\n")
    assert licence_summary(dep5) == "GPL-2+, CC-BY-SA-3.0"
    assert licence_summary("Released under the GNU General Public License.") == "GPL"
    assert licence_summary(None) == "unknown"


# --- the build on a tiny package ----------------------------------------------------------

def _paragraph(doc: int, i: int) -> str:
    """A distinct English-looking sentence: the same (doc, i) gives the same text."""
    rng = random.Random(doc * 1000 + i)
    nouns = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
             for _ in range(8)]
    return (f"The {nouns[0]} of the {nouns[1]} is where {nouns[2]} and {nouns[3]} meet, "
            f"and it is {nouns[4]} for the {nouns[5]} to {nouns[6]} with {nouns[7]}.")


@pytest.fixture
def tiny_package(tmp_path, monkeypatch):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    tree = tmp_path / "tree"
    doc = tree / "usr/share/doc/tinydoc"
    (doc / "html").mkdir(parents=True)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text(
        "Package: tinydoc\nVersion: 1.0\nArchitecture: all\nMaintainer: A <a@b.c>\n"
        "Description: tiny documentation\n")
    (doc / "copyright").write_text("Format: x\n\nFiles: *\nLicense: GPL-2+\n")
    for d in range(40):
        body = "".join(f"<p>{_paragraph(d, i)}</p>" for i in range(6))
        (doc / "html" / f"page{d}.html").write_text(
            f"<html><body><p>{PROSE}</p>{body}<pre>code()</pre></body></html>")
    deb = tmp_path / "tinydoc_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    calls = []

    def download(packages, debdir, hint, log=print):
        calls.append(list(packages))
        return {p: deb for p in packages if p == "tinydoc"}

    monkeypatch.setattr(doc_en.debs, "require_tools", lambda *a, **k: None)
    monkeypatch.setattr(doc_en.debs, "download", download)
    return calls


def test_build_splits_by_document_and_resumes(tmp_path, tiny_package):
    out = tmp_path / "out"
    kw = dict(packages=["tinydoc"], valid_frac=0.2, test_frac=0.2, log=lambda m: None)
    stats = doc_en.build(tmp_path / "w", out, **kw)
    rows = [line.split("\t") for line in (out / "manifest.tsv").read_text().splitlines()[1:]]
    assert len({r[2] for r in rows}) == len(rows) == 40            # each document once
    assert {r[1] for r in rows} == {"tinydoc"} and {r[3] for r in rows} == {"GPL-2+"}
    for split in ("train", "valid", "test"):
        lines = (out / f"{split}.txt").read_text().splitlines()
        assert len(lines) == sum(int(r[4]) for r in rows if r[0] == split) > 0
        assert stats["counts"][split]["tokens"] == sum(len(line.split()) for line in lines)
    everything = "".join((out / f"{s}.txt").read_text() for s in ("train", "valid", "test"))
    assert everything.count(PROSE) == 1 and "code()" not in everything  # deduplicated, code gone
    assert stats["dropped"]["exact_duplicate"] == 39
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]

    messages = []
    doc_en.build(tmp_path / "w", out, **dict(kw, log=messages.append))
    assert "already built" in messages[0] and len(tiny_package) == 1
    with pytest.raises(Exception, match="max_docs differ.*--force"):
        doc_en.build(tmp_path / "w", out, max_docs=5, **kw)
    small = doc_en.build(tmp_path / "w", tmp_path / "slice", max_docs=5, **kw)
    assert sum(c["documents"] for c in small["counts"].values()) == 5
    slice_rows = (tmp_path / "slice/manifest.tsv").read_text().splitlines()[1:]
    assert {r.split("\t")[0] for r in slice_rows} <= {"train", "valid", "test"}
    split_of_doc = {r[2]: r[0] for r in rows}
    assert all(split_of_doc[r.split("\t")[2]] == r.split("\t")[0] for r in slice_rows)
    assert json.loads((tmp_path / "w/docs/tinydoc.json").read_text())["licence"] == "GPL-2+"


# --- command-line errors ------------------------------------------------------------------

@pytest.mark.parametrize("args, flag", [
    (["--valid-frac", "1.5"], "--valid-frac"),
    (["--test-frac", "-0.1"], "--test-frac"),
    (["--valid-frac", "0.6", "--test-frac", "0.5"], "--valid-frac"),
    (["--max-docs", "0"], "--max-docs"),
    (["--min-words", "0"], "--min-words"),
    (["--min-words", "10", "--max-words", "5"], "--max-words"),
    (["--packages", " , "], "--packages"),
])
def test_bad_options_give_one_line_errors(tmp_path, capsys, args, flag):
    out = tmp_path / "o"
    assert doc_en.main(["--workdir", str(tmp_path / "w"), "--out", str(out)] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and flag in err and "\n" not in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("which", ["--out", "--workdir"])
def test_unwritable_directories_give_one_line_errors(tmp_path, capsys, which):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    dirs = {"--out": str(tmp_path / "o"), "--workdir": str(tmp_path / "w")}
    dirs[which] = str(blocker / "sub")
    assert doc_en.main(["--workdir", dirs["--workdir"], "--out", dirs["--out"]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {which} {blocker / 'sub'}: cannot write there")
    assert "\n" not in err and blocker.read_text() == "not a directory"
