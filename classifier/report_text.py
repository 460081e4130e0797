"""Report text normalisation: a report's lines -> entries, footnotes, repaired paragraphs.

The two shapes a report reaches us in (markdown-like text with ``<sup>N</sup>`` markers,
PDF-extracted text with Unicode superscripts, broken lines and page-break footnote
blocks) are normalised here into one stream of :class:`Entry` (headings, paragraphs,
table rows, footnotes, stray URLs). Footnotes are parsed and their URLs reattached;
paragraphs cut by page breaks are rejoined. Every repair is recorded as a
:class:`~classifier.models.ParseWarning`. :mod:`classifier.reports` reads chapters
from the entries.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .models import MEMBER_SPELLINGS, Footnote, ParseWarning

MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
        start=1,
    )
}
MONTH_RE = "|".join(MONTHS)
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
SUP_RUN = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
# Footnote markers are turned into this private-use form so that every later
# stage handles one representation, whichever format the report came in.
MARK = "\ue000{}\ue001"
MARK_RE = re.compile(r"\ue000(\d+)\ue001")
SECTION_NAMES = {
    "assessment": "assessment",
    "background": "background",
    "commitment features": "features",
    "definitions and concepts": "definitions",
    "general interpretive guidelines": "guidelines",
    "scoring guidelines": "scoring",
}
MEMBER_NAMES = list(MEMBER_SPELLINGS)  # every registered member's spellings, longest first
# What an assessment table or a member heading prints for a member it does not assess.
NOT_ASSESSED = r"n\.?/?a\.?|not\s+assessed|not\s+applicable"
# The sign's optional space follows the sign only: '\s*[+-]?\s*\d' would let a long run of spaces
# be split between the two '\s*' in every way before failing (quadratic in the run's length).
MEMBER_HEADING_RE = re.compile(
    r"^(?:the\s+)?("
    + "|".join(map(re.escape, MEMBER_NAMES))
    + r")\s*:\s*((?:[+\-−–]\s*)?\d|"
    + NOT_ASSESSED
    + r")\s*$",
    re.I,
)
SCORE_RE = re.compile(r"^[+\-−–]?\s*\d$")
URL_RE = re.compile(r"h?ttps?://\S+")
TERMINAL = tuple(".!?:;”\"’')*")
QUOTES = "“\"‘'"
# Publishers whose official names contain commas: splitting a citation at its last comma
# would cut them ("…, Foreign" + "Commonwealth and Development Office").
COMMA_PUBLISHERS = (
    "Foreign, Commonwealth and Development Office",
    "Foreign, Commonwealth & Development Office",
    "Federal Ministry for Education, Family Affairs, Senior Citizens, Women and Youth",
    "Federal Ministry for Family Affairs, Senior Citizens, Women and Youth",
    "Federal Ministry of Education, Family Affairs, Senior Citizens, Women and Youth",
)
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def parse_score(text: str) -> int:
    """'+1', '− 1', '0' -> int (any whitespace between the sign and the digit)."""
    return int(re.sub(r"\s", "", text.replace("−", "-").replace("–", "-")))


_DAY_MONTH_YEAR = re.compile(rf"(\d{{1,2}})\s+({MONTH_RE}),?\s+(\d{{4}})")
_MONTH_DAY_YEAR = re.compile(rf"({MONTH_RE})\s+(\d{{1,2}}),?\s+(\d{{4}})")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([,.;:])(?=\s|$)")


def parse_date(text: str) -> dt.date | None:
    """Parse '4 July 2024', '04 July 2024' or 'July 4 2024'; None for anything else."""
    text = text.strip().rstrip(".")
    m = _DAY_MONTH_YEAR.fullmatch(text)
    if m:
        day, month, year = int(m[1]), MONTHS[m[2]], int(m[3])
    else:
        m = _MONTH_DAY_YEAR.fullmatch(text)
        if not m:
            return None
        day, month, year = int(m[2]), MONTHS[m[1]], int(m[3])
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def strip_markers(text: str) -> str:
    return squash(MARK_RE.sub("", text))


def squash(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)


def markers_in(text: str) -> list[int]:
    """The footnote numbers a text cites, in order of first citation."""
    return list(dict.fromkeys(int(m[1]) for m in MARK_RE.finditer(text)))


def is_terminated(text: str) -> bool:
    """Whether a paragraph ends like a finished sentence (a page break did not cut it)."""
    t = text.rstrip()
    if not t:
        return True
    if t.endswith("\ue001"):
        return True
    return t.endswith(TERMINAL)


WARNINGS_PER_CODE = 1_000


class Warnings(list):
    """A file's parse warnings, at most ``WARNINGS_PER_CODE`` of each code.

    Past that a warning is only counted, and :meth:`finish` adds one warning saying how many
    more there were. A real report has a few dozen of any code; a file with a hundred thousand
    lines that look like footnotes would otherwise spend most of its parse building warnings
    nobody can read, and the database would store them all.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def add(self, code: str, message: str, **where) -> None:
        self.counts[code] += 1
        if self.counts[code] <= WARNINGS_PER_CODE:
            self.append(ParseWarning(code=code, message=message, **where))

    def finish(self) -> list[ParseWarning]:
        """The warnings, with a count of each code's unlisted ones."""
        for code, count in self.counts.items():
            if count > WARNINGS_PER_CODE:
                more = count - WARNINGS_PER_CODE
                self.append(
                    ParseWarning(
                        code=code,
                        message=f"{more:,} more '{code}' warnings are not listed ({count:,} in this file)",
                    )
                )
        self.counts.clear()
        return list(self)


