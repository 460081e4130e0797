"""Member x dimension verdicts: proposals from confirmed actions, and the analysts' decisions.

Analysts weigh everything a member did in a dimension and write it down: "Canada has taken strong
action to both prevent and counter migrant smuggling but has not adequately addressed …". A
verdict is that judgement for one cell (commitment, member, dimension): strong, weak, none or
unassessed, with a note, the analyst, the time and the cell version it was based on. Verdicts are
append-only (the database refuses to change or remove one); a cell's verdict is its latest, its
version the number of verdicts it has had. A verdict based on an older version is refused with
what changed (optimistic concurrency), as item decisions are.

Until an analyst gives a verdict, a cell shows a *proposal* from its confirmed (accepted) actions
under a proposal rule (:data:`RULES`): how many of them are strong and how many weak. Scores use
the confirmed verdict, else the proposal, and a score resting on any proposal is provisional. An
``unassessed`` verdict records that an analyst looked and left the dimension open: the cell keeps
its proposal and the score stays provisional.

The rules were measured on the bundled gold (``python -m bench.verdict_rules``; README
"Verdicts and the evidence matrix").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from .dates import now_utc
from .review import PENDING, UNKNOWN_MEMBER, label_states
from .rubric import Rubric

LABELS = ("strong", "weak", "none")
VERDICT_LABELS = (*LABELS, "unassessed")
SQLITE_INTEGER = range(-(2**63), 2**63)


class VerdictError(Exception):
    """A verdict that cannot be taken: unknown member or dimension, bad label, no analyst."""


class StaleVerdict(VerdictError):
    """The cell changed since the version the verdict was based on."""


# ---------------------------------------------------------------------------
# Proposal rules: (strong, weak, actions) of one cell's confirmed actions -> a label.
# ``actions`` counts every confirmed action of the member, including those labelled none here.


def _strongest(strong: int, weak: int, actions: int, _p: float) -> str:
    return "strong" if strong else ("weak" if weak else "none")


def _at_least(strong: int, weak: int, actions: int, k: float) -> str:
    if strong >= k:
        return "strong"
    return "weak" if strong + weak else "none"


def _majority(strong: int, weak: int, actions: int, _p: float) -> str:
    if not strong + weak:
        return "none"
    return "strong" if strong >= weak else "weak"


def _share(strong: int, weak: int, actions: int, t: float) -> str:
    if not strong + weak:
        return "none"
    return "strong" if strong and strong / (strong + weak) >= t else "weak"


def _points(strong: int, weak: int, actions: int, m: float) -> str:
    # several weak actions add up: a strong action is worth two weak ones
    points = 2 * strong + weak
    if not points:
        return "none"
    return "strong" if points >= m else "weak"


@dataclass(frozen=True)
class RuleKind:
    name: str
    apply: Callable[[int, int, int, float], str]
    grid: tuple[float, ...] = ()  # parameter values tried (empty: no parameter)
    says: str = ""


RULES: dict[str, RuleKind] = {
    r.name: r
    for r in (
        RuleKind(
            "strongest", _strongest, (), "strong if any confirmed action is strong, else weak if any is weak"
        ),
        RuleKind("at-least", _at_least, (1, 2, 3, 4, 5), "strong if at least k confirmed actions are strong"),
        RuleKind("majority", _majority, (), "strong if strong actions are at least as many as weak ones"),
        RuleKind(
            "share",
            _share,
            (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
            "strong if strong actions are at least t of those acting",
        ),
        RuleKind(
            "points", _points, (2, 3, 4, 5, 6, 7, 8), "strong if 2 x strong + weak >= m (weak actions add up)"
        ),
    )
}
# Measured (bench/verdict_rules.py, README "Verdicts and the evidence matrix"): on the bundled gold,
# points-5 agreed with 44 of 46 clear readings and 16 of 16 printed scores with its parameter chosen
# on them, 43/46 and 15/16 choosing it leave one member out; "strongest" (one strong action makes
# the dimension strong) 41/46 and 14/16.
DEFAULT_RULE = "points-5"
_RULE = re.compile(r"^([a-z-]+?)(?:-([0-9.]+))?$")


def parse_rule(spec: str) -> tuple[RuleKind, float]:
    """``strongest``, ``majority``, ``at-least-2``, ``share-0.5``, ``points-4`` -> (kind, parameter)."""
    match = _RULE.match(spec or "")
    kind = RULES.get(match[1]) if match else None
    if match is None or kind is None or bool(kind.grid) != (match[2] is not None):
        shapes = ", ".join(f"{k}-N" if r.grid else k for k, r in RULES.items())
        raise VerdictError(f"unknown proposal rule {spec!r}: one of {shapes}")
    return kind, float(match[2]) if match[2] else 0.0


def rule_name(kind: RuleKind, parameter: float) -> str:
    return f"{kind.name}-{parameter:g}" if kind.grid else kind.name


@dataclass(frozen=True)
class Proposal:
    label: str  # strong | weak | none
    rule: str
    strong: int
    weak: int
    actions: int  # confirmed actions of the member in this commitment, whatever their label here

    @property
    def reason(self) -> str:
        if not self.actions:
            return "no confirmed action"
        return f"{self.strong} strong, {self.weak} weak of {self.actions} confirmed actions ({self.rule})"

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "rule": self.rule, "strong": self.strong, "weak": self.weak,
                "actions": self.actions, "reason": self.reason}  # fmt: skip


def propose(labels: Sequence[str], rule: str = DEFAULT_RULE, actions: int | None = None) -> Proposal:
    """The proposal for one cell from its confirmed actions' labels (strong, weak, none; ``unknown``,
    a pending strong nobody calibrated, counts as weak and keeps the proposal ``unknown`` unless strong)."""
    kind, parameter = parse_rule(rule)
    strong = sum(label == "strong" for label in labels)
    unknown = sum(label == "unknown" for label in labels)
    weak = sum(label == "weak" for label in labels) + unknown
    total = len(labels) if actions is None else actions
    label = kind.apply(strong, weak, total, parameter)
    if unknown and label != "strong":
        label = "unknown"
    return Proposal(label, rule_name(kind, parameter), strong, weak, total)


# ---------------------------------------------------------------------------
# Verdicts in the database


def _check_cell(rubric: Rubric, member: str, dimension: str) -> None:
    if member not in rubric.members:
        raise VerdictError(
            f"{member!r} is not a member of commitment {rubric.number}: one of {', '.join(rubric.members)}"
        )
    if dimension not in rubric.dimension_ids:
        raise VerdictError(
            f"unknown dimension {dimension!r} of commitment {rubric.number}: one of {', '.join(rubric.dimension_ids)}"
        )


def cell_version(db: sqlite_utils.Database, commitment: int, member: str, dimension: str) -> int:
    """How many verdicts the cell has had (0: none yet): the version a new verdict is based on."""
    row = db.execute(
        "select max(version) from verdicts where commitment = ? and member = ? and dimension = ?",
        [commitment, member, dimension],
    ).fetchone()
    return row[0] or 0


def history(
    db: sqlite_utils.Database, commitment: int, member: str | None = None, dimension: str | None = None
) -> list[dict]:
    """Every verdict of the matching cells, oldest first, with its proposal and actions decoded."""
    rows = db.query(
        "select * from verdicts where commitment = :c and (:m is null or member = :m) "
        "and (:d is null or dimension = :d) order by id",
        {"c": commitment, "m": member, "d": dimension},
    )
    return [{**r, "proposal": json.loads(r["proposal"] or "null"), "actions": json.loads(r["actions"] or "[]")}
            for r in rows]  # fmt: skip


def latest(db: sqlite_utils.Database, commitment: int) -> dict[tuple[str, str], dict]:
    """The current verdict of every cell of ``commitment`` that has one: (member, dimension) -> row."""
    out: dict[tuple[str, str], dict] = {}
    for row in history(db, commitment):
        out[(row["member"], row["dimension"])] = row
    return out


def set_verdict(
    db: sqlite_utils.Database,
    rubric: Rubric,
    member: str,
    dimension: str,
    label: str,
    analyst: str | None,
    based_on_version: int,
    *,
    note: str = "",
    rule: str = DEFAULT_RULE,
) -> dict:
    """Append a verdict if the cell is still at ``based_on_version``; return the new row.

    The proposal and the confirmed actions of the moment are stored with it, so a receipt can
    show what the analyst saw and the matrix what was confirmed since.
    """
    if not analyst:
        raise VerdictError("a verdict needs an analyst: --analyst NAME or EVIDENCE_ANALYST")
    if label not in VERDICT_LABELS:
        raise VerdictError(f"label must be one of {', '.join(VERDICT_LABELS)}")
    _check_cell(rubric, member, dimension)
    if based_on_version not in SQLITE_INTEGER:
        raise VerdictError(f"no version {based_on_version} of this cell")
    cell = cells(db, rubric, rule=rule, members=[member])[(member, dimension)]
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")  # the write lock before reading the version: deciders serialise
    try:
        version = conn.execute(
            "select coalesce(max(version), 0) from verdicts where commitment = ? and member = ? and dimension = ?",
            [rubric.number, member, dimension],
        ).fetchone()[0]
        if version != based_on_version:
            raise StaleVerdict(
                _what_changed(conn, rubric.number, member, dimension, based_on_version, version)
            )
        cursor = conn.execute(
            "insert into verdicts (commitment, member, dimension, label, note, analyst, version, "
            "based_on_version, proposal, actions, created_utc) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [rubric.number, member, dimension, label, note.strip(), analyst, version + 1, based_on_version,
             json.dumps(cell.proposal.as_dict()),
             json.dumps([{"item": a["id"], "label": a["label"]} for a in cell.actions]), now_utc()],
        )  # fmt: skip
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return next(r for r in history(db, rubric.number, member, dimension) if r["id"] == cursor.lastrowid)


def _what_changed(conn, commitment: int, member: str, dimension: str, based_on: int, version: int) -> str:
    later = conn.execute(
        "select analyst, label, created_utc from verdicts where commitment = ? and member = ? "
        "and dimension = ? and version > ? order by id",
        [commitment, member, dimension, based_on],
    ).fetchall()
    said = "; ".join(f"{a} {label} at {t}" for a, label, t in later)
    return (
        f"{member}, {dimension} changed since version {based_on} (now version {version}): {said}; nothing saved. "
        f"Look at it again (`evidence verdict show --commitment {commitment} --member '{member}'`) "
        f"and set it on version {version}."
    )


# ---------------------------------------------------------------------------
# Cells: the verdict, the proposal, the confirmed actions and the pending candidates


RANK = {"none": 0, "weak": 1, "unknown": 1.5, "strong": 2}
PENDING_SHOWN = 5


@dataclass
class Cell:
    member: str
    dimension: str
    proposal: Proposal
    verdict: dict | None  # the latest verdict row, if any
    actions: list[dict] = field(default_factory=list)  # confirmed, labelled here, strongest first
    pending: list[dict] = field(default_factory=list)  # pending candidates suggesting action here
    version: int = 0

    @property
    def confirmed(self) -> bool:
        """Whether an analyst's verdict (other than unassessed) decides this cell."""
        return self.verdict is not None and self.verdict["label"] in LABELS

    @property
    def label(self) -> str:
        """What the score uses: the confirmed verdict, else the proposal."""
        return self.verdict["label"] if self.confirmed and self.verdict else self.proposal.label

    @property
    def gap(self) -> str | None:
        """What is missing, in the analyst's words; None when a confirmed strong action is there."""
        if any(a["label"] == "strong" for a in self.actions):
            return None
        n = len(self.pending)
        waiting = f"{n} pending candidate{'s' if n != 1 else ''}" if n else "no pending candidates"
        what = "no confirmed strong action" if self.actions else "no confirmed action"
        return f"{what} — {waiting}"

    @property
    def new_since_verdict(self) -> list[int]:
        """Confirmed actions labelled here that the verdict was not taken on."""
        if self.verdict is None:
            return []
        seen = {a["item"] for a in self.verdict["actions"]}
        return [a["id"] for a in self.actions if a["id"] not in seen]

    def as_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "dimension": self.dimension,
            "label": self.label,
            "confirmed": self.confirmed,
            "version": self.version,
            "verdict": self.verdict,
            "proposal": self.proposal.as_dict(),
            "actions": self.actions,
            "pending": [
                {k: p.get(k) for k in ("id", "label", "published", "summary")}
                for p in self.pending[:PENDING_SHOWN]
            ],
            "pending_count": len(self.pending),
            "gap": self.gap,
            "new_since_verdict": self.new_since_verdict,
        }


