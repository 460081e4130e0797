"""Commitment rubrics (``corpus/commitments/*.toml``) and the scoring rule.

A rubric is the hand-checked, machine-readable form of a chapter's rules: its
dimensions with definitions and examples, exclusions, the scoring rule as data,
notes on the report's own inconsistencies, and the dimension-level gold (each
member's dimensions as the analysts' concluding paragraphs read).

The scoring rule is a pure function from ``{dimension: strong|weak|none}`` to
-1 / 0 / +1; averages and percentages are computed the way the reports print them.

A rubric drafted from a chapter (:mod:`classifier.rubric_draft`) carries a ``[draft]`` table
whose ``fields`` list names every value not yet confirmed by an analyst, by path
(``title``, ``dimensions.prevent``, ``scoring``, ``gold.Japan.labels.counter``, …). An analyst
confirms a value by deleting its path from the list; a rubric without ``[draft]``, or with an
empty list, is confirmed throughout. :meth:`Rubric.is_draft` answers for one path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from .files import first_problem, read_toml
from .models import MEMBERS, Model
from .store import corpus_dir

GoldLabelValue = Literal["strong", "weak", "none", "unclear"]


class RubricError(Exception):
    """A rubric file that is missing, malformed or inconsistent."""


class RubricDimension(Model):
    id: str
    name: str
    definition: str
    strong_examples: list[str] = Field(default_factory=list)
    weak_examples: list[str] = Field(default_factory=list)


class Exclusion(Model):
    id: str
    text: str
    belongs_to: int | None = None


class ScoringRule(Model):
    """One line of the rule: all given conditions must hold for ``score`` to apply.

    Counts are over the commitment's dimensions: ``strong`` those labelled strong, ``acted``
    those labelled strong or weak. ``min_strong = 2`` reads "strong in at least two";
    ``max_strong`` bounds it from above ("between one and three"); ``strong_in`` and
    ``acted_in`` name dimensions that must themselves be strong, or at least weak.
    """

    score: Literal[-1, 0, 1]
    min_strong: int | None = None
    max_strong: int | None = None
    min_acted: int | None = None
    max_acted: int | None = None
    all_strong: bool = False
    strong_in: list[str] = Field(default_factory=list)
    acted_in: list[str] = Field(default_factory=list)

    def holds(self, labels: Mapping[str, str], dimensions: list[str]) -> bool:
        """Whether every condition of this line holds for one member's labels."""
        values = [labels.get(d, "none") for d in dimensions]
        strong = values.count("strong")
        acted = strong + values.count("weak")
        checks = [
            self.min_strong is None or strong >= self.min_strong,
            self.max_strong is None or strong <= self.max_strong,
            self.min_acted is None or acted >= self.min_acted,
            self.max_acted is None or acted <= self.max_acted,
            not self.all_strong or strong == len(dimensions),
            all(labels.get(d, "none") == "strong" for d in self.strong_in),
            all(labels.get(d, "none") in ("strong", "weak") for d in self.acted_in),
        ]
        return all(checks)


class Scoring(Model):
    default: Literal[-1, 0, 1] = -1
    rules: list[ScoringRule]


class Note(Model):
    topic: str
    text: str


class GoldLabel(Model):
    label: GoldLabelValue
    quote: str = ""
    why: str | None = None


class MemberGold(Model):
    member: str
    printed_score: Literal[-1, 0, 1]
    conclusion: str
    labels: dict[str, GoldLabel]


class Features(Model):
    text: str


class Definition(Model):
    term: str
    definition: str


class Guidelines(Model):
    full: str
    partial: str
    non: str


class DraftMark(Model):
    """Where a drafted rubric came from, and which of its values are not confirmed yet."""

    backend: str  # rules | openai
    model: str | None = None
    prompt: str | None = None  # prompt name and sha, for a model's draft
    source: str  # the chapter it was drafted from: file name and content id
    drafted_utc: str
    calls: list[int] = Field(default_factory=list)  # llm_calls rows of a model's draft
    fields: list[str] = Field(default_factory=list)


