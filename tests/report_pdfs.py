"""Render compliance-report chapters as PDFs in the published layout (fpdf2), for the tests.

No third chapter is in the repository, so the tests make their own: the bundled chapters are
read with the project's own format-level parser (entries, footnotes) and laid out the way the
G7 Research Group publishes them:

- a running header on every page (the report's title, "G7 Research Group / <date>") and the
  page number at the foot;
- footnotes at the foot of the page that cites them, in a smaller font, their numbers
  superscript and glued to the citation or separated by a space (alternately), a citation or
  URL that does not fit continuing at the foot of the next page;
- superscript footnote markers glued to words, quotes and punctuation;
- headings in bold, wrapping over two lines where the page is narrow;
- the assessment table with its scores in three columns (flattened to "Japan 0" by text
  extraction), the Scoring Guidelines table with its labels in a column of their own;
- lines wrapped at the page width (at hyphens of compound words, URLs anywhere), so two page
  widths give two different sets of line breaks.

``render_chapter`` makes one chapter's PDF, ``render_whole_report`` a report of several
chapters with front matter (title page, contents list, Tables A-D) and numbered chapters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from fpdf import FPDF

from classifier.models import MEMBERS
from classifier.report_text import MARK_RE, detect_format
from classifier.reports import read_fragment, scoring_table

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "corpus" / "reports"
CHAPTER_18 = REPORTS / "000_977e9f2715cc7214.txt"
CHAPTER_19 = REPORTS / "001_917aac6ecb12f93e.txt"
# DejaVu Serif as matplotlib (a dependency) ships it: Unicode text on any machine.
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
# DejaVu has no Japanese: one footnote's title loses its kanji (its URL is what the tests compare).
logging.getLogger("fpdf").setLevel(logging.ERROR)

# The bundled chapters' reports: running-header title and publication date.
PUBLISHED = {
    "interim": ("2024 G7 Apulia Summit Interim Compliance Report", "15 March 2025"),
    "final": ("2024 G7 Apulia Summit Final Compliance Report", "9 June 2025"),
}
PERIODS = {
    "interim": "15 June 2024 to 20 December 2024",
    "final": "15 June 2024 to 15 May 2025",
}

MEMBER_NAMES = list(MEMBERS.values())
PT = 0.3528  # mm per point
BODY, NOTE, HEAD, RUNNING = 10.0, 7.5, 12.0, 8.0
SUP = 0.6  # superscript size, as a fraction of the text's


@dataclass
class Layout:
    """Page geometry in mm; the widths used by the tests differ enough to wrap every paragraph
    differently."""

    width: float = 210.0
    height: float = 297.0
    margin: float = 22.0

    @property
    def text_width(self) -> float:
        return self.width - 2 * self.margin


A4 = Layout()
NARROW = Layout(width=160.0, height=240.0, margin=18.0)
WIDE = Layout(width=260.0, height=200.0, margin=20.0)


# ---------------------------------------------------------------------------
# The chapter as blocks


@dataclass
class Block:
    kind: str  # heading | para | table | contents | scoring
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Chapter:
    blocks: list[Block]
    footnotes: dict[int, str]  # number -> citation as printed (with its URL)


def read_chapter(path: Path, *, front_matter: bool = True) -> Chapter:
    """The chapter file's content as blocks, with the footnotes as printed."""
    text = path.read_text(encoding="utf-8")
    entries, footnotes, _ = read_fragment(text, detect_format(text))
    blocks: list[Block] = []
    section = None
    scoring: list = []
    for entry in entries:
        if entry.kind in ("note", "url"):
            continue
        if entry.kind == "heading":
            section = entry.text.lower()
            if section == "scoring guidelines":
                section = "scoring"
            blocks.append(Block("heading", entry.text))
            continue
        if entry.kind == "row":
            if section == "scoring":
                scoring.append(entry)
                if not blocks or blocks[-1].kind != "scoring":
                    blocks.append(Block("scoring"))
                continue
            cells = [c.strip(" .") for c in entry.cells]
            kind = "table" if section == "assessment" or not cells[-1].isdecimal() else "contents"
            if not blocks or blocks[-1].kind != kind:
                blocks.append(Block(kind))
            blocks[-1].rows.append(cells)
            continue
        blocks.append(Block("para", entry.text))
    for block in blocks:
        if block.kind == "scoring":
            table = scoring_table(scoring)
            block.rows = [[label, table[label]] for label in ("-1", "0", "+1") if label in table]
    if not front_matter:
        # the chapter's heading is the one the quoted commitment follows (not a contents line)
        first = next(
            i
            for i, b in enumerate(blocks[:-1])
            if b.kind == "heading"
            and _is_chapter_heading(b.text)
            and blocks[i + 1].kind == "para"
            and blocks[i + 1].text[:1] in "“\"'"
        )
        blocks = blocks[first:]
    notes = {}
    for number, fn in sorted(footnotes.items()):
        # the citation as printed, then its URL (however the source file broke it)
        printed = _URL_START.split(fn.raw, maxsplit=1)[0].strip()
        if fn.url:
            printed = f"{printed} {fn.url}"
        notes[number] = printed
    return Chapter(blocks, notes)


