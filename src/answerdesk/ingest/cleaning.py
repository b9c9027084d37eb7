"""Text cleaning: Unicode normalization and HTML, Markdown and plain text split into heading sections.

Every function here is pure: it takes text and returns new values, and never touches the file system.

HTML is parsed with ``lxml.html`` and walked with ``lxml.etree.iterwalk``, never with recursive Python, so
a deeply nested page cannot raise ``RecursionError``. libxml2 stops parsing at 2,048 levels of nesting even
with ``huge_tree`` and would silently drop the rest of the page; when that happens the page is parsed again
by a tokenizer that flattens elements nested deeper than :data:`_MAX_FALLBACK_DEPTH`, so no text is lost.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import lxml.etree as etree
import lxml.html

from answerdesk.errors import IngestError
from answerdesk.types import Section

log = logging.getLogger(__name__)

# Line separators that NFKC leaves alone; vertical tab and form feed are page/line breaks in PDF text.
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
# C0/C1 controls except \t and \n, zero-width characters, bidi controls and other invisible format
# characters: they break search (a zero-width space splits a word) and can hide text from reviewers.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f"
    "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
_INNER_SPACE = re.compile(r"(?<=\S)[ \t]+")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_HTML_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Return ``text`` in NFKC with invisible characters removed and whitespace tidied.

    Line endings become ``\\n``; control, zero-width and bidi characters are dropped (``\\n`` and ``\\t``
    are kept); runs of spaces and tabs inside a line become one space, while a line's leading indentation
    is kept so that nested Markdown lists and code survive; trailing spaces go; at most one blank line
    separates paragraphs; blank lines at the start and end are removed. Raises nothing.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = _INNER_SPACE.sub(" ", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")


def _one_line(text: str) -> str:
    return " ".join(normalize_text(text).split())


def plain_to_sections(text: str) -> list[Section]:
    """Plain text as one section with an empty heading path; no section when nothing is left. Raises nothing."""
    cleaned = normalize_text(text)
    return [Section((), cleaned)] if cleaned else []


# -- Markdown ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")


class _SectionCollector:
    """Collects lines under the current heading path; a heading of level n replaces levels n and deeper."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.lines: list[str] = []
        self._path: list[tuple[int, str]] = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        self._path = [(lvl, t) for lvl, t in self._path if lvl < level]
        self._path.append((level, text))

    def flush(self) -> None:
        text = normalize_text("\n".join(self.lines))
        self.lines = []
        if text:
            self.sections.append(Section(tuple(t for _, t in self._path), text))


def _closes_fence(line: str, fence: str) -> bool:
    # A fence closes on the same character, at least as long, with nothing else on the line.
    match = _FENCE.match(line)
    return bool(match) and not line.strip().strip(fence[0]) and len(line.strip()) >= len(fence)


def markdown_to_sections(markdown: str) -> tuple[str, list[Section]]:
    """Split Markdown into sections on ATX headings (``#`` to ``######``); returns ``(title, sections)``.

    ``#`` lines inside fenced code blocks are code, not headings. Tables and other Markdown stay as they
    are. The title is the first level-1 heading, or ``""``. Raises nothing.
    """
    collector = _SectionCollector()
    title = ""
    fence: str | None = None
    for line in normalize_text(markdown).split("\n"):
        fence_match = _FENCE.match(line)
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
            collector.lines.append(line)
            continue
        if fence_match:
            fence = fence_match.group(1)
            collector.lines.append(line)
            continue
        heading = _ATX_HEADING.match(line)
        if heading is None:
            collector.lines.append(line)
            continue
        level = len(heading.group(1))
        text = _CLOSING_HASHES.sub("", (heading.group(2) or "").strip()).strip()
        if level == 1 and not title:
            title = text
        collector.heading(level, text)
    collector.flush()
    return title, collector.sections


# -- HTML: parsing ------------------------------------------------------------------------------------------

#: Deeper elements are folded into their ancestor when the fallback tokenizer builds the tree.
_MAX_FALLBACK_DEPTH = 512
_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
# The only attributes the cleaner reads; anything else is not copied (and cannot trip lxml's name checks).
_KEPT_ATTRIBUTES = frozenset({"id", "class", "role", "aria-label", "colspan"})
_TAG_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")