# ---------------------------------------------------------------------------
# Stage 1: lines -> entries
#
# Every step here must take time linear in the input, whatever its shape (one huge line,
# a paragraph of a million short lines, runs of one character): each line is looked at a
# bounded number of times, a growing paragraph is never re-read or copied per line, and no
# regex can rescan the rest of a line from each of many starting points.


@dataclass(slots=True)
class Entry:
    kind: str  # heading | para | row | note | url
    text: str
    line: int
    number: int | None = None  # footnote number for notes
    cells: Sequence[str] = ()


class _NextMatch:
    """Where ``pattern`` next matches in ``text`` at or after a position, for positions asked in
    increasing order: the text between two answers is searched once, however often it is asked."""

    __slots__ = ("asked", "found", "pattern", "text")

    def __init__(self, pattern: re.Pattern[str], text: str):
        self.pattern, self.text = pattern, text
        self.asked = self.found = -1

    def at(self, pos: int) -> int:
        if not (self.asked <= pos <= self.found):  # no match lies in [asked, found)
            m = self.pattern.search(self.text, pos)
            self.asked, self.found = pos, (m.start() if m else len(self.text))
        return self.found


_URL_START = re.compile(r"h?ttps?://")
_LINK_URL = re.compile(r"\(h?ttps?://")
_LINK_STOP = re.compile(r"[)\s]")
_ANGLE_URL = re.compile(r"<h?ttps?://")
_ANGLE_STOP = re.compile(r"[>\s]")
_ESCAPED = re.compile(r"\\+([_*\[\]()#.\-])?")


def _link_targets(line: str) -> str:
    """'[text](https://…)' -> its target, as ``re.sub(r"\\[[^\\]]*\\]\\((h?ttps?://[^)\\s]*)\\)", r"\\1")``
    would, in one pass: that regex rescans up to the next ']' from every unclosed '['."""
    if "](" not in line:
        return line
    out: list[str] = []
    done = pos = 0
    stop = _NextMatch(_LINK_STOP, line)
    while (opening := line.find("[", pos)) >= 0 and (closing := line.find("]", opening + 1)) >= 0:
        m = _LINK_URL.match(line, closing + 1)
        end = stop.at(m.end()) if m else -1
        if m and end < len(line) and line[end] == ")":
            out += [line[done:opening], line[closing + 2 : end]]
            done = pos = end + 1
        else:
            pos = closing + 1  # every '[' before this ']' closes at it too, and fails the same way
    out.append(line[done:])
    return "".join(out)


def _angle_targets(line: str) -> str:
    """'<https://…>' -> the URL, as ``re.sub(r"<(h?ttps?://[^>\\s]+)>", r"\\1")`` would, in one pass."""
    if "<" not in line or "://" not in line:
        return line
    out: list[str] = []
    done = pos = 0
    stop = _NextMatch(_ANGLE_STOP, line)
    while m := _ANGLE_URL.search(line, pos):
        end = stop.at(m.end())
        if m.end() < end < len(line) and line[end] == ">":
            out += [line[done : m.start()], line[m.start() + 1 : end]]
            done = pos = end + 1
        else:
            pos = m.start() + 1
    out.append(line[done:])
    return "".join(out)


def _unescape(m: re.Match[str]) -> str:
    # A run of backslashes is matched whole (so a long run is scanned once), and only
    # dropped before a character markdown escapes.
    return m[1] if m[1] is not None else m[0]


_MD_HEADING = re.compile(r"^\s*#{1,6}\s+(.*)$")
_SUP_NUMBER = re.compile(r"<sup>\s*(\d+)\s*</sup>")
_SUP_OTHER = re.compile(r"<sup>([^<]*)</sup>")


def _sup_mark(m: re.Match[str]) -> str:
    return MARK.format(m[1])


def _superscript_mark(m: re.Match[str]) -> str:
    return MARK.format(m[0].translate(SUPERSCRIPTS))


