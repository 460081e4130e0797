"""Double coding: two (or more) analysts code the same queue items blind, and their agreement.

``evidence queue assign --analysts A,B --count N`` picks N pending, undecided items at random
(a seed makes the pick repeatable) and assigns each to every named analyst. While an item is
being coded blind, an assigned analyst's accept, reject, relabel or note is recorded as that
analyst's own coding (table ``codings``, append-only like decisions), not as a decision: it
changes neither the item's version nor its history, and nobody sees another analyst's coding
(``queue show``, the web item page) until every assigned analyst has coded the item, that is
accepted or rejected it. Others cannot decide on the item meanwhile (a note is taken).

When the last coding comes in:

- if the coders agree (all reject, or all accept with the same label in every dimension), the
  item resolves by itself: the agreed relabels and the accept or reject are appended as
  decisions attributed to the coders together (``ana+ben``), in the same transaction;
- otherwise it stays pending, marked for reconciliation, until one analyst's ordinary
  decision (accept or reject, after any relabels) settles it.

Agreement (:func:`agreement`) is computed over the items every assigned analyst has coded:
relevance (accept vs reject) and each dimension's label, a rejected item counting as ``none``
in every dimension (it is no evidence of anything). Cohen's κ (scikit-learn; with more than
two coders the mean over pairs), Krippendorff's α (the ``krippendorff`` package), nominal and,
for labels, ordinal with none < weak < strong.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlite_utils

from .dates import now_utc
from .review import QueueError

CODING_ACTIONS = ("accept", "reject", "relabel", "note")
ORDINAL = {"none": 0, "weak": 1, "strong": 2}
RELEVANCE = "relevance"


class CodingError(QueueError):
    """An assignment or a coding that cannot be taken (one line, nothing written)."""


# ---------------------------------------------------------------------------
# Assigning


def parse_analysts(raw: str) -> list[str]:
    """``"ana, ben"`` as ``["ana", "ben"]``: at least two distinct names."""
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise CodingError("--analysts needs two or more different names, comma-separated (e.g. ana,ben)")
    return names


def assign(
    db: sqlite_utils.Database,
    analysts: list[str],
    count: int,
    *,
    commitment: int | None = None,
    seed: int | None = None,
) -> tuple[int, list[int]]:
    """Assign up to ``count`` pending items nobody has decided on or been assigned to yet to
    every one of ``analysts``; return the seed used and the item ids, in id order."""
    if len(analysts) < 2 or len(set(analysts)) != len(analysts):
        raise CodingError("double coding needs two or more different analysts")
    if count < 1:
        raise CodingError("--count must be at least 1")
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    sql = """
        select q.id from queue_items q
        where q.state = 'pending' and (:c is null or q.commitment = :c)
          and not exists (select 1 from decisions d where d.item_id = q.id)
          and not exists (select 1 from coding_assignments a where a.item_id = q.id)
        order by q.id
    """
    with db.atomic():
        free = [r[0] for r in db.execute(sql, {"c": commitment})]
        chosen = sorted(random.Random(seed).sample(free, min(count, len(free))))
        now = now_utc()
        db.table("coding_assignments").insert_all(
            {"item_id": i, "analyst": a, "seed": seed, "assigned_utc": now} for i in chosen for a in analysts
        )
    return seed, chosen


def assigned_to(db: sqlite_utils.Database, analyst: str, *, uncoded: bool = True) -> list[int]:
    """The items assigned to ``analyst`` for double coding (only those still to code by default)."""
    rows = [r[0] for r in db.execute(
        "select item_id from coding_assignments where analyst = ? order by item_id", [analyst]
    )]  # fmt: skip
    if not uncoded:
        return rows
    return [i for i in rows if not view(db, i, analyst).mine_done]


# ---------------------------------------------------------------------------
# Codings


@dataclass
class Coding:
    """One analyst's coding of one item, from their coding actions in order."""

    analyst: str
    labels: dict[str, str]
    relevant: bool | None = None  # None: not coded yet (no accept or reject)
    reason: str | None = None
    notes: list[str] = field(default_factory=list)
    at: str | None = None

    @property
    def done(self) -> bool:
        return self.relevant is not None

    def effective(self, dimension: str) -> str:
        """The label this coding gives ``dimension``: a rejected item is evidence of nothing."""
        return self.labels.get(dimension, "none") if self.relevant else "none"


