"""Rubric drafts: an imported chapter -> ``corpus/commitments/<summit>-<N>.toml``, every value marked draft.

The chapter's own text gives most of a rubric verbatim: the commitment and its source, the
features, the dimensions as enumerated, the definitions, the guidelines and the Scoring
Guidelines table. What needs reading is drafted by rules here (or by a model, see
:func:`draft_readings_with_model`):

- the scoring rule, from the table's quantifiers ("strong actions in all three", "weak action in
  at least three", "between one and three") in the vocabulary of :class:`~classifier.rubric.ScoringRule`;
- each dimension's strong and weak examples, assigned by wording;
- each member's dimension-level gold, read from the concluding paragraph(s): which dimensions
  a clause names and whether it calls the action strong, weak, insufficient or absent.

Whatever the rules cannot do is said in a ``draft-could-not`` note, and every drafted value's
path is listed in the file's ``[draft]`` table until an analyst confirms it (see
:mod:`classifier.rubric`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import sqlite_utils
from pydantic import BaseModel, ValidationError, create_model, model_validator

from .dates import now_utc
from .files import first_problem
from .models import Model
from .rubric import Rubric, RubricError, Scoring, ScoringRule, score_gold, score_range

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
STOPWORDS = set(
    ["a", "an", "and", "the", "of", "in", "on", "to", "for", "with", "within", "each", "by", "or", "as", "its", "their", "these", "those", "this", "that", "such", "at", "from", "into", "through", "toward", "towards", "between", "all", "both", "any", "other", "is", "are", "be", "been", "being", "has", "have", "it", "they", "who", "which", "g7", "member", "members", "such", "may", "can", "will", "include", "includes", "including"]
)  # fmt: skip


class DraftError(Exception):
    """A rubric that cannot be drafted: no such chapter imported, several to choose from, a file in the way."""


# ---------------------------------------------------------------------------
# The chapter, as imported


@dataclass
class MemberSource:
    member: str
    score: int | None
    conclusions: list[str]
    actions: list[str] = field(default_factory=list)


@dataclass
class ChapterSource:
    """What drafting reads of one imported chapter (the current version)."""

    summit: str
    report_kind: str
    period_start: dt.date
    period_end: dt.date
    number: int
    title: str
    commitment: str
    commitment_source: str | None
    features: str
    definitions: list[dict]
    dimensions: list[dict]
    guidelines: dict
    scoring_guidelines: dict[str, str]
    members: list[MemberSource]
    file_name: str
    content_sha: str

    @property
    def summit_slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.summit.lower()).strip("-")

    @property
    def default_name(self) -> str:
        return f"{self.summit_slug}-{self.number}.toml"


def chapter_source(db: sqlite_utils.Database, number: int, report: str | None = None) -> ChapterSource:
    """The current version of commitment ``number``'s chapter; ``report`` picks one of several
    (a report kind, ``interim`` or ``final``; a summit, ``2024 Apulia``; or the file's name)."""
    from . import gold as gold_lib

    rows = gold_lib.current_commitments(db, number) if "commitments" in db.table_names() else []
    if report:
        wanted = report.strip().lower()
        rows = [
            r
            for r in rows
            if wanted in (r["report_kind"], str(r["summit"]).lower(), str(r["file_name"]).lower())
        ]
    if not rows:
        hint = f" from report {report!r}" if report else ""
        raise DraftError(
            f"no imported chapter for commitment {number}{hint}: import its report first "
            "(`evidence gold import FILE`)"
        )
    if len(rows) > 1:
        choices = ", ".join(f"{r['summit']} {r['report_kind']} ({r['file_name']})" for r in rows)
        raise DraftError(
            f"commitment {number} is in {len(rows)} imported chapters ({choices}): choose one with --report"
        )
    row = rows[0]
    members = []
    for section in db.query(
        "select * from member_sections where commitment_id = ? order by position", [row["id"]]
    ):
        actions = [
            a["text"]
            for a in db.query(
                "select text from gold_evidence where commitment_id = ? and member = ? order by seq",
                [row["id"], section["member"]],
            )
        ]
        members.append(
            MemberSource(section["member"], section["score"], json.loads(section["conclusions"]), actions)
        )
    return ChapterSource(
        summit=row["summit"],
        report_kind=row["report_kind"],
        period_start=dt.date.fromisoformat(row["period_start"]),
        period_end=dt.date.fromisoformat(row["period_end"]),
        number=row["number"],
        title=row["title"],
        commitment=row["commitment"],
        commitment_source=row["commitment_source"],
        features=row["features"] or "",
        definitions=json.loads(row["definitions"] or "[]"),
        dimensions=json.loads(row["dimensions"] or "[]"),
        guidelines=json.loads(row["guidelines"] or "{}"),
        scoring_guidelines=json.loads(row["scoring_guidelines"] or "{}"),
        members=members,
        file_name=row["file_name"],
        content_sha=row["content_sha"],
    )


# ---------------------------------------------------------------------------
# Words


def stem(word: str) -> str:
    """A crude stem, enough to match 'partnered', 'partnering' and 'partnerships'."""
    w = word.lower()
    for suffix in (
        "ships",
        "ship",
        "ations",
        "ation",
        "ions",
        "ion",
        "ments",
        "ment",
        "ings",
        "ing",
        "ed",
        "es",
        "s",
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            break
    return w[:-1] if w.endswith("e") and len(w) > 4 else w


def content_stems(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z]+", text)
    return [stem(w) for w in words if w.lower() not in STOPWORDS and len(w) > 2]


# Words that name no particular dimension even when a dimension's name holds them.
GENERIC = {stem(w) for w in ["action", "actions", "commitment", "dimension", "dimensions", "involved", "related", "effort", "measures", "criteria", "criterion", "example", "examples", "strong", "weak"]}  # fmt: skip


def slug(name: str) -> str:
    """A dimension id from its name: 'Dismantle Networks' -> dismantle_networks, 'enhancing border
    management and enforcement' -> border_management (a leading verb in -ing is dropped)."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", name)]
    if len(words) > 2 and words[0].endswith("ing") and words[1] not in STOPWORDS:
        words = words[1:]
    kept: list[str] = []
    for w in words:
        if w in STOPWORDS or w in ("involved", "related", "engaged"):
            if kept:
                break
            continue
        kept.append(w)
        if len(kept) == 3:
            break
    return "_".join(kept) or "dimension"


def enumeration(text: str) -> list[str]:
    """'1) prevent, 2) counter and 3) dismantle …' -> ['prevent', 'counter', 'dismantle …']."""
    marks = list(re.finditer(r"(?:^|(?<=\s))(\d)\)\s*", text))
    if len(marks) < 2:
        return []
    items = []
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(text)
        item = re.split(r"(?<=[a-z])\. ", text[m.end() : end])[0]
        item = re.sub(r"(?:[,;.]|\s+and|\s+or)+\s*$", "", item.strip())
        items.append(item.strip())
    return items


# Words in -ing that name a thing ('smuggling and trafficking networks'), not a second action.
NOUN_ING = {"trafficking", "smuggling", "training", "funding", "monitoring", "laundering", "financing",
            "policing", "raising", "processing", "screening", "offending", "building", "housing"}  # fmt: skip
TRAILERS = re.compile(r"^(?:such as|including|e\.g\.|in particular|notably|to this end)\b", re.I)


def example_items(sentence: str) -> list[str]:
    """The list after 'include' / 'involve' in an examples sentence, one item per example."""
    m = re.search(r"\b(?:include|includes|including|involve|involves|are|is)\b:?\s*(.*)$", sentence)
    body = (m[1] if m else sentence).strip().rstrip(".")
    parts = re.split(r",\s*(?:as well as|and|or)\s+|,\s*|;\s*|\s+as well as\s+", body)
    items: list[str] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if items and TRAILERS.match(part):
            if not re.match(r"to this end\b", part, re.I):
                items[-1] += f", {part}"
            continue
        # 'networks and undertaking b' is two actions; 'smuggling and trafficking', 'joining or
        # forming' and 'enacting and/or amending' are one
        pieces = re.split(r"\s+(and|or)\s+(?=[a-z]+ing\s)", part)
        merged = [pieces[0]]
        for joiner, piece in zip(pieces[1::2], pieces[2::2], strict=True):
            before = merged[-1].split()[-1].lower()
            if piece.split()[0].lower() in NOUN_ING or before.endswith("ing"):
                merged[-1] = f"{merged[-1]} {joiner} {piece}"
            else:
                merged.append(piece)
        items += merged
    return [re.sub(r"^(?:and|or)\s+", "", i).strip() for i in items if i.strip()]


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text`` ('U.S. has' is not a sentence end)."""
    spans, start = [], 0
    for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z])", text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


