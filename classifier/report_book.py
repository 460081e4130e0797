"""Whole compliance reports: the front matter, read and checked against the chapters.

A final or interim report of the G7 Research Group opens with a contents list (the numbered
chapters and their pages) and tables: A, the commitments selected for assessment; B, every
member's score on every commitment; C, the scores by member; D, the scores by commitment;
and the overall compliance score. The chapters themselves are found and parsed by
:mod:`classifier.reports` (numbered chapter headings followed by the quoted commitment); this
module reads the front matter from the report text (as rebuilt from a PDF, or extracted) and
compares it with the chapters parsed: a chapter in the contents but not found, a chapter
found but not listed, a score or average the tables print differently from the chapter's.
Every disagreement is a :class:`~classifier.models.ParseWarning`; none stops the import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .models import MEMBERS, ParseWarning, Report
from .rubric import format_average

__all__ = ["FrontMatter", "check_front_matter", "read_front_matter"]

MEMBER_NAMES = list(MEMBERS.values())
# Column headings of Table B as the reports abbreviate them.
ABBREVIATIONS = {
    "can": "Canada",
    "canada": "Canada",
    "fra": "France",
    "france": "France",
    "ger": "Germany",
    "deu": "Germany",
    "germany": "Germany",
    "ita": "Italy",
    "italy": "Italy",
    "jpn": "Japan",
    "jap": "Japan",
    "japan": "Japan",
    "uk": "United Kingdom",
    "us": "United States",
    "usa": "United States",
    "eu": "European Union",
}
FRONT_MATTER_CHARS = 200_000  # the front matter of a 650-page report fits well within this

_SIGNED = r"[+\-−–]?\d\.\d\d"
_SCORE = r"(?:[+\-−–]?[01]|N/?A|n/?a)"
_TABLE = re.compile(r"^Table ([A-D])\s*:\s*(.*)$")
_CONTENTS_LINE = re.compile(r"^(\d{1,2})\.\s+(\S.*?:\s*\S.*?)(?:[\s.]+(\d{1,4}))?$")
_SELECTED = re.compile(r"^(\d{1,2})\.\s+(\S.*?:\s*\S.*?)$")
_BY_COMMITMENT = re.compile(rf"^(\d{{1,2}})\.?\s+(.*?)\s*({_SIGNED})\s*\(?(\d{{1,3}})\s?%\)?$")
_BY_MEMBER = re.compile(rf"^({'|'.join(MEMBER_NAMES)})\s+({_SIGNED})\s*\(?(\d{{1,3}})\s?%\)?$")
_SCORE_ROW = re.compile(rf"^(\d{{1,2}})\.?\s+((?:{_SCORE}\s+)+)({_SIGNED})\s*\(?(\d{{1,3}})\s?%\)?$")
_OVERALL = re.compile(
    rf"(?:overall|average|final|interim) compliance score\b[^.]{{0,120}}?\b({_SIGNED})\s*\((\d{{1,3}})\s?%\)",
    re.I,
)


@dataclass
class FrontMatter:
    contents: dict[int, str] = field(default_factory=dict)  # chapter number -> title as listed
    selected: dict[int, str] = field(default_factory=dict)  # Table A
    scores: dict[int, dict[str, int | None]] = field(default_factory=dict)  # Table B
    by_member: dict[str, str] = field(default_factory=dict)  # Table C: member -> '+0.55 (78%)'
    by_commitment: dict[int, str] = field(default_factory=dict)  # Table D: number -> '+0.88 (94%)'
    overall: str | None = None

    @property
    def is_whole_report(self) -> bool:
        """A report's front matter (its tables), not just a contents list before one chapter."""
        return bool(self.selected or self.scores or self.by_commitment or self.by_member)


def _normal_sign(text: str) -> str:
    return text.replace("−", "-").replace("–", "-")


def _printed(average: str, percent: str) -> str:
    value = _normal_sign(average)
    if not value.startswith(("-", "+")) and float(value) != 0:
        value = "+" + value
    return f"{value} ({int(percent)}%)"


