"""Commitment rubrics (``corpus/commitments/*.toml``) and the scoring rule.

A rubric is the hand-checked, machine-readable form of a chapter's rules: its
dimensions with definitions and examples, exclusions, the scoring rule as data,
notes on the report's own inconsistencies, and the dimension-level gold (each
member's dimensions as the analysts' concluding paragraphs read).

The scoring rule is a pure function from ``{dimension: strong|weak|none}`` to
-1 / 0 / +1; averages and percentages are computed the way the reports print them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
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
    """One line of the rule: all given conditions must hold for ``score`` to apply."""

    score: Literal[-1, 0, 1]
    min_strong: int | None = None
    min_acted: int | None = None
    all_strong: bool = False


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

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        ids = [d.id for d in self.dimensions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"dimension ids repeat: {ids}")
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
    strong = values.count("strong")
    acted = strong + values.count("weak")
    for rule in scoring.rules:
        if rule.min_strong is not None and strong < rule.min_strong:
            continue
        if rule.min_acted is not None and acted < rule.min_acted:
            continue
        if rule.all_strong and strong != len(dims):
            continue
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


def rubrics_for(commitment: int | None = None) -> list[Rubric]:
    """The corpus's rubrics (``corpus/commitments``), or the one of ``commitment``."""
    rubrics = load_rubrics(corpus_dir() / "commitments")
    if commitment is not None:
        rubrics = [r for r in rubrics if r.number == commitment]
        if not rubrics:
            raise ValueError(f"no rubric for commitment {commitment} in corpus/commitments")
    return rubrics