def _summaries(db: sqlite_utils.Database, ids: list[int]) -> dict[int, dict]:
    """Date, summary (an analyst's edit wins) and attention of the given items."""
    out: dict[int, dict] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"""
            select q.id, q.published, q.attention, coalesce(
                (select json_extract(d.payload, '$.summary') from decisions d
                 where d.item_id = q.id and d.action = 'edit' order by d.id desc limit 1),
                json_extract(q.suggestion, '$.summary')) as summary
            from queue_items q where q.id in ({marks})
        """
        for row in db.query(sql, chunk):
            out[row["id"]] = row
    return out


def cells(
    db: sqlite_utils.Database,
    rubric: Rubric,
    *,
    rule: str = DEFAULT_RULE,
    members: Sequence[str] | None = None,
) -> dict[tuple[str, str], Cell]:
    """Every (member, dimension) cell of the commitment: proposal, verdict, actions, candidates."""
    wanted = list(rubric.members if members is None else members)
    confirmed: dict[str, list[tuple[int, dict[str, str]]]] = {m: [] for m in wanted}
    pending: dict[str, list[tuple[int, dict[str, str]]]] = {m: [] for m in wanted}
    only = wanted[0] if len(wanted) == 1 else None  # one member: its items only (a verdict, `--member`)
    for item, name, state, labels in label_states(db, commitment=rubric.number, member=only):
        if name not in confirmed:
            continue
        if state == "accepted":
            confirmed[name].append((item, labels))
        elif state == PENDING:
            pending[name].append((item, labels))
    attention = dict(
        db.execute(
            "select id, attention from queue_items where commitment = :c and (:m is null or member = :m)",
            {"c": rubric.number, "m": only},
        ).fetchall()
    )
    verdicts = latest(db, rubric.number)
    out = {}
    for member in wanted:
        for dim in rubric.dimension_ids:
            acted = [
                {"id": i, "label": labels[dim]}
                for i, labels in confirmed[member]
                if labels.get(dim, "none") != "none"
            ]
            candidates = sorted(
                ((-(attention.get(i) or 0), -RANK[labels[dim]], i, labels[dim]) for i, labels in pending[member]
                 if labels.get(dim, "none") != "none"),
            )  # fmt: skip
            waiting: list[dict[str, Any]] = [{"id": i, "label": label} for _, _, i, label in candidates]
            proposal = propose(
                [labels.get(dim, "none") for _, labels in confirmed[member]], rule, len(confirmed[member])
            )
            verdict = verdicts.get((member, dim))
            out[(member, dim)] = Cell(
                member, dim, proposal, verdict, acted, waiting, verdict["version"] if verdict else 0
            )
    # dates and summaries only for what a cell shows: its confirmed actions and first candidates
    shown = {a["id"] for c in out.values() for a in (*c.actions, *c.pending[:PENDING_SHOWN])}
    about = _summaries(db, sorted(shown))
    for c in out.values():
        for a in (*c.actions, *c.pending[:PENDING_SHOWN]):
            a.update(published=about[a["id"]]["published"], summary=about[a["id"]]["summary"])
        c.actions.sort(key=lambda a: (-RANK[a["label"]], a["published"] or "", a["id"]))
    return out