class Rubric(Model):
    summit: str
    summit_slug: str
    number: int
    title: str
    commitment: str
    commitment_source: str | None = None
    report_kind: Literal["interim", "final"]
    period_start: dt.date
    period_end: dt.date
    members: list[str]
    exclusions: list[Exclusion] = Field(default_factory=list)
    features: Features
    definitions: list[Definition] = Field(default_factory=list)
    dimensions: list[RubricDimension]
    guidelines: Guidelines
    scoring_guidelines: dict[str, str]
    scoring: Scoring
    notes: list[Note] = Field(default_factory=list)
    gold: list[MemberGold] = Field(default_factory=list)
    draft: DraftMark | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        ids = [d.id for d in self.dimensions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"dimension ids repeat: {ids}")
        for rule in self.scoring.rules:
            named = [d for d in rule.strong_in + rule.acted_in if d not in ids]
            if named:
                raise ValueError(f"scoring rule names unknown dimensions {named}")
        if self.draft is not None:
            known = set(self.value_paths())
            unknown = [f for f in self.draft.fields if f not in known]
            if unknown:
                raise ValueError(f"draft fields name no value of this rubric: {unknown[:3]}")
        unknown = [m for m in self.members if m not in MEMBERS.values()]
        if unknown:
            raise ValueError(f"unknown members {unknown}")
        for gold in self.gold:
            if gold.member not in self.members:
                raise ValueError(f"gold for {gold.member!r}, who is not in members")
            if set(gold.labels) != set(ids):
                raise ValueError(
                    f"gold for {gold.member}: labels {sorted(gold.labels)} but dimensions {sorted(ids)}"
                )
            for dim, label in gold.labels.items():
                if label.label != "unclear" and label.quote not in gold.conclusion:
                    raise ValueError(
                        f"gold for {gold.member}, {dim}: quote is not in the conclusion: {label.quote[:60]!r}"
                    )
                if label.label == "unclear" and not label.why:
                    raise ValueError(f"gold for {gold.member}, {dim}: 'unclear' needs a 'why'")
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self

    @property
    def dimension_ids(self) -> list[str]:
        return [d.id for d in self.dimensions]

    def value_paths(self) -> list[str]:
        """Every path a ``[draft]`` list may name, in file order."""
        paths = ["title", "commitment", "commitment_source", "report_kind", "period_start", "period_end"]
        paths += ["members", "features", "definitions", "exclusions"]
        paths += [f"exclusions.{e.id}" for e in self.exclusions]
        paths += [f"dimensions.{d.id}" for d in self.dimensions]
        paths += ["guidelines", "scoring_guidelines", "scoring", "notes"]
        for g in self.gold:
            paths += [f"gold.{g.member}.printed_score", f"gold.{g.member}.conclusion"]
            paths += [f"gold.{g.member}.labels.{dim}" for dim in g.labels]
        return paths

    @property
    def draft_fields(self) -> list[str]:
        """The paths of the values an analyst has not confirmed yet (empty: confirmed)."""
        return list(self.draft.fields) if self.draft else []

    def is_draft(self, path: str) -> bool:
        """Whether the value at ``path`` (or the table it sits in) is still a draft."""
        fields = set(self.draft_fields)
        parts = path.split(".")
        return any(".".join(parts[:k]) in fields for k in range(1, len(parts) + 1))

    def gold_for(self, member: str) -> MemberGold | None:
        return next((g for g in self.gold if g.member == member), None)

    def notes_naming(self, topic: str, member: str) -> list[Note]:
        return [n for n in self.notes if n.topic == topic and n.text.startswith(member)]


def score(labels: Mapping[str, str], scoring: Scoring, dimensions: Iterable[str]) -> int:
    """Apply a commitment's scoring rule to one member's dimension labels.

    ``labels`` maps dimension id to strong, weak or none; a dimension missing from
    ``labels`` counts as none. Unknown labels are an error, so that 'unclear' gold
    is never silently scored: callers decide how to read it.
    """
    dims = list(dimensions)
    values = []
    for dim in dims:
        value = labels.get(dim, "none")
        if value not in ("strong", "weak", "none"):
            raise ValueError(f"label for {dim!r} must be strong, weak or none, not {value!r}")
        values.append(value)
    unknown = set(labels) - set(dims)
    if unknown:
        raise ValueError(f"labels for unknown dimensions: {sorted(unknown)}")
    full = dict(zip(dims, values, strict=True))
    for rule in scoring.rules:
        if rule.holds(full, dims):
            return rule.score
    return scoring.default