def _codings(
    conn: sqlite3.Connection, item_id: int, analysts: list[str], labels: dict[str, str]
) -> dict[str, Coding]:
    out = {a: Coding(a, dict(labels)) for a in analysts}
    rows = conn.execute(
        "select analyst, action, payload, created_utc from codings where item_id = ? order by id", [item_id]
    )
    for analyst, action, payload, at in rows:
        c = out.get(analyst)
        if c is None:
            continue
        p = json.loads(payload)
        if action == "relabel":
            c.labels[p["dimension"]] = p["label"]
        elif action in ("accept", "reject"):  # with the labels as the coder saw them then
            c.labels = {**c.labels, **p.get("labels", {})}
            c.relevant, c.reason, c.at = action == "accept", p.get("reason"), at
        elif action == "note":
            c.notes.append(p["note"])
    return out


def _analysts(conn: sqlite3.Connection, item_id: int) -> list[str]:
    try:
        rows = conn.execute(
            "select analyst from coding_assignments where item_id = ? order by rowid", [item_id]
        ).fetchall()
    except sqlite3.OperationalError as exc:  # a database from before m019 has no double coding
        if "no such table" not in str(exc):
            raise
        return []
    return [r[0] for r in rows]


def agreed(codings: list[Coding]) -> bool:
    """Whether finished codings agree: all reject, or all accept with the same labels."""
    if {c.relevant for c in codings} == {False}:
        return True
    return {c.relevant for c in codings} == {True} and len(
        {json.dumps(c.labels, sort_keys=True) for c in codings}
    ) == 1


@dataclass
class View:
    """What ``viewer`` may see of an item's double coding."""

    analysts: list[str]  # empty: the item is not double-coded
    coded: int  # how many of them have coded it
    viewer: str | None
    mine: Coding | None  # the viewer's own coding, if the viewer is a coder
    codings: list[Coding]  # everyone's: only once all have coded, else empty
    agree: bool | None  # None until all have coded

    @property
    def active(self) -> bool:
        return bool(self.analysts)

    @property
    def complete(self) -> bool:
        return self.active and self.coded == len(self.analysts)

    @property
    def blind(self) -> bool:
        return self.active and not self.complete

    @property
    def mine_done(self) -> bool:
        return self.mine is not None and self.mine.done

    def disagreements(self) -> list[str]:
        """Where the finished codings differ: relevance and the dimensions."""
        if not self.complete:
            return []
        out = [RELEVANCE] if len({c.relevant for c in self.codings}) > 1 else []
        dims = sorted({d for c in self.codings for d in c.labels})
        return out + [d for d in dims if len({c.effective(d) for c in self.codings}) > 1]


def view(db: sqlite_utils.Database, item_id: int, viewer: str | None) -> View:
    """The double coding of ``item_id`` as ``viewer`` may see it."""
    conn = db.conn
    analysts = _analysts(conn, item_id)
    if not analysts:
        return View([], 0, viewer, None, [], None)
    row = conn.execute(
        "select json_extract(suggestion, '$.labels') from queue_items where id = ?", [item_id]
    ).fetchone()
    codings = _codings(conn, item_id, analysts, json.loads(row[0]) if row else {})
    coded = sum(c.done for c in codings.values())
    complete = coded == len(analysts)
    everyone = list(codings.values())
    return View(
        analysts, coded, viewer, codings.get(viewer or ""),
        everyone if complete else [], agreed(everyone) if complete else None,
    )  # fmt: skip