# Each step below first checks, with a plain substring test, that the line can need it:
# most lines need none, and a report can have millions of lines.
def _normalise_markdown_line(line: str) -> tuple[str, bool]:
    heading = False
    if "#" in line and (m := _MD_HEADING.match(line)):
        heading, line = True, m[1]
    if "<sup>" in line:
        line = _SUP_NUMBER.sub(_sup_mark, line)
        line = _SUP_OTHER.sub(r"\1", line)  # 7<sup>th</sup> is an ordinal
    # Escaped link text, clean target: keep the target.
    line = _link_targets(line)
    line = _angle_targets(line)
    if "\\" in line:
        line = _ESCAPED.sub(_unescape, line)
    if "**" in line:
        line = line.replace("**", "")
    line = line.rstrip()
    if line.strip() == "---":
        line = ""
    stripped = line.strip()
    # *italic* wrappers (the communiqué source, analyst lines), possibly over two lines
    if stripped.startswith("*") and not stripped.startswith("* "):
        stripped = stripped[1:]
    if stripped.endswith("*"):
        stripped = stripped[:-1]
    return (stripped or line), heading


def _normalise_pdf_line(line: str) -> str:
    line = line.rstrip()
    line = SUP_RUN.sub(_superscript_mark, line)
    stripped = line.strip()
    if stripped.startswith("$"):
        # A URL continuation that went through a math-mode extractor: $can ada/…\\ html$
        stripped = stripped.strip("$").replace("\\\\ ", "").replace("\\\\", "")
        stripped = stripped.replace("\\-", "-").replace("\\_", "_")
        return stripped
    return line


_PLAIN_DIGITS = re.compile(r"([.,;:!?”\"’)\]])(\d{3,5})(?=\s|$)")


def _plain_digit_markers(text: str, low: int, high: int) -> str:
    """Turn plain-digit footnote numbers glued to punctuation ('succeeding."4438') into markers."""
    if not _PLAIN_DIGITS.search(text):
        return text

    def repl(m: re.Match[str]) -> str:
        n = int(m[2])
        if low <= n <= high:
            return m[1] + MARK.format(n)
        return m[0]

    return _PLAIN_DIGITS.sub(repl, text)


def detect_format(text: str) -> str:
    if "<sup>" in text or re.search(r"^#{1,6} ", text, re.M):
        return "markdown"
    return "pdf-text"


_URL_FRAGMENT_WORD = re.compile(r"^[\w\-./%~?=&#+']+$")
_TWO_INNER_WORDS = re.compile(r"\s\w+\s\w+\s")


def _is_url_fragment(text: str) -> bool:
    t = text.strip()
    if not t:
        return False
    if _URL_START.match(t):
        return True
    # (A fragment ending in '.html' or '.pdf' ends in a letter, so the punctuation test
    # below never needs an exception for it.)
    if t[0].isupper() or t[0] in QUOTES or t.endswith((".", ",", ";", ":")):
        return False
    if " " not in t:
        return bool(_URL_FRAGMENT_WORD.match(t))
    # 'can ada/news/…': spaces the PDF extractor put inside a URL
    return "/" in t and ", " not in t and t.count(" ") <= 3 and not _TWO_INNER_WORDS.search(t)


class _Spans:
    """Where a pattern occurs in a line, to ask in logarithmic time whether one occurrence lies
    inside a range, or how many do. Occurrences that start later must not end earlier."""

    __slots__ = ("ends", "starts")

    def __init__(self, pattern: re.Pattern[str], text: str):
        group = 1 if pattern.groups else 0
        self.starts: list[int] = []
        self.ends: list[int] = []
        for m in pattern.finditer(text):
            self.starts.append(m.start(group))
            self.ends.append(m.end(group))

    def inside(self, a: int, b: int) -> bool:
        i = bisect_left(self.starts, a)
        return i < len(self.starts) and self.ends[i] <= b

    def count(self, a: int, b: int) -> int:
        return bisect_left(self.starts, b) - bisect_left(self.starts, a)


# What a footnote's start in mid-line is judged by (see _LineFacts), as patterns whose
# occurrences are found once per line. Lookaheads find overlapping occurrences.
_LINE_PATTERNS = {
    "url": re.compile(r"(?=(ttps?://\S))"),  # URL_RE.search on any piece finds one of these
    "access": re.compile(r"Access Date"),
    "space": re.compile(r" "),
    "slash": re.compile(r"/"),
    "comma-space": re.compile(r", "),
    "not-url-char": re.compile(r"[^\w\-./%~?=&#+']"),
    "two-words": re.compile(r"(?=(\s\w+\s\w+\s))"),
}


