"""Markup to plain paragraphs: HTML, roff (man pages), POD and plain text / Markdown /
reStructuredText. Code blocks are dropped, inline markup is removed, and every block the
markup delimits (an HTML paragraph, list item or table cell, a roff paragraph, a blank-line
separated text paragraph) becomes one whitespace-normalised string.

Every function here is pure: text in, list of paragraphs out.
"""
from __future__ import annotations

import gzip
import re
from typing import Callable, List, Optional

import lxml.etree
import lxml.html

_WS = re.compile(r"\s+")


def squash(text: str) -> str:
    """Whitespace runs (newlines included) to one space, ends stripped."""
    return _WS.sub(" ", text).strip()


def _non_empty(blocks) -> List[str]:
    return [b for b in (squash(x) for x in blocks) if b]


# --- HTML ---------------------------------------------------------------------------------

# Elements whose content is code, script or page furniture, never prose.
_HTML_DROP = ("script", "style", "noscript", "head", "nav", "pre", "xmp", "listing", "textarea",
              "svg", "math", "select", "button", "form", "iframe", "object")
# Classes of containers that hold highlighted code in Sphinx, pandoc, rustdoc and DocBook output,
# of signatures (Sphinx, rustdoc, Haddock, cppreference) and of Sphinx's heading anchors ("¶").
_DROP_CLASSES = ("highlight", "sourcecode", "programlisting", "screen", "example-wrap",
                 "literal-block", "headerlink", "viewcode-link", "sig-object", "code-header",
                 "src", "t-dcl-begin")
# Elements that start and end a block of text.
_HTML_BLOCKS = ("p", "div", "li", "dd", "dt", "td", "th", "tr", "blockquote", "h1", "h2", "h3",
                "h4", "h5", "h6", "ul", "ol", "dl", "table", "section", "article", "header",
                "footer", "aside", "main", "caption", "figcaption", "figure", "center", "title",
                "address", "br", "hr", "body", "summary", "details", "legend", "fieldset")
_BREAK = "\ue000"  # a private-use character: never in real text
_ANCHOR_MARK = re.compile(r"\s*[\u00b6\u00a7]$")  # a trailing "¶" or "§" link to the paragraph
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_DROP_XPATH = ("|".join(f"//{t}" for t in _HTML_DROP) + "|" + "|".join(
    f"//*[contains(concat(' ', normalize-space(translate(@class, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', "
    f"'abcdefghijklmnopqrstuvwxyz')), ' '), ' {c} ')]" for c in _DROP_CLASSES))
_BLOCK_XPATH = "|".join(f"//{t}" for t in _HTML_BLOCKS)


def html_paragraphs(text: str) -> List[str]:
    """Paragraphs of an HTML (or XHTML) page: code, scripts, navigation and the head dropped;
    each block element's own text one paragraph (nested blocks split it)."""
    text = _XML_DECL.sub("", text, count=1)
    if not text.strip():
        return []
    try:
        root = lxml.html.fromstring(text)
    except (lxml.etree.ParserError, ValueError):
        return []
    for el in root.xpath(_DROP_XPATH):
        if el.getparent() is not None:
            el.drop_tree()  # keeps the element's tail text
    for el in root.xpath(_BLOCK_XPATH):
        el.text = _BREAK + (el.text or "")
        el.tail = _BREAK + (el.tail or "")
    if root.tag in _HTML_BLOCKS:
        root.text = _BREAK + (root.text or "")
    return _non_empty(_ANCHOR_MARK.sub("", squash(b)) for b in root.text_content().split(_BREAK))


# --- roff (man pages) ---------------------------------------------------------------------

_ROFF_NAMED = {"em": "\u2014", "en": "\u2013", "lq": "\u201c", "rq": "\u201d", "oq": "\u2018",
               "cq": "\u2019", "aq": "'", "dq": '"', "bu": "\u2022", "co": "\u00a9",
               "rg": "\u00ae", "tm": "\u2122", "hy": "-", "mi": "-", "pl": "+", "mu": "\u00d7",
               "de": "\u00b0", "Fo": "\u00ab", "Fc": "\u00bb", "ti": "~", "ha": "^", "rs": "\\",
               "at": "@", "sh": "#", "Do": "$", "ga": "`", "sl": "/", "ul": "_"}
_ROFF_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\([A-Za-z]{2}|[A-Za-z0-9])"     # font changes
    r"|s[+-]?\d+|s\[[^\]]*\]"                              # size changes
    r"|\((?P<two>..)|\[(?P<long>[^\]]*)\]"                 # named characters
    r"|\*(?:\((?P<str2>..)|\[(?P<strl>[^\]]*)\]|(?P<str1>.))"  # strings
    r"|(?P<one>.))")