def waiting_on_others(db: sqlite_utils.Database, item_id: int, analyst: str | None) -> bool:
    """Whether ``analyst`` has nothing to do on the item until other coders have coded it
    (it is being coded blind, and they are not a coder of it or have coded it already):
    `queue next` and `queue claim` pass it over."""
    seen = view(db, item_id, analyst)
    return seen.blind and (seen.mine is None or seen.mine.done)


def record(
    conn: sqlite3.Connection,
    item_id: int,
    analyst: str | None,
    action: str,
    based_on_version: int,
    labels: dict[str, str],
    payload: dict[str, Any],
) -> int | None:
    """Inside :func:`classifier.review.decide`'s transaction: take the action as a coding if the
    item is being coded blind and ``analyst`` codes it (return the coding's id); refuse it if
    another analyst's decision would pre-empt the coders; None: an ordinary decision."""
    analysts = _analysts(conn, item_id)
    if not analysts:
        return None
    codings = _codings(conn, item_id, analysts, labels)
    if all(c.done for c in codings.values()):
        return None  # coded by all: decisions reconcile (or agreement already settled it)
    if analyst not in codings:
        if action == "note":
            return None
        raise CodingError(
            f"item {item_id} is being coded blind by {', '.join(analysts)}: "
            "no decision on it until they have all coded it (a note is taken)"
        )
    if action not in CODING_ACTIONS:
        raise CodingError(f"item {item_id} is being coded blind: {action} it once every coder has coded it")
    if action in ("accept", "reject"):  # the labels the coding settles on, whatever the suggestion does next
        payload = {**payload, "labels": codings[analyst].labels}
    cursor = conn.execute(
        "insert into codings (item_id, analyst, action, payload, based_on_version, created_utc) "
        "values (?, ?, ?, ?, ?, ?)",
        [item_id, analyst, action, json.dumps(payload), based_on_version, now_utc()],
    )
    coding_id = cursor.lastrowid
    assert coding_id is not None
    codings = _codings(conn, item_id, analysts, labels)
    done = list(codings.values())
    if action in ("accept", "reject") and all(c.done for c in done) and agreed(done):
        _settle(conn, item_id, done, labels, based_on_version)
    return coding_id


def _settle(
    conn: sqlite3.Connection, item_id: int, done: list[Coding], labels: dict[str, str], version: int
) -> None:
    """Append the decisions the agreeing coders' codings amount to, attributed to them together."""
    who = "+".join(c.analyst for c in done)
    names = [c.analyst for c in done]
    steps: list[tuple[str, dict]] = []
    if done[0].relevant:
        steps += [("relabel", {"dimension": d, "label": lab, "agreed_by": names})
                  for d, lab in done[0].labels.items() if labels.get(d) != lab]  # fmt: skip
        steps.append(("accept", {"agreed_by": names}))
    else:
        reasons = "; ".join(f"{c.analyst}: {c.reason}" for c in done)
        steps.append(("reject", {"reason": f"coded blind, all rejected ({reasons})", "agreed_by": names}))
    now = now_utc()
    for action, payload in steps:
        conn.execute(
            "insert into decisions (item_id, analyst, action, payload, based_on_version, created_utc) "
            "values (?, ?, ?, ?, ?, ?)",
            [item_id, who, action, json.dumps(payload), version, now],
        )
        state = {"accept": "accepted", "reject": "rejected"}.get(action)
        conn.execute(
            "update queue_items set version = version + 1, updated_utc = ?, state = coalesce(?, state) where id = ?",
            [now, state, item_id],
        )
        version += 1


# ---------------------------------------------------------------------------
# Agreement


@dataclass
class Row:
    """Agreement on one dimension (or relevance) over the items every coder coded."""

    name: str
    items: int
    observed: float | None  # share of items on which all coders gave the same value
    kappa: float | None  # Cohen's κ (two coders) or the mean pairwise κ
    alpha_nominal: float | None
    alpha_ordinal: float | None  # labels only
    counts: dict[str, int]  # how often each value was given, over all coders