class _LineFacts:
    """Answers ``_split_footnote_starts``' question about any piece ``line[a:b]`` without reading
    the piece: a line with many candidate starts would otherwise be re-read from its last split
    for each of them."""

    def __init__(self, text: str):
        self.text = text
        self.spans: dict[str, _Spans] = {}

    def _spans(self, name: str) -> _Spans:
        if name not in self.spans:
            self.spans[name] = _Spans(_LINE_PATTERNS[name], self.text)
        return self.spans[name]

    def looks_cited(self, a: int, b: int) -> bool:
        """Whether ``line[a:b]`` holds a URL or an access date, or is a URL fragment."""
        return (
            self._spans("url").inside(a, b)
            or self._spans("access").inside(a, b)
            or self.is_url_fragment(a, b)
        )

    def is_url_fragment(self, a: int, b: int) -> bool:
        """``_is_url_fragment(line[a:b])``."""
        text = self.text
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a == b:
            return False
        if _URL_START.match(text, a, b):
            return True
        if text[a].isupper() or text[a] in QUOTES or text[b - 1] in ".,;:":
            return False
        spaces = self._spans("space").count(a, b)
        if not spaces:
            return not self._spans("not-url-char").inside(a, b)
        return (
            self._spans("slash").inside(a, b)
            and not self._spans("comma-space").inside(a, b)
            and spaces <= 3
            and not self._spans("two-words").inside(a, b)
        )


_FOOTNOTE_START = re.compile(r"\s(\ue000(\d+)\ue001)\s*(?=\S)|\s(\d{3,5})\s+(?=[A-Z“\"‘'])")


def _split_footnote_starts(text: str, last_number: int | None) -> list[str]:
    """Split a line where a new footnote starts in the middle (after a URL, several per line).

    Body text glues its markers to the word before ("migration.⁴⁴⁴³"); a footnote that
    starts mid-line follows whitespace and a finished citation or URL.
    """
    first = _FOOTNOTE_START.search(text)
    if first is None:  # most lines
        text = text.strip()
        return [text] if text else []
    parts: list[str] = []
    start = 0
    facts: _LineFacts | None = None
    for m in _FOOTNOTE_START.finditer(text, first.start()):
        if m[3] is not None:
            n = int(m[3])
            if last_number is None or not (last_number < n <= last_number + 10):
                continue
        else:
            n = int(m[2])
        if facts is None:
            facts = _LineFacts(text)
        if not facts.looks_cited(start, m.start()):
            continue
        parts.append(text[start : m.start()])
        start = m.start() + 1
        last_number = n
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


_NOTE_MARK = re.compile(r"^\ue000(\d+)\ue001\s*(.*)$")
_NOTE_DIGITS = re.compile(r"^(\d{3,5})\s+(?=[A-Z“\"‘'])(.*)$")


def _note_start(text: str, last_number: int | None) -> tuple[int, str] | None:
    t = text.strip()
    if t.startswith("\ue000") and (m := _NOTE_MARK.match(t)):
        return int(m[1]), m[2]
    if (
        last_number is not None
        and t[:1].isdecimal()
        and (m := _NOTE_DIGITS.match(t))
        and last_number < int(m[1]) <= last_number + 10
    ):
        return int(m[1]), m[2]
    return None


_URL_CONTINUES = re.compile(r"^[\w\-./%~?=&#+]+(\s|$)")
_WORD_HEAD = 16  # enough of a word to tell whether URL_RE matches it


class _Growing:
    """The text of the entry that lines are still being added to, joined once when it is done.

    Gluing each line onto the paragraph's string, and re-splitting it for its last word,
    would cost the paragraph's length for every line: quadratic in a paragraph's length.
    Only the start of the last word and the last character are kept up to date.
    """

    __slots__ = ("entry", "last_char", "pieces", "word_head")

    def __init__(self, entry: Entry):
        text = entry.text
        self.entry = entry
        self.pieces = [text]
        self.last_char = text[-1:]
        start = text.rfind(" ") + 1
        self.word_head = text[start : start + _WORD_HEAD]

    def glue(self, addition: str) -> None:
        """Join a continuation line; no space inside a URL broken at a line end."""
        addition = addition.strip()
        glued = bool(
            self.last_char in ("-", "/", "_", ".")
            and URL_RE.match(self.word_head)
            and _URL_CONTINUES.match(addition)
            and not addition[0].isupper()
        )
        self.last_char = addition[-1]  # (lines glued are never blank)
        space = addition.rfind(" ")
        if glued:
            self.pieces.append(addition)
            if space < 0:  # the URL's word goes on
                self.word_head = (self.word_head + addition[:_WORD_HEAD])[:_WORD_HEAD]
            else:
                self.word_head = addition[space + 1 : space + 1 + _WORD_HEAD]
        else:
            self.pieces.append(" " + addition)
            self.word_head = addition[space + 1 : space + 1 + _WORD_HEAD]

    def close(self) -> None:
        if len(self.pieces) > 1:
            self.entry.text = "".join(self.pieces)