_URL_START = re.compile(r"h?ttps?://")
_WHOLE_WORD = re.compile(r"[a-z]+")
_CHAPTER = re.compile(r"^\d{1,2}\.\s+\S.*:\s*\S")


def _is_chapter_heading(text: str) -> bool:
    return bool(_CHAPTER.match(text)) and not text.rstrip().endswith(".")


# ---------------------------------------------------------------------------
# Typesetting


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


class Typesetter:
    """Lines placed by hand (fpdf2's ``text``), so that footnotes go to the foot of the page
    that cites them and a footnote can continue on the next page."""

    def __init__(self, layout: Layout, title: str, date: str):
        self.layout = layout
        self.title, self.date = title, date
        self.pdf = FPDF(unit="mm", format=(layout.width, layout.height))
        self.pdf.set_auto_page_break(False)
        self.pdf.set_compression(True)
        self.pdf.add_font("serif", "", str(FONT_DIR / "DejaVuSerif.ttf"))
        self.pdf.add_font("serif", "B", str(FONT_DIR / "DejaVuSerif-Bold.ttf"))
        self.pdf.set_fallback_fonts([])
        self.top = 22.0
        self.bottom = layout.height - 16.0
        self.page_lines: list[tuple[float, list[tuple[str, float, str, bool]], float]] = []
        self.y = self.top
        self.notes_on_page: list[list[tuple[str, float, str, bool]]] = []
        self.carry: list[list[tuple[str, float, str, bool]]] = []
        self.pending: dict[int, str] = {}
        self.hyphenate: set[str] = set()  # words that may be hyphenated at a line's end
        self.printed_whole: set[str] = set()  # ... once printed whole inside a line
        self.pages = 0
        self._widths: dict[tuple[str, float, str], float] = {}
        self._new_page()

    # -- measuring and wrapping ------------------------------------------------

    def width(self, text: str, size: float, style: str = "") -> float:
        key = (text, size, style)
        w = self._widths.get(key)
        if w is None:
            self.pdf.set_font("serif", style, size)
            w = self._widths[key] = self.pdf.get_string_width(text)
        return w

    def _pieces(self, text: str, size: float, style: str) -> list[tuple[str, float, str, bool]]:
        """A paragraph's text as (text, size, style, superscript) runs, markers as superscripts."""
        out = []
        pos = 0
        for m in MARK_RE.finditer(text):
            if m.start() > pos:
                out.append((text[pos : m.start()], size, style, False))
            out.append((m[1], size * SUP, style, True))
            pos = m.end()
        if pos < len(text):
            out.append((text[pos:], size, style, False))
        return out

    def wrap(
        self, text: str, size: float, style: str = "", *, indent: float = 0.0, width: float | None = None
    ):
        """Lines of (text, size, style, superscript) runs fitting the text width."""
        limit = (width or self.layout.text_width) - indent
        words = []  # each a list of runs, without spaces
        for piece_text, psize, pstyle, sup in self._pieces(text, size, style):
            parts = piece_text.split(" ")
            for k, part in enumerate(parts):
                if k > 0 or not words:
                    words.append([])
                if part:
                    words[-1].append((part, psize, pstyle, sup))
        words = [w for w in words if w]
        lines: list[list[tuple[str, float, str, bool]]] = []
        line: list[tuple[str, float, str, bool]] = []
        used = 0.0
        space = self.width(" ", size, style)

        def word_width(word):
            return sum(self.width(t, s, st) for t, s, st, _ in word)

        for word in words:
            w = word_width(word)
            gap = space if line else 0.0
            if used + gap + w <= limit:
                if line:
                    line.append((" ", size, style, False))
                line.extend(word)
                used += gap + w
                continue
            # Break a compound word at a hyphen, a URL anywhere, else move the word down.
            head, tail = self._split_word(word, limit - used - gap, limit)
            if head:
                if line:
                    line.append((" ", size, style, False))
                line.extend(head)
            if line:
                lines.append(line)
                self._printed(line)
            line, used = [], 0.0
            while tail:
                w = word_width(tail)
                if w <= limit:
                    line, used = list(tail), w
                    break
                head, tail = self._split_word(tail, limit, limit, force=True)
                lines.append(head)
        if line:
            lines.append(line)
        return lines

    def _printed(self, line) -> None:
        if self.hyphenate:
            for t, _, _, sup in line[:-1]:
                if not sup and t in self.hyphenate:
                    self.printed_whole.add(t)

    def _split_word(self, word, room: float, limit: float, *, force: bool = False):
        """A word that does not fit in ``room`` split in two: a URL anywhere, a compound word at
        its hyphen, a word the document also prints whole hyphenated ("an-" / "nounced").
        ``force``: the word is longer than a line and must be split somewhere."""
        if len(word) != 1:  # a word with a footnote marker moves down whole
            return ([], word) if not force else (word, [])
        text, size, style, sup = word[0]
        if text.startswith(("http://", "https://")) or force:
            cut = 0
            while cut < len(text) - 1 and self.width(text[: cut + 1], size, style) <= room:
                cut += 1
            if cut < 4 and not force:
                return [], word  # not even "http" fits: the URL starts on the next line
            cut = max(cut, 1)
            return [(text[:cut], size, style, sup)], [(text[cut:], size, style, sup)]
        best = None
        for m in re.finditer("-", text[:-1]):
            if m.start() > 0 and self.width(text[: m.end()], size, style) <= room:
                best = m.end()
        if best is not None:
            return [(text[:best], size, style, sup)], [(text[best:], size, style, sup)]
        letters = _WHOLE_WORD.match(text)
        if letters and letters.end() >= 8 and letters[0] in self.printed_whole:
            for cut in range(letters.end() - 3, 3, -1):
                if self.width(text[:cut] + "-", size, style) <= room:
                    return [(text[:cut] + "-", size, style, sup)], [(text[cut:], size, style, sup)]
        return [], word

    # -- pages -------------------------------------------------------------------

    def _new_page(self) -> None:
        if self.pages:
            self._finish_page()
        self.pdf.add_page()
        self.pages += 1
        self.page_lines = []
        self.y = self.top
        self.notes_on_page = self.carry
        self.carry = []

    def _notes_height(self, notes) -> float:
        if not notes:
            return 0.0
        return 3.0 + len(notes) * NOTE * PT * 1.25

    def _finish_page(self) -> None:
        pdf = self.pdf
        lay = self.layout
        pdf.set_font("serif", "", RUNNING)
        pdf.text(lay.margin, 12.0, self.title)
        right = f"G7 Research Group / {self.date}"
        pdf.text(lay.width - lay.margin - self.width(right, RUNNING), 12.0, right)
        for y, runs, x in self.page_lines:
            self._draw(runs, x, y)
        if self.notes_on_page:
            y = self.bottom - len(self.notes_on_page) * NOTE * PT * 1.25
            pdf.set_draw_color(0)
            pdf.line(lay.margin, y - 2.5, lay.margin + 40, y - 2.5)
            for runs in self.notes_on_page:
                y += NOTE * PT * 1.25
                self._draw(runs, lay.margin, y - NOTE * PT * 0.25)
        number = str(self.pages)
        pdf.set_font("serif", "", RUNNING)
        pdf.text((lay.width - self.width(number, RUNNING)) / 2, lay.height - 8.0, number)

    def _draw(self, runs, x: float, y: float) -> None:
        # Neighbouring runs in one font are drawn as one piece of text (fewer, faster calls).
        merged: list[list] = []
        for text, size, style, sup in runs:
            if merged and merged[-1][1:] == [size, style, sup]:
                merged[-1][0] += text
            else:
                merged.append([text, size, style, sup])
        font = None
        for text, size, style, sup in merged:
            if font != (style, size):
                self.pdf.set_font("serif", style, size)
                font = (style, size)
            self.pdf.text(x, y - (size / SUP * 0.35 * PT if sup else 0.0), text)
            x += self.width(text, size, style)

    def _fits(self, leading: float, new_notes) -> bool:
        return self.y + leading <= self.bottom - self._notes_height(self.notes_on_page + new_notes)

    def _split_notes(self, leading: float, new_notes) -> int | None:
        """How many lines of the new footnotes fit at this page's foot with the line, at least one."""
        if self.carry:
            return None  # one footnote continues overleaf per page at most
        for count in range(len(new_notes) - 1, 0, -1):
            if self._fits(leading, new_notes[:count]):
                return count
        return None

    def place(self, lines, size: float, *, gap: float, x: float | None = None) -> None:
        """Place a paragraph's lines, the footnotes they cite at the foot of the page; a paragraph
        starting a page keeps its space above (that is how a reader tells it from a continuation)."""
        leading = size * PT * 1.3
        x = self.layout.margin if x is None else x
        self.y += gap
        for k, runs in enumerate(lines):
            cited = max((int(t) for t, _, _, sup in runs if sup and t.isdecimal()), default=-1)
            due = [n for n in sorted(self.pending) if n <= cited]
            new_notes = [line for n in due for line in self._note_lines(n)]
            if not self._fits(leading, new_notes):
                split = self._split_notes(leading, new_notes)
                if split is None:
                    self._new_page()
                    if k == 0:
                        self.y += gap
                    if not self._fits(leading, new_notes):
                        split = self._split_notes(leading, new_notes) or 0
                if split is not None:
                    self.carry = self.carry + new_notes[split:]
                    new_notes = new_notes[:split]
            self.y += leading
            self.page_lines.append((self.y, runs, x))
            self.notes_on_page = self.notes_on_page + new_notes
            for n in due:
                del self.pending[n]

    def _note_lines(self, number: int):
        text = self.pending[number]
        glued = number % 2 == 1  # "1203Ministerial ..." and "1204 Ministerial ..." both occur
        marker = f"\ue000{number}\ue001" + ("" if glued else " ")
        return self.wrap(marker + text, NOTE)

    def notes(self, footnotes: dict[int, str]) -> None:
        self.pending.update(footnotes)

    def flush_notes(self) -> None:
        """Footnotes never cited (or cited before they were read): at the foot of the last page."""
        rest = []
        for n in sorted(self.pending):
            rest.extend(self._note_lines(n))
        self.pending.clear()
        self.carry = self.carry + rest
        while self.carry:
            lines, self.carry = self.carry, []
            room = (
                int((self.bottom - self.y - self._notes_height(self.notes_on_page)) / (NOTE * PT * 1.25)) - 1
            )
            if room <= 0:
                self.carry = lines
                self._new_page()
                continue
            self.notes_on_page = self.notes_on_page + lines[:room]
            self.carry = lines[room:]
            if self.carry:
                self._new_page()

    def output(self, path: Path) -> Path:
        self._finish_page()
        self.pdf.output(str(path))
        return path

    # -- blocks --------------------------------------------------------------------

    def block(self, block: Block) -> None:
        lay = self.layout
        if block.kind == "heading":
            size = HEAD if _is_chapter_heading(block.text) else BODY + 1
            self.place(self.wrap(block.text, size, "B"), size, gap=size * PT * 0.9)
        elif block.kind == "para":
            self.place(self.wrap(block.text, BODY), BODY, gap=BODY * PT * 0.8)
        elif block.kind == "contents":
            for k, (title, page) in enumerate(
                (r[0], next(c for c in reversed(r) if c)) for r in block.rows if any(r)
            ):
                lines = self.wrap(title, BODY, width=lay.text_width - 15)
                lines[-1] = [*lines[-1], (" ", BODY, "", False), (page, BODY, "", False)]
                self.place(lines, BODY, gap=BODY * PT * (0.8 if k == 0 else 0.15))
        elif block.kind == "table":
            columns = [
                lay.margin,
                lay.margin + lay.text_width * 0.35,
                lay.margin + lay.text_width * 0.58,
                lay.margin + lay.text_width * 0.8,
            ]
            for k, row in enumerate(block.rows):
                runs: list = []
                x0 = None
                # Each cell at its column: separate text runs on one baseline.
                for col, cell in enumerate(row[:4]):
                    if not cell:
                        continue
                    x0 = columns[col] if x0 is None else x0
                    runs.append((columns[col], cell))
                if not runs:
                    continue
                self._row(runs, gap=BODY * PT * (0.8 if k == 0 else 0.2))
        elif block.kind == "lines":  # a table of one column: each row a line of its own
            for k, row in enumerate(block.rows):
                self._row([(lay.margin, row[0])], gap=BODY * PT * (0.8 if k == 0 else 0.2))
        elif block.kind == "grid":  # cells at even intervals after a wider first column
            first = lay.text_width * 0.3
            step = (lay.text_width - first) / max(1, max(len(r) for r in block.rows) - 1)
            for k, row in enumerate(block.rows):
                cells = [
                    (lay.margin + (first + step * (c - 1) if c else 0.0), cell) for c, cell in enumerate(row)
                ]
                self._row(cells, gap=BODY * PT * (0.8 if k == 0 else 0.2))
        elif block.kind == "scoring":
            for k, (label, text) in enumerate(block.rows):
                lines = self.wrap(text, BODY, width=lay.text_width - 14)
                first = True
                self.y += BODY * PT * (0.8 if k == 0 else 0.3)
                for line in lines:
                    if first:
                        self._row([(lay.margin, label), (lay.margin + 14, line)], gap=0.0)
                        first = False
                    else:
                        self._row([(lay.margin + 14, line)], gap=0.0)

    def _row(self, cells, *, gap: float) -> None:
        """One line of table cells, each at its own x (text extraction loses the columns)."""
        leading = BODY * PT * 1.3
        if self.page_lines:
            self.y += gap
        if self.y + leading > self.bottom - self._notes_height(self.notes_on_page):
            self._new_page()
            self.y += gap
        self.y += leading
        for x, cell in cells:
            runs = cell if isinstance(cell, list) else [(cell, BODY, "", False)]
            self.page_lines.append((self.y, runs, x))


