"""Compliance-report parsing: a chapter (or a file of chapters) -> structured gold.

:mod:`classifier.report_text` normalises either source format into entries; this
module reads the chapter structure from them: commitment, dimensions, definitions,
guidelines, the scoring table, the assessment table and the member sections with their
cited actions. Contradictions in the report (table vs heading vs score sentence,
guidelines vs scoring table, two concluding paragraphs, a date outside the period) are
recorded as :class:`~classifier.models.ParseWarning` naming the place; the parser never
silently picks between two readings. Input it cannot read raises
:class:`ReportParseError` and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from .models import (
    AssessmentRow,
    Chapter,
    Column,
    DateSource,
    Definition,
    EvidenceItem,
    Footnote,
    Guidelines,
    MemberSection,
    ParsedDimension,
    ParseWarning,
    Report,
    registered_member,
)
from .report_text import (
    MEMBER_HEADING_RE,
    MONTH_RE,
    MONTHS,
    NOT_ASSESSED,
    NUMBER_WORDS,
    QUOTES,
    SCORE_RE,
    SECTION_NAMES,
    Entry,
    Warnings,
    collect_footnotes,
    detect_format,
    is_terminated,
    markers_in,
    parse_date,
    parse_score,
    rejoin_paragraphs,
    squash,
    strip_markers,
    tokenize,
)
from .rubric import format_average, format_score

__all__ = [
    "ReportParseError",
    "parse_report",
    "parse_report_file",
    "read_fragment",
    "scoring_table",
]

MAX_REPORT_BYTES = 50_000_000
_COLUMNS: tuple[Column, Column, Column] = ("no", "partial", "full")


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
# Stage 4: chapters


_CHAPTER_HEADING = re.compile(r"^\d{1,2}\.\s+\S.*:\s*\S")


def _chapter_starts(entries: list[Entry]) -> list[int]:
    starts = []
    for i, entry in enumerate(entries):
        if entry.kind not in ("heading", "para"):
            continue
        if not entry.text[:1].isdecimal() or not _CHAPTER_HEADING.match(entry.text):
            continue
        if entry.text.rstrip().endswith("."):
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
    if not marks or (len(marks) == 1 and marks[0][1] != "1"):  # one dimension: '1) …' alone
        return []
    items = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        item = text[m.end() : end]
        item = re.split(r"(?<=[a-z])\. ", item)[0]
        items.append(_drop_trailing_joiners(item.strip()).strip())
    return items


def _drop_trailing_joiners(text: str) -> str:
    r"""What ``re.sub(r"(,|;|\s+and|\s+or|\.)+\s*$", "", text)`` leaves, found by peeling the
    joiners off the end: the regex would retry from every character of a long run of commas
    and read the run to its end each time."""
    end = len(text.rstrip())
    cut = None
    while end:
        if text[end - 1] in ",;.":
            end -= 1
        else:
            word = next((w for w in ("and", "or") if text.endswith(w, 0, end)), None)
            start = end - len(word) if word else 0
            if not start or not text[start - 1].isspace():
                break
            end = start
            while end and text[end - 1].isspace():
                end -= 1
        cut = end
    return text if cut is None else text[:cut]


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
    # Where 'strong' and 'weak' occur, to find the last one before each phrase by bisection
    # (searching back from every phrase would reread the text before it each time).
    occurrences = {w: [m.start() for m in re.finditer(w, t)] for w in ("strong", "weak")}
    for pattern, norm in patterns:
        for m in re.finditer(pattern, t):
            strengths = []
            for w, starts in occurrences.items():
                k = bisect_right(starts, m.start() - len(w))  # ending at or before the phrase
                strengths.append((starts[k - 1] if k else -1, w))
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
    warnings: Warnings
    footnotes: dict[int, Footnote]
    period: tuple[dt.date | None, dt.date | None]
    last_note: Entry | None = None  # the file's last entry, when it is a footnote

    def warn(self, code: str, message: str, *, line=None, commitment=None, member=None) -> None:
        self.warnings.add(code, message, line=line, commitment=commitment, member=member)


_THUS = re.compile(r"\bThus,\s", re.I)
_SCORE_CLAUSE = re.compile(r"(\s+)receives a score of\s+((?:[+\-−–]\s*)?\d)", re.I)
_SCORE_SENTENCE = re.compile(r"\bThus,\s+(?:the\s+)?(.+?)\s+receives a score of\s+((?:[+\-−–]\s*)?\d)", re.I)
_LONG_SPACE = re.compile(r"(\s{3})\s+")


def _score_sentence(text: str) -> tuple[int, int] | None:
    """Where a paragraph's 'Thus, <member> receives a score of <n>' starts, and the score.

    This is ``_SCORE_SENTENCE.search(text)`` in linear time. Searching directly would, from
    every 'Thus,' without a score clause after it, read on to the end of the paragraph (and
    split every long run of spaces in every way). Instead: runs of whitespace are cut to
    three characters (all the pattern can use of one), and since a sentence can start at a
    'Thus,' exactly when some score clause begins at least 7 characters after it, only the
    first 'Thus,' needs trying.
    """
    thus = _THUS.search(text)
    if thus is None:
        return None
    bounded = _LONG_SPACE.sub(r"\1", text)
    first = _THUS.search(bounded)  # the same 'Thus,': cutting whitespace reorders nothing
    assert first is not None
    last = None
    for clause in _SCORE_CLAUSE.finditer(bounded, first.start()):
        last = clause
    # The latest a clause can begin is at the last whitespace before its 'receives'.
    if last is None or last.end(1) - 1 < first.start() + len("Thus, x"):
        return None
    m = _SCORE_SENTENCE.match(bounded, first.start())
    return (thus.start(), parse_score(m[2])) if m else None


_NOT_ASSESSED = re.compile(NOT_ASSESSED, re.I)
# 'Analyst: A', 'Analysts: A and B', 'Analysts: A, B & C' (one line or several per section).
_ANALYSTS = re.compile(r"^Analysts?\s*:\s*(.+)$")
_NEXT_ANALYST_LINE = re.compile(r"\s+(?=Analysts?\s*:)")
_ANALYST_SEPARATORS = re.compile(r"\s*[,;&]\s*(?:and\s+)?|\s+and\s+")


def _parse_member(heading: Entry, body: list[Entry], number: int, ctx: _Context) -> MemberSection:
    m = MEMBER_HEADING_RE.match(heading.text.strip())
    assert m is not None
    member = registered_member(m[1])
    assert member is not None  # the heading pattern is built from the registry's spellings
    assessed = _NOT_ASSESSED.fullmatch(m[2].strip()) is None
    section = MemberSection(
        member=member, heading_score=parse_score(m[2]) if assessed else None, line=heading.line
    )
    paras = [e for e in body if e.kind == "para"]
    actions: list[Entry] = []
    after: list[Entry] = []
    for para in paras:
        text = para.text.strip()
        if _ANALYSTS.match(text):
            # (two analyst lines with no blank line between them are one paragraph)
            for line in _NEXT_ANALYST_LINE.split(strip_markers(text)):
                am = _ANALYSTS.match(line)
                names = _ANALYST_SEPARATORS.split(am[1].strip().rstrip(".")) if am else []
                section.analysts.extend(
                    n.strip() for n in names if n.strip() and n.strip() not in section.analysts
                )
            continue
        if re.match(r"^(Compliance Director|Lead Analyst)", text):
            continue
        found = _score_sentence(text)
        if found:
            start, score = found
            before = text[:start].strip()
            if before:
                after.append(Entry("para", before, para.line))
            section.score_sentence = strip_markers(text[start:])
            section.sentence_score = score
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
    # (A section without its score sentence is refused with the chapter: _check_complete.)
    # merge stray prose into the action before it (pieces joined once: appending to the
    # action's text per paragraph would copy it each time)
    merged: list[Entry] = []
    pieces: list[list[str]] = []
    for para in actions:
        if re.match(r"^On\s+\d{1,2}\b", para.text.strip()) or not merged:
            merged.append(Entry("para", para.text, para.line))
            pieces.append([para.text])
        else:
            pieces[-1].append(" " + para.text)
    for entry, texts in zip(merged, pieces, strict=True):
        entry.text = "".join(texts)
    for seq, para in enumerate(merged, start=1):
        section.actions.append(_evidence(member, seq, para, number, ctx))
    section.conclusions = [strip_markers(p.text) for p in after]
    return section


_ACTION_DATE = re.compile(rf"^On\s+(\d{{1,2}})(?:\s*[-–]\s*\d{{1,2}})?\s+({MONTH_RE})(?:,?\s+(\d{{4}}))?")


def _evidence(member: str, seq: int, para: Entry, number: int, ctx: _Context) -> EvidenceItem:
    text = para.text.strip()
    notes = markers_in(text)
    m = _ACTION_DATE.match(text)
    date = None
    date_raw = m[0][3:].strip() if m else None
    source: DateSource | None = None
    if m and m[3]:
        try:
            date = dt.date(int(m[3]), MONTHS[m[2]], int(m[1]))
            source = "paragraph"
        except ValueError:
            date = None
    first = ctx.footnotes.get(notes[0]) if notes else None
    if date is None and m and not m[3]:
        date, source = _year_from_period(int(m[1]), MONTHS[m[2]], first, member, seq, para, number, ctx)
    if date is None:
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


def _year_from_period(
    day: int,
    month: int,
    first: Footnote | None,
    member: str,
    seq: int,
    para: Entry,
    number: int,
    ctx: _Context,
) -> tuple[dt.date | None, DateSource | None]:
    """The date of 'On 17 December, …' (no year): the year in which that day falls inside the
    compliance period. Where the first footnote is dated that same day, its date is taken (as
    for any incomplete date). Where the period holds the day in no year or in several, the
    footnote's year decides if it can, else the first fitting year; either way a warning says so.
    """
    published = first.published if first is not None else None
    if published is not None and (published.month, published.day) == (month, day):
        return None, None  # the footnote's date, with its warning (below)
    start, end = ctx.period
    if start is None or end is None:
        return None, None
    fits = []
    for year in range(start.year, end.year + 1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if start <= candidate <= end:
            fits.append(candidate)
    where = dict(line=para.line, commitment=number, member=member)
    raw = f"{day} {next(k for k, v in MONTHS.items() if v == month)}"
    if len(fits) == 1:
        ctx.warn(
            "date-year-from-period",
            f"{member} action {seq}: '{raw}' has no year; the compliance period gives {fits[0].year}",
            **where,
        )
        return fits[0], "period"
    if not fits:
        return None, None  # outside the period in every year: the footnote's date, if any
    by_footnote = next((d for d in fits if published is not None and d.year == published.year), None)
    chosen = by_footnote or fits[0]
    ctx.warn(
        "date-year-ambiguous",
        f"{member} action {seq}: '{raw}' has no year and falls inside the compliance period in "
        f"{' and '.join(str(d.year) for d in fits)}; {chosen.year} is taken"
        + (f" (footnote {first.number}'s year)" if by_footnote and first is not None else " (the first)"),
        **where,
    )
    return chosen, "footnote" if by_footnote else "period"


def _parse_chapter(entries: list[Entry], ctx: _Context, *, ends_file: bool) -> Chapter:
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
        if not values:
            continue
        column_index, value = values[0]
        member = registered_member(name)
        if member is None:
            if name and (SCORE_RE.match(value) or _NOT_ASSESSED.fullmatch(value)):
                ctx.warn(
                    "member-unknown",
                    f"assessment row {name!r} scores a name that is not a G7 or G20 member; skipped",
                    line=row.line,
                    commitment=number,
                )
            continue
        if any(r.member == member for r in chapter.assessment):
            ctx.warn(
                "table-duplicate",
                f"the assessment table lists {member} twice; the first row is kept",
                line=row.line,
                commitment=number,
                member=member,
            )
            continue
        if _NOT_ASSESSED.fullmatch(value):
            chapter.assessment.append(AssessmentRow(member=member, score=None, line=row.line))
            continue
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
        column = _COLUMNS[column_index] if column_index < 3 else None
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
    chapter.scoring_guidelines = scoring_table([e for e in sections.get("scoring", []) if e.kind == "row"])
    _parse_guidelines(chapter, sections.get("guidelines", []), ctx)
    _compare_rules(chapter, ctx)
    rows_by_member = {row.member: row for row in chapter.assessment}
    for head, body in member_parts:
        section = _parse_member(head, body, number, ctx)
        table_row = rows_by_member.get(section.member)
        section.table_score = table_row.score if table_row else None
        if table_row is not None and not table_row.assessed and section.assessed:
            ctx.warn(
                "assessed-conflict",
                f"{section.member}: the assessment table has the member not assessed, its section "
                f"scores it {format_score(section.score or 0)}; the section's score is kept "
                "(the table's average leaves the member out)",
                line=section.line,
                commitment=number,
                member=section.member,
            )
        if section.assessed:
            _check_member_scores(section, number, ctx)
        chapter.members.append(section)
    _add_unassessed_members(chapter)
    texts = [e for e in entries if e.kind in ("para", "heading", "row")]
    chapter.footnotes = markers_in(" ".join(e.text for e in texts))
    _check_complete(chapter, texts, ctx, ends_file=ends_file)
    scores = [row.score for row in chapter.assessment if row.score is not None]
    if chapter.average_printed and scores:
        computed = format_average(scores)  # (a member not assessed is not in the average)
        if squash(chapter.average_printed) != computed:
            ctx.warn(
                "average-mismatch",
                f"chapter {number}: the printed average {chapter.average_printed} differs from the "
                f"average of the table's scores {computed}",
                commitment=number,
            )
    return chapter


def _add_unassessed_members(chapter: Chapter) -> None:
    """A member the table lists as not assessed and that has no section of its own still has a
    place in the gold (shown as not assessed): after the section of the member the table lists
    before it, else first."""
    present = {s.member for s in chapter.members}
    previous: str | None = None
    for row in chapter.assessment:
        if not row.assessed and row.member not in present:
            at = next((k + 1 for k, s in enumerate(chapter.members) if s.member == previous), 0)
            chapter.members.insert(at, MemberSection(member=row.member, line=row.line))
            present.add(row.member)
        previous = row.member


# What a markdown link or <URL> leaves in a footnote's text when the file stops inside it
# (closed ones are replaced by their target when the line is read).
_LINK_RESIDUE = re.compile(r"[\[<]h?ttps?://|\]\(")


def _check_complete(chapter: Chapter, texts: list[Entry], ctx: _Context, *, ends_file: bool) -> None:
    """Refuse a chapter that falls short of what it announces itself: a member section for each
    assessed member of its assessment table, a conclusion in each section and the score
    sentence in the last one when the others have theirs, every footnote it cites printed, and
    (for the chapter that ends the file) a last footnote that is not cut off.

    What a truncated file loses is the end of its last chapter; refusing it (with one line
    naming what is missing) keeps a partial copy out of the gold, where it would otherwise
    become the chapter's newest version.
    """
    problems: list[tuple[int, str]] = []  # (line, what is missing)
    assessed = [s for s in chapter.members if s.assessed]
    # A chapter whose sections end in 'Thus, X receives a score of' loses the last one's when the
    # file is cut inside it; one whose analysts write no such sentence is scored by its headings.
    # A section without one that another section follows was not cut: a warning, not a refusal.
    # Either way a section must end in a conclusion: a file that lost its paragraph breaks has
    # one paragraph per section, and nothing to score it by but its heading.
    with_sentence = sum(s.sentence_score is not None for s in assessed)
    for k, section in enumerate(assessed):
        if section.sentence_score is not None:
            continue
        if not section.conclusions or (with_sentence and ends_file and k + 1 == len(assessed)):
            lacks = "" if section.conclusions else " and no concluding paragraph"
            problems.append((section.line, f"{section.member} has no 'receives a score of' sentence{lacks}"))
        elif with_sentence:
            ctx.warn(
                "no-score-sentence",
                f"{section.member}: no 'receives a score of' sentence; the heading's score is taken",
                line=section.line,
                commitment=chapter.number,
                member=section.member,
            )
    if assessed and not with_sentence:
        ctx.warn(
            "no-score-sentences",
            f"chapter {chapter.number}: no member section has a 'receives a score of' sentence; "
            "each member's score is its heading's (else the assessment table's)",
            line=chapter.line,
            commitment=chapter.number,
        )
    found = {s.member for s in chapter.members}
    absent = [row for row in chapter.assessment if row.member not in found]
    if absent:
        names = ", ".join(row.member for row in absent)
        where = chapter.members[-1].line if chapter.members else chapter.line  # where sections stop
        problems.append((where, f"the assessment table lists {names} but there is no section for them"))
    # A superscript far below the chapter's own footnote numbers ('km²') is not a citation.
    lowest = min(ctx.footnotes, default=0) - 20
    unprinted = [n for n in chapter.footnotes if n not in ctx.footnotes and n >= lowest]
    if unprinted:
        first = next(e.line for e in texts if unprinted[0] in markers_in(e.text))
        problems.append((first, f"{_numbers(unprinted)} cited but not printed"))
    last = ctx.last_note
    if ends_file and last is not None and last.number in ctx.footnotes:
        if not ctx.footnotes[last.number].url:
            problems.append((last.line, f"the file ends inside footnote {last.number}, before its URL"))
        elif _LINK_RESIDUE.search(last.text):  # a markdown link the cut left unclosed
            problems.append((last.line, f"the file ends inside footnote {last.number}'s link"))
    if problems:
        raise ReportParseError(
            f"chapter {chapter.number} is incomplete (the file looks truncated): "
            + "; ".join(text for _, text in problems),
            path=ctx.file_name,
            line=problems[0][0],  # where it first falls short
        )


def _numbers(numbers: list[int]) -> str:
    """[3, 4, 5, 9] -> 'footnotes 3-5, 9'."""
    ordered = sorted(set(numbers))
    runs: list[list[int]] = []
    for n in ordered:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    spans = [str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs]
    return ("footnote " if len(ordered) == 1 else "footnotes ") + ", ".join(spans)


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
    g.strong_examples = [s for s in sentences if _names_examples(_STRONG_ACTIONS, s)]
    g.weak_examples = [s for s in sentences if _names_examples(_WEAK_ACTIONS, s)]
    chapter.guidelines = g
    # Dimensions as written: the features' enumeration, the guidelines' bullets or enumeration,
    # the Scoring Guidelines table's enumeration; each place's count, to compare them.
    feature_items = _enumeration(chapter.features)
    guideline_items = max((_enumeration(p) for p in (g.full, g.partial, g.non)), key=len)
    table_items = max((_enumeration(t) for t in chapter.scoring_guidelines.values()), key=len, default=[])
    counts = {
        "Commitment Features": len(feature_items) or _stated_count(chapter.features),
        "General Interpretive Guidelines": len(bullets) or len(guideline_items),
        "full-compliance rule": _all_count(g.full),
        "Scoring Guidelines": len(table_items) or _all_count(chapter.scoring_guidelines.get("+1", "")),
    }
    if bullets:
        chapter.dimensions = bullets
    else:
        items = max([feature_items, guideline_items, table_items], key=len)
        if not items and (count := max(counts.values())):
            # counted but never named: the one dimension is the commitment's own subject
            subject = chapter.title.rsplit(":", 1)[-1].strip()
            items = [subject] if count == 1 else [f"dimension {k}" for k in range(1, count + 1)]
        chapter.dimensions = [ParsedDimension(number=k, name=item) for k, item in enumerate(items, start=1)]
    known = {k: v for k, v in counts.items() if v}
    if len(set(known.values())) > 1:
        said = "; ".join(f"{k}: {v}" for k, v in known.items())
        ctx.warn(
            "dimension-count",
            f"chapter {chapter.number}: the report counts its dimensions differently ({said})",
            commitment=chapter.number,
        )


_COUNT_WORDS = "|".join(NUMBER_WORDS)
_STATED_COUNT = re.compile(
    rf"\b({_COUNT_WORDS}|a single)\s+(?:main\s+|key\s+|distinct\s+|core\s+)?"
    r"(?:dimensions?|components?|criteria|criterion|elements?|parts?)\b"
)
_ALL_COUNT = re.compile(rf"\ball ({_COUNT_WORDS}) (?:commitment )?(?:dimensions|criteria)")


def _stated_count(text: str) -> int:
    """'… broken down into two main dimensions' -> 2 (the first count the text states), else 0."""
    m = _STATED_COUNT.search(text.lower())
    return 0 if m is None else 1 if m[1] == "a single" else NUMBER_WORDS[m[1]]


def _all_count(text: str) -> int:
    """'strong actions in all three commitment dimensions' -> 3, else 0."""
    m = _ALL_COUNT.search(text.lower())
    return NUMBER_WORDS[m[1]] if m else 0


_STRONG_ACTIONS = re.compile(r"\bstrong actions?\b", re.I)
_WEAK_ACTIONS = re.compile(r"\bweak(?:er)? actions?\b", re.I)
_INCLUDE = re.compile(r"\binclude", re.I)


def _names_examples(actions: re.Pattern[str], sentence: str) -> bool:
    """Whether 'strong actions' (or weak) comes before an 'include' in the sentence: as
    ``re.search(actions + r".*\binclude")``, which rereads the rest of the sentence from
    every mention of the actions."""
    m = actions.search(sentence)
    return m is not None and _INCLUDE.search(sentence, m.end()) is not None


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
    warnings = Warnings()
    entries = tokenize(text, source_format)
    footnotes = collect_footnotes(entries, warnings)
    entries = rejoin_paragraphs(entries, warnings)
    return entries, footnotes, warnings.finish()


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
    warnings = Warnings()
    header_kind, header_summit, header_start, header_end = _report_header(text)
    for label, given, printed in (("kind", kind, header_kind), ("summit", summit, header_summit)):
        if given and printed and given.lower() != printed.lower():
            warnings.add(
                code="manifest-mismatch",
                message=f"the manifest says {label} {given!r}, the report's title page {printed!r}",
            )
    if period and header_start and (period[0], period[1]) != (header_start, header_end):
        warnings.add(
            code="manifest-mismatch",
            message=f"the manifest's period {period[0]} to {period[1]} differs from the title page's "
            f"{header_start} to {header_end}",
        )
    start, end = period if period else (header_start, header_end)
    entries = tokenize(text, fmt)
    footnotes = collect_footnotes(entries, warnings)
    final = entries[-1] if entries else None  # (before rejoining, which can merge it away)
    entries = rejoin_paragraphs(entries, warnings)
    starts = _chapter_starts(entries)
    if not starts:
        raise ReportParseError(
            "no compliance-report chapter found (expected a heading like "
            "'18. Migration and Refugees: Border Management' followed by the quoted commitment)",
            path=file_name,
        )
    ctx = _Context(
        file_name=file_name,
        warnings=warnings,
        footnotes=footnotes,
        period=(start, end),
        last_note=final if final is not None and final.kind == "note" else None,
    )
    chapters = []
    for k, s in enumerate(starts):
        last = k + 1 == len(starts)
        stop = len(entries) if last else starts[k + 1]
        chapters.append(_parse_chapter(entries[s:stop], ctx, ends_file=last))
    numbers = [c.number for c in chapters]
    if len(set(numbers)) != len(numbers):
        raise ReportParseError(f"chapter numbers repeat in one file: {numbers}", path=file_name)
    return Report(
        file_name=file_name,
        sha256=sha,
        kind=(kind or header_kind),
        summit=summit or header_summit,
        period_start=start,
        period_end=end,
        source_format=fmt,
        chapters=chapters,
        footnotes=footnotes,
        warnings=warnings.finish(),
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