_PDF_CHAPTER_TITLE = re.compile(r"^\d{1,2}\.\s+[A-Z][^.\t]*:\s*[A-Z][^.\t]*$")
_LONGEST_SECTION_NAME = max(map(len, SECTION_NAMES))
_NUMBERED_BULLET = re.compile(r"^\s*(?:[-•]\s+)?\d\.\s")


def _is_pdf_heading(text: str) -> bool:
    t = text.strip()
    if ":" not in t:  # chapter titles and member headings have one; section names do not
        return len(t) <= _LONGEST_SECTION_NAME and t.lower() in SECTION_NAMES
    if len(t) < 160 and _PDF_CHAPTER_TITLE.match(t):
        return True  # a chapter title: "19. Migration and Refugees: Preventing …"
    return t.lower() in SECTION_NAMES or bool(MEMBER_HEADING_RE.match(t))


_MARKDOWN_SPECIAL = re.compile(r"[#<\[\\*]|---")


def _normalised_lines(text: str, source_format: str) -> Iterator[tuple[str, bool]]:
    """Each line of the report normalised, with whether markdown marks it as a heading.

    A generator: a file of millions of short lines would otherwise hold a second copy of
    them all, as tuples, while its entries are built.
    """
    if source_format == "markdown":
        # Most lines hold nothing markdown marks up: normalising them is stripping them.
        for raw in text.split("\n"):
            yield _normalise_markdown_line(raw) if _MARKDOWN_SPECIAL.search(raw) else (raw.strip(), False)
        return
    # A run of superscripts never spans a line break: one pass over the whole text does.
    text = SUP_RUN.sub(_superscript_mark, text)
    math = "$" in text  # only lines starting with '$' need more than stripping

    def line(raw: str) -> str:
        return _normalise_pdf_line(raw) if math and raw.lstrip().startswith("$") else raw.rstrip()

    # Markers found anywhere set the range of plain-digit ones (stripping a line moves none).
    numbers = [int(n) for n in MARK_RE.findall("\n".join(map(line, text.split("\n"))) if math else text)]
    low, high = (min(numbers) - 20, max(numbers) + 20) if numbers else (0, -1)
    for raw in text.split("\n"):
        yield (_plain_digit_markers(line(raw), low, high) if numbers else line(raw)), False


def tokenize(text: str, source_format: str) -> list[Entry]:
    """Normalise a report's lines into entries: headings, paragraphs, rows, notes, urls."""
    pdf = source_format == "pdf-text"
    entries: list[Entry] = []
    current: Entry | None = None  # the last entry while lines continue it, else None
    # The text of the last entry, from when a line is first glued to it until another is.
    growing: _Growing | None = None
    last_note: int | None = None

    def glue(entry: Entry, segment: str) -> None:
        nonlocal growing
        if growing is None or growing.entry is not entry:
            if growing is not None:
                growing.close()
            growing = _Growing(entry)
        growing.glue(segment)

    for index, (line, heading) in enumerate(_normalised_lines(text, source_format), start=1):
        stripped = line.strip()
        if not stripped:
            current = None
            continue
        if heading or (
            pdf
            and (
                _is_pdf_heading(stripped)
                if ":" in stripped
                else len(stripped) <= _LONGEST_SECTION_NAME and stripped.lower() in SECTION_NAMES
            )
        ):
            entries.append(Entry("heading", stripped, index))
            current = None
            continue
        if "\t" in line and not (current and current.kind == "note"):
            cells = [c.strip() for c in line.split("\t")]
            entries.append(Entry("row", stripped, index, cells=cells))
            current = None
            continue
        if current is not None and current.kind == "para" and "." in line and _NUMBERED_BULLET.match(line):
            current = None  # a numbered bullet starts its own paragraph
        if _FOOTNOTE_START.search(stripped):
            segments = _split_footnote_starts(stripped, last_note)
        else:
            segments = [stripped]  # most lines: no footnote starts inside them
        for position, segment in enumerate(segments):
            first = segment[0]
            if first == "\ue000" or (last_note is not None and first.isdecimal()):
                note = _note_start(segment, last_note)
                if note is not None:
                    number, body = note
                    current = Entry("note", body, index, number=number)
                    entries.append(current)
                    last_note = number
                    continue
            if current is not None and position == 0 and current.kind in ("note", "para", "url"):
                glue(current, segment)
                continue
            previous = entries[-1] if entries else None
            if position == 0 and previous is not None and previous.kind == "note":
                if growing is not None and growing.entry is previous:
                    comma = growing.last_char == ","
                else:
                    comma = previous.text.rstrip().endswith(",")
                if comma:
                    # a citation cut after its title's comma continues after the page break
                    glue(previous, segment)
                    current = previous
                    continue
            is_url = (
                (segment.startswith(("http", "ttp")) and URL_RE.match(segment) is not None)
                or (last_note is not None and not first.isupper())
            ) and _is_url_fragment(segment)
            current = Entry("url" if is_url else "para", segment, index)
            entries.append(current)
    if growing is not None:
        growing.close()
    return entries