def _words_printed_twice(chapters: list[Chapter]) -> set[str]:
    """Long lower-case words printed at least twice: those a line end may hyphenate, since a
    reader (and the parser) can tell from the other printing that the hyphen is not the word's."""
    counts: dict[str, int] = {}
    spelled_with_hyphen = set()  # "multi-lateral" beside "multilateral": the break would be ambiguous
    for chapter in chapters:
        for block in chapter.blocks:
            if block.kind == "para":
                for word in re.findall(r"(?<![\w-])[a-z]{8,}(?![\w-])", block.text):
                    counts[word] = counts.get(word, 0) + 1
                for word in re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)+", block.text):
                    spelled_with_hyphen.add(word.replace("-", "").lower())
    return {w for w, n in counts.items() if n >= 2 and w not in spelled_with_hyphen}


def _setter(layout: Layout, kind: str) -> Typesetter:
    title, date = PUBLISHED[kind]
    return Typesetter(layout, title, date)


def render_chapter(source: Path, out: Path, layout: Layout = A4, *, kind: str | None = None) -> Path:
    """One bundled chapter (with the front matter its file holds) as a PDF in the published layout."""
    kind = kind or ("interim" if source == CHAPTER_18 else "final")
    chapter = read_chapter(source)
    setter = _setter(layout, kind)
    setter.hyphenate = _words_printed_twice([chapter])
    setter.notes(chapter.footnotes)
    for block in chapter.blocks:
        setter.block(block)
    setter.flush_notes()
    return setter.output(out)