def score_gold(rubric: Rubric, gold: MemberGold, unclear_as: str = "none") -> int:
    """Score a member's dimension-level gold, reading 'unclear' as ``unclear_as``."""
    labels = {
        dim: (unclear_as if value.label == "unclear" else value.label) for dim, value in gold.labels.items()
    }
    return score(labels, rubric.scoring, rubric.dimension_ids)


def score_range(rubric: Rubric, gold: MemberGold) -> tuple[int, int]:
    """The lowest and highest score the gold allows, reading each 'unclear' as none then strong."""
    low = score_gold(rubric, gold, "none")
    high = score_gold(rubric, gold, "strong")
    return min(low, high), max(low, high)


def average_of(scores: list[int]) -> tuple[Decimal, int]:
    """The report's average (two decimals, half up) and percentage ((average + 1) / 2)."""
    if not scores:
        raise ValueError("no scores to average")
    mean = Decimal(sum(scores)) / Decimal(len(scores))
    average = mean.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    percent = ((mean + 1) / 2 * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return average, int(percent)


def format_score(value: int) -> str:
    """'+1', '0', '-1' as the reports print a member's score."""
    return f"+{value}" if value > 0 else str(value)


def format_average(scores: list[int]) -> str:
    """'+0.88 (94%)', exactly as the reports print a commitment's average."""
    average, percent = average_of(scores)
    sign = "+" if average > 0 else ("-" if average < 0 else "")
    return f"{sign}{abs(average):.2f} ({percent}%)"


def load_rubric(path: Path | str) -> Rubric:
    """Read and validate one rubric file; :class:`RubricError` names the file and the problem."""
    path = Path(path)
    data = read_toml(path, RubricError, "rubric file")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise RubricError(f"{path}: {first_problem(exc)}") from None


def load_rubrics(directory: Path | str) -> list[Rubric]:
    """All rubrics in a directory, ordered by commitment number."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RubricError(f"{directory}: rubric directory not found")
    rubrics = [load_rubric(p) for p in sorted(directory.glob("*.toml"))]
    numbers = [r.number for r in rubrics]
    if len(set(numbers)) != len(numbers):
        raise RubricError(f"{directory}: two rubrics for the same commitment: {numbers}")
    return sorted(rubrics, key=lambda r: r.number)


def describe_rule(scoring: Scoring) -> str:
    """The rule in one line: '+1 if strong >= 3; 0 if strong >= 1; 0 if acted >= 3; else -1'."""
    parts = []
    for rule in scoring.rules:
        conditions = []
        if rule.min_strong is not None:
            conditions.append(f"strong >= {rule.min_strong}")
        if rule.max_strong is not None:
            conditions.append(f"strong <= {rule.max_strong}")
        if rule.min_acted is not None:
            conditions.append(f"acted >= {rule.min_acted}")
        if rule.max_acted is not None:
            conditions.append(f"acted <= {rule.max_acted}")
        if rule.all_strong:
            conditions.append("all strong")
        if rule.strong_in:
            conditions.append(f"strong in {', '.join(rule.strong_in)}")
        if rule.acted_in:
            conditions.append(f"acted in {', '.join(rule.acted_in)}")
        parts.append(f"{format_score(rule.score)} if {' and '.join(conditions) or 'always'}")
    return "; ".join([*parts, f"else {format_score(scoring.default)}"])


def _summary(value: object, limit: int = 100) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def draft_value(rubric: Rubric, path: str) -> str:
    """A one-line summary of the value at a ``[draft]`` path, for an analyst to confirm."""
    parts = path.split(".")
    head = parts[0]
    if head == "dimensions":
        d = next(d for d in rubric.dimensions if d.id == parts[1])
        return f"{d.name} ({len(d.strong_examples)} strong, {len(d.weak_examples)} weak examples)"
    if head == "exclusions" and len(parts) > 1:
        e = next(e for e in rubric.exclusions if e.id == parts[1])
        return _summary(e.text)
    if head == "exclusions":
        return f"{len(rubric.exclusions)} exclusion(s)"
    if head == "scoring":
        return describe_rule(rubric.scoring)
    if head == "definitions":
        return f"{len(rubric.definitions)} definitions: " + _summary(
            ", ".join(d.term for d in rubric.definitions)
        )
    if head == "notes":
        return f"{len(rubric.notes)} note(s): " + ", ".join(sorted({n.topic for n in rubric.notes}))
    if head == "features":
        return _summary(rubric.features.text)
    if head == "guidelines":
        return _summary(rubric.guidelines.full)
    if head == "scoring_guidelines":
        return f"rows {', '.join(rubric.scoring_guidelines)}"
    if head == "gold":
        member = next(g for g in rubric.gold if g.member == parts[1])
        if parts[2] == "printed_score":
            return format_score(member.printed_score)
        if parts[2] == "conclusion":
            return _summary(member.conclusion)
        label = member.labels[parts[3]]
        said = f'"{_summary(label.quote, 80)}"' if label.quote else _summary(label.why or "", 80)
        return f"{label.label}: {said}"
    return _summary(getattr(rubric, head))


@dataclass
class MemberCheck:
    member: str
    rule: int
    low: int
    high: int
    printed: int
    labels: str
    verdict: str  # agrees | differs (documented in notes) | differs (draft) | DIFFERS, not documented
    draft: bool


@dataclass
class RubricCheck:
    rubric: Rubric
    members: list[MemberCheck]
    to_confirm: list[tuple[str, str]]  # (path, value) of the draft values
    could_not: list[str]

    @property
    def unexplained(self) -> int:
        return sum(m.verdict.startswith("DIFFERS") for m in self.members)

    @property
    def reproduced(self) -> int:
        return sum(m.rule == m.printed for m in self.members)


def check(rubric: Rubric) -> RubricCheck:
    """Score each member's dimension-level gold against the printed score, and list the draft
    values. A confirmed reading that does not give the printed score needs a note saying why;
    a drafted one is for the analyst to confirm or correct."""
    members = []
    for g in rubric.gold:
        result = score_gold(rubric, g)
        low, high = score_range(rubric, g)
        drafted = any(rubric.is_draft(f"gold.{g.member}.labels.{d}") for d in g.labels)
        if result == g.printed_score:
            verdict = "agrees"
        elif drafted:
            verdict = "differs (draft readings: confirm or correct them)"
        elif rubric.notes_naming("score-vs-conclusion", g.member):
            verdict = "differs (documented in notes)"
        else:
            verdict = "DIFFERS, not documented"
        labels = " ".join(f"{d}={v.label}" for d, v in g.labels.items())
        members.append(MemberCheck(g.member, result, low, high, g.printed_score, labels, verdict, drafted))
    to_confirm = [(path, draft_value(rubric, path)) for path in rubric.draft_fields]
    could_not = [n.text for n in rubric.notes if n.topic == "draft-could-not"]
    return RubricCheck(rubric, members, to_confirm, could_not)


def render_check(result: RubricCheck) -> str:
    """`evidence rubric check`'s text for one rubric."""
    rubric = result.rubric
    head = f"{rubric.number}. {rubric.title}  ({rubric.report_kind} report)"
    if result.to_confirm and rubric.draft is not None:  # (values to confirm: a draft)
        head += f"  DRAFT ({rubric.draft.backend}): {len(result.to_confirm)} values to confirm"
    lines = [
        head,
        f"  dimensions: {', '.join(rubric.dimension_ids)}",
        f"  rule: {describe_rule(rubric.scoring)}",
    ]
    for m in result.members:
        span = f" range {format_score(m.low)}..{format_score(m.high)}" if m.low != m.high else ""
        lines.append(
            f"  {m.member:<16} rule {format_score(m.rule):>3}{span}  printed "
            f"{format_score(m.printed):>3}  {m.verdict}\n      {m.labels}"
        )
    if result.members:
        lines.append(
            f"  readings give the printed score for {result.reproduced} of {len(result.members)} members"
        )
    lines.append(f"  notes: {', '.join(sorted({n.topic for n in rubric.notes}))}")
    if result.to_confirm:
        lines.append("  to confirm (delete a path from [draft] fields once checked):")
        lines += [f"    {path}: {value}" for path, value in result.to_confirm]
    if result.could_not:
        lines.append("  the draft could not:")
        lines += [f"    - {text}" for text in result.could_not]
    return "\n".join(lines)


def rubrics_for(commitment: int | None = None) -> list[Rubric]:
    """The corpus's rubrics (``corpus/commitments``), or the one of ``commitment``."""
    rubrics = load_rubrics(corpus_dir() / "commitments")
    if commitment is not None:
        rubrics = [r for r in rubrics if r.number == commitment]
        if not rubrics:
            raise ValueError(f"no rubric for commitment {commitment} in corpus/commitments")
    return rubrics
