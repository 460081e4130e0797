"""Compliance-report parsing: a chapter (or a file of chapters) -> structured gold.

The G7 Research Group's reports reach us in two shapes: markdown-like text with
``<sup>N</sup>`` footnote markers, and text extracted from a PDF with Unicode
superscript markers, broken lines, page-break footnote blocks in the middle of
paragraphs and a flattened scoring table. Both are normalised into one stream of
*entries* (headings, paragraphs, table rows, footnotes, stray URLs) and the same
structural pass reads the chapter from that stream.

The parser repairs what it can (rejoins broken paragraphs, reattaches URLs printed
away from their footnote) and records a :class:`~classifier.models.ParseWarning`
for every repair or contradiction; it never silently picks between two readings.
Input it cannot read raises :class:`ReportParseError` and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .models import (
    MEMBERS,
    AssessmentRow,
    Chapter,
    Definition,
    EvidenceItem,
    Footnote,
    Guidelines,
    MemberSection,
    ParsedDimension,
    ParseWarning,
    Report,
)
from .rubric import format_average

__all__ = [
    "ReportParseError",
    "parse_report",
    "parse_report_file",
    "read_fragment",
    "scoring_table",
]

MAX_REPORT_BYTES = 50_000_000


class ReportParseError(Exception):
    """A report file that cannot be read as a compliance report."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        where = self.path or "<report>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


# ---------------------------------------------------------------------------
# Small text helpers

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
MEMBER_NAMES = list(MEMBERS.values())
MEMBER_HEADING_RE = re.compile(
    r"^(?:the\s+)?(" + "|".join(MEMBER_NAMES) + r")\s*:\s*([+\-−–]?\s*\d)\s*$", re.I
)
SCORE_RE = re.compile(r"^[+\-−–]?\s*\d$")
URL_RE = re.compile(r"h?ttps?://\S+")
TERMINAL = tuple(".!?:;”\"’')*")
QUOTES = "“\"‘'"
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def parse_score(text: str) -> int:
    return int(text.replace("−", "-").replace("–", "-").replace(" ", ""))


def parse_date(text: str) -> dt.date | None:
    """Parse '4 July 2024', '04 July 2024' or 'July 4 2024'; None for anything else."""
    text = text.strip().rstrip(".")
    m = re.fullmatch(rf"(\d{{1,2}})\s+({MONTH_RE}),?\s+(\d{{4}})", text)
    if m:
        day, month, year = int(m[1]), MONTHS[m[2]], int(m[3])
    else:
        m = re.fullmatch(rf"({MONTH_RE})\s+(\d{{1,2}}),?\s+(\d{{4}})", text)
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
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([,.;:])(?=\s|$)", r"\1", text)


def markers_in(text: str) -> list[int]:
    seen: list[int] = []
    for m in MARK_RE.finditer(text):
        n = int(m[1])
        if n not in seen:
            seen.append(n)
    return seen


def is_terminated(text: str) -> bool:
    """Whether a paragraph ends like a finished sentence (a page break did not cut it)."""
    t = text.rstrip()
    if not t:
        return True
    if t.endswith("\ue001"):
        return True
    return t.endswith(TERMINAL)


# ---------------------------------------------------------------------------
# Stage 1: lines -> entries


@dataclass
class Entry:
    kind: str  # heading | para | row | note | url
    text: str
    line: int
    number: int | None = None  # footnote number for notes
    cells: list[str] = field(default_factory=list)


def _normalise_markdown_line(line: str) -> tuple[str, bool]:
    heading = False
    m = re.match(r"^\s*#{1,6}\s+(.*)$", line)
    if m:
        heading, line = True, m[1]
    line = re.sub(r"<sup>\s*(\d+)\s*</sup>", lambda m: MARK.format(m[1]), line)
    line = re.sub(r"<sup>([^<]*)</sup>", r"\1", line)  # 7<sup>th</sup> is an ordinal
    # Escaped link text, clean target: keep the target.
    line = re.sub(r"\[[^\]]*\]\((h?ttps?://[^)\s]*)\)", r"\1", line)
    line = re.sub(r"<(h?ttps?://[^>\s]+)>", r"\1", line)
    line = re.sub(r"\\+([_*\[\]()#.\-])", r"\1", line)
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
    line = SUP_RUN.sub(lambda m: MARK.format(m[0].translate(SUPERSCRIPTS)), line)
    stripped = line.strip()
    if stripped.startswith("$"):
        # A URL continuation that went through a math-mode extractor: $can ada/…\\ html$
        stripped = stripped.strip("$").replace("\\\\ ", "").replace("\\\\", "")
        stripped = stripped.replace("\\-", "-").replace("\\_", "_")
        return stripped
    return line


def _plain_digit_markers(text: str, low: int, high: int) -> str:
    """Turn plain-digit footnote numbers glued to punctuation ('succeeding."4438') into markers."""

    def repl(m: re.Match[str]) -> str:
        n = int(m[2])
        if low <= n <= high:
            return m[1] + MARK.format(n)
        return m[0]

    return re.sub(r"([.,;:!?”\"’)\]])(\d{3,5})(?=\s|$)", repl, text)


def detect_format(text: str) -> str:
    if "<sup>" in text or re.search(r"^#{1,6} ", text, re.M):
        return "markdown"
    return "pdf-text"