class _FlatteningTreeBuilder(HTMLParser):
    """Builds an lxml tree from HTML tokens, folding elements deeper than ``_MAX_FALLBACK_DEPTH``.

    Only used when libxml2 refuses a page for its nesting depth. Folded block elements leave a ``<br>``
    so that their text still starts on a new line.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._builder = etree.TreeBuilder(parser=lxml.html.HTMLParser())
        self._open: list[tuple[str, bool]] = []  # (tag, whether it became an element)
        self._open_count: dict[str, int] = {}  # so that a stray end tag costs O(1), not a stack scan
        self._depth = 0
        self._at_break = False
        self._builder.start("html", {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html" or not _TAG_NAME.match(tag):
            return
        if tag in _VOID_TAGS:
            self._builder.start(tag, {})
            self._builder.end(tag)
            return
        real = self._depth < _MAX_FALLBACK_DEPTH
        if real:
            kept = {k: _INVISIBLE.sub("", v or "") for k, v in attrs if k in _KEPT_ATTRIBUTES}
            self._builder.start(tag, kept)
            self._depth += 1
        elif tag in _BLOCK_TAGS and not self._at_break:
            self._builder.start("br", {})
            self._builder.end("br")
            self._at_break = True
        self._open.append((tag, real))
        self._open_count[tag] = self._open_count.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        # An end tag closes its element and everything left open inside it; a stray one is ignored.
        if not self._open_count.get(tag):
            return
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                self._close_down_to(index)
                return

    def handle_data(self, data: str) -> None:
        self._builder.data(_INVISIBLE.sub("", data))
        self._at_break = self._at_break and not data.strip()

    def _close_down_to(self, index: int) -> None:
        while len(self._open) > index:
            tag, real = self._open.pop()
            self._open_count[tag] -= 1
            if real:
                self._builder.end(tag)
                self._depth -= 1

    def build(self, html: str) -> Any:
        self.feed(html)
        self.close()
        self._close_down_to(0)
        self._builder.end("html")
        return self._builder.close()


def _parse_html(html: str, source: str) -> Any | None:
    parser = lxml.html.HTMLParser(huge_tree=True, recover=True, remove_comments=True, remove_pis=True, encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(html.encode("utf-8", errors="replace"), parser=parser)
    except etree.ParserError:
        return None  # "Document is empty": nothing but whitespace or comments.
    except etree.LxmlError as exc:
        raise IngestError(source, f"could not parse HTML: {exc}") from exc
    if any(e.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for e in parser.error_log):
        log.warning("%s: HTML nests too deep for libxml2; parsed again with deep elements flattened", source)
        return _FlatteningTreeBuilder().build(html)
    return root


# -- HTML: boilerplate --------------------------------------------------------------------------------------

_BOILERPLATE_TAGS = frozenset(
    {"script", "style", "noscript", "nav", "footer", "aside", "form", "iframe", "svg", "template"}
)
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "menu", "menubar", "complementary"})
_BOILERPLATE_MARKERS = (
    "cookie", "consent", "gdpr", "banner", "breadcrumb", "navbar", "navigation", "menu", "sidebar", "footer",
)  # fmt: skip
_WORD = re.compile(r"[^a-z0-9]+")
_NEVER_DROPPED = frozenset({"html", "body", "main", "article"})
_CONTENT_INSIDE = "boolean(.//main | .//article | .//*[@role='main'])"


def _looks_like_boilerplate(element: Any) -> bool:
    tag = element.tag
    if tag in _NEVER_DROPPED:
        return False
    if tag in _BOILERPLATE_TAGS:
        return True
    if tag == "header" and next(element.iterancestors("article", "main"), None) is None:
        return True  # a site header; an article's own header holds its title and byline
    if (element.get("role") or "").strip().lower() in _BOILERPLATE_ROLES:
        return True
    label = " ".join(element.get(name) or "" for name in ("id", "class", "aria-label")).lower()
    words = [w for w in _WORD.split(label) if w]
    if "nav" not in words and not any(m in w for w in words for m in _BOILERPLATE_MARKERS):
        return False
    # Layout wrappers are often called "has-sidebar" or "page-with-menu"; never drop the article itself.
    return not element.xpath(_CONTENT_INSIDE)


def _drop_boilerplate(root: Any) -> None:
    doomed = []
    walker = etree.iterwalk(root, events=("start",))
    for _event, element in walker:
        if isinstance(element.tag, str) and _looks_like_boilerplate(element):
            doomed.append(element)
            walker.skip_subtree()
    for element in doomed:
        element.drop_tree()  # keeps the element's tail text


def _content_roots(root: Any) -> list[Any]:
    """``<main>`` when present, else the outermost ``<article>`` elements, else ``<body>``."""
    main = root.xpath("(//main | //*[@role='main'])[1]")
    if main:
        return [main[0]]
    articles = root.xpath("//article[not(ancestor::article)]")
    if articles:
        return list(articles)
    body = root.find("body")
    return [body if body is not None else root]


# -- HTML: text ---------------------------------------------------------------------------------------------

_HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
_LIST_TAGS = frozenset({"ul", "ol", "menu"})
_LINE_TAGS = frozenset({"li", "dt", "dd", "tr", "td", "th", "caption", "summary", "figcaption"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "blockquote", "body", "details", "dialog", "div", "dl", "fieldset", "figure",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol", "p", "pre", "section",
        "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip


class _HtmlText(_SectionCollector):
    """Turns walk events into lines: blocks become paragraphs, list items ``- item`` lines."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[str] = []
        self._bullet = ""
        self._list_depth = 0
        self._pre_depth = 0

    def text(self, text: str | None) -> None:
        if text:
            self._parts.append(text if self._pre_depth else _HTML_SPACE.sub(" ", text))

    def end_line(self) -> None:
        line = "".join(self._parts)
        self._parts = []
        line = line.strip("\n") if self._pre_depth else line.strip()
        if not line:
            return
        indent = "  " * self._list_depth
        self.lines.append(self._bullet + line if self._bullet else indent + line)
        self._bullet = ""

    def end_block(self) -> None:
        self.end_line()
        # Items of one list stay on consecutive lines; elsewhere a block ends a paragraph.
        if not self._list_depth and self.lines and self.lines[-1]:
            self.lines.append("")

    def add_lines(self, lines: list[str]) -> None:
        self.end_block()
        self.lines.extend(lines)
        self.end_block()

    def start(self, tag: str) -> None:
        if tag == "br":
            self.end_line()
        elif tag in _LIST_TAGS:
            self.end_line()
            self._list_depth += 1
        elif tag == "li":
            self.end_line()
            self._bullet = "  " * max(self._list_depth - 1, 0) + "- "
        elif tag == "pre":
            self.end_block()
            self._pre_depth += 1
        elif tag in _LINE_TAGS:
            self.end_line()
        elif tag in _BLOCK_TAGS:
            self.end_block()

    def end(self, tag: str) -> None:
        if tag in _LIST_TAGS:
            self.end_line()
            self._list_depth = max(self._list_depth - 1, 0)
            self.end_block()
        elif tag == "pre":
            self.end_block()
            self._pre_depth = max(self._pre_depth - 1, 0)
        elif tag in _LINE_TAGS:
            self.end_line()
        elif tag in _BLOCK_TAGS:
            self.end_block()

    def finish(self) -> list[Section]:
        self.end_block()
        self.flush()
        return self.sections


