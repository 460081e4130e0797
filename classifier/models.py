"""Pydantic schemas shared across stages, and the members they name.

These are the parser's output (a report as data) and the shapes the database rows
are built from; the members are here with the one reading of a member's code or name
(:func:`resolve_member`) every command and page uses. Everything is ``extra="forbid"``
so a typo in a field name is an error, not a silently ignored value.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, NamedTuple, overload

from pydantic import BaseModel, ConfigDict, Field

# The G7 members in the order the reports print them, with short codes for CLI filters.
# (The classifier, the rubrics and the newsrooms are about these eight.)
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


class RegisteredMember(NamedTuple):
    """A member a compliance report can assess: its code, the name the gold uses, other spellings."""

    code: str
    name: str
    groups: tuple[str, ...]
    aliases: tuple[str, ...] = ()


# Every member a G7 or G20 compliance report can list in its assessment table. Countries
# have their ISO 3166-1 alpha-2 code, except the United Kingdom (UK, as the G7 codes always
# were); the African Union is AFU because AU is Australia's. A chapter's members are read
# from its own assessment table; this registry only says which names are members at all,
# and gives each one code and one spelling.
MEMBER_REGISTRY: tuple[RegisteredMember, ...] = (
    RegisteredMember("AR", "Argentina", ("G20",)),
    RegisteredMember("AU", "Australia", ("G20",)),
    RegisteredMember("BR", "Brazil", ("G20",)),
    RegisteredMember("CA", "Canada", ("G7", "G20")),
    RegisteredMember("CN", "China", ("G20",), ("People's Republic of China",)),
    RegisteredMember("FR", "France", ("G7", "G20")),
    RegisteredMember("DE", "Germany", ("G7", "G20")),
    RegisteredMember("IN", "India", ("G20",)),
    RegisteredMember("ID", "Indonesia", ("G20",)),
    RegisteredMember("IT", "Italy", ("G7", "G20")),
    RegisteredMember("JP", "Japan", ("G7", "G20")),
    RegisteredMember("KR", "Korea", ("G20",), ("South Korea", "Republic of Korea")),
    RegisteredMember("MX", "Mexico", ("G20",)),
    RegisteredMember("RU", "Russia", ("G20",), ("Russian Federation",)),
    RegisteredMember("SA", "Saudi Arabia", ("G20",)),
    RegisteredMember("ZA", "South Africa", ("G20",)),
    RegisteredMember("TR", "Türkiye", ("G20",), ("Turkey", "Turkiye")),
    RegisteredMember("UK", "United Kingdom", ("G7", "G20")),
    RegisteredMember("US", "United States", ("G7", "G20"), ("United States of America",)),
    RegisteredMember("EU", "European Union", ("G7", "G20")),
    RegisteredMember("AFU", "African Union", ("G20",)),
)
# name -> code for every registered member (the G7's codes unchanged).
MEMBER_CODES: dict[str, str] = {m.name: m.code for m in MEMBER_REGISTRY}
# Every spelling a report may print, lower-cased -> the registered name.
_MEMBER_SPELLINGS: dict[str, str] = {
    spelling.lower(): m.name for m in MEMBER_REGISTRY for spelling in (m.name, *m.aliases)
}
# Every spelling, longest first (so that a pattern built from them tries 'Korea' after
# 'Republic of Korea').
MEMBER_SPELLINGS: tuple[str, ...] = tuple(
    sorted((s for m in MEMBER_REGISTRY for s in (m.name, *m.aliases)), key=len, reverse=True)
)


def registered_member(text: str) -> str | None:
    """'the United States', 'Turkey', 'KOREA' -> the registered name; None for anything else."""
    t = " ".join(text.split()).lower()
    if t.startswith("the "):
        t = t[4:]
    return _MEMBER_SPELLINGS.get(t)


def member_code(name: str) -> str:
    """The registry's code of a registered member's name ('African Union' -> 'AFU')."""
    return MEMBER_CODES[name]


@overload
def resolve_member(value: str) -> str: ...
@overload
def resolve_member(value: None) -> None: ...
@overload
def resolve_member(value: str | None) -> str | None: ...
def resolve_member(value: str | None) -> str | None:
    """'UK', 'uk', 'United Kingdom', 'AR', 'Turkey' -> the registered name; None passes through.

    Any registered member (the G7's, the G20's, the African Union) by code or spelling, so that a
    G20 chapter's members can be filtered like the G7's."""
    if value is None:
        return None
    code = value.strip().upper()
    if code in MEMBERS:
        return MEMBERS[code]
    by_code = {m.code: m.name for m in MEMBER_REGISTRY}
    if code in by_code:
        return by_code[code]
    name = registered_member(value)
    if name:
        return name
    raise ValueError(
        f"unknown member {value!r}: use one of {', '.join(MEMBERS)}, another registered member's code "
        "(AR, AU, BR, CN, IN, ID, KR, MX, RU, SA, ZA, TR, AFU) or a full name"
    )


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


Column = Literal["no", "partial", "full"]  # the assessment table's compliance columns
DateSource = Literal["paragraph", "footnote", "period"]  # where an action's date was read


class AssessmentRow(Model):
    """One member's row of the assessment table; ``score`` is None for a member the report
    lists as not assessed ('N/A', 'not assessed'), which the printed average leaves out."""

    member: str
    score: int | None
    column: Column | None = None
    line: int

    @property
    def assessed(self) -> bool:
        return self.score is not None


class EvidenceItem(Model):
    """One cited action paragraph of a member section."""

    member: str
    seq: int
    date: dt.date | None = None
    date_raw: str | None = None
    date_source: DateSource | None = None
    text: str
    footnotes: list[int] = Field(default_factory=list)
    line: int


class MemberSection(Model):
    """A member's section of a chapter. A member the report does not assess (the assessment
    table and the heading print 'N/A' or 'not assessed', or the table only, with no section
    for it) has no score at all: ``assessed`` is False."""

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
    def assessed(self) -> bool:
        return self.score is not None

    @property
    def score(self) -> int | None:
        """The score the analysts gave: the sentence's, else the heading's, else the table's
        (None for a member not assessed)."""
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