def _is_url_fragment(text: str) -> bool:
    t = text.strip()
    if not t:
        return False
    if re.match(r"^h?ttps?://", t):
        return True
    if (
        t[0].isupper()
        or t[0] in QUOTES
        or (t.endswith((".", ",", ";", ":")) and not re.search(r"\.(html?|pdf|php|aspx?)$", t))
    ):
        return False
    if " " not in t:
        return bool(re.match(r"^[\w\-./%~?=&#+']+$", t))
    # 'can ada/news/…': spaces the PDF extractor put inside a URL
    return "/" in t and ", " not in t and t.count(" ") <= 3 and not re.search(r"\s\w+\s\w+\s", t)


def _split_footnote_starts(text: str, last_number: int | None) -> list[str]:
    """Split a line where a new footnote starts in the middle (after a URL, several per line).

    Body text glues its markers to the word before ("migration.⁴⁴⁴³"); a footnote that
    starts mid-line follows whitespace and a finished citation or URL.
    """
    parts: list[str] = []
    start = 0
    pattern = re.compile(r"\s(\ue000(\d+)\ue001)\s*(?=\S)|\s(\d{3,5})\s+(?=[A-Z“\"‘'])")
    for m in pattern.finditer(text):
        before = text[start : m.start()].strip()
        looks_cited = bool(URL_RE.search(before) or "Access Date" in before or _is_url_fragment(before))
        if not looks_cited:
            continue
        if m[3] is not None:
            n = int(m[3])
            if last_number is None or not (last_number < n <= last_number + 10):
                continue
        else:
            n = int(m[2])
        parts.append(text[start : m.start()])
        start = m.start() + 1
        last_number = n
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def _note_start(text: str, last_number: int | None) -> tuple[int, str] | None:
    t = text.strip()
    m = re.match(r"^\ue000(\d+)\ue001\s*(.*)$", t)
    if m:
        return int(m[1]), m[2]
    m = re.match(r"^(\d{3,5})\s+(?=[A-Z“\"‘'])(.*)$", t)
    if m and last_number is not None and last_number < int(m[1]) <= last_number + 10:
        return int(m[1]), m[2]
    return None


def _glue(existing: str, addition: str) -> str:
    """Join a continuation line; no space inside a URL broken at a line end."""
    addition = addition.strip()
    last = existing.rstrip().split(" ")[-1] if existing.strip() else ""
    if (
        URL_RE.match(last)
        and last.endswith(("-", "/", "_", "."))
        and re.match(r"^[\w\-./%~?=&#+]+(\s|$)", addition)
        and not addition[0].isupper()
    ):
        return existing.rstrip() + addition
    return existing.rstrip() + " " + addition


def _is_pdf_heading(text: str) -> bool:
    t = text.strip()
    if len(t) < 160 and re.match(r"^\d{1,2}\.\s+[A-Z][^.\t]*:\s*[A-Z][^.\t]*$", t):
        return True  # a chapter title: "19. Migration and Refugees: Preventing …"
    return t.lower() in SECTION_NAMES or bool(MEMBER_HEADING_RE.match(t))


def tokenize(text: str, source_format: str) -> list[Entry]:
    """Normalise a report's lines into entries: headings, paragraphs, rows, notes, urls."""
    raw_lines = text.split("\n")
    if source_format == "markdown":
        lines = []
        for raw in raw_lines:
            norm, heading = _normalise_markdown_line(raw)
            lines.append((norm, heading))
    else:
        lines = [(_normalise_pdf_line(raw), False) for raw in raw_lines]
        numbers = [int(n) for n in re.findall(r"\ue000(\d+)\ue001", "\n".join(text for text, _ in lines))]
        if numbers:
            low, high = min(numbers) - 20, max(numbers) + 20
            lines = [(_plain_digit_markers(text, low, high), h) for text, h in lines]

    entries: list[Entry] = []
    current: Entry | None = None
    last_note: int | None = None
    for index, (line, heading) in enumerate(lines, start=1):
        if not line.strip():
            current = None
            continue
        if heading or (source_format == "pdf-text" and _is_pdf_heading(line)):
            entries.append(Entry("heading", line.strip(), index))
            current = None
            continue
        if "\t" in line and not (current and current.kind == "note"):
            cells = [c.strip() for c in line.split("\t")]
            entries.append(Entry("row", line.strip(), index, cells=cells))
            current = None
            continue
        if current is not None and current.kind == "para" and re.match(r"^\s*(?:[-•]\s+)?\d\.\s", line):
            current = None  # a numbered bullet starts its own paragraph
        segments = _split_footnote_starts(line.strip(), last_note)
        for position, segment in enumerate(segments):
            note = _note_start(segment, last_note)
            if note is not None:
                number, body = note
                current = Entry("note", body, index, number=number)
                entries.append(current)
                last_note = number
                continue
            if current is not None and position == 0 and current.kind in ("note", "para", "url"):
                current.text = _glue(current.text, segment)
                continue
            previous = entries[-1] if entries else None
            if (
                position == 0
                and previous is not None
                and previous.kind == "note"
                and (previous.text.rstrip().endswith(","))
            ):
                # a citation cut after its title's comma continues after the page break
                previous.text = _glue(previous.text, segment)
                current = previous
                continue
            is_url = _is_url_fragment(segment) and (
                URL_RE.match(segment) is not None or (last_note is not None and not segment[0].isupper())
            )
            current = Entry("url" if is_url else "para", segment.strip(), index)
            entries.append(current)
    return entries


# ---------------------------------------------------------------------------
# Stage 2: footnotes