def _cell_text(cell: Any) -> str:
    return _one_line(cell.text_content()).replace("|", "\\|")


def _colspan(cell: Any) -> int:
    raw = (cell.get("colspan") or "1").strip()
    return min(max(int(raw), 1), 50) if raw.isdigit() else 1


def _is_layout_table(table: Any, widths: list[int]) -> bool:
    # Old pages lay out whole articles in one-column tables; those are read as text, not as data.
    return (
        (table.get("role") or "").lower() in ("presentation", "none")
        or max(widths, default=0) <= 1
        or bool(table.xpath("boolean(.//table)"))
    )


def _table_rows(table: Any) -> Iterator[tuple[bool, list[str]]]:
    for tr in table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr"):
        cells = tr.xpath("./th | ./td")
        row: list[str] = []
        for cell in cells:
            row.append(_cell_text(cell))
            row.extend([""] * (_colspan(cell) - 1))
        is_header = tr.getparent().tag == "thead" or (bool(cells) and all(c.tag == "th" for c in cells))
        if any(row):
            yield is_header, row


def _table_to_markdown(table: Any) -> list[str] | None:
    """A GitHub Markdown table, or None when the table only lays out the page."""
    rows = list(_table_rows(table))
    if _is_layout_table(table, [len(r) for _, r in rows]):
        return None
    header_at = next((i for i, (is_header, _) in enumerate(rows) if is_header), 0)
    header = rows.pop(header_at)[1]
    width = max([len(header)] + [len(r) for _, r in rows])

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cells + [""] * (width - len(cells))) + " |"

    caption = table.find("caption")
    lines = [_one_line(caption.text_content())] if caption is not None else []
    lines += [line(header), line(["---"] * width)]
    lines += [line(r) for _, r in rows]
    return [x for x in lines if x]


def _walk(root: Any, out: _HtmlText) -> None:
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            level = _HEADING_LEVELS.get(tag)
            if level is not None:
                out.end_block()
                heading = _one_line(element.text_content())
                if heading:
                    out.heading(level, heading)
                walker.skip_subtree()
                continue
            if tag == "table":
                markdown = _table_to_markdown(element)
                if markdown is not None:
                    out.add_lines(markdown)
                    walker.skip_subtree()
                    continue
            out.start(tag)
            out.text(element.text)
        else:
            if tag not in _HEADING_LEVELS:
                out.end(tag)
            if element is not root:
                out.text(element.tail)


def html_to_sections(html: str, *, source: str) -> tuple[str, list[Section]]:
    """Extract the readable content of an HTML page as ``(title, sections)``.

    Scripts, styles, navigation, site headers and footers, forms, cookie and consent banners, breadcrumbs,
    menus and sidebars are dropped; ``<main>`` or ``<article>`` is preferred when present. Tables become
    GitHub Markdown tables, list items ``- item`` lines, and ``<h1>``-``<h6>`` start sections. The title
    is ``<title>``, else the first ``<h1>``, else ``""``. ``source`` names the page in errors and logs.

    Raises :class:`IngestError` when lxml cannot parse the page at all.
    """
    root = _parse_html(html, source)
    if root is None:
        return "", []
    titles = root.xpath("//title[not(ancestor::svg)]")
    title = _one_line(titles[0].text_content()) if titles else ""
    _drop_boilerplate(root)
    out = _HtmlText()
    for content in _content_roots(root):
        _walk(content, out)
        if not title:
            first_h1 = content.find(".//h1")
            title = _one_line(first_h1.text_content()) if first_h1 is not None else ""
    return title, out.finish()