def alpha(data: list[list[Any]], level: Literal["nominal", "ordinal"], domain: list[Any]) -> float | None:
    """Krippendorff's α over ``data`` (coders × items, None: not coded); None when undefined
    (fewer than two values in the data: there is no disagreement to expect)."""
    import krippendorff
    import numpy as np

    values = {v for row in data for v in row if v is not None}
    if len(values) < 2:
        return None
    matrix = np.array([[np.nan if v is None else float(v) for v in row] for row in data])
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level, value_domain=domain))


def kappa(data: list[list[Any]]) -> float | None:
    """Cohen's κ of two coders (the mean over pairs for more); None when undefined."""
    import math
    import warnings

    from sklearn.metrics import cohen_kappa_score

    scores = []
    for a, b in itertools.combinations(data, 2):
        pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        if not pairs or len({v for p in pairs for v in p}) < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            k = cohen_kappa_score([p[0] for p in pairs], [p[1] for p in pairs])
        if not math.isnan(k):
            scores.append(float(k))
    return sum(scores) / len(scores) if scores else None


def _row(name: str, data: list[list[Any]], domain: list[Any], ordinal: bool, names: dict[Any, str]) -> Row:
    items = len(data[0]) if data else 0
    same = sum(1 for column in zip(*data, strict=True) if len(set(column)) == 1) if items else 0
    counts = {names[v]: sum(row.count(v) for row in data) for v in domain}
    return Row(
        name, items, same / items if items else None, kappa(data), alpha(data, "nominal", domain),
        alpha(data, "ordinal", domain) if ordinal else None, counts,
    )  # fmt: skip


@dataclass
class Agreement:
    assigned: int  # items assigned for double coding
    coded: int  # of which every coder has coded
    agreed: int  # of which the codings agree (settled by themselves)
    to_reconcile: int  # disagreeing and still pending
    coders: list[list[str]]  # the distinct sets of coders
    rows: list[Row]


def agreement(db: sqlite_utils.Database, *, commitment: int | None = None) -> Agreement:
    """Agreement between the coders over the items they all coded (per set of coders: rows of
    a κ are only ever the same coders' codings)."""
    sql = """
        select q.id, q.state, json_extract(q.suggestion, '$.labels') from queue_items q
        where (:c is null or q.commitment = :c)
          and exists (select 1 from coding_assignments a where a.item_id = q.id)
        order by q.id
    """
    items = db.execute(sql, {"c": commitment}).fetchall()
    finished: dict[tuple[str, ...], list[list[Coding]]] = {}
    agreed_n = to_reconcile = 0
    for item_id, state, labels in items:
        analysts = _analysts(db.conn, item_id)
        codings = list(_codings(db.conn, item_id, analysts, json.loads(labels)).values())
        if not all(c.done for c in codings):
            continue
        finished.setdefault(tuple(analysts), []).append(codings)
        if agreed(codings):
            agreed_n += 1
        elif state == "pending":
            to_reconcile += 1
    rows: list[Row] = []
    # the coders most items share: their agreement is the table (other sets are listed by name)
    coders, coded_items = max(finished.items(), key=lambda kv: len(kv[1]), default=((), []))
    if coded_items:
        relevance = [[int(bool(item[k].relevant)) for item in coded_items] for k in range(len(coders))]
        rows.append(_row(RELEVANCE, relevance, [0, 1], False, {0: "reject", 1: "accept"}))
        dims = list(dict.fromkeys(d for item in coded_items for c in item for d in c.labels))
        for d in dims:  # over the items that have the dimension (commitments differ in theirs)
            having = [item for item in coded_items if d in item[0].labels]
            data = [[ORDINAL[item[k].effective(d)] for item in having] for k in range(len(coders))]
            rows.append(_row(d, data, [0, 1, 2], True, {v: k for k, v in ORDINAL.items()}))
    return Agreement(
        len(items), sum(len(v) for v in finished.values()), agreed_n, to_reconcile,
        [list(coders), *[list(k) for k in finished if k != coders]] if coders else [], rows,
    )  # fmt: skip