def _parse_citation(number: int, raw: str, line: int) -> Footnote:
    text = squash(raw)
    url = None
    matches = list(URL_RE.finditer(text))
    if matches:
        last = matches[-1]
        url = last[0]
        tail = text[last.end() :].strip()
        # 'https://www.merriam-webster.com/ dictionary/action': a space inside the URL
        if tail and _unfinished(url) and re.fullmatch(r"[\w\-./%~?=&#+ ]+", tail):
            url += tail.replace(" ", "")
        text = text[: last.start()].strip()
    accessed = None
    m = re.search(r"Access\s*[Dd]ate:\s*([^.]*?\d{4})\.?\s*$", text)
    if m:
        accessed = parse_date(m[1])
        text = text[: m.start()].strip()
    translation = None
    m = re.search(r"(Translation [Pp]rovided by [^.]+)\.?\s*$", text)
    if m:
        translation = m[1]
        text = text[: m.start()].strip()
    title = publisher = place = published_raw = None
    published = None
    m = re.search(
        rf"^(.*)\(([^()]*)\),?\s*(n\.d\.?|\d{{1,2}}\s+(?:{MONTH_RE})\s+\d{{4}}|(?:{MONTH_RE})\s+\d{{1,2}},?\s+\d{{4}}|(?:{MONTH_RE})\s+\d{{4}}|\d{{4}})\.?\s*$",
        text,
    )
    if m:
        head, place, published_raw = m[1].strip().rstrip(","), m[2].strip(), m[3].strip()
        published = parse_date(published_raw)
        if ", " in head:
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
        raw=squash(raw),
        line=line,
    )


def _repair_url(url: str) -> str:
    url = url.rstrip(").,;")
    if url.startswith("ttps://") or url.startswith("ttp://"):
        url = "h" + url
    return url


def _unfinished(url: str | None) -> bool:
    return url is not None and (url.endswith(("-", "_", ".", "/")) or url in ("https://", "http://"))


def _url_stage(url: str | None, fragment: str) -> str | None:
    """Whether ``fragment`` can continue ``url``: 'strong' (visibly cut), 'weak' (ends in '/'), None."""
    if not _unfinished(url):
        return None
    assert url is not None
    rest = url.split("://", 1)[-1]
    at_host = "/" not in rest
    host_fragment = bool(re.match(r"^[\w\-]+(\.[\w\-]+)*\.[a-z]{2,}(/|$)", fragment))
    if at_host != host_fragment and rest:
        return None
    if url.endswith(("-", "_")) or at_host:
        return "strong"
    return "weak"


def collect_footnotes(entries: list[Entry], warnings: list[ParseWarning]) -> dict[int, Footnote]:
    """Parse note entries and reattach URLs printed on their own line or far away."""
    notes: list[tuple[int, Entry]] = [(i, e) for i, e in enumerate(entries) if e.kind == "note"]
    parsed: dict[int, Footnote] = {}
    position: dict[int, int] = {}
    for index, entry in notes:
        fn = _parse_citation(entry.number or 0, entry.text, entry.line)
        if fn.number in parsed:
            if parsed[fn.number].raw != fn.raw:
                warnings.append(
                    ParseWarning(
                        code="footnote-duplicate",
                        message=f"footnote {fn.number} is printed twice with different text "
                        f"(lines {parsed[fn.number].line} and {fn.line}); the first is kept",
                        line=fn.line,
                    )
                )
            continue
        parsed[fn.number] = fn
        position[fn.number] = index

    completed: set[int] = set()
    window = 14
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
        by_distance = sorted(position.items(), key=lambda kv: abs(kv[1] - index))
        before = [n for n, p in by_distance if p < index and index - p <= window and parsed[n].url is None]
        after = [n for n, p in by_distance if p > index and p - index <= window and parsed[n].url is None]
        bare = [
            n for n, p in by_distance if abs(p - index) <= window and parsed[n].url in ("https://", "http://")
        ]
        target = (before or after or bare or [None])[0]
        if target is None:
            warnings.append(
                ParseWarning(
                    code="url-orphan",
                    message=f"URL printed on its own line matches no footnote: {url}",
                    line=entry.line,
                )
            )
            continue
        parsed[target] = parsed[target].model_copy(update={"url": url})
        where = "after" if position[target] < index else "before"
        warnings.append(
            ParseWarning(
                code="url-detached",
                message=f"footnote {target}'s URL is printed on its own line {where} it; reattached",
                line=entry.line,
            )
        )

    def attach(target: int, index: int, entry: Entry, fragment: str) -> None:
        parsed[target] = parsed[target].model_copy(update={"url": (parsed[target].url or "") + fragment})
        completed.add(target)
        warnings.append(
            ParseWarning(
                code="url-split",
                message=f"footnote {target}'s URL continues on line {entry.line}; rejoined",
                line=entry.line,
            )
        )

    def open_for(fragment: str, strength: str) -> list[int]:
        return [n for n in position if n not in completed and _url_stage(parsed[n].url, fragment) == strength]

    # Pass 1: a fragment printed right after its footnote. Pass 2: the nearest open URL,
    # earlier before later, a URL that is visibly cut ('-', '_', host) before one ending in '/'.
    leftovers = []
    for index, entry in fragments:
        fragment = re.sub(r"\s+", "", entry.text)
        previous = [n for n in open_for(fragment, "strong") if position[n] == index - 1]
        if previous:
            attach(previous[0], index, entry, fragment)
        else:
            leftovers.append((index, entry, fragment))
    for index, entry, fragment in leftovers:
        strong = open_for(fragment, "strong")
        weak = open_for(fragment, "weak")

        def nearest(numbers: list[int], backward: bool, index: int = index) -> list[int]:
            found = [
                n
                for n in numbers
                if (position[n] < index if backward else position[n] > index)
                and abs(index - position[n]) <= window
            ]
            return sorted(found, key=lambda n: abs(index - position[n]))

        candidates = nearest(strong, True) or nearest(strong, False) or nearest(weak, True)
        if not candidates:
            warnings.append(
                ParseWarning(
                    code="url-orphan",
                    message=f"URL fragment matches no unfinished footnote URL: {fragment}",
                    line=entry.line,
                )
            )
            continue
        attach(candidates[0], index, entry, fragment)
    for number, fn in parsed.items():
        url = fn.url
        if url is not None:
            fixed = _repair_url(re.sub(r"\s+", "", url))
            if fixed != url:
                parsed[number] = fn = fn.model_copy(update={"url": fixed})
        if fn.url is not None and fn.url.endswith(("-", "_")):
            warnings.append(
                ParseWarning(
                    code="url-truncated",
                    message=f"footnote {number}'s URL is cut off in the report: {fn.url}",
                    line=fn.line,
                )
            )
        if fn.url is None:
            warnings.append(
                ParseWarning(
                    code="footnote-no-url",
                    message=f"footnote {number} has no URL",
                    line=fn.line,
                )
            )
    _split_publishers(parsed)
    for number, fn in parsed.items():
        if fn.published_raw is None or fn.publisher is None:
            missing = [
                name
                for name, value in (("publisher", fn.publisher), ("date", fn.published_raw))
                if value is None
            ]
            warnings.append(
                ParseWarning(
                    code="footnote-citation",
                    message=f"footnote {number}: citation not in the usual "
                    f"'Title, Publisher (Place) Date.' form; missing {', '.join(missing)}",
                    line=fn.line,
                )
            )
    return parsed