_ROFF_BREAKS = {"SH", "SS", "PP", "LP", "P", "TP", "TQ", "IP", "HP", "sp", "br", "RS", "RE", "TH",
                "in", "ti", "bp", "Sh", "Ss", "Pp", "Bl", "El", "It", "Bd", "Ed", "Dd", "Dt"}
_ROFF_TEXT_MACROS = {"B", "I", "SM", "SB", "Nm", "Ar", "Fl", "Em", "Sy", "Pa", "Va", "Fn", "Xr"}
_ROFF_ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}
_ROFF_CODE = {"nf": "fi", "EX": "EE", "TS": "TE", "EQ": "EN", "PS": "PE", "de": "..", "ig": ".."}


def _roff_escape(m: "re.Match") -> str:
    for group in ("two", "long", "str2", "strl", "str1"):
        name = m.group(group)
        if name is not None:
            return _ROFF_NAMED.get(name, "\u201c" if name == "lq" else "")
    one = m.group("one")
    if one is None:
        return ""  # font or size change
    return {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "|": "", "^": "",
            "&": "", "c": "", "%": "", "'": "'", "`": "`", ".": "."}.get(one, "")


def roff_unescape(line: str) -> str:
    return _ROFF_ESCAPE.sub(_roff_escape, line)


def _roff_args(rest: str) -> List[str]:
    return [a[1:-1] if len(a) >= 2 and a[0] == a[-1] == '"' else a
            for a in re.findall(r'"[^"]*"|\S+', rest)]


def roff_paragraphs(text: str) -> List[str]:
    """Paragraphs of a man page in roff (man or mdoc macros): comments, macro definitions,
    no-fill (`.nf`/`.EX`) examples, tables and equations dropped; font escapes removed."""
    blocks: List[List[str]] = [[]]
    end_of_code: Optional[str] = None

    def new_block():
        if blocks[-1]:
            blocks.append([])

    for raw in text.splitlines():
        line = raw.rstrip()
        if end_of_code is not None:
            if re.match(r"^[.']\s*" + re.escape(end_of_code) + r"\b", line) or (
                    end_of_code == ".." and line.strip() == ".."):
                end_of_code = None
            continue
        if line.startswith(('.\\"', "'\\\"", '\\"', ".\\#")) or line in (".", "'"):
            continue
        if line.startswith((".", "'")):
            parts = line[1:].strip().split(None, 1)
            if not parts:
                continue
            name, rest = parts[0], (parts[1] if len(parts) > 1 else "")
            if name in _ROFF_CODE:
                new_block()
                end_of_code = _ROFF_CODE[name]
            elif name in _ROFF_BREAKS:
                new_block()
                if name in ("SH", "SS", "Sh", "Ss") and rest:
                    blocks[-1].append(roff_unescape(" ".join(_roff_args(rest))))
                    new_block()
            elif name in _ROFF_TEXT_MACROS:
                blocks[-1].append(roff_unescape(" ".join(_roff_args(rest))))
            elif name in _ROFF_ALTERNATING:
                blocks[-1].append(roff_unescape("".join(_roff_args(rest))))
            continue  # any other request or macro carries no text
        if not line.strip():
            new_block()
            continue
        blocks[-1].append(roff_unescape(line))
    return _non_empty(" ".join(b) for b in blocks)


# --- POD (Perl documentation) -------------------------------------------------------------

_POD_CODE = re.compile(r"[A-Z]<(?:<+\s)?([^<>]*?)(?:\s>+)?>")
_POD_ENTITIES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def _pod_code(m: "re.Match") -> str:
    letter, body = m.group(0)[0], m.group(1)
    if letter in "XZ":
        return ""
    if letter == "E":
        return _POD_ENTITIES.get(body, "")
    if letter == "L":
        return body.split("|", 1)[0] if "|" in body else body.split("/")[-1].strip('"')
    return body


def pod_inline(text: str) -> str:
    for _ in range(8):  # innermost formatting codes first
        new = _POD_CODE.sub(_pod_code, text)
        if new == text:
            break
        text = new
    return text


def pod_paragraphs(text: str) -> List[str]:
    """Paragraphs of a POD file: headings and items kept, verbatim (indented, i.e. code)
    paragraphs and `=begin`/`=end` regions dropped, formatting codes (B<>, L<>, E<>) removed."""
    out, skipping, in_pod = [], None, True
    for para in re.split(r"\n[ \t]*\n", text):
        if not para.strip():
            continue
        first = para.lstrip("\n")
        if first.startswith("="):
            command, _, rest = first[1:].partition(" ")
            command = command.split("\n")[0]
            if command == "cut":
                in_pod = False
            else:
                in_pod = True
            if command == "begin":
                skipping = rest.split()[0] if rest.split() else ""
            elif command == "end":
                skipping = None
            elif skipping is None and (command.startswith("head") or command == "item") and rest:
                out.append(pod_inline(rest))
            continue
        if skipping is not None or not in_pod or first[:1] in (" ", "\t"):
            continue
        out.append(pod_inline(first))
    return _non_empty(out)