# ---------------------------------------------------------------------------
# Stage 2: footnotes


_ACCESS_LEAD = re.compile(r"Access\s*[Dd]ate:\s*")
_TRANSLATION_LEAD = re.compile(r"Translation [Pp]rovided by ")
_FOUR_DIGITS = re.compile(r"\d{4}")


_URL_TAIL = re.compile(r"[\w\-./%~?=&#+ ]+")
_PLACE_AND_DATE = re.compile(
    rf"^(.*)\(([^()]*)\),?\s*(n\.d\.?|\d{{1,2}}\s+(?:{MONTH_RE})\s+\d{{4}}|(?:{MONTH_RE})\s+\d{{1,2}},?\s+\d{{4}}|(?:{MONTH_RE})\s+\d{{4}}|\d{{4}})\.?\s*$"
)


def _final_clause(lead: re.Pattern[str], text: str) -> tuple[re.Match[str] | None, int]:
    r"""The clause that ``lead`` opens and that runs, without a full stop, to the end of ``text``
    (stripped; one final full stop allowed): the match of ``lead`` and where the clause ends.

    This is ``re.search(lead + r"([^.]…)\.?\s*$")`` found directly: the clause starts after the
    last full stop, so only the first ``lead`` after it can open it. The regex would instead
    try every ``lead`` in the text and read on to the end from each.
    """
    end = len(text) - 1 if text.endswith(".") else len(text)
    return lead.search(text, text.rfind(".", 0, end) + 1, end), end


def _parse_citation(number: int, raw: str, line: int) -> Footnote:
    text = raw = squash(raw)
    url = None
    # (Each pattern below is tried only when the words it needs are there: a report can
    # have a hundred thousand footnotes.)
    matches = list(URL_RE.finditer(text)) if "ttp" in text else []
    if matches:
        last = matches[-1]
        url = last[0]
        tail = text[last.end() :].strip()
        # 'https://www.merriam-webster.com/ dictionary/action': a space inside the URL
        if tail and _unfinished(url) and _URL_TAIL.fullmatch(tail):
            url += tail.replace(" ", "")
        text = text[: last.start()].strip()
    accessed = None
    m, end = _final_clause(_ACCESS_LEAD, text) if "ate:" in text else (None, 0)
    if m and end - m.end() >= 4 and _FOUR_DIGITS.fullmatch(text, end - 4, end):
        accessed = parse_date(text[m.end() : end])
        text = text[: m.start()].strip()
    translation = None
    m, end = _final_clause(_TRANSLATION_LEAD, text) if "rovided by " in text else (None, 0)
    if m and end > m.end():
        translation = text[m.start() : end]
        text = text[: m.start()].strip()
    title = publisher = place = published_raw = None
    published = None
    m = _PLACE_AND_DATE.search(text) if ")" in text else None
    if m:
        head, place, published_raw = m[1].strip().rstrip(","), m[2].strip(), m[3].strip()
        published = parse_date(published_raw)
        known = next((name for name in COMMA_PUBLISHERS if head.endswith(", " + name)), None)
        if known:
            title, publisher = head[: -len(known) - 2], known
        elif ", " in head:
            title, publisher = head.rsplit(", ", 1)
        else:
            title = head
    else:
        title = text.rstrip(".") or None
    return Footnote(
        number=number,
        title=title.strip() if title else None,
        publisher=publisher.strip() if publisher else None,
        place=place or None,
        published=published,
        published_raw=published_raw,
        accessed=accessed,
        url=url,
        translation=translation,
        raw=raw,
        line=line,
    )


def _repair_url(url: str) -> str:
    url = url.rstrip(").,;")
    if url.startswith("ttps://") or url.startswith("ttp://"):
        url = "h" + url
    return url


def _unfinished(url: str | None) -> bool:
    return url is not None and (url.endswith(("-", "_", ".", "/")) or url in ("https://", "http://"))


_HOST_FRAGMENT = re.compile(r"^[\w\-]+(\.[\w\-]+)*\.[a-z]{2,}(/|$)")


def _url_stage(url: str | None, fragment: str) -> str | None:
    """Whether ``fragment`` can continue ``url``: 'strong' (visibly cut), 'weak' (ends in '/'), None."""
    if not _unfinished(url):
        return None
    assert url is not None
    rest = url.split("://", 1)[-1]
    at_host = "/" not in rest
    host_fragment = bool(_HOST_FRAGMENT.match(fragment))
    if at_host != host_fragment and rest:
        return None
    if url.endswith(("-", "_")) or at_host:
        return "strong"
    return "weak"