def renumber(chapter: Chapter, number: int, offset: int) -> Chapter:
    """A copy of the chapter as chapter ``number``, its footnotes numbered ``offset`` higher."""

    def marks(text: str) -> str:
        return MARK_RE.sub(lambda m: f"\ue000{int(m[1]) + offset}\ue001", text)

    blocks = []
    for block in chapter.blocks:
        text = marks(block.text)
        if block.kind == "heading" and _is_chapter_heading(text):
            text = re.sub(r"^\d{1,2}\.", f"{number}.", text)
        blocks.append(Block(block.kind, text, [list(r) for r in block.rows]))
    return Chapter(blocks, {n + offset: t for n, t in chapter.footnotes.items()})


def chapter_scores(chapter: Chapter) -> dict[str, int]:
    """The member scores of a chapter's assessment table, as the generator prints them."""
    scores = {}
    for block in chapter.blocks:
        if block.kind == "table":
            for row in block.rows:
                values = [c for c in row[1:] if c]
                if row and row[0] in MEMBER_NAMES and values:
                    scores[row[0]] = int(values[0].replace("−", "-"))
    return scores


def _average(values: list[int]) -> str:
    from classifier.rubric import format_average

    return format_average(values)


def front_matter(chapters: list[Chapter], kind: str, *, change=None) -> list[Block]:
    """Contents, Introduction with the overall score, Tables A-D, from the chapters' own scores.
    ``change(table, number_or_member, value) -> value`` lets a test print a disagreement."""
    change = change or (lambda table, key, value: value)
    title, date = PUBLISHED[kind]
    summit = title.split(" Summit")[0].replace("G7 ", "")
    headings = [
        next(b.text for b in c.blocks if b.kind == "heading" and _is_chapter_heading(b.text))
        for c in chapters
    ]
    numbers = [int(h.split(".")[0]) for h in headings]
    scores = [chapter_scores(c) for c in chapters]
    label = kind.capitalize()
    tables = [
        f"Table A: {summit[:4]} Priority Commitments Selected for Assessment",
        f"Table B: {summit} {label} Compliance Scores",
        f"Table C: {summit} {label} Compliance Scores by Member",
        f"Table D: {summit} {label} Compliance Scores by Commitment",
    ]
    blocks = [
        Block("heading", title),
        Block("para", PERIODS[kind]),
        Block("para", f"Prepared by the G7 Research Group {date}"),
    ]
    rows = [["Introduction", "3"]] + [[t, str(4 + k)] for k, t in enumerate(tables)]
    # Page numbers as the report prints them; the parser does not rely on them.
    rows += [[h, str(10 + 36 * k)] for k, h in enumerate(headings)]
    blocks += [Block("heading", "Contents"), Block("contents", rows=rows)]
    every = [v for s in scores for v in s.values()]
    overall = change("overall", None, _average(every))
    blocks += [
        Block("heading", "Introduction"),
        Block(
            "para",
            f"The {kind} compliance score of the {summit} Summit is {overall}, across {len(chapters)} commitments.",
        ),
    ]
    blocks += [Block("heading", tables[0]), Block("lines", rows=[[h] for h in headings])]
    codes = ["CAN", "FRA", "GER", "ITA", "JPN", "UK", "US", "EU"]
    b_rows = [["Commitment", *codes, "Average"]]
    for number, s in zip(numbers, scores, strict=True):
        values = [change("B", (number, m), s.get(m)) for m in MEMBER_NAMES]
        b_rows.append([str(number), *(f"{v:+d}" if v else "0" for v in values), _average(list(s.values()))])
    blocks += [Block("heading", tables[1]), Block("grid", rows=b_rows)]
    c_rows = [[m, change("C", m, _average([s[m] for s in scores if m in s]))] for m in MEMBER_NAMES]
    blocks += [Block("heading", tables[2]), Block("grid", rows=c_rows)]
    d_rows = [
        [h, change("D", n, _average(list(s.values())))]
        for h, n, s in zip(headings, numbers, scores, strict=True)
    ]
    blocks += [Block("heading", tables[3]), Block("lines", rows=[[f"{h} {v}"] for h, v in d_rows])]
    return blocks