def _split_publishers(parsed: dict[int, Footnote]) -> None:
    """'Statement G7 Information Centre (…)': no comma; split at a publisher seen elsewhere."""
    known = sorted({fn.publisher for fn in parsed.values() if fn.publisher}, key=len, reverse=True)
    for number, fn in parsed.items():
        if fn.publisher is None and fn.title and fn.place is not None:
            for publisher in known:
                if fn.title.endswith(" " + publisher):
                    parsed[number] = fn.model_copy(
                        update={"title": fn.title[: -len(publisher)].strip(), "publisher": publisher}
                    )
                    break


# ---------------------------------------------------------------------------
# Stage 3: paragraph repair


def rejoin_paragraphs(entries: list[Entry], warnings: list[ParseWarning]) -> list[Entry]:
    """Join paragraphs a page break cut, across the footnote blocks printed in between."""
    out: list[Entry] = []
    pending: Entry | None = None  # an unterminated paragraph waiting for its continuation
    for entry in entries:
        if entry.kind in ("note", "url"):
            out.append(entry)
            continue
        if pending is not None and entry.kind == "para":
            head = pending.text.rstrip()
            # '… English Channel. On' + '16 November 2024, …': the date's 'On' was left behind
            m = re.search(r"(?<=[.!?\ue001”\"]) On$", head)
            if m and re.match(rf"^\d{{1,2}} (?:{MONTH_RE})", entry.text):
                pending.text = head[: m.start()].rstrip()
                entry = Entry("para", "On " + entry.text, entry.line)
                warnings.append(
                    ParseWarning(
                        code="paragraph-split",
                        message=f"the paragraph at line {entry.line} starts on the previous line's 'On'",
                        line=entry.line,
                    )
                )
            elif re.match(rf"^On \d{{1,2}}(?:\s*[-–]\s*\d{{1,2}})? (?:{MONTH_RE})\b", entry.text):
                # A new dated action never continues a cut sentence: the report lost the rest.
                warnings.append(
                    ParseWarning(
                        code="paragraph-truncated",
                        message=f"the paragraph at line {pending.line} breaks off mid-sentence "
                        f"('…{head[-40:]}') and the report never continues it",
                        line=pending.line,
                    )
                )
            else:
                pending.text = head + " " + entry.text.lstrip()
                if not is_terminated(pending.text):
                    continue
                pending = None
                continue
            pending = None
        if entry.kind == "para":
            out.append(entry)
            if not is_terminated(entry.text):
                pending = entry
            continue
        pending = None
        out.append(entry)
    return out


# ---------------------------------------------------------------------------
# Stage 4: chapters


def _chapter_starts(entries: list[Entry]) -> list[int]:
    starts = []
    for i, entry in enumerate(entries):
        if entry.kind not in ("heading", "para"):
            continue
        if not re.match(r"^\d{1,2}\.\s+\S.*:\s*\S", entry.text) or entry.text.rstrip().endswith("."):
            continue
        following = next((e for e in entries[i + 1 : i + 4] if e.kind in ("para", "heading")), None)
        if following is not None and following.kind == "para" and following.text[:1] in QUOTES:
            starts.append(i)
    return starts


def _report_header(text: str) -> tuple[str | None, str | None, dt.date | None, dt.date | None]:
    head = text[:5000]
    kind = summit = None
    start = end = None
    m = re.search(r"(\d{4}) G[78] (\w[\w\- ]*?) Summit (Interim|Final) Compliance Report", head)
    if m:
        summit, kind = f"{m[1]} {m[2]}", m[3].lower()
    m = re.search(rf"(\d{{1,2}} (?:{MONTH_RE}) \d{{4}}) to (\d{{1,2}} (?:{MONTH_RE}) \d{{4}})", head)
    if m:
        start, end = parse_date(m[1]), parse_date(m[2])
    return kind, summit, start, end