def collect_footnotes(entries: list[Entry], warnings: Warnings) -> dict[int, Footnote]:
    """Parse note entries and reattach URLs printed on their own line or far away."""
    notes: list[tuple[int, Entry]] = [(i, e) for i, e in enumerate(entries) if e.kind == "note"]
    parsed: dict[int, Footnote] = {}
    position: dict[int, int] = {}
    for index, entry in notes:
        fn = _parse_citation(entry.number or 0, entry.text, entry.line)
        if fn.number in parsed:
            if parsed[fn.number].raw != fn.raw:
                warnings.add(
                    code="footnote-duplicate",
                    message=f"footnote {fn.number} is printed twice with different text "
                    f"(lines {parsed[fn.number].line} and {fn.line}); the first is kept",
                    line=fn.line,
                )
            continue
        parsed[fn.number] = fn
        position[fn.number] = index

    completed: set[int] = set()
    window = 14
    at = {index: number for number, index in position.items()}  # entry index -> footnote there

    def near(index: int, *, before: bool = True, after: bool = True):
        """Footnotes within the window around entry ``index``, nearest first (of two at the same
        distance, the earlier). Looking only inside the window keeps this independent of how
        many footnotes the report has."""
        for distance in range(1, window + 1):
            if before and (n := at.get(index - distance)) is not None:
                yield n
            if after and (n := at.get(index + distance)) is not None:
                yield n

    fragments: list[tuple[int, Entry]] = []
    for index, entry in enumerate(entries):
        if entry.kind != "url":
            continue
        text = entry.text.strip()
        if not URL_RE.match(text):
            fragments.append((index, entry))
            continue
        # A whole URL on its own line: the nearest earlier footnote without one, else the next.
        url = _repair_url(text.split()[0])
        target = next((n for n in near(index, after=False) if parsed[n].url is None), None)
        if target is None:
            target = next((n for n in near(index, before=False) if parsed[n].url is None), None)
        if target is None:
            target = next((n for n in near(index) if parsed[n].url in ("https://", "http://")), None)
        if target is None:
            warnings.add(
                code="url-orphan",
                message=f"URL printed on its own line matches no footnote: {url}",
                line=entry.line,
            )
            continue
        parsed[target] = parsed[target].model_copy(update={"url": url})
        where = "after" if position[target] < index else "before"
        warnings.add(
            code="url-detached",
            message=f"footnote {target}'s URL is printed on its own line {where} it; reattached",
            line=entry.line,
        )

    def attach(target: int, index: int, entry: Entry, fragment: str) -> None:
        parsed[target] = parsed[target].model_copy(update={"url": (parsed[target].url or "") + fragment})
        completed.add(target)
        warnings.add(
            code="url-split",
            message=f"footnote {target}'s URL continues on line {entry.line}; rejoined",
            line=entry.line,
        )

    def is_open(n: int, fragment: str, strength: str) -> bool:
        return n not in completed and _url_stage(parsed[n].url, fragment) == strength

    # Pass 1: a fragment printed right after its footnote. Pass 2: the nearest open URL,
    # earlier before later, a URL that is visibly cut ('-', '_', host) before one ending in '/'.
    leftovers = []
    for index, entry in fragments:
        fragment = _SPACES.sub("", entry.text)
        previous = at.get(index - 1)
        if previous is not None and is_open(previous, fragment, "strong"):
            attach(previous, index, entry, fragment)
        else:
            leftovers.append((index, entry, fragment))
    for index, entry, fragment in leftovers:
        target = None
        for strength, backward in (("strong", True), ("strong", False), ("weak", True)):
            candidates = near(index, before=backward, after=not backward)
            target = next((n for n in candidates if is_open(n, fragment, strength)), None)
            if target is not None:
                break
        if target is None:
            warnings.add(
                code="url-orphan",
                message=f"URL fragment matches no unfinished footnote URL: {fragment}",
                line=entry.line,
            )
            continue
        attach(target, index, entry, fragment)
    for number, fn in parsed.items():
        if fn.url is not None:
            fixed = _repair_url(_SPACES.sub("", fn.url))
            if fixed != fn.url:
                parsed[number] = fn = fn.model_copy(update={"url": fixed})
        if fn.url is not None and fn.url.endswith(("-", "_")):
            warnings.add(
                code="url-truncated",
                message=f"footnote {number}'s URL is cut off in the report: {fn.url}",
                line=fn.line,
            )
        if fn.url is None:
            warnings.add(
                code="footnote-no-url",
                message=f"footnote {number} has no URL",
                line=fn.line,
            )
    _split_publishers(parsed)
    for number, fn in parsed.items():
        if fn.published_raw is None or fn.publisher is None:
            missing = [
                name
                for name, value in (("publisher", fn.publisher), ("date", fn.published_raw))
                if value is None
            ]
            warnings.add(
                code="footnote-citation",
                message=f"footnote {number}: citation not in the usual "
                f"'Title, Publisher (Place) Date.' form; missing {', '.join(missing)}",
                line=fn.line,
            )
    return parsed