# ---------------------------------------------------------------------------
# Dimensions, examples, exclusions


@dataclass
class Drafting:
    """What a draft found and what it could not do, gathered while drafting."""

    could_not: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        if text not in self.could_not:
            self.could_not.append(text)


def _cues(dimensions: list[dict]) -> list[set[str]]:
    """Per dimension, the stems of its name that no other dimension's name shares."""
    stems = [set(content_stems(d["name"])) - GENERIC for d in dimensions]
    counts: dict[str, int] = {}
    for s in stems:
        for w in s:
            counts[w] = counts.get(w, 0) + 1
    return [{w for w in s if counts[w] == 1} for s in stems]


def _best_dimension(text: str, dimensions: list[dict]) -> int | None:
    """The dimension whose name and description share most words with ``text`` (None on a tie at 0)."""
    words = set(content_stems(text)) - GENERIC
    scores = []
    for d in dimensions:
        own = set(content_stems(d["name"] + " " + (d.get("description") or ""))) - GENERIC
        scores.append(len(words & own))
    best = max(scores, default=0)
    if best == 0 or scores.count(best) > 1:
        return None
    return scores.index(best)


def draft_dimensions(source: ChapterSource, log: Drafting) -> list[dict]:
    dims = source.dimensions
    if not dims:
        log.say("no dimensions found in the Commitment Features or the guidelines: enter them by hand")
        return []
    features = enumeration(source.features)
    g = source.guidelines
    strong_sentences = list(g.get("strong_examples") or [])
    weak_sentences = list(g.get("weak_examples") or [])
    out = [
        {
            "id": slug(d["name"]),
            "name": d["name"][:1].upper() + d["name"][1:],
            "quotes": [],
            "strong_examples": [],
            "weak_examples": [],
        }
        for d in dims
    ]
    ids = [o["id"] for o in out]
    for k, o in enumerate(out):
        if ids.count(o["id"]) > 1:
            o["id"] = f"{o['id']}_{k + 1}"
    for k, d in enumerate(dims):
        item = features[k] if len(features) == len(dims) else next(
            (f for f in features if set(content_stems(f)) & set(content_stems(d["name"]))), None
        )  # fmt: skip
        if item:
            out[k]["quotes"].append(f'Commitment Features: "{item}"')
        if d.get("description"):
            out[k]["quotes"].append(f'General Interpretive Guidelines: "{d["name"]}: {d["description"]}"')
            out[k]["strong_examples"] += example_items(d["description"])
    for sentence in strong_sentences:
        best = _best_dimension(sentence, dims)
        if best is None:
            log.say(
                f"strong examples assigned to no dimension (the wording matches none, or several): {sentence!r}"
            )
            continue
        out[best]["quotes"].append(f'General Interpretive Guidelines: "{sentence}"')
        out[best]["strong_examples"] += [
            e for e in example_items(sentence) if e not in out[best]["strong_examples"]
        ]
        if not (set(content_stems(sentence.split(" include")[0])) & _cues(dims)[best]):
            log.say(
                f"strong examples assigned to {out[best]['id']} by the words they share with its description; "
                f"the report does not say which dimension they belong to: {sentence[:90]!r}"
            )
    weak = [e for s in weak_sentences for e in example_items(s)]
    for o in out:
        o["weak_examples"] = list(weak)
        o["definition"] = " ".join(o.pop("quotes")) or o["name"]
    return out