def _enumeration(text: str) -> list[str]:
    """'1) prevent, 2) counter and 3) dismantle …' -> ['prevent', 'counter', 'dismantle …']."""
    marks = list(re.finditer(r"(?:^|(?<=\s))(\d)\)\s*", text))
    if len(marks) < 2:
        return []
    items = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        item = text[m.end() : end]
        item = re.split(r"(?<=[a-z])\. ", item)[0]
        item = re.sub(r"(,|;|\s+and|\s+or|\.)+\s*$", "", item.strip())
        items.append(item.strip())
    return items


def _quantifiers(text: str) -> set[tuple[str, str]]:
    """Normalised '(strength, count)' phrases of a scoring rule, to compare two wordings."""
    t = strip_markers(text).lower()
    words = "|".join(NUMBER_WORDS)
    found: set[tuple[str, str]] = set()
    patterns = [
        (rf"\ball ({words})\b", lambda m: f">={NUMBER_WORDS[m[1]]}"),
        (rf"\bat least ({words})\b", lambda m: f">={NUMBER_WORDS[m[1]]}"),
        (rf"\bfewer than ({words})\b", lambda m: f"<={NUMBER_WORDS[m[1]] - 1}"),
        (rf"\b({words}) or fewer\b", lambda m: f"<={NUMBER_WORDS[m[1]]}"),
        (
            rf"\bbetween ({words}) and ({words})\b",
            lambda m: f"{NUMBER_WORDS[m[1]]}..{NUMBER_WORDS[m[2]]}",
        ),
        (r"\bin (?:just )?one (?:dimension|criteri)", lambda m: "=1"),
    ]
    for pattern, norm in patterns:
        for m in re.finditer(pattern, t):
            before = t[: m.start()]
            strengths = [(before.rfind(w), w) for w in ("strong", "weak")]
            position, strength = max(strengths)
            if position < 0:
                continue
            found.add((strength, norm(m)))
    return found


def scoring_table(rows: list[Entry]) -> dict[str, str]:
    """Reassemble the Scoring Guidelines table, flattened or not, into {'-1': text, …}."""
    cells: list[tuple[list[str], list[str]]] = []
    current: tuple[list[str], list[str]] | None = None
    for row in rows:
        label = row.cells[0] if row.cells else ""
        text = " ".join(c for c in row.cells[1:] if c)
        if current is None or (current[1] and is_terminated(current[1][-1])):
            current = ([], [])
            cells.append(current)
        if label:
            current[0].append(label)
        if text:
            current[1].append(text)
    result: dict[str, str] = {}
    order = ["-1", "0", "+1"]
    for k, (labels, texts) in enumerate(cells):
        normal = {lab.replace("−", "-").replace("–", "-") for lab in labels}
        if "-1" in normal:
            key = "-1"
        elif "+1" in normal:
            key = "+1"
        elif "0" in normal:
            key = "0"
        elif k < len(order):
            key = order[k]
        else:
            continue
        result[key] = squash(" ".join(texts))
    return result


def _split_sections(
    chapter_entries: list[Entry],
) -> tuple[dict[str, list[Entry]], list[tuple[Entry, list[Entry]]]]:
    sections: dict[str, list[Entry]] = {}
    members: list[tuple[Entry, list[Entry]]] = []
    current: list[Entry] = sections.setdefault("preamble", [])
    for entry in chapter_entries:
        if entry.kind in ("heading", "para"):
            name = SECTION_NAMES.get(entry.text.strip().lower())
            if name:
                current = sections.setdefault(name, [])
                continue
            if MEMBER_HEADING_RE.match(entry.text.strip()):
                current = []
                members.append((entry, current))
                continue
        current.append(entry)
    return sections, members


def _paras(entries: list[Entry]) -> list[Entry]:
    return [e for e in entries if e.kind in ("para", "heading")]


def _verdict(text: str) -> int | None:
    m = re.search(r"\bhas (fully|partially|not) complied|\bhas failed to comply", text)
    if not m:
        return None
    return {"fully": 1, "partially": 0, "not": -1}.get(m[1] or "not", -1)


@dataclass
class _Context:
    file_name: str
    warnings: list[ParseWarning]
    footnotes: dict[int, Footnote]
    period: tuple[dt.date | None, dt.date | None]

    def warn(self, code: str, message: str, *, line=None, commitment=None, member=None) -> None:
        self.warnings.append(
            ParseWarning(code=code, message=message, line=line, commitment=commitment, member=member)
        )


