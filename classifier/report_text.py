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
from dataclasses import dataclass, field

from .models import MEMBERS, Footnote, ParseWarning

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