def draft_exclusions(source: ChapterSource) -> list[dict]:
    g = source.guidelines
    text = " ".join(g.get(k) or "" for k in ("full", "partial", "non"))
    out: list[dict] = []
    for a, b in sentences(text):
        s = text[a:b].strip()
        if re.search(r"\bexclud|\bdo(?:es)? not count|\bnot be counted|\bwill not be considered", s, re.I):
            m = re.search(r"\bCommitment (\d+)\b", s)
            out.append({"id": f"exclusion_{len(out) + 1}", "text": s, "belongs_to": int(m[1]) if m else None})
    return out


# ---------------------------------------------------------------------------
# The scoring rule


def quantifiers(text: str, n_dims: int) -> list[tuple[str, int, int]]:
    """(strength, at least, at most) for each counted phrase of a scoring text, in order:
    'strong actions in all three' -> ('strong', 3, 3); 'a strong action fewer than three' ->
    ('strong', 1, 2); 'weak action in at least three' -> ('weak', 3, n)."""
    t = text.lower()
    words = "|".join([*NUMBER_WORDS, r"\d"])

    def num(w: str) -> int:
        return NUMBER_WORDS.get(w) or int(w)

    patterns = [
        (rf"\ball (?:the )?({words})\b", lambda m: (num(m[1]), num(m[1]))),
        (
            r"\ball (?:the |of the )?(?:commitment )?(?:dimensions|criteria|components)\b",
            lambda m: (n_dims, n_dims),
        ),
        (rf"\bat least ({words})\b", lambda m: (num(m[1]), n_dims)),
        (rf"\bfewer than ({words})\b", lambda m: (1, num(m[1]) - 1)),
        (rf"\b({words}) or fewer\b", lambda m: (1, num(m[1]))),
        (rf"\bbetween ({words}) and ({words})\b", lambda m: (num(m[1]), num(m[2]))),
        (rf"\b({words}) of (?:the |these )?({words})\b", lambda m: (num(m[1]), n_dims)),
        (r"\bin (?:just |only )?one (?:commitment )?(?:dimension|criteri)", lambda m: (1, 1)),
    ]
    found: list[tuple[int, str, int, int]] = []
    taken: list[tuple[int, int]] = []
    for pattern, bounds in patterns:
        for m in re.finditer(pattern, t):
            if any(a <= m.start() < b for a, b in taken):
                continue
            before = t[: m.start()]
            strength = max(("strong", "weak"), key=lambda w: before.rfind(w))
            if before.rfind(strength) < 0:
                continue
            low, high = bounds(m)
            taken.append((m.start(), m.end()))
            found.append((m.start(), strength, low, high))
    return [(s, lo, hi) for _, s, lo, hi in sorted(found)]


def _rule(score: int, strength: str, low: int, high: int, n_dims: int) -> ScoringRule:
    if strength == "strong":
        return ScoringRule(score=score, min_strong=low, max_strong=high if high < n_dims else None)
    return ScoringRule(score=score, min_acted=low, max_acted=high if high < n_dims else None)


def named_rule(score: int, text: str, dimensions: list[dict], ids: list[str]) -> ScoringRule | None:
    """A row that names dimensions instead of counting them: 'strong action to prevent and at
    least weak action to counter' -> strong_in [prevent], acted_in [counter]."""
    cues = _cues(dimensions)
    strong: list[str] = []
    acted: list[str] = []
    for m in re.finditer(r"\b(strong|weak)\b(.*?)(?=\bstrong\b|\bweak\b|$)", text, re.I | re.S):
        span = m[2]
        for k in _named(span, cues, []):
            (strong if m[1].lower() == "strong" else acted).append(ids[k])
    if not strong and not acted:
        return None
    return ScoringRule(score=score, strong_in=strong, acted_in=[d for d in acted if d not in strong])


