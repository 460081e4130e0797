"""The published layout of a compliance report -> the text the report parser reads.

A PDF page of a G7 Research Group report holds, besides the chapter's text: a running header
(the report's title, "G7 Research Group / <date>"), the page number, and the footnotes cited
on the page, at its foot, in a smaller font, numbered with superscripts (continuing at the
foot of the next page when they do not fit). Lines are wrapped at the page width (at the
hyphen of a compound word, a URL anywhere) and headings can wrap over two lines; tables are
cells placed at positions, which text extraction flattens to "Japan 0".

:func:`layout_text` takes the lines of each page with their position and font size
(:mod:`classifier.report_pdf` reads them from a PDF) and rebuilds the text in the shape the
parser knows from PDF-extracted chapters (``source_format = "pdf-text"``): one paragraph per
line, headings on lines of their own, footnotes as ``⁴⁴¹⁷ Title, Publisher (Place) Date. URL``
paragraphs, table rows as tab-separated cells. Running headers and page numbers are dropped.
It also says on which page each output line began, so errors can name the page.

Every step looks at each line a bounded number of times: time is linear in the document.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LaidOut", "Line", "Page", "Run", "layout_text", "rows_from_flat_lines"]

_TO_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(slots=True)
class Run:
    """Text drawn in one font at one position: ``top`` grows down the page, in points."""

    text: str
    x: float
    top: float
    size: float
    bold: bool = False


@dataclass(slots=True)
class Line:
    runs: list[Run]
    top: float = 0.0  # the baseline of the line's main text
    size: float = 0.0  # the main text's font size (superscripts left out)
    bold: bool = False
    text: str = ""


@dataclass
class Page:
    number: int
    lines: list[Line] = field(default_factory=list)


@dataclass
class LaidOut:
    text: str
    line_pages: list[int]  # output line (1-based index - 1) -> page number
    pages: int
    running: list[str]  # the running header lines found (once each)

    def page_of(self, line: int | None) -> int | None:
        if line is None or not self.line_pages:
            return None
        return self.line_pages[min(max(line - 1, 0), len(self.line_pages) - 1)]


# ---------------------------------------------------------------------------
# Lines from runs


def lines_from_runs(runs: list[Run]) -> list[Line]:
    """Group a page's runs (in drawing order) into lines; digit runs raised and smaller than the
    text around them are footnote markers and become Unicode superscripts."""
    lines: list[Line] = []
    current: list[Run] = []
    base_top = base_size = 0.0
    for run in runs:
        if not run.text:
            continue
        if current:
            tolerance = 0.6 * max(base_size, run.size)
            same = abs(run.top - base_top) <= tolerance
            if not same and run.size < 0.8 * base_size and base_top - base_size <= run.top <= base_top:
                same = True  # a superscript above the baseline
            if not same and run.top < base_top and run.text.strip().isdecimal():
                # a marker drawn before the text it belongs to (a footnote's number)
                same = abs(run.top - base_top) <= base_size
            if not same:
                lines.append(_finish_line(current))
                current = []
        if not current or (run.size >= base_size and run.text.strip()):
            base_top, base_size = run.top, run.size  # the line's main text sets its baseline
        current.append(run)
    if current:
        lines.append(_finish_line(current))
    return lines


def _finish_line(runs: list[Run]) -> Line:
    main = max((r.size for r in runs if r.text.strip()), default=runs[0].size)
    parts = []
    top = None
    bold = True
    for r in runs:
        t = r.text
        if r.size < 0.8 * main and t.strip().isdecimal():
            parts.append(t.strip().translate(_TO_SUPERSCRIPT))
            continue
        if t.strip():
            bold = bold and r.bold
            if top is None or r.size >= main:
                top = r.top
        parts.append(t)
    text = " ".join("".join(parts).split()) if "\n" in "".join(parts) else "".join(parts).strip()
    return Line(runs, top if top is not None else runs[0].top, main, bold and bool(text), text)


# ---------------------------------------------------------------------------
# Pages -> paragraphs


_DIGITS = re.compile(r"\d+")
_RESEARCH_GROUP = re.compile(r"G[78] Research Group\s*/")
_SUPERSCRIPT_START = re.compile(r"^[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_URL_START = re.compile(r"h?ttps?:")
_URL_PIECE = re.compile(r"^[\w\-./%~?=&#+:;@!$,*'()]+$")
_SECTION_TABLES = {"assessment": "assessment", "scoring guidelines": "scoring", "contents": "contents"}
_WORD = re.compile(r"[A-Za-z]+")
_COMPOUND = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


def _key(text: str) -> str:
    return _DIGITS.sub("#", " ".join(text.split()))


def _running_lines(pages: list[Page]) -> set[tuple[int, int]]:
    """(page index, line index) of running headers and page numbers: lines at the top or foot of
    a page whose text, digits aside, recurs there on other pages, bare numbers there, and
    'G7 Research Group / <date>' lines."""
    edges: list[tuple[int, int, str]] = []
    for p, page in enumerate(pages):
        n = len(page.lines)
        for i in sorted({0, 1, n - 2, n - 1}):
            if 0 <= i < n:
                edges.append((p, i, _key(page.lines[i].text)))
    pages_with: dict[str, set[int]] = {}
    for p, _, key in edges:
        pages_with.setdefault(key, set()).add(p)
    threshold = max(2, len(pages) // 3)
    found = set()
    for p, i, key in edges:
        text = pages[p].lines[i].text
        bare = key == "#" and i in (0, len(pages[p].lines) - 1)  # a page number, not a URL's tail
        if bare or (key != "#" and (_RESEARCH_GROUP.search(text) or len(pages_with[key]) >= threshold)):
            found.add((p, i))
    return found


def layout_text(pages: list[Page]) -> LaidOut:
    """Rebuild a report's text from its pages' lines (see the module docstring)."""
    all_lines = [line for page in pages for line in page.lines]
    if not all_lines:
        return LaidOut("", [], len(pages), [])
    sizes: Counter[float] = Counter()
    for line in all_lines:
        sizes[round(line.size * 2) / 2] += len(line.text)
    body = sizes.most_common(1)[0][0]
    running = _running_lines(pages)
    # The usual distance between two lines of body text, and where a page's text usually starts.
    steps: Counter[float] = Counter()
    firsts: Counter[int] = Counter()
    for p, page in enumerate(pages):
        previous = None
        for i, line in enumerate(page.lines):
            if (p, i) in running:
                continue
            if previous is None and abs(line.size - body) < 0.5:
                firsts[round(line.top)] += 1
            if previous is not None and abs(line.size - body) < 0.5 and abs(previous.size - body) < 0.5:
                steps[round((line.top - previous.top) * 2) / 2] += 1
            previous = line
    leading = steps.most_common(1)[0][0] if steps else body * 1.2
    text_top = min(firsts) if firsts else 0.0
    vocabulary = _vocabulary(all_lines)

    out: list[str] = []
    out_pages: list[int] = []
    headers: list[str] = []
    seen_headers: set[str] = set()
    para: list[str] = []
    para_page = 0
    para_heading = False
    section: str | None = None
    notes: list[str] = []  # the footnote being read (continues onto the next page's foot)
    note_page = 0

    def flush_para() -> None:
        nonlocal para, section
        if not para:
            return
        if (
            section is not None
            and section in ("assessment", "scoring", "contents", "front-table")
            and not para_heading
        ):
            for row in rows_from_flat_lines(para, section):
                out.append(row)
                out_pages.append(para_page)
        else:
            out.append(_join(para, vocabulary))
            out_pages.append(para_page)
        if para_heading:
            heading = _join(para, vocabulary).strip().lower()
            section = _SECTION_TABLES.get(heading) or (
                "front-table" if heading.startswith("table ") else None
            )
        para = []

    def flush_note() -> None:
        nonlocal notes
        if notes:
            out.append(_join(notes, vocabulary, footnote=True))
            out_pages.append(note_page)
            notes = []

    for p, page in enumerate(pages):
        kept = []
        for i, line in enumerate(page.lines):
            if (p, i) in running:
                if line.text.strip() and _key(line.text) != "#" and line.text not in seen_headers:
                    seen_headers.add(line.text)
                    headers.append(line.text.strip())
                continue
            if line.text.strip():
                kept.append(line)
        # The foot of the page: the trailing lines in a smaller font.
        foot = len(kept)
        while foot > 0 and kept[foot - 1].size <= 0.88 * body:
            foot -= 1
        body_lines, foot_lines = kept[:foot], kept[foot:]
        previous = None
        for k, line in enumerate(body_lines):
            heading = line.bold or line.size > 1.05 * body
            if k == 0:
                new = (
                    line.top - text_top > 0.4 * leading
                    or heading != para_heading
                    or _starts_action(line.text)
                )
            else:
                assert previous is not None  # set by the line before
                gap = line.top - previous.top
                new = gap > 1.35 * max(leading, line.size * 1.1) or heading != para_heading
                if section in ("assessment", "contents", "front-table") and not heading:
                    new = True  # a table line is a row of its own
            if new:
                flush_para()
                para_page, para_heading = page.number, heading
            para.append(line.text)
            previous = line
        if foot_lines:
            # a paragraph ends where a page's footnotes begin only if it ends there; else it goes on
            for line in foot_lines:
                if _SUPERSCRIPT_START.match(line.text):
                    flush_note()
                    note_page = page.number
                elif not notes:
                    note_page = page.number
                notes.append(line.text)
        # The footnotes are written before the next page's text, as the parser expects them
        # (a paragraph broken by them is rejoined), unless their last one goes on overleaf.
        if notes and not _note_continues(pages, p + 1, running, body):
            flush_note()
    flush_para()
    flush_note()
    # The report's title, once, at the top (the parser reads the report kind and summit from it).
    lead = [t for t in (_RESEARCH_GROUP.split(h)[0].strip() for h in headers) if t][:1]
    lines = [*lead, *(["" for _ in lead[:1]])]
    text_lines: list[str] = []
    pages_of: list[int] = []
    for h in lines:
        text_lines.append(h)
        pages_of.append(1)
    for text, page_number in zip(out, out_pages, strict=True):
        text_lines.append(text)
        text_lines.append("")
        pages_of.extend((page_number, page_number))
    return LaidOut("\n".join(text_lines) + "\n", pages_of, len(pages), headers)


def _note_continues(pages: list[Page], p: int, running: set, body: float) -> bool:
    """Whether page ``p``'s foot starts with a continuation (no superscript number first)."""
    if p >= len(pages):
        return False
    lines = [line for i, line in enumerate(pages[p].lines) if (p, i) not in running and line.text.strip()]
    foot = len(lines)
    while foot > 0 and lines[foot - 1].size <= 0.88 * body:
        foot -= 1
    return foot < len(lines) and not _SUPERSCRIPT_START.match(lines[foot].text)


