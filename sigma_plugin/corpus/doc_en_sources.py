"""The Debian packages the English prose corpus is read from, which of their files are read,
and the licence each package states.

Chosen for long runs of English prose: Debian's own books and manuals first, then the user
guides, tutorials and references of languages, databases and tools (HTML built by Sphinx,
DocBook, Texinfo, rustdoc, javadoc, Haddock, Scribble), the Linux man-pages project and Perl's
POD manuals. Left out: API references made only of signatures (Doxygen), PDF-only documents,
info files (the GNU manuals with invariant sections are outside Debian main) and other
languages' translations (each multi-language package is limited to its English files).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from .doc_en_markup import reader_for


@dataclass(frozen=True)
class Source:
    package: str
    include: Optional[str] = None   # regex a file path must match (search), if given
    exclude: Optional[str] = None   # regex a file path must not match
    lang_suffix: bool = False       # files named *.<lang>.html: only the English ones

    def rule(self) -> str:
        return f"include={self.include!r} exclude={self.exclude!r} lang_suffix={self.lang_suffix}"


# Generated pages that are indexes, search pages, highlighted source code or class-use lists.
COMMON_EXCLUDE = (r"/(?:_sources|_modules|_static|_images|src|class-use|index-files|search|"
                  r"doctrees|_downloads)/|/(?:genindex[^/]*|py-modindex|search|index-all|"
                  r"allclasses[^/]*|overview-tree|[^/]*-tree|doc-index[^/]*|searchindex)\.html$|"
                  r"/(?:changelog|copyright|NEWS)[^/]*$")
_LOCALE_DIR = re.compile(r"/([a-z]{2,3}[-_][A-Z]{2})/")  # de-DE/, pt_BR/: a translation
_LANG_SUFFIX = re.compile(r"\.([a-z]{2}(?:[-_][A-Za-z]{2,4})?)\.x?html?(?:\.gz)?$")

DEFAULT_SOURCES = (
    # Debian's books and manuals
    Source("debian-reference-en", lang_suffix=True),
    Source("debian-handbook", include=r"/html/en-US/"),
    Source("debian-policy", lang_suffix=True),
    Source("developers-reference", lang_suffix=True),
    Source("maint-guide", lang_suffix=True),
    Source("debian-faq", lang_suffix=True),
    Source("harden-doc", include=r"/html/en-US/"),
    Source("debian-history", lang_suffix=True),
    Source("debmake-doc", lang_suffix=True),
    Source("installation-guide-amd64", include=r"/installation-guide-amd64/en/"),
    Source("debian-edu-doc-en", lang_suffix=True),
    Source("debian-kernel-handbook"),
    Source("apt-doc", lang_suffix=True),
    # languages, databases, tools
    Source("python3.11-doc"),
    Source("postgresql-doc-15"),
    Source("linux-doc-6.1", include=r"/html/"),
    Source("erlang-doc"),
    Source("racket-doc"),
    Source("rust-web-doc", include=r"/html/(?:book|reference|nomicon|rust-by-example|edition-guide|"
                                   r"rustc|embedded-book|error_codes|unstable-book|style-guide|"
                                   r"rustdoc|cargo|clippy|std)/"),
    Source("ghc-doc", exclude=r"\.txt$"),  # Hoogle databases, not documents
    Source("openjdk-17-doc"),
    Source("qtbase5-doc-html"),
    Source("lilypond-doc-html", include=r"/Documentation/", lang_suffix=True),
    Source("gnucash-docs", include=r"/gnucash-(?:guide|help)-en/"),
    Source("gimp-help-en", include=r"/help/en/"),
    Source("freedombox-doc-en", include=r"/manual/en/"),
    Source("apache2-doc", include=r"/manual/en/"),
    Source("r-doc-html"),
    Source("octave-doc"),
    Source("git-doc"),
    Source("python-django-doc"),
    Source("python-sklearn-doc"),
    Source("python-pandas-doc"),
    Source("python-scipy-doc"),
    Source("python-sympy-doc"),
    Source("python-astropy-doc"),
    Source("python-statsmodels-doc"),
    Source("python-dask-doc"),
    Source("python-xarray-doc"),
    Source("python-sqlalchemy-doc"),
    Source("python-flask-doc"),
    Source("python-werkzeug-doc"),
    Source("python-tornado-doc"),
    Source("python-pytest-doc"),
    Source("python-scrapy-doc"),
    Source("twisted-doc"),
    Source("sphinx-doc"),
    Source("cmake-doc"),
    Source("doxygen-doc"),
    Source("wireshark-doc"),
    Source("sqlite3-doc"),
    Source("maxima-doc"),
    Source("gnuplot-doc"),
    Source("bash-doc"),
    Source("zsh-doc"),
    Source("exim4-doc-html"),
    Source("postfix-doc"),
    Source("bind9-doc"),
    Source("nodejs-doc"),
    Source("db5.3-doc"),
    Source("ada-reference-manual-2012"),
    Source("haskell98-report"),
    Source("cppreference-doc-en-html"),
    Source("pacemaker-doc"),
    Source("grass-doc"),
    Source("renpy-doc"),
    Source("sagemath-doc", include=r"/html/en/"),
    Source("libboost1.74-doc"),
    Source("fp-docs-3.2.2"),
    Source("libreoffice-help-en-us"),
    Source("vim-doc"),
    Source("ruby3.1-doc"),
    Source("libglib2.0-doc"),
    Source("libgtk-4-doc"),
    Source("python-biopython-doc"),
    Source("python-skimage-doc"),
    Source("python-celery-doc"),
    Source("python-kombu-doc"),
    Source("python-gevent-doc"),
    Source("python-tables-doc"),
    Source("python-nibabel-doc"),
    Source("python-lxml-doc"),
    Source("python-hypothesis-doc"),
    Source("python-cryptography-doc"),
    Source("python-pil-doc"),
    Source("python-mpmath-doc"),
    Source("cython-doc"),
    Source("docutils-doc"),
    Source("buildbot-doc"),
    Source("scons-doc"),
    Source("mit-scheme-doc"),
    Source("perl-doc", include=r"\.pod$"),
    Source("manpages", include=r"^usr/share/man/man\d/"),
    Source("manpages-dev", include=r"^usr/share/man/man\d/"),
)


def sources_for(packages: List[str]) -> List[Source]:
    """The Source of each name (the built-in rule, or every readable file for other names)."""
    known: Dict[str, Source] = {s.package: s for s in DEFAULT_SOURCES}
    return [known.get(p, Source(p)) for p in dict.fromkeys(packages)]


def copyright_path(package: str) -> str:
    return f"usr/share/doc/{package}/copyright"


def wants_file(source: Source, path: str) -> bool:
    """Whether `path` (inside the package, no leading './') is a document to read."""
    if reader_for(path) is None:
        return False
    if re.search(COMMON_EXCLUDE, "/" + path):
        return False
    if source.include and not re.search(source.include, path):
        return False
    if source.exclude and re.search(source.exclude, path):
        return False
    locale = _LOCALE_DIR.search("/" + path)
    if locale and not locale.group(1).startswith("en"):
        return False
    if source.lang_suffix:
        m = _LANG_SUFFIX.search(path)
        if m and m.group(1).lower() not in ("en", "en-us", "en_us", "en-gb", "en_gb"):
            return False
    return True


_LICENCE_WORDS = (
    (r"GNU (?:Library|Lesser) General Public License", "LGPL"),
    (r"GNU General Public License|\bGPL\b", "GPL"),
    (r"GNU Free Documentation License|\bGFDL\b", "GFDL"),
    (r"Apache License", "Apache"),
    (r"Creative Commons|\bCC-BY", "CC-BY"),
    (r"Open Publication License", "OPL"),
    (r"Artistic License", "Artistic"),
    (r"Permission is hereby granted, free of charge", "Expat"),
    (r"\bBSD\b|Redistribution and use in source and binary forms", "BSD"),
    (r"public domain", "public-domain"),
)


def licence_summary(copyright_text: Optional[str], limit: int = 4) -> str:
    """Short licence names from a Debian copyright file: the `License:` fields of the
    machine-readable format, else licences the text names; 'unknown' without a file."""
    if not copyright_text:
        return "unknown"
    names = []
    machine_readable = copyright_text.lstrip().startswith("Format:")
    for line in copyright_text.splitlines() if machine_readable else ():
        if line.startswith("License:"):
            name = line.split(":", 1)[1].strip()
            if name and len(name) <= 40 and name not in names:
                names.append(name)
    if not names:
        names = [n for pattern, n in _LICENCE_WORDS if re.search(pattern, copyright_text, re.I)]
    if not names:
        return "see copyright file"
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" (+{more} more)" if more > 0 else "")