def draft_scoring(source: ChapterSource, n_dims: int, log: Drafting, ids: list[str] | None = None) -> Scoring:
    """The rule from the Scoring Guidelines table (the guideline paragraphs where there is no table)."""
    table = source.scoring_guidelines
    g = source.guidelines
    texts = {
        "+1": table.get("+1") or g.get("full") or "",
        "0": table.get("0") or g.get("partial") or "",
        "-1": table.get("-1") or g.get("non") or "",
    }
    if not table:
        log.say("no Scoring Guidelines table: the rule is read from the guideline paragraphs")
    rules: list[ScoringRule] = []
    for key, score in (("+1", 1), ("0", 0)):
        text = texts[key]
        if key == "+1":
            # the +1 guideline paragraph goes on to list examples; its first sentence is the rule
            text = text.split(". ")[0] if not table.get("+1") else text
        found = quantifiers(text, n_dims)
        named = None if found or not ids else named_rule(score, text, source.dimensions, ids)
        if named is not None:
            rules.append(named)
        elif not found:
            log.say(
                f"the {key} row names no count of strong or weak dimensions; no rule drafted for it: {text[:120]!r}"
            )
        for strength, low, high in found:
            rule = _rule(score, strength, low, high, n_dims)
            earlier_strong = [r.min_strong for r in rules if r.min_strong is not None and r.score > score]
            if rule.max_strong is not None and earlier_strong and rule.max_strong == min(earlier_strong) - 1:
                rule.max_strong = None  # implied: a higher score's rule already took the rest
            rules.append(rule)
        if key == "+1" and found and found[0][1] != n_dims:
            log.say(f"the +1 row counts {found[0][1]} dimensions but {n_dims} are enumerated")
    paragraphs = {"+1": g.get("full") or "", "0": g.get("partial") or "", "-1": g.get("non") or ""}
    for key, text in [*texts.items(), *paragraphs.items()]:
        if key == "+1":
            # conditions for full compliance beyond the count ('partnerships within each dimension')
            extra = r"[^.]*(?:\bwithin each dimension|\bin each of the\b|\bclear impact\b|\bmust\b)[^.]*"
            for m in re.finditer(extra, text):
                log.say(
                    f"a condition of the +1 text beyond counting dimensions is not encoded: {m[0].strip()!r}"
                )
        if re.search(r"contradictory|counter to the commitment|backslid", text, re.I):
            log.say(f"the {key} row's 'action contradictory to the commitment' cannot be encoded: the rule "
                    "sees only strong/weak/none per dimension")  # fmt: skip
    for key in ("+1", "0", "-1"):
        guideline = g.get({"+1": "full", "0": "partial", "-1": "non"}[key]) or ""
        if table.get(key) and guideline:
            first = guideline if key != "+1" else guideline.split(". ")[0]
            a, b = quantifiers(first, n_dims), quantifiers(table[key], n_dims)
            if a != b:
                log.say(
                    f"score {key}: the guideline paragraph counts {_said(a)} where the table counts {_said(b)}; "
                    "the rule follows the table"
                )
    return Scoring(default=-1, rules=rules)


def _said(found: list[tuple[str, int, int]]) -> str:
    return ", ".join(f"{s} {lo}" + (f"..{hi}" if hi != lo else "") for s, lo, hi in found) or "nothing"


def same_rule(a: Scoring, b: Scoring, n_dims: int) -> bool:
    """Whether two rules give the same score to every reading of ``n_dims`` dimensions."""
    dims = [f"d{k}" for k in range(n_dims)]
    from .rubric import score as apply

    for values in itertools.product(("strong", "weak", "none"), repeat=n_dims):
        labels = dict(zip(dims, values, strict=True))
        if apply(labels, a, dims) != apply(labels, b, dims):
            return False
    return True


# ---------------------------------------------------------------------------
# Member readings from the concluding paragraphs

NONE_RE = re.compile(
    r"\bnot (?:yet )?addressed\b|\bno action\b|\bnot taken any action\b|\bfail(?:ed|s)? to\b|\bhas not acted\b"
    r"|\bnot (?:taken|made) (?:any )?(?:action|steps)\b"
)
NOT_STRONG_RE = re.compile(
    r"\bnot (?:taken |made |demonstrated |shown )?(?:any )?strong\b"
    r"|\bnot (?:taken |made |shown )?(?:sufficient|adequate|enough)\b"
    r"|\bnot (?:adequately|sufficiently)\b|\binsufficient\b"
)
WEAK_RE = re.compile(r"\bweak(?:er|ly)?\b")
STRONG_RE = re.compile(r"\bstrong(?:ly)?\b")
CLAUSE_RE = re.compile(
    r";|\bbut\b|\bhowever\b|\bwhile\b|\bwhereas\b|\band (?=(?:it |they )?(?:has|have) not\b)", re.I
)
COMPLIED_RE = re.compile(r"\bha(?:s|ve) (?:fully |partially |not )?(?:complied|failed to comply)\b", re.I)
BOTH_RE = re.compile(r"\bboth (?:of )?(?:the |its )?(?:commitment )?dimensions\b|\bboth dimensions\b")
ALL_RE = re.compile(rf"\ball (?:the )?(?:{'|'.join(NUMBER_WORDS)} )?(?:commitment )?dimensions\b")
ORDINAL_RE = re.compile(rf"\b(?:the )?({'|'.join(ORDINALS)}) (?:commitment )?dimension\b")
ONE_RE = re.compile(r"\b(?:in|to|for|toward) (?:only )?one (?:commitment )?dimension\b")