def _parse_member(heading: Entry, body: list[Entry], number: int, ctx: _Context) -> MemberSection:
    m = MEMBER_HEADING_RE.match(heading.text.strip())
    assert m is not None
    member = next(name for name in MEMBER_NAMES if name.lower() == m[1].lower())
    section = MemberSection(member=member, heading_score=parse_score(m[2]), line=heading.line)
    paras = [e for e in body if e.kind == "para"]
    actions: list[Entry] = []
    after: list[Entry] = []
    for para in paras:
        text = para.text.strip()
        am = re.match(r"^Analysts?\s*:\s*(.+)$", text)
        if am:
            names = re.split(r",\s*|\s+and\s+", strip_markers(am[1]).strip().rstrip("."))
            section.analysts.extend(n.strip() for n in names if n.strip())
            continue
        if re.match(r"^(Compliance Director|Lead Analyst)", text):
            continue
        sm = re.search(r"\bThus,\s+(?:the\s+)?(.+?)\s+receives a score of\s+([+\-−–]?\s*\d)", text, re.I)
        if sm:
            before = text[: sm.start()].strip()
            if before:
                after.append(Entry("para", before, para.line))
            section.score_sentence = strip_markers(text[sm.start() :])
            section.sentence_score = parse_score(sm[2])
            continue
        if not section.opening and not actions:
            section.opening = strip_markers(text)
            continue
        if re.match(r"^On\s+\d{1,2}\b", text):
            actions.extend(after)  # prose between two actions belongs to the earlier one
            if after:
                for stray in after:
                    ctx.warn(
                        "paragraph-unattached",
                        f"{member}: paragraph between actions does not start with a date; "
                        "kept with the action before it",
                        line=stray.line,
                        commitment=number,
                        member=member,
                    )
            after = []
            actions.append(para)
            continue
        after.append(para)
    if section.sentence_score is None:
        raise ReportParseError(
            f"chapter {number}, {member}: no 'receives a score of' sentence (the file looks truncated)",
            path=ctx.file_name,
            line=heading.line,
        )
    # merge stray prose into the action before it
    merged: list[Entry] = []
    for para in actions:
        if re.match(r"^On\s+\d{1,2}\b", para.text.strip()) or not merged:
            merged.append(Entry("para", para.text, para.line))
        else:
            merged[-1].text += " " + para.text
    for seq, para in enumerate(merged, start=1):
        section.actions.append(_evidence(member, seq, para, number, ctx))
    section.conclusions = [strip_markers(p.text) for p in after]
    return section


def _evidence(member: str, seq: int, para: Entry, number: int, ctx: _Context) -> EvidenceItem:
    text = para.text.strip()
    notes = markers_in(text)
    m = re.match(rf"^On\s+(\d{{1,2}})(?:\s*[-–]\s*\d{{1,2}})?\s+({MONTH_RE})(?:,?\s+(\d{{4}}))?", text)
    date = None
    date_raw = m[0][3:].strip() if m else None
    source = None
    if m and m[3]:
        try:
            date = dt.date(int(m[3]), MONTHS[m[2]], int(m[1]))
            source = "paragraph"
        except ValueError:
            date = None
    if date is None:
        first = ctx.footnotes.get(notes[0]) if notes else None
        if first is not None and first.published is not None:
            date, source = first.published, "footnote"
            ctx.warn(
                "date-from-footnote",
                f"{member} action {seq}: the paragraph's date '{date_raw}' is incomplete; "
                f"used footnote {first.number}'s date {date.isoformat()}",
                line=para.line,
                commitment=number,
                member=member,
            )
        else:
            ctx.warn(
                "date-missing",
                f"{member} action {seq}: no complete date in the paragraph or its footnote",
                line=para.line,
                commitment=number,
                member=member,
            )
    start, end = ctx.period
    if date is not None and start and end and not (start <= date <= end):
        ctx.warn(
            "date-outside-period",
            f"{member} action {seq} is dated {date.isoformat()}, outside the compliance period "
            f"{start.isoformat()} to {end.isoformat()}",
            line=para.line,
            commitment=number,
            member=member,
        )
    if not notes:
        ctx.warn(
            "action-without-footnote",
            f"{member} action {seq} cites no footnote",
            line=para.line,
            commitment=number,
            member=member,
        )
    for n in notes:
        if n not in ctx.footnotes:
            ctx.warn(
                "footnote-missing",
                f"{member} action {seq} cites footnote {n}, which is not printed",
                line=para.line,
                commitment=number,
                member=member,
            )
    return EvidenceItem(
        member=member,
        seq=seq,
        date=date,
        date_raw=date_raw,
        date_source=source,
        text=strip_markers(text),
        footnotes=notes,
        line=para.line,
    )