def member_readings(
    db: sqlite_utils.Database, commitment: int | Rubric, *, rule: str = DEFAULT_RULE
) -> dict[str, dict[str, tuple[str, bool, list[int]]]]:
    """Per member, dimension -> (label, confirmed, action ids): the confirmed verdict or else the
    proposal, whether an analyst confirmed it, and the confirmed actions it rests on (strongest first)."""
    from .rubric import rubrics_for

    rubric = commitment if isinstance(commitment, Rubric) else rubrics_for(commitment)[0]
    out: dict[str, dict[str, tuple[str, bool, list[int]]]] = {m: {} for m in rubric.members}
    for (member, dim), cell in cells(db, rubric, rule=rule).items():
        out[member][dim] = (cell.label, cell.confirmed, [a["id"] for a in cell.actions])
    return out


def matrix(db: sqlite_utils.Database, rubric: Rubric, *, rule: str = DEFAULT_RULE) -> dict[str, Any]:
    """The evidence matrix of a commitment: members x dimensions, each cell as :meth:`Cell.as_dict`."""
    found = cells(db, rubric, rule=rule)
    unattributed = db.execute(
        "select count(*) from queue_items where commitment = ? and member = ?",
        [rubric.number, UNKNOWN_MEMBER],
    ).fetchone()[0]
    return {
        "commitment": rubric.number,
        "title": rubric.title,
        "rule": rule,
        "dimensions": [{"id": d.id, "name": d.name} for d in rubric.dimensions],
        "members": [
            {"member": m, "cells": [found[(m, d)].as_dict() for d in rubric.dimension_ids]}
            for m in rubric.members
        ],
        "unattributed": unattributed,
    }