@dataclass
class Reading:
    labels: frozenset[str]  # what the clause allows: {'strong'}, {'weak', 'none'}, ...
    quote: str
    paragraph: int
    qualified: bool  # the clause says strong, weak, insufficient or none


def _strength(clause: str) -> frozenset[str] | None:
    low = clause.lower()
    if NONE_RE.search(low):
        return frozenset({"none"})
    if NOT_STRONG_RE.search(low):
        return frozenset({"weak", "none"})
    if WEAK_RE.search(low):
        return frozenset({"weak"})
    if STRONG_RE.search(low):
        return frozenset({"strong"})
    return None


def _clauses(paragraph: str) -> list[str]:
    out = []
    for a, b in sentences(paragraph):
        sentence = paragraph[a:b]
        if COMPLIED_RE.search(sentence):
            continue  # the verdict restates the commitment: it names every dimension
        start = 0
        for m in CLAUSE_RE.finditer(sentence):
            out.append(sentence[start : m.start()])
            start = m.end()
        out.append(sentence[start:])
    return [c.strip(" ,;.\n") for c in out if re.search(r"[A-Za-z]{3}", c)]


def _named(clause: str, cues: list[set[str]], pairs: list[int]) -> list[int]:
    """The dimensions a clause names, in the order it names them."""
    low = clause.lower()
    words = re.findall(r"[A-Za-z]+", clause)
    first: dict[int, int] = {}
    for position, w in enumerate(words):
        s = stem(w)
        for k, c in enumerate(cues):
            if s in c and k not in first:
                first[k] = position
    if BOTH_RE.search(low) and pairs:
        for k in pairs:
            first.setdefault(k, -1)
    if ALL_RE.search(low):
        for k in range(len(cues)):
            first.setdefault(k, -1)
    for m in ORDINAL_RE.finditer(low):
        k = ORDINALS[m[1]] - 1
        if k < len(cues):
            first.setdefault(k, -1)
    named = sorted(first, key=lambda k: (first[k], k))
    if ONE_RE.search(low) and len(named) > 1:
        named = named[:1]  # 'strong actions in one commitment dimension, enhancing …, by … partnerships'
    return named


def _pairs(source: ChapterSource, n_dims: int) -> list[int]:
    """Which dimensions 'both dimensions' means: all, when there are two; else the two the
    Commitment Features enumerate, when they enumerate two."""
    if n_dims == 2:
        return [0, 1]
    features = enumeration(source.features)
    if len(features) != 2:
        return []
    names = [set(content_stems(d["name"])) for d in source.dimensions]
    found = []
    for f in features:
        overlap = [len(set(content_stems(f)) & n) for n in names]
        if max(overlap, default=0):
            found.append(overlap.index(max(overlap)))
    return found if len(set(found)) == 2 else []


def read_member(
    member: MemberSource, dims: list[dict], source: ChapterSource, log: Drafting
) -> dict[str, dict[str, Any]]:
    """One member's dimension labels, each with its quote (or, for 'unclear', why)."""
    cues = _cues(source.dimensions)
    pairs = _pairs(source, len(dims))
    readings: dict[int, list[Reading]] = {k: [] for k in range(len(dims))}
    general: list[Reading] = []
    unnamed: dict[int, list[Reading]] = {k: [] for k in range(len(dims))}
    for p, paragraph in enumerate(member.conclusions):
        named_here: set[int] = set()
        paragraph_general: list[Reading] = []
        for clause in _clauses(paragraph):
            strength = _strength(clause)
            named = _named(clause, cues, pairs)
            reading = Reading(strength or frozenset(), clause, p, strength is not None)
            if not named:
                if strength is not None:
                    paragraph_general.append(reading)
                continue
            named_here |= set(named)
            for k in named:
                readings[k].append(reading)
        general += paragraph_general
        for r in paragraph_general:
            for k in set(range(len(dims))) - named_here:
                unnamed[k].append(r)
    labels: dict[str, dict[str, Any]] = {}
    for k, d in enumerate(dims):
        qualified = [r for r in readings[k] if r.qualified]
        if not qualified:
            if readings[k]:
                why = (f"the conclusion states action on this dimension without calling it strong or weak: "
                       f"\"{readings[k][0].quote}\"")  # fmt: skip
            elif general:
                why = f'the conclusion speaks of action without naming this dimension: "{general[0].quote}"'
            else:
                why = "the conclusion does not mention this dimension"
            labels[d["id"]] = {"label": "unclear", "quote": "", "why": why}
            continue
        # A paragraph that names no dimension cannot give one a label, but it can contradict another.
        considered = qualified + [
            r for r in unnamed[k] if r.paragraph not in {q.paragraph for q in qualified}
        ]
        allowed = frozenset({"strong", "weak", "none"})
        for r in considered:
            allowed &= r.labels
        if not allowed:
            said = " / ".join(f'"{r.quote}"' for r in considered[:3])
            labels[d["id"]] = {
                "label": "unclear",
                "quote": "",
                "why": f"the concluding sentences disagree: {said}",
            }
            continue
        quote = next((r.quote for r in qualified if r.labels <= allowed), qualified[0].quote)
        if allowed == {"weak", "none"}:
            labels[d["id"]] = {
                "label": "weak",
                "quote": quote,
                "why": "the wording means weak or none; read as weak: confirm that an action paragraph acts on it",
            }
        elif len(allowed) == 1:
            labels[d["id"]] = {"label": next(iter(allowed)), "quote": quote}
        else:
            labels[d["id"]] = {
                "label": "unclear",
                "quote": "",
                "why": f'no strength can be read from "{quote}"',
            }
    return labels