def _parse_chapter(entries: list[Entry], ctx: _Context) -> Chapter:
    heading = entries[0]
    m = re.match(r"^(\d{1,2})\.\s+(.*)$", heading.text.strip())
    assert m is not None
    number, title = int(m[1]), squash(m[2])
    sections, member_parts = _split_sections(entries[1:])
    preamble = _paras(sections.get("preamble", []))
    if not preamble:
        raise ReportParseError(
            f"chapter {number}: no commitment text after the heading", path=ctx.file_name, line=heading.line
        )
    commitment = strip_markers(preamble[0].text).strip(QUOTES + "”’ ")
    source = strip_markers(preamble[1].text) if len(preamble) > 1 else None
    chapter = Chapter(
        number=number,
        title=title,
        commitment=commitment,
        commitment_source=source,
        line=heading.line,
    )
    # Assessment table
    rows = [e for e in sections.get("assessment", []) if e.kind == "row"]
    for row in rows:
        name = row.cells[0] if row.cells else ""
        values = [(k, c) for k, c in enumerate(row.cells[1:]) if c]
        if name.lower().startswith("average"):
            chapter.average_printed = values[0][1] if values else None
            continue
        member = next((n for n in MEMBER_NAMES if n.lower() == name.lower()), None)
        if member is None or not values:
            continue
        column_index, value = values[0]
        if not SCORE_RE.match(value):
            ctx.warn(
                "table-cell",
                f"assessment row for {member} has no score: {row.text!r}",
                line=row.line,
                commitment=number,
                member=member,
            )
            continue
        score = parse_score(value)
        column = ["no", "partial", "full"][column_index] if column_index < 3 else None
        expected = {-1: "no", 0: "partial", 1: "full"}[score]
        if column is not None and column != expected:
            ctx.warn(
                "table-column",
                f"assessment table prints {member}'s {value} in the '{column}' compliance column",
                line=row.line,
                commitment=number,
                member=member,
            )
        chapter.assessment.append(AssessmentRow(member=member, score=score, column=column, line=row.line))
    if not chapter.assessment:
        raise ReportParseError(
            f"chapter {number}: no assessment table (member → score)", path=ctx.file_name, line=heading.line
        )
    chapter.background = [strip_markers(e.text) for e in _paras(sections.get("background", []))]
    chapter.features = squash(" ".join(strip_markers(e.text) for e in _paras(sections.get("features", []))))
    for e in _paras(sections.get("definitions", [])):
        dm = re.match(r"^[“\"](.+?)[”\"]\s+(?:is|are)?\s*(.*)$", strip_markers(e.text))
        if dm:
            chapter.definitions.append(Definition(term=dm[1].strip(), definition=dm[2].strip()))
    _parse_guidelines(chapter, sections.get("guidelines", []), ctx)
    chapter.scoring_guidelines = scoring_table([e for e in sections.get("scoring", []) if e.kind == "row"])
    _compare_rules(chapter, ctx)
    table = {row.member: row.score for row in chapter.assessment}
    for head, body in member_parts:
        section = _parse_member(head, body, number, ctx)
        section.table_score = table.get(section.member)
        _check_member_scores(section, number, ctx)
        chapter.members.append(section)
    missing = [m for m in table if m not in {s.member for s in chapter.members}]
    if missing:
        last = chapter.members[-1].line if chapter.members else heading.line
        raise ReportParseError(
            f"chapter {number}: the assessment table lists {', '.join(missing)} but the chapter has "
            "no section for them (the file looks truncated)",
            path=ctx.file_name,
            line=last,
        )
    if chapter.average_printed:
        computed = format_average([row.score for row in chapter.assessment])
        if squash(chapter.average_printed) != computed:
            ctx.warn(
                "average-mismatch",
                f"chapter {number}: the printed average {chapter.average_printed} differs from the "
                f"average of the table's scores {computed}",
                commitment=number,
            )
    return chapter


def _parse_guidelines(chapter: Chapter, entries: list[Entry], ctx: _Context) -> None:
    g = Guidelines()
    bucket = "full"
    parts: dict[str, list[str]] = {"full": [], "partial": [], "non": []}
    bullets: list[ParsedDimension] = []
    for e in entries:
        if e.kind not in ("para", "row"):
            continue
        text = strip_markers(e.text if e.kind == "para" else " ".join(e.cells))
        low = text.lower()
        if low.startswith("full compliance"):
            bucket = "full"
        elif low.startswith("partial compliance"):
            bucket = "partial"
        elif low.startswith(("non-compliance", "no compliance", "non compliance")):
            bucket = "non"
        bm = re.match(r"^[-•]?\s*(\d)\.\s+([^:]{2,60}):\s*(.*)$", text)
        if bm:
            bullets.append(ParsedDimension(number=int(bm[1]), name=bm[2].strip(), description=bm[3].strip()))
        parts[bucket].append(text)
    g.full, g.partial, g.non = (squash(" ".join(parts[k])) for k in ("full", "partial", "non"))
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join([g.full, g.partial, g.non]))
    g.strong_examples = [s for s in sentences if re.search(r"\bstrong actions?\b.*\binclude", s, re.I)]
    g.weak_examples = [s for s in sentences if re.search(r"\bweak(?:er)? actions?\b.*\binclude", s, re.I)]
    chapter.guidelines = g
    # Dimensions as written: the features' enumeration, the guidelines' bullets or enumeration.
    feature_items = _enumeration(chapter.features)
    guideline_items = max((_enumeration(p) for p in (g.full, g.partial, g.non)), key=len)
    if bullets:
        chapter.dimensions = bullets
    else:
        items = max([feature_items, guideline_items], key=len)
        chapter.dimensions = [ParsedDimension(number=k, name=item) for k, item in enumerate(items, start=1)]
    counts = {
        "Commitment Features": len(feature_items),
        "General Interpretive Guidelines": len(bullets) or len(guideline_items),
    }
    m = re.search(
        rf"\ball ({'|'.join(NUMBER_WORDS)}) (?:commitment )?(?:dimensions|criteria)", g.full.lower()
    )
    if m:
        counts["full-compliance rule"] = NUMBER_WORDS[m[1]]
    known = {k: v for k, v in counts.items() if v}
    if len(set(known.values())) > 1:
        said = "; ".join(f"{k}: {v}" for k, v in known.items())
        ctx.warn(
            "dimension-count",
            f"chapter {chapter.number}: the report counts its dimensions differently ({said})",
            commitment=chapter.number,
        )


def _compare_rules(chapter: Chapter, ctx: _Context) -> None:
    g = chapter.guidelines
    for key, guideline in (("+1", g.full), ("0", g.partial), ("-1", g.non)):
        table = chapter.scoring_guidelines.get(key)
        if not table or not guideline:
            continue
        a, b = _quantifiers(guideline), _quantifiers(table)
        if a != b:
            only_g = ", ".join(f"{s} {n}" for s, n in sorted(a - b)) or "nothing"
            only_t = ", ".join(f"{s} {n}" for s, n in sorted(b - a)) or "nothing"
            ctx.warn(
                "rule-mismatch",
                f"chapter {chapter.number}, score {key}: the General Interpretive Guidelines say "
                f"{only_g} where the Scoring Guidelines table says {only_t}",
                commitment=chapter.number,
            )