# --- plain text, Markdown, reStructuredText -----------------------------------------------

_FENCE = re.compile(r"^\s*(```|~~~)")
_UNDERLINE = re.compile(r"""^\s*([=\-~^"'`#*+<>_.:])\1{2,}\s*$""")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\[[^\]]*\]")
_RST_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`__?")
_EMPHASIS = re.compile(r"(\*\*|__|``|\*|`)(?=\S)(.+?)(?<=\S)\1")
_LIST_MARK = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)]|#\.|[a-z][.)])\s+")
_HEADING_MARK = re.compile(r"^\s{0,3}#{1,6}\s+|\s+#+\s*$")


def text_inline(line: str) -> str:
    """Inline Markdown/reST markup removed: links keep their text, images go, emphasis and
    literal markers go, roles keep their text."""
    line = _MD_IMAGE.sub("", line)
    line = _MD_LINK.sub(lambda m: m.group(1) or m.group(2), line)
    line = _RST_ROLE.sub(r"\1", line)
    line = _RST_LINK.sub(r"\1", line)
    line = _EMPHASIS.sub(r"\2", line)
    return line


def text_paragraphs(text: str) -> List[str]:
    """Blank-line separated paragraphs of plain text, Markdown or reST: fenced and indented
    code blocks, reST directives/comments (`.. x::` and their bodies), section underlines,
    tables and quote/list markers dropped; a paragraph's lines joined."""
    out: List[str] = []
    lines = text.replace("\r\n", "\n").replace("\t", "        ").split("\n")
    fence: Optional[str] = None
    para: List[str] = []
    in_directive = False

    def flush():
        if para:
            out.append(" ".join(para))
            para.clear()

    for line in lines:
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1) == fence:
                fence = None
            continue
        if m:
            flush()
            fence = m.group(1)
            continue
        if not line.strip():
            flush()
            continue
        indent = len(line) - len(line.lstrip(" "))
        if in_directive and indent > 0:
            continue
        in_directive = False
        if line.lstrip().startswith(".. ") or line.strip() == "..":
            flush()
            in_directive = True
            continue
        if not para and indent >= 4:  # an indented code block (or a literal block of reST)
            in_directive = True
            continue
        if _UNDERLINE.match(line) or line.lstrip().startswith(("|", "+-", "+=")):
            flush()  # a section underline ends the heading above; tables are dropped
            continue
        stripped = line.strip()
        if stripped.startswith(">"):
            stripped = stripped.lstrip("> ")
        if _LIST_MARK.match(stripped):
            flush()
            stripped = _LIST_MARK.sub("", stripped)
        if _HEADING_MARK.match(stripped):
            flush()
            out.append(_HEADING_MARK.sub("", stripped))
            continue
        if stripped.endswith("::"):
            stripped = stripped[:-1]
        para.append(text_inline(stripped))
    flush()
    return _non_empty(out)


# --- choosing a reader by file name ----------------------------------------------------------

_HTML_NAME = re.compile(r"\.(?:x?html?)(?:\.en)?$")
_MAN_NAME = re.compile(r"(?:^|/)man/man\d[^/]*/[^/]+\.\d\w*$")


def reader_for(name: str) -> Optional[Callable[[str], List[str]]]:
    """The paragraph reader for a file name (a trailing `.gz` ignored), or None."""
    if name.endswith(".gz"):
        name = name[:-3]
    if _HTML_NAME.search(name):
        return html_paragraphs
    if name.endswith(".pod"):
        return pod_paragraphs
    if _MAN_NAME.search(name):
        return roff_paragraphs
    if name.endswith((".txt", ".md", ".markdown", ".rst")):
        return text_paragraphs
    return None


def decode(data: bytes, name: str = "") -> str:
    """File bytes as text: gunzipped when the name ends in `.gz`, UTF-8 else Latin-1."""
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def file_paragraphs(name: str, data: bytes) -> List[str]:
    """Paragraphs of a file given its name and bytes ([] for a kind no reader handles)."""
    reader = reader_for(name)
    if reader is None:
        return []
    try:
        text = decode(data, name)
    except (OSError, EOFError):
        return []  # a corrupt .gz
    return reader(text)