# ---------------------------------------------------------------------------
# The whole draft


@dataclass
class Draft:
    rubric: Rubric
    text: str  # the TOML file
    could_not: list[str]
    source: ChapterSource


def draft_rubric(
    source: ChapterSource,
    *,
    readings: dict[str, dict] | None = None,
    mark: dict | None = None,
    said: list[str] | None = None,
) -> Draft:
    """Draft a rubric from an imported chapter by rules. ``readings`` (member -> labels), when
    given, replaces the rules' member readings (a model's); ``mark`` adds to the [draft] table,
    ``said`` to what the draft could not do."""
    log = Drafting(list(said or []))
    dims = draft_dimensions(source, log)
    exclusions = draft_exclusions(source)
    scoring = draft_scoring(source, len(dims), log, [d["id"] for d in dims])
    if not exclusions:
        log.say("no exclusion found in the guidelines (none may be stated)")
    gold = []
    for m in source.members:
        if m.score is None or not m.conclusions:
            log.say(f"{m.member}: no score or no concluding paragraph; no gold drafted")
            continue
        labels = (readings or {}).get(m.member) or read_member(m, dims, source, log)
        gold.append(
            {
                "member": m.member,
                "printed_score": m.score,
                "conclusion": "\n\n".join(m.conclusions),
                "labels": labels,
            }
        )
    data: dict[str, Any] = {
        "summit": source.summit,
        "summit_slug": source.summit_slug,
        "number": source.number,
        "title": source.title,
        "commitment": source.commitment,
        "commitment_source": source.commitment_source,
        "report_kind": source.report_kind,
        "period_start": source.period_start,
        "period_end": source.period_end,
        "members": [m.member for m in source.members],
        "exclusions": exclusions,
        "features": {"text": source.features},
        "definitions": [{"term": d["term"], "definition": d["definition"]} for d in source.definitions],
        "dimensions": dims,
        "guidelines": {k: source.guidelines.get(k) or "" for k in ("full", "partial", "non")},
        "scoring_guidelines": dict(source.scoring_guidelines),
        "scoring": scoring.model_dump(exclude_defaults=True) | {"default": scoring.default},
        "gold": gold,
    }
    rubric = _validated(data, source)
    for g in rubric.gold:
        low, high = score_range(rubric, g)
        if not low <= g.printed_score <= high:
            log.say(
                f"{g.member}: the drafted readings give {_fmt(score_gold(rubric, g))} "
                f"(range {_fmt(low)}..{_fmt(high)}), the report prints {_fmt(g.printed_score)}"
            )
    data["notes"] = [{"topic": "draft-could-not", "text": text} for text in log.could_not]
    data["draft"] = {
        "backend": "rules",
        "source": f"{source.file_name} ({source.content_sha})",
        "drafted_utc": now_utc(),
        **(mark or {}),
    }
    data["draft"]["fields"] = []
    rubric = _validated(data, source)
    data["draft"]["fields"] = rubric.value_paths()
    if not source.commitment_source:
        data["draft"]["fields"].remove("commitment_source")
    rubric = _validated(data, source)
    return Draft(rubric, to_toml(rubric, source), log.could_not, source)


def _fmt(value: int) -> str:
    return f"+{value}" if value > 0 else str(value)


def _validated(data: dict, source: ChapterSource) -> Rubric:
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        raise DraftError(
            f"commitment {source.number} ({source.file_name}): the draft does not validate: {first_problem(exc)}"
        ) from None