def _check_member_scores(section: MemberSection, number: int, ctx: _Context) -> None:
    readings = {
        "assessment table": section.table_score,
        "heading": section.heading_score,
        "score sentence": section.sentence_score,
        "opening verdict": _verdict(section.opening),
    }
    given = {k: v for k, v in readings.items() if v is not None}
    if len(set(given.values())) > 1:
        said = ", ".join(f"{k} {v:+d}" if v else f"{k} 0" for k, v in given.items())
        ctx.warn(
            "score-conflict",
            f"{section.member}: the report gives different scores ({said}); "
            "the score sentence is taken as the analysts' score",
            line=section.line,
            commitment=number,
            member=section.member,
        )
    if len(section.conclusions) > 1:
        verdicts = [_verdict(c) for c in section.conclusions]
        firsts = " | ".join(c[:90] + ("…" if len(c) > 90 else "") for c in section.conclusions)
        ctx.warn(
            "multiple-conclusions",
            f"{section.member}: {len(section.conclusions)} concluding paragraphs "
            f"(verdicts {verdicts}); all are kept: {firsts}",
            line=section.line,
            commitment=number,
            member=section.member,
        )
    if not section.conclusions:
        ctx.warn(
            "no-conclusion",
            f"{section.member}: no concluding paragraph before the score sentence",
            line=section.line,
            commitment=number,
            member=section.member,
        )


# ---------------------------------------------------------------------------
# Entry points


def read_fragment(
    text: str, source_format: str
) -> tuple[list[Entry], dict[int, Footnote], list[ParseWarning]]:
    """Run the format-level stages on any excerpt: entries (paragraphs rejoined), footnotes, warnings."""
    warnings: list[ParseWarning] = []
    entries = tokenize(text, source_format)
    footnotes = collect_footnotes(entries, warnings)
    return rejoin_paragraphs(entries, warnings), footnotes, warnings


def parse_report(
    text: str,
    *,
    file_name: str = "<report>",
    source_format: str | None = None,
    kind: str | None = None,
    summit: str | None = None,
    period: tuple[dt.date, dt.date] | None = None,
) -> Report:
    """Parse a report's text (one or several chapters) into a :class:`Report`.

    ``kind``, ``summit`` and ``period`` come from the manifest when known; the report's
    own title page is used otherwise, and a disagreement between the two is a warning.
    """
    if not isinstance(text, str):
        raise ReportParseError("report text must be a string", path=file_name)
    if not text.strip():
        raise ReportParseError("file is empty", path=file_name)
    if "\x00" in text:
        raise ReportParseError("file contains NUL bytes: not a text report", path=file_name)
    sha = "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    fmt = source_format or detect_format(text)
    if fmt not in ("markdown", "pdf-text"):
        raise ReportParseError(f"unknown source format {fmt!r}", path=file_name)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    warnings: list[ParseWarning] = []
    header_kind, header_summit, header_start, header_end = _report_header(text)
    for label, given, printed in (("kind", kind, header_kind), ("summit", summit, header_summit)):
        if given and printed and given.lower() != printed.lower():
            warnings.append(
                ParseWarning(
                    code="manifest-mismatch",
                    message=f"the manifest says {label} {given!r}, the report's title page {printed!r}",
                )
            )
    if period and header_start and (period[0], period[1]) != (header_start, header_end):
        warnings.append(
            ParseWarning(
                code="manifest-mismatch",
                message=f"the manifest's period {period[0]} to {period[1]} differs from the title page's "
                f"{header_start} to {header_end}",
            )
        )
    start, end = period if period else (header_start, header_end)
    entries = tokenize(text, fmt)
    footnotes = collect_footnotes(entries, warnings)
    entries = rejoin_paragraphs(entries, warnings)
    starts = _chapter_starts(entries)
    if not starts:
        raise ReportParseError(
            "no compliance-report chapter found (expected a heading like "
            "'18. Migration and Refugees: Border Management' followed by the quoted commitment)",
            path=file_name,
        )
    ctx = _Context(file_name=file_name, warnings=warnings, footnotes=footnotes, period=(start, end))
    chapters = []
    for k, s in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(entries)
        chapters.append(_parse_chapter(entries[s:stop], ctx))
    numbers = [c.number for c in chapters]
    if len(set(numbers)) != len(numbers):
        raise ReportParseError(f"chapter numbers repeat in one file: {numbers}", path=file_name)
    return Report(
        file_name=file_name,
        sha256=sha,
        kind=(kind or header_kind),  # type: ignore[arg-type]
        summit=summit or header_summit,
        period_start=start,
        period_end=end,
        source_format=fmt,  # type: ignore[arg-type]
        chapters=chapters,
        footnotes=footnotes,
        warnings=warnings,
    )


def read_report_text(path: Path) -> str:
    """Read a report file as UTF-8 text, refusing binary, oversized and empty files."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReportParseError(f"cannot read file: {exc.strerror}", path=str(path)) from None
    if path.is_dir():
        raise ReportParseError("is a directory, not a report file", path=str(path))
    if size > MAX_REPORT_BYTES:
        raise ReportParseError(f"file is {size} bytes, larger than {MAX_REPORT_BYTES}", path=str(path))
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ReportParseError("binary file (NUL bytes): not a text report", path=str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReportParseError(
            f"not UTF-8 text (undecodable byte at offset {exc.start})", path=str(path), line=line
        ) from None


def parse_report_file(path: Path | str, **kwargs) -> Report:
    """Read and parse one report file. Raises :class:`ReportParseError` only."""
    path = Path(path)
    text = read_report_text(path)
    return parse_report(text, file_name=path.name, **kwargs)