def read_front_matter(text: str, first_chapter_line: int | None = None) -> FrontMatter:
    """The contents list and Tables A-D from the text before the first chapter.

    Reads lines one at a time (a bounded prefix of the text), so its time does not grow with the
    report's length. Rows may be tab-separated or flattened to spaces.
    """
    front = FrontMatter()
    head = text[:FRONT_MATTER_CHARS].split("\n")
    if first_chapter_line is not None:
        head = head[: max(0, first_chapter_line - 1)]
    table = None
    in_contents = False
    columns: list[str] = []
    listed_tables: set[str] = set()
    for raw in head:
        line = " ".join(raw.replace("\t", " ").split()).strip("#* ")
        if not line:
            continue
        if line.lower() == "contents":
            in_contents, table = True, None
            continue
        m = _TABLE.match(line)
        if m:
            # The contents list names each table once; the table itself comes later.
            if in_contents and m[1] not in listed_tables:
                listed_tables.add(m[1])
                continue
            table, columns, in_contents = m[1], [], False
            continue
        if front.overall is None and (o := _OVERALL.search(line)):
            front.overall = _printed(o[1], o[2])
        if in_contents and table is None:
            if c := _CONTENTS_LINE.match(line):
                front.contents.setdefault(int(c[1]), c[2].strip(" ."))
            continue
        if table == "A":
            if s := _SELECTED.match(line):
                front.selected[int(s[1])] = s[2].strip()
        elif table == "B":
            words = line.split()
            if not columns and all(
                w.lower().strip(".") in ABBREVIATIONS or w.lower() == "average" for w in words[-9:]
            ):
                columns = [
                    ABBREVIATIONS[w.lower().strip(".")]
                    for w in words
                    if w.lower().strip(".") in ABBREVIATIONS
                ]
                continue
            if columns and (r := _SCORE_ROW.match(line)):
                values = r[2].split()
                if len(values) == len(columns):
                    front.scores[int(r[1])] = {
                        member: (None if "/" in v or v.lower() == "na" else int(_normal_sign(v)))
                        for member, v in zip(columns, values, strict=True)
                    }
        elif table == "C":
            if b := _BY_MEMBER.match(line):
                front.by_member[b[1]] = _printed(b[2], b[3])
        elif table == "D" and (d := _BY_COMMITMENT.match(line)):
            front.by_commitment[int(d[1])] = _printed(d[3], d[4])
    return front


def check_front_matter(front: FrontMatter, report: Report) -> list[ParseWarning]:
    """What the front matter says that the chapters parsed do not (``front-matter`` warnings)."""
    warnings: list[ParseWarning] = []

    def warn(message: str, commitment: int | None = None, member: str | None = None) -> None:
        warnings.append(
            ParseWarning(code="front-matter", message=message, commitment=commitment, member=member)
        )

    found = {c.number: c for c in report.chapters}
    listed = set(front.contents) | set(front.selected)
    if front.contents:
        for number in sorted(set(found) - set(front.contents)):
            warn(f"chapter {number} is in the file but not in the contents list", number)
    if front.is_whole_report:
        for number in sorted(listed - set(found)):
            title = front.contents.get(number) or front.selected.get(number)
            warn(
                f"the contents list chapter {number} ({title}) but no such chapter was found in the file",
                number,
            )
    for number, chapter in sorted(found.items()):
        scores = {m.member: m.score for m in chapter.members}
        printed = front.scores.get(number)
        if printed:
            for member, value in printed.items():
                if member in scores and value is not None and value != scores[member]:
                    warn(
                        f"Table B gives {member} {value:+d} on commitment {number}, the chapter {scores[member]:+d}",
                        number,
                        member,
                    )
        if number in front.by_commitment:
            # (a member not assessed is not in the average, as in the chapter's own table)
            computed = format_average([s for s in scores.values() if s is not None])
            if _normal_sign(front.by_commitment[number]) != _normal_sign(computed):
                warn(
                    f"Table D prints commitment {number}'s average as {front.by_commitment[number]}, "
                    f"the chapter's scores give {computed}",
                    number,
                )
    complete = bool(found) and (not listed or listed <= set(found))
    if complete and front.is_whole_report:
        per_member: dict[str, list[int]] = {}
        for chapter in found.values():
            for m in chapter.members:
                if m.score is not None:  # not assessed in this chapter: not in the member's average
                    per_member.setdefault(m.member, []).append(m.score)
        for member, printed_average in front.by_member.items():
            if member in per_member:
                computed = format_average(per_member[member])
                if _normal_sign(printed_average) != _normal_sign(computed):
                    warn(
                        f"Table C prints {member}'s average as {printed_average}, the chapters give {computed}",
                        None,
                        member,
                    )
        if front.overall:
            computed = format_average([s for values in per_member.values() for s in values])
            if _normal_sign(front.overall) != _normal_sign(computed):
                warn(
                    f"the front matter prints the overall score as {front.overall}, the chapters give {computed}"
                )
    return warnings