def write_draft(draft: Draft, path: Path, *, force: bool = False) -> Path:
    """Write the draft's file; an existing file is replaced only with ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise DraftError(
            f"{path} exists: not overwritten (use --force to replace it, or --out for another path)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(draft.text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------
# TOML out (the rubric files' own layout: top-level keys, [draft], then the tables)


def _str(value: str) -> str:
    if "'''" not in value and not value.endswith("'") and "\r" not in value:
        return f"'''{value}'''"
    return json.dumps(value, ensure_ascii=False)


def _short(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, dt.date)):
        return str(value)
    if isinstance(value, str):
        return _short(value) if len(value) < 80 and "\n" not in value else _str(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = ", ".join(_value(v) for v in value)
        if len(inner) < 90:
            return f"[{inner}]"
        return "[\n" + "".join(f"    {_value(v)},\n" for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _short(key)


def to_toml(rubric: Rubric, source: ChapterSource) -> str:
    data = rubric.model_dump(mode="python", exclude_none=True)
    lines = [
        f"# DRAFT rubric for {rubric.summit} commitment {rubric.number}, drafted from chapter {rubric.number} "
        f"({rubric.title}) of the {rubric.report_kind} report ({source.file_name}).",
        "# Every value listed in [draft] fields is a draft: an analyst confirms it by deleting its path",
        "# from the list. `evidence rubric check` lists what is left and whether the readings give the",
        "# printed scores.",
    ]
    for key in ("summit", "summit_slug", "number", "title", "commitment", "commitment_source", "report_kind",
                "period_start", "period_end", "members"):  # fmt: skip
        if key in data:
            lines.append(f"{key} = {_value(data[key]) if key != 'commitment' else _str(data[key])}")
    if not data["exclusions"]:
        lines.append("exclusions = []")
    draft = data["draft"]
    lines += ["", "[draft]"]
    for key in ("backend", "model", "prompt", "source", "drafted_utc", "calls"):
        if draft.get(key):
            lines.append(f"{key} = {_value(draft[key])}")
    lines.append("fields = [\n" + "".join(f"    {_short(f)},\n" for f in draft["fields"]) + "]")
    lines += ["", "[features]", f"text = {_str(data['features']['text'])}"]
    for d in data["definitions"]:
        lines += [
            "",
            "[[definitions]]",
            f"term = {_short(d['term'])}",
            f"definition = {_str(d['definition'])}",
        ]
    for d in data["dimensions"]:
        lines += ["", "[[dimensions]]", f"id = {_short(d['id'])}", f"name = {_short(d['name'])}"]
        lines.append(f"definition = {_str(d['definition'])}")
        lines.append(f"strong_examples = {_value(d['strong_examples'])}")
        lines.append(f"weak_examples = {_value(d['weak_examples'])}")
    for e in data["exclusions"]:
        lines += ["", "[[exclusions]]", f"id = {_short(e['id'])}", f"text = {_str(e['text'])}"]
        if e.get("belongs_to") is not None:
            lines.append(f"belongs_to = {e['belongs_to']}")
    g = data["guidelines"]
    lines += ["", "[guidelines]"] + [f"{k} = {_str(g[k])}" for k in ("full", "partial", "non")]
    lines += ["", "[scoring_guidelines]"]
    lines += [f"{_short(k)} = {_str(v)}" for k, v in data["scoring_guidelines"].items()]
    lines += ["", "[scoring]", "# Drafted from the Scoring Guidelines table: rules are tried in order; the first whose",
              "# conditions all hold gives the score; default applies when none does.",
              f"default = {data['scoring']['default']}"]  # fmt: skip
    for rule in rubric.scoring.rules:
        lines += ["[[scoring.rules]]"]
        for k, v in rule.model_dump(exclude_defaults=True).items():
            lines.append(f"{k} = {_value(v)}")
    for n in data["notes"]:
        lines += ["", "[[notes]]", f"topic = {_short(n['topic'])}", f"text = {_str(n['text'])}"]
    for m in data["gold"]:
        lines += ["", "[[gold]]", f"member = {_short(m['member'])}", f"printed_score = {m['printed_score']}"]
        lines += [f"conclusion = {_str(m['conclusion'])}", "[gold.labels]"]
        for dim, label in m["labels"].items():
            lines.append(f"{_key(dim)} = {_value({k: v for k, v in label.items() if v is not None})}")
    text = "\n".join(lines) + "\n"
    _check_round_trip(text, rubric)
    return text


def _check_round_trip(text: str, rubric: Rubric) -> None:
    import tomllib

    again = Rubric.model_validate(tomllib.loads(text))
    if again != rubric:
        raise RubricError(f"commitment {rubric.number}: the drafted file does not read back as drafted")


# ---------------------------------------------------------------------------
# Agreement with a hand-checked rubric


@dataclass
class Agreement:
    dimensions_same: bool  # same count, and each drafted dimension matches the checked one by name
    ids_same: int
    dimensions: int
    rule_same: bool
    readings_same: int
    readings: int
    examples_same: int  # checked strong and weak examples the draft has word for word
    examples: int
    differences: list[str]

    @property
    def readings_share(self) -> float:
        return self.readings_same / self.readings if self.readings else 0.0


def compare(drafted: Rubric, checked: Rubric) -> Agreement:
    """How far a draft reproduces a hand-checked rubric: dimensions (by position and name),
    the rule (same score for every reading), and the member readings, label by label."""
    diffs: list[str] = []
    same_count = len(drafted.dimensions) == len(checked.dimensions)
    pairs = list(zip(drafted.dimensions, checked.dimensions, strict=False)) if same_count else []
    matched = all(set(content_stems(a.name)) & set(content_stems(b.name)) for a, b in pairs)
    if not same_count:
        diffs.append(f"dimensions: {len(drafted.dimensions)} drafted, {len(checked.dimensions)} checked")
    ids_same = sum(a.id == b.id for a, b in pairs)
    rule_same = same_count and same_rule(drafted.scoring, checked.scoring, len(checked.dimensions))
    if not rule_same:
        diffs.append("scoring rule: gives other scores than the checked rule")
    examples_same = examples = 0
    for a, b in pairs:
        for kind in ("strong_examples", "weak_examples"):
            wanted = getattr(b, kind)
            examples += len(wanted)
            examples_same += sum(e in getattr(a, kind) for e in wanted)
    same = total = 0
    for cg in checked.gold:
        dg = drafted.gold_for(cg.member)
        for k, (cid, clabel) in enumerate(cg.labels.items()):
            total += 1
            did = pairs[k][0].id if k < len(pairs) else None
            dlabel = dg.labels.get(did) if dg and did else None
            if dlabel is not None and dlabel.label == clabel.label:
                same += 1
            else:
                diffs.append(
                    f"{cg.member} {cid}: drafted {dlabel.label if dlabel else '-'}, checked {clabel.label}"
                )
    return Agreement(
        same_count and matched,
        ids_same,
        len(checked.dimensions),
        rule_same,
        same,
        total,
        examples_same,
        examples,
        diffs,
    )


# ---------------------------------------------------------------------------
# The member readings by a model (--backend openai)

PROMPT_ID = "rubric-draft"


class _ReadingBase(Model):
    """One member's readings as a model gives them; quotes must be the conclusion's own words."""

    conclusion_text: ClassVar[str] = ""

    @model_validator(mode="after")
    def _quotes_in_conclusion(self) -> _ReadingBase:
        for name in type(self).model_fields:
            reading = getattr(self, name)
            if reading.label == "unclear":
                continue
            quote = reading.quote.strip().strip('"“”')
            if not quote or quote not in type(self).conclusion_text:
                raise ValueError(
                    f"{name}: the quote must be copied verbatim from the conclusion, not {reading.quote[:80]!r}"
                )
        return self


class ModelReading(Model):
    label: Literal["strong", "weak", "none", "unclear"]
    quote: str
    why: str


def reading_model(dimension_ids: list[str], conclusion: str) -> type[BaseModel]:
    """The response model for one member: a reading per dimension id, quotes checked."""
    fields: dict[str, Any] = {dim: (ModelReading, ...) for dim in dimension_ids}
    model = create_model("MemberReadings", __base__=_ReadingBase, **fields)
    model.conclusion_text = conclusion
    return model


def _labels(output: dict) -> dict[str, dict]:
    labels = {}
    for dim, reading in output.items():
        if reading["label"] == "unclear":
            labels[dim] = {
                "label": "unclear",
                "quote": "",
                "why": reading["why"].strip() or "the model gave no reason",
            }
        else:
            labels[dim] = {"label": reading["label"], "quote": reading["quote"].strip().strip('"“”')}
    return labels


def draft_with_model(
    source: ChapterSource,
    config: Any,
    *,
    db: sqlite_utils.Database | None = None,
    backend: Any = None,
) -> Draft:
    """Draft by rules, then have the configured OpenAI-compatible model read each member's
    conclusion. An answer that fails validation (after the backend's bounded re-asks) is
    reported in the draft's notes, and that member keeps the rules' reading."""
    import asyncio

    from .llm import make_backend
    from .prompts import check_unchanged, load_prompt, render

    ruled = draft_rubric(source)
    template = load_prompt(prompt_id=PROMPT_ID)
    if db is not None:
        check_unchanged(db, template)
    backend = backend or make_backend(config, "openai")
    members = [g for g in ruled.rubric.gold]

    async def read(gold) -> Any:
        document = f"Member: {gold.member}\n\n{gold.conclusion}"
        prompt = render(template, ruled.rubric, document)
        output_model = reading_model(ruled.rubric.dimension_ids, gold.conclusion)
        result = await backend.classify(prompt, output_model, ruled.rubric, document)
        return gold, prompt, document, result

    async def read_all() -> list:
        return await asyncio.gather(*(read(g) for g in members))

    readings: dict[str, dict] = {}
    said: list[str] = []
    calls: list[int] = []
    for gold, prompt, document, result in asyncio.run(read_all()):
        if db is not None:
            calls.append(_log_call(db, backend, template.name, prompt.sha, document, source.number, result))
        if result.outcome == "ok" and result.output is not None:
            readings[gold.member] = _labels(result.output)
        else:
            error = " ".join((result.error or "").split())
            first = re.search(r"Value error, (.*?)(?: \[type=|$)", error) or re.search(
                r"validation errors? for \w+ (.*?)(?: \[type=|$)", error
            )
            error = (f"{error.split(':')[0]}: {first[1]}" if first else error)[:300]
            said.append(
                f"{gold.member}: the model's answer was not used ({result.outcome}: {error}); "
                "the rules' reading is kept"
            )
    said.append(
        f"member readings drafted by {backend.model} for {len(readings)} of {len(members)} members; "
        "a model's readings are drafts like any other"
    )
    mark = {
        "backend": "openai",
        "model": backend.model,
        "prompt": f"{template.name} ({template.sha})",
        "calls": calls,
    }
    return draft_rubric(source, readings=readings, mark=mark, said=said)


def _log_call(db, backend, prompt_name: str, prompt_sha: str, document: str, number: int, result) -> int:
    """The call in the model call log (`evidence calls list`), as classification logs its calls."""
    import hashlib

    from .calls import log_call

    return log_call(
        db,
        result,
        backend=backend.name,
        model=backend.model,
        prompt_name=prompt_name,
        prompt_sha=prompt_sha,
        input_sha="sha256:" + hashlib.sha256(document.encode("utf-8")).hexdigest(),
        commitment=number,
    )
