"""Pydantic schemas shared across stages, and the members they name.

These are the parser's output (a report as data) and the shapes the database rows
are built from; the members are here with the one reading of a member's code or name
(:func:`resolve_member`) every command and page uses. Everything is ``extra="forbid"``
so a typo in a field name is an error, not a silently ignored value.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The G7 members in the order the reports print them, with short codes for CLI filters.
MEMBERS: dict[str, str] = {
    "CA": "Canada",
    "FR": "France",
    "DE": "Germany",
    "IT": "Italy",
    "JP": "Japan",
    "UK": "United Kingdom",
    "US": "United States",
    "EU": "European Union",
}
MEMBER_CODES: dict[str, str] = {name: code for code, name in MEMBERS.items()}


def resolve_member(value: str | None) -> str | None:
    """'UK', 'uk', 'United Kingdom' -> 'United Kingdom'; None passes through."""
    if value is None:
        return None
    if value.upper() in MEMBERS:
        return MEMBERS[value.upper()]
    for name in MEMBERS.values():
        if name.lower() == value.strip().lower():
            return name
    raise ValueError(f"unknown member {value!r}: use one of {', '.join(MEMBERS)} or a full name")


ReportKind = Literal["interim", "final"]
SourceFormat = Literal["markdown", "pdf-text"]
Label = Literal["strong", "weak", "none"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParseWarning(Model):
    """Something in the report that contradicts itself or had to be repaired.

    The parser never silently picks between two readings; it records one of these
    naming the place (line, member) and what it chose.
    """

    code: str
    message: str
    line: int | None = None
    commitment: int | None = None
    member: str | None = None


class Footnote(Model):
    number: int
    title: str | None = None
    publisher: str | None = None
    place: str | None = None
    published: dt.date | None = None
    published_raw: str | None = None
    accessed: dt.date | None = None
    url: str | None = None
    translation: str | None = None
    raw: str
    line: int


class Definition(Model):
    term: str
    definition: str


class ParsedDimension(Model):
    """A dimension as the report enumerates it (not the hand-checked rubric)."""

    number: int
    name: str
    description: str | None = None


class Guidelines(Model):
    full: str = ""
    partial: str = ""
    non: str = ""
    strong_examples: list[str] = Field(default_factory=list)
    weak_examples: list[str] = Field(default_factory=list)


class AssessmentRow(Model):
    member: str
    score: int
    column: Literal["no", "partial", "full"] | None = None
    line: int


class EvidenceItem(Model):
    """One cited action paragraph of a member section."""

    member: str
    seq: int
    date: dt.date | None = None
    date_raw: str | None = None
    date_source: Literal["paragraph", "footnote"] | None = None
    text: str
    footnotes: list[int] = Field(default_factory=list)
    line: int


class MemberSection(Model):
    member: str
    heading_score: int | None = None
    sentence_score: int | None = None
    table_score: int | None = None
    analysts: list[str] = Field(default_factory=list)
    opening: str = ""
    actions: list[EvidenceItem] = Field(default_factory=list)
    conclusions: list[str] = Field(default_factory=list)
    score_sentence: str | None = None
    line: int

    @property
    def score(self) -> int | None:
        """The score the analysts gave: the sentence's, else the heading's, else the table's."""
        for value in (self.sentence_score, self.heading_score, self.table_score):
            if value is not None:
                return value
        return None


class Chapter(Model):
    """One commitment's chapter of a compliance report."""

    number: int
    title: str
    commitment: str
    commitment_source: str | None = None
    background: list[str] = Field(default_factory=list)
    features: str = ""
    definitions: list[Definition] = Field(default_factory=list)
    dimensions: list[ParsedDimension] = Field(default_factory=list)
    guidelines: Guidelines = Field(default_factory=Guidelines)
    scoring_guidelines: dict[str, str] = Field(default_factory=dict)
    assessment: list[AssessmentRow] = Field(default_factory=list)
    average_printed: str | None = None
    members: list[MemberSection] = Field(default_factory=list)
    footnotes: list[int] = Field(default_factory=list)  # the numbers it cites, in citation order
    line: int


class Report(Model):
    """A parsed compliance report file: one or more chapters and their footnotes."""

    file_name: str
    sha256: str
    kind: ReportKind | None = None
    summit: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    source_format: SourceFormat
    chapters: list[Chapter] = Field(default_factory=list)
    footnotes: dict[int, Footnote] = Field(default_factory=dict)
    warnings: list[ParseWarning] = Field(default_factory=list)


# ---------------------------------------------------------------------------
# Classification: what a backend returns for one document x one commitment.

MemberName = Literal[
    "Canada", "France", "Germany", "Italy", "Japan", "United Kingdom", "United States", "European Union"
]  # fmt: skip


class DimensionLabel(Model):
    """A backend's label for one dimension of the commitment.

    Every field is required and unconstrained in length: providers' strict structured-output
    modes require it, and grammar-constrained local servers (llama.cpp) cannot compile
    long repetition bounds. Lengths are enforced after validation instead.
    """

    label: Label
    rationale: str
    quotes: list[str]


class ClassificationBase(Model):
    """The fields every commitment's output shares; ``dimensions`` is per rubric (see classify)."""

    relevant: bool
    members: list[MemberName]
    action_date: dt.date | None
    summary: str
    confidence: float = Field(ge=0.0, le=1.0)
    outside_period: bool
    exclusions: list[str]