def render_matrix(table: dict[str, Any]) -> str:
    """`evidence matrix`'s text: one block per member, a line per dimension with its gap."""
    lines = [f"{table['commitment']}. {table['title']}  (proposal rule: {table['rule']})"]
    for row in table["members"]:
        lines.append(row["member"])
        for cell in row["cells"]:
            if cell["confirmed"]:
                verdict = cell["verdict"]
                said = f"{cell['label']} (verdict by {verdict['analyst']}, v{cell['version']})"
            else:
                said = f"{cell['label']}? (proposed: {cell['proposal']['reason']})"
                if cell["verdict"]:
                    said += f"; unassessed by {cell['verdict']['analyst']}"
            lines.append(f"  {cell['dimension']}: {said}")
            for a in cell["actions"]:
                lines.append(
                    f"    [{a['label']}] item {a['id']} {a['published'] or ''}: {(a['summary'] or '')[:90]}"
                )
            if cell["pending_count"]:
                ids = ", ".join(str(p["id"]) for p in cell["pending"])
                more = "" if cell["pending_count"] <= len(cell["pending"]) else ", …"
                lines.append(f"    pending: {ids}{more}")
            if cell["new_since_verdict"]:
                lines.append(
                    f"    confirmed since the verdict: items {', '.join(map(str, cell['new_since_verdict']))}"
                )
            if cell["gap"]:
                lines.append(f"    gap: {cell['gap']}")
    if table["unattributed"]:
        lines.append(f"({table['unattributed']} candidate actions name no member and are in no cell)")
    return "\n".join(lines)