def _starts_action(text: str) -> bool:
    return text.startswith("On ") and bool(re.match(r"On \d{1,2} [A-Z][a-z]+|On [A-Z][a-z]+ \d", text))


def _vocabulary(lines: list[Line]) -> set[str]:
    """Lower-case words printed whole inside a line: how a word broken at a hyphen is spelled."""
    words: set[str] = set()
    for line in lines:
        text = line.text
        # (the piece before a hyphen at the line's end is not a word printed whole)
        end = len(text) - 1 if text.endswith("-") else len(text)
        for m in _COMPOUND.finditer(text):
            if m.end() < end or end == len(text):
                words.add(m[0].lower())
    return words


def _join(lines: list[str], vocabulary: set[str], *, footnote: bool = False) -> str:
    """Lines of one paragraph (or footnote) as one: a URL broken anywhere is rejoined, a compound
    word's hyphen kept, a word hyphenated at the line end rejoined when the document prints it
    whole elsewhere."""
    out = lines[0].strip()
    for line in lines[1:]:
        nxt = line.strip()
        if not nxt:
            continue
        last = out.rsplit(" ", 1)[-1]
        first = nxt.split(" ", 1)[0]
        url = _URL_START.search(last) or (len(last) <= 7 and _URL_START.match(last + first[:8]))
        if url and _URL_PIECE.match(first) and (footnote or _url_goes_on(last, first)):
            out += nxt
        elif out.endswith("-") and len(out) > 1 and out[-2].isalnum() and nxt[:1].isalnum():
            head = _WORD.search(last[-2::-1] if last[-2:-1].isalpha() else "")
            tail = _WORD.match(nxt)
            if head and tail and nxt[:1].islower():
                word = head[0][::-1].lower()
                whole, hyphenated = word + tail[0].lower(), word + "-" + tail[0].lower()
                if whole in vocabulary and hyphenated not in vocabulary:
                    out = out[:-1] + nxt  # a word hyphenated at the line's end
                    continue
            out += nxt  # a compound word's own hyphen
        else:
            out += " " + nxt
    return out