def render_whole_report(
    sources: Iterable[Path] | Iterable[Chapter],
    out: Path,
    layout: Layout = A4,
    *,
    kind: str = "final",
    change=None,
) -> Path:
    """Several chapters as one report: title page, contents list, Tables A-D, then the chapters,
    each starting on a new page."""
    chapters = [c if isinstance(c, Chapter) else read_chapter(c, front_matter=False) for c in sources]
    setter = _setter(layout, kind)
    setter.hyphenate = _words_printed_twice(chapters)
    for block in front_matter(chapters, kind, change=change):
        setter.block(block)
    for chapter in chapters:
        setter.flush_notes()
        setter._new_page()
        setter.notes(chapter.footnotes)
        for block in chapter.blocks:
            setter.block(block)
    setter.flush_notes()
    return setter.output(out)


def long_report(pages: int, out: Path, layout: Layout = A4) -> Path:
    """A whole report of at least ``pages`` pages: the two chapters again and again, renumbered."""
    base = [read_chapter(CHAPTER_18, front_matter=False), read_chapter(CHAPTER_19, front_matter=False)]
    chapters = []
    per_chapter = 36 if layout is A4 else 59  # pages one chapter takes, measured
    for k in range(max(1, -(-pages // per_chapter))):  # at least ``pages`` pages
        chapters.append(renumber(base[k % 2], k + 1, 10_000 + 1_000 * k))
    return render_whole_report(chapters, out, layout)