def _split_publishers(parsed: dict[int, Footnote]) -> None:
    """'Statement G7 Information Centre (…)': no comma; split at a publisher seen elsewhere."""
    # The known publishers as a tree of their words read from the last one, so that a title
    # is matched against all of them at once by walking back over its own last words; the
    # deepest match is the longest publisher.
    tree: dict = {}
    for publisher in {fn.publisher for fn in parsed.values() if fn.publisher}:
        node = tree
        for word in reversed(publisher.split(" ")):
            node = node.setdefault(word, {})
        node[None] = publisher
    if not tree:
        return
    for number, fn in parsed.items():
        if fn.publisher is None and fn.title and fn.place is not None:
            words = fn.title.split(" ")
            node, found = tree, None
            for k in range(len(words) - 1, 0, -1):  # words[0] stays: the title must keep a word
                child = node.get(words[k])
                if child is None:
                    break
                node = child
                found = node.get(None, found)
            if found:
                parsed[number] = fn.model_copy(
                    update={"title": fn.title[: -len(found)].strip(), "publisher": found}
                )


# ---------------------------------------------------------------------------
# Stage 3: paragraph repair


_SENTENCE_ENDS = (*TERMINAL, "\ue001")
_DATE_START = re.compile(rf"^\d{{1,2}} (?:{MONTH_RE})")
_ANALYST_LINE = re.compile(r"^(?:Lead\s+)?Analysts?\s*:")
_DATED_ACTION = re.compile(rf"^On \d{{1,2}}(?:\s*[-–]\s*\d{{1,2}})? (?:{MONTH_RE})\b")


def rejoin_paragraphs(entries: list[Entry], warnings: Warnings) -> list[Entry]:
    """Join paragraphs a page break cut, across the footnote blocks printed in between."""
    out: list[Entry] = []
    pending: Entry | None = None  # an unterminated paragraph waiting for its continuation
    # The pending paragraph's text as pieces, joined once when it is finished (joining per
    # continuation would copy the paragraph each time), and its last characters.
    pieces: list[str] = []
    tail = ""

    def finish() -> None:
        if pending is not None:
            pending.text = pieces[0] if len(pieces) == 1 else "".join(pieces)

    for entry in entries:
        if entry.kind in ("note", "url"):
            out.append(entry)
            continue
        if pending is not None and entry.kind == "para":
            # '… English Channel. On' + '16 November 2024, …': the date's 'On' was left behind
            dangling_on = tail.endswith(" On") and len(tail) >= 4 and tail[-4] in '.!?\ue001”"'
            if dangling_on and _DATE_START.match(entry.text):
                _drop_last(pieces, len(" On"))
                entry = Entry("para", "On " + entry.text, entry.line)
                warnings.add(
                    code="paragraph-split",
                    message=f"the paragraph at line {entry.line} starts on the previous line's 'On'",
                    line=entry.line,
                )
            elif entry.text.startswith("On ") and _DATED_ACTION.match(entry.text):
                # A new dated action never continues a cut sentence: the report lost the rest.
                warnings.add(
                    code="paragraph-truncated",
                    message=f"the paragraph at line {pending.line} breaks off mid-sentence "
                    f"('…{tail[-40:]}') and the report never continues it",
                    line=pending.line,
                )
            else:
                # Para texts are never blank, so whether the whole ends a sentence is whether
                # this piece does.
                piece = " " + entry.text.lstrip()
                pieces.append(piece)
                tail = (tail + piece)[-40:]
                if not is_terminated(piece):
                    continue
                finish()
                pending = None
                continue
            finish()
            pending = None
        if entry.kind == "para":
            out.append(entry)
            end = entry.text.rstrip()
            # (not is_terminated(entry.text); an analyst line is whole without a full stop)
            if end and not end.endswith(_SENTENCE_ENDS) and not _ANALYST_LINE.match(end):
                pending = entry
                pieces = [entry.text.rstrip()]
                tail = pieces[0][-40:]
            continue
        finish()
        pending = None
        out.append(entry)
    finish()
    return out


def _drop_last(pieces: list[str], count: int) -> None:
    """Remove the last ``count`` characters of the text the pieces make up."""
    while count:
        last = pieces.pop()
        if len(last) > count:
            pieces.append(last[:-count])
            return
        count -= len(last)