def _url_goes_on(last: str, first: str) -> bool:
    return any(c in first for c in "/.=?&%_-") or last.endswith(("/", ".", "-", "_", "=", "?", "&"))


# ---------------------------------------------------------------------------
# Tables flattened to lines

_SCORE = r"[+\-−–]?\s?\d"
_ASSESSMENT_ROW = re.compile(rf"^(.*?\S)\s+({_SCORE})$")
_AVERAGE_ROW = re.compile(r"^(Average)\s+(.+)$", re.I)
_HEADER_ROW = re.compile(r"^No Compliance\s+Partial Compliance\s+Full Compliance$", re.I)
_SCORING_LABEL = re.compile(r"^([+\-−–]1|0)\s+(\S.*)$")
_CONTENTS_ROW = re.compile(r"^(.*?\S)[\s.]+(\d{1,4})$")
_COLUMN = {-1: 1, 0: 2, 1: 3}


def rows_from_flat_lines(lines: list[str], section: str) -> list[str]:
    """Lines of a table whose columns text extraction lost, as tab-separated rows.

    The assessment table's score says its column ("Japan 0" is partial compliance), so the
    column the report printed it in is not known: a score in the wrong column goes unseen.
    """
    rows = []
    for line in lines:
        text = " ".join(line.split())
        if "\t" in line:
            rows.append(line)
        elif section == "assessment":
            if _HEADER_ROW.match(text):
                rows.append("\tNo Compliance\tPartial Compliance\tFull Compliance")
            elif m := _AVERAGE_ROW.match(text):
                rows.append(f"{m[1]}\t{m[2]}")
            elif m := _ASSESSMENT_ROW.match(text):
                value = m[2].replace(" ", "").replace("−", "-").replace("–", "-")
                column = _COLUMN.get(int(value), 1)
                rows.append(m[1] + "\t" * column + m[2])
            else:
                rows.append(text)
        elif section == "scoring":
            if m := _SCORING_LABEL.match(text):
                rows.append(f"{m[1]}\t{m[2]}")
            else:
                rows.append(f"\t{text}")
        elif section == "contents":
            if m := _CONTENTS_ROW.match(text):
                rows.append(f"{m[1]}\t{m[2]}")
            else:
                rows.append(text)
        else:
            rows.append(text)
    return rows


# ---------------------------------------------------------------------------
# Plain text extracted from a published PDF (no positions, no sizes)

_NOTE_NUMBER = re.compile(r"^(\d{3,5}) ?(?=\S)")
_GLUED_NUMBER = re.compile(r"(?<=[^\s\d])(\d{3,5})(?=[\s,.;:!?)”\"’]|$)")
_TERMINAL_END = re.compile(r"[.!?:;”\"’)\]]$|[.!?”\"’)][⁰¹²³⁴⁵⁶⁷⁸⁹]+$")
_BODY, _NOTE, _HEADER = 10.0, 7.5, 8.0


def looks_published(text: str) -> bool:
    """Whether extracted text still carries the published layout: a 'G7 Research Group / <date>'
    running header on several pages."""
    return len(_RESEARCH_GROUP.findall(text[:400_000])) >= 2


def pages_from_text(text: str) -> list[Page]:
    """Pages of lines, with positions and sizes inferred, from text a PDF library extracted page
    after page: a page starts at each running header ('… G7 Research Group / <date>'), or at a
    form feed. On each page the footnotes begin at the first line that starts with the number
    following the last footnote read (glued, '4417Communiqué', or spaced); the numbers of a
    page's footnotes glued to its text are its markers. A line ends its paragraph when it ends
    a sentence and the next line's first word would have fitted after it.
    """
    raw_pages: list[list[str]] = [[]]
    for line in text.replace("\f", "\n\f").split("\n"):
        if line.startswith("\f"):
            line = line[1:]
            if raw_pages[-1]:
                raw_pages.append([])
        elif _RESEARCH_GROUP.search(line) and raw_pages[-1] and any(s.strip() for s in raw_pages[-1]):
            raw_pages.append([])
        if line.strip():
            raw_pages[-1].append(line.rstrip())
    pages: list[Page] = []
    last_note: int | None = None
    unfinished = False  # the last footnote read has no URL yet: it may go on overleaf
    for number, lines in enumerate(raw_pages, start=1):
        foot = len(lines)
        expected = None if last_note is None else last_note + 1
        glued_above: set[int] = set()  # numbers glued to the text of the lines read so far
        for j, line in enumerate(lines):
            start = _note_start(line, expected) if j else None
            if start is None:
                glued_above.update(int(g) for g in _GLUED_NUMBER.findall(line))
                continue
            n = start[0]
            cited = n in glued_above
            if (expected is not None and n == expected) or (cited and _follows(n, expected)):
                foot = j
                break
        notes: set[int] = set()
        starts: dict[int, tuple[int, int]] = {}  # foot line -> (footnote number, where its text starts)
        running = None if foot == len(lines) else expected
        for j in range(foot, len(lines)):
            start = _note_start(lines[j], running)
            if start is not None and _follows(start[0], running):
                starts[j] = start
                notes.add(start[0])
                running = start[0] + 1
        # Lines just above the first footnote that continue the last page's URL belong to it.
        # (or its citation, when the last page's footnote stopped before its URL)
        while foot > 1 and last_note is not None:
            above = lines[foot - 1]
            if (_URL_PIECE.match(above) and "/" in above) or (
                unfinished and ("Access Date" in above or _URL_START.search(above))
            ):
                foot -= 1
            else:
                break
        if notes:
            last_note = max(notes)
        if foot < len(lines):
            last_start = max((j for j in starts), default=foot)
            unfinished = not any(_URL_START.search(line) for line in lines[last_start:])
        page = Page(number)
        width = max((len(line) for line in lines[:foot]), default=1)
        # A heading wrapped over two lines: the second line is heading too, in the same paragraph.
        headings = [_looks_heading(line.strip()) for line in lines[:foot]]
        wrapped = [False] * len(headings)
        for k in range(len(headings) - 1):
            nxt = lines[k + 1].strip()
            if (
                headings[k]
                and not headings[k + 1]
                and len(nxt) < 60
                and nxt[:1].isupper()
                and _looks_heading(f"{lines[k].strip()} {nxt}")
                and not _TERMINAL_END.search(nxt)
            ):
                headings[k + 1] = wrapped[k + 1] = True
        top = 0.0
        previous_ends = True

        def superscript(m: re.Match[str], notes: set[int] = notes) -> str:
            return m[1].translate(_TO_SUPERSCRIPT) if int(m[1]) in notes else m[1]

        for k, line in enumerate(lines[:foot]):
            glued = _GLUED_NUMBER.sub(superscript, line)
            stripped = glued.strip()
            heading = headings[k]
            top += 18.0 if previous_ends and k > 0 else 12.0
            if k == 0:
                top = 20.0 if not previous_ends else 30.0
            size = _HEADER if (k == 0 and _RESEARCH_GROUP.search(line)) else _BODY
            page.lines.append(Line([Run(stripped, 0.0, top, size, heading)], top, size, heading, stripped))
            nxt = lines[k + 1] if k + 1 < foot else ""
            first = nxt.split(" ", 1)[0] if nxt else ""
            continued = k + 1 < foot and wrapped[k + 1]
            previous_ends = (not continued and (heading or (k + 1 < foot and headings[k + 1]))) or bool(
                _TERMINAL_END.search(stripped)
                and (len(line) + 1 + len(first) < 0.97 * width or _starts_action(nxt.strip()))
            )
            if k == 0 and size == _HEADER:
                previous_ends = True
        top += 20.0
        for j in range(foot, len(lines)):
            line = lines[j]
            text_line = line
            if j in starts:
                n, end = starts[j]
                text_line = str(n).translate(_TO_SUPERSCRIPT) + line[end:]
            top += 9.0
            page.lines.append(Line([Run(text_line, 0.0, top, _NOTE)], top, _NOTE, False, text_line.strip()))
        pages.append(page)
    return pages


def _follows(number: int, expected: int | None) -> bool:
    """Whether a footnote number can come next: the expected one or a few after it (a URL's
    digits at a line's start, '307772', are not footnote 30777)."""
    return expected is None or expected <= number < expected + 20


def _note_start(line: str, expected: int | None) -> tuple[int, int] | None:
    """A footnote's number at the start of a line, and where its text starts; the number the
    last footnote leads to wins where the text glued to it starts with digits ('44817th …')."""
    if expected is not None and line.startswith(str(expected)):
        end = len(str(expected))
        if (end < len(line) and not line[end : end + 1].isspace()) or line[end : end + 1] == " ":
            return expected, end
    m = _NOTE_NUMBER.match(line)
    return (int(m[1]), m.end(1)) if m else None


def _looks_heading(text: str) -> bool:
    from .report_text import _is_pdf_heading

    return bool(text) and _is_pdf_heading(text)
