"""The analyst review queue: candidate actions, append-only decisions, claims.

Every (document, commitment, member) whose classification is relevant or has a label other
than none is one queue item. Re-classifying updates a pending item's suggestion; a decided
item keeps its decisions and shows that the suggestion changed since. Decisions (accept,
reject, relabel, edit, note) are appended with the analyst, the time and the item version
they were based on; an item's state is derived from them. A decision based on a stale
version is refused with what changed (optimistic concurrency): nothing is overwritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from .dates import now_utc
from .errors import NotFound
from .flags import EXCLUDED, Flag
from .flags import parse as parse_flag
from .models import MEMBERS

ACTIONS = ("accept", "reject", "relabel", "edit", "note")
# what can undo another analyst's decision; a note only adds to the history
OVERRIDING = ("accept", "reject", "relabel", "edit")
SQLITE_INTEGER = range(-(2**63), 2**63)  # what SQLite can bind: anything else is no id or version
LABELS = ("strong", "weak", "none")
# An item's state is derived from its decisions: pending until one of these sets it, and then
# the state the latest of them set; relabels, edits and notes leave it as it is.
PENDING = "pending"
STATE_AFTER = {"accept": "accepted", "reject": "rejected"}
STATES = (PENDING, *STATE_AFTER.values())
ORDERS = {
    "attention": "q.attention desc, q.published desc, q.id",
    "member": "q.member, q.commitment, q.published desc, q.id",
    "commitment": "q.commitment, q.member, q.published desc, q.id",
    "date": "q.published desc, q.id desc",
}
UNKNOWN_MEMBER = "(no member named)"


class QueueError(Exception):
    """A decision that cannot be taken: unknown item, missing analyst, bad label."""


def check_state(state: str | None) -> None:
    """Refuse a state filter that names no state (None: any state)."""
    if state is not None and state not in STATES:
        raise QueueError(f"state must be {', '.join(STATES[:-1])} or {STATES[-1]}")


class NoSuchItem(QueueError, NotFound):
    """No queue item has that id."""

    def __init__(self, item_id: int):
        self.item_id = item_id
        super().__init__(f"no queue item {item_id}")


class StaleItem(QueueError):
    """The item changed since the version the decision was based on."""


class UnseenDecisions(QueueError):
    """A decision without a version on an item others decided on since its suggestion."""

    def __init__(self, state: ItemState, since: list[dict]):
        self.state, self.since = state, since
        item_id = state.item["id"]
        said = "; ".join(f"{d['analyst']} {d['action']} at {d['created_utc']}" for d in since)
        super().__init__(
            f"item {item_id} was decided on since its suggestion ({said}); nothing saved. "
            f"Look at it (`evidence queue show {item_id}`), then pass --version {state.version} "
            "to decide on it as it is now, or --force"
        )


# ---------------------------------------------------------------------------
# Filling


def _attention(classification: dict, flags: list[str]) -> int:
    """Look-first score: low confidence, ungrounded quotes, out-of-period or excluded, backends disagreeing."""
    score = 0
    confidence = classification.get("confidence")
    if confidence is not None and confidence < 0.6:
        score += 2
    if Flag.UNGROUNDED in flags:
        score += 3
    if Flag.OUTSIDE_PERIOD in flags:
        score += 2
    if any(f.startswith(EXCLUDED) for f in flags):
        score += 2
    if Flag.BACKENDS_DISAGREE in flags:
        score += 3
    if Flag.INSTRUCTION_LIKE_TEXT in flags:
        score += 3
    return score


def fill(db: sqlite_utils.Database, on_item: Callable[[], None] | None = None) -> dict[str, int]:
    """Turn candidate classifications into queue items (idempotent).

    Only classifications of a document's current text count; of several (another model, a
    newer prompt), the newest is the suggestion and the others only flag disagreement. So a
    rerun over the same classifications changes nothing.
    """
    from .documents import CURRENT_VERSIONS  # here: the fetching stack is slow to import

    counts = {"added": 0, "updated": 0, "unchanged": 0, "changed_after_decision": 0}
    sql = f"""
        select c.*, v.published from classifications c
        join ({CURRENT_VERSIONS}) v on v.document_id = c.document_id
        where c.status = 'ok' and c.content_sha = v.content_sha256
        order by c.id
    """
    rows = list(db.query(sql))
    # What each backend (model) said about the same text and commitment, to flag disagreement.
    opinions: dict[tuple[str, int], dict[str, tuple[bool, dict]]] = {}
    for c in rows:
        labels = {k: v["label"] for k, v in json.loads(c["dimensions"]).items()}
        opinions.setdefault((c["content_sha"], c["commitment"]), {})[c["model"]] = (
            bool(c["relevant"]),
            labels,
        )
    newest = {(c["document_id"], c["commitment"]): c for c in rows}
    for c in newest.values():
        dims = json.loads(c["dimensions"])
        flags = json.loads(c["flags"])
        labels = {k: v["label"] for k, v in dims.items()}
        others = [
            v for model, v in opinions[(c["content_sha"], c["commitment"])].items() if model != c["model"]
        ]
        if any(v != (bool(c["relevant"]), labels) for v in others):
            flags = [*flags, Flag.BACKENDS_DISAGREE]
        if not c["relevant"] and set(labels.values()) <= {"none"}:
            continue
        members = json.loads(c["members"]) or [UNKNOWN_MEMBER]
        suggestion = {
            "labels": labels,
            "dimensions": dims,
            "summary": c["summary"],
            "action_date": c["action_date"],
            "confidence": c["confidence"],
            "flags": flags,
            "relevant": bool(c["relevant"]),
            "backend": c["backend"],
            "model": c["model"],
            "prompt": c["prompt_name"],
            "members": json.loads(c["members"]),
        }
        sha = "sha256:" + hashlib.sha256(json.dumps(suggestion, sort_keys=True).encode()).hexdigest()
        for member in members:
            counts[_upsert(db, c, member, suggestion, sha, flags)] += 1
            if on_item:
                on_item()
    return counts


def _upsert(db: sqlite_utils.Database, c: dict, member: str, suggestion: dict, sha: str, flags: list) -> str:
    """Add or update one queue item from classification ``c``; return what happened."""
    with db.atomic():
        existing = list(
            db.table("queue_items").rows_where(
                "document_id = ? and commitment = ? and member = ?",
                [c["document_id"], c["commitment"], member],
            )
        )
        if not existing:
            db.table("queue_items").insert(
                {
                    "document_id": c["document_id"],
                    "content_sha": c["content_sha"],
                    "commitment": c["commitment"],
                    "member": member,
                    "classification_id": c["id"],
                    "suggestion": json.dumps(suggestion),
                    "suggestion_sha": sha,
                    "version": 1,
                    "attention": _attention(c, flags),
                    "published": c["action_date"] or c["published"],
                    "created_utc": now_utc(),
                    "updated_utc": now_utc(),
                }
            )
            return "added"
        item = existing[0]
        if item["suggestion_sha"] == sha and item["content_sha"] == c["content_sha"]:
            return "unchanged"  # a changed source text is a change even when the suggestion is not
        decided = db.table("decisions").count_where("item_id = ?", [item["id"]]) > 0
        db.table("queue_items").update(
            item["id"],
            {
                "classification_id": c["id"],
                "content_sha": c["content_sha"],
                "suggestion": json.dumps(suggestion),
                "suggestion_sha": sha,
                "version": item["version"] + 1,
                "attention": _attention(c, flags) + (3 if decided else 0),
                "published": c["action_date"] or c["published"],
                "updated_utc": now_utc(),
            },
        )
        return "changed_after_decision" if decided else "updated"


# ---------------------------------------------------------------------------
# Quotes in the source text


@dataclass(frozen=True)
class Segment:
    """A stretch of a document's text and the dimensions whose quotes cover it (none: plain text)."""

    text: str
    dims: tuple[str, ...]
    start: int
    end: int


def quote_segments(
    text: str, dimensions: dict[str, dict], start: int = 0, end: int | None = None
) -> list[Segment]:
    """``text[start:end]`` cut where the located quotes of ``dimensions`` begin and end.

    The one highlighting rule: the CLI prints the marked segments in [[brackets]], the web
    wraps them in ``<mark>`` (its templates escape the text). Adjacent stretches covered by
    the same dimensions are one segment; a quote not located in the text, or with offsets
    beyond it, marks nothing.
    """
    end = len(text) if end is None else min(end, len(text))
    start = max(0, min(start, end))
    quotes = []
    for dim, value in dimensions.items():
        for q in value.get("quotes") or []:
            s, e = q.get("start"), q.get("end")
            if isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text):
                quotes.append((s, e, dim))
    cuts = sorted({start, end, *(x for s, e, _ in quotes for x in (s, e) if start < x < end)})
    segments: list[Segment] = []
    for lo, hi in itertools.pairwise(cuts):
        dims = tuple(sorted({dim for s, e, dim in quotes if s <= lo and hi <= e}))
        if segments and segments[-1].dims == dims:
            lo = segments.pop().start
        segments.append(Segment(text[lo:hi], dims, lo, hi))
    return segments


# ---------------------------------------------------------------------------
# State


@dataclass
class ItemState:
    item: dict
    suggestion: dict
    state: str  # pending | accepted | rejected
    labels: dict[str, str]  # suggestion overlaid with relabels
    summary: str  # the analyst's edit wins
    notes: list[dict]
    history: list[dict]
    decided_version: int | None  # the version the last state-changing decision was based on
    suggestion_changed: bool  # the suggestion changed after a decision

    @property
    def version(self) -> int:
        return self.item["version"]


def source_of(db: sqlite_utils.Database, item: dict) -> dict | None:
    """The exact document version an item was classified on: URL, title, site, dates, text."""
    rows = list(
        db.query(
            "select d.canonical_url as url, d.last_fetched_utc as fetched, v.content_sha256, v.title, v.site, "
            "v.published, v.text, v.final_url from documents d join document_versions v "
            "on v.document_id = d.id and v.content_sha256 = :sha where d.id = :doc",
            {"sha": item["content_sha"], "doc": item["document_id"]},
        )
    )
    return rows[0] if rows else None


def get_item(db: sqlite_utils.Database, item_id: int) -> dict:
    if item_id not in SQLITE_INTEGER:
        raise NoSuchItem(item_id)
    rows = list(db.table("queue_items").rows_where("id = ?", [item_id]))
    if not rows:
        raise NoSuchItem(item_id)
    return rows[0]


def _derive(suggestion: dict, history: list[dict]) -> tuple[str, dict, str, list[dict], int | None]:
    """State, labels, summary, notes and decided version from a suggestion and its decisions."""
    state, labels, summary, notes = PENDING, dict(suggestion["labels"]), suggestion["summary"], []
    decided_version = None
    for d in history:
        payload = json.loads(d["payload"])
        if d["action"] in STATE_AFTER:
            state, decided_version = STATE_AFTER[d["action"]], d["based_on_version"]
        elif d["action"] == "relabel":
            labels[payload["dimension"]] = payload["label"]
        elif d["action"] == "edit":
            summary = payload["summary"]
        elif d["action"] == "note":
            notes.append({"analyst": d["analyst"], "note": payload["note"], "at": d["created_utc"]})
    return state, labels, summary, notes, decided_version


def _changed(item: dict, history: list[dict]) -> bool:
    return bool(history) and item["version"] > history[-1]["based_on_version"] + 1


def state_of(db: sqlite_utils.Database, item_id: int) -> ItemState:
    item = get_item(db, item_id)
    suggestion = json.loads(item["suggestion"])
    history = list(db.table("decisions").rows_where("item_id = ?", [item_id], order_by="id"))
    state, labels, summary, notes, decided = _derive(suggestion, history)
    return ItemState(
        item, suggestion, state, labels, summary, notes, history, decided, _changed(item, history)
    )


def label_states(
    db: sqlite_utils.Database, *, commitment: int | None = None, member: str | None = None
) -> list[tuple[int, str, str, dict[str, str]]]:
    """(item id, member, state, labels) of every matching item: only what scoring needs, fast."""
    where = "(:c is null or commitment = :c) and (:m is null or member = :m)"
    params = {"c": commitment, "m": member}
    items = db.execute(
        f"select id, member, json_extract(suggestion, '$.labels') from queue_items where {where} order by id",
        params,
    ).fetchall()
    state: dict[int, str] = {}
    relabels: dict[int, dict[str, str]] = {}
    actions = ", ".join(f"'{a}'" for a in (*STATE_AFTER, "relabel"))
    sql = (
        f"select item_id, action, payload from decisions where action in ({actions}) "
        f"and item_id in (select id from queue_items where {where}) order by id"
    )
    for item_id, action, payload in db.execute(sql, params):
        if action == "relabel":
            change = json.loads(payload)
            relabels.setdefault(item_id, {})[change["dimension"]] = change["label"]
        else:
            state[item_id] = STATE_AFTER[action]
    return [
        (item_id, name, state.get(item_id, PENDING), {**json.loads(labels), **relabels.get(item_id, {})})
        for item_id, name, labels in items
    ]


def states(
    db: sqlite_utils.Database, *, commitment: int | None = None, member: str | None = None
) -> list[ItemState]:
    """Every matching item's state in two queries (for scoring and exports over many items)."""
    where = "(:c is null or commitment = :c) and (:m is null or member = :m)"
    params = {"c": commitment, "m": member}
    items = list(db.query(f"select * from queue_items where {where} order by id", params))
    history: dict[int, list[dict]] = {}
    sql = f"select * from decisions where item_id in (select id from queue_items where {where}) order by id"
    for d in db.query(sql, params):
        history.setdefault(d["item_id"], []).append(d)
    out = []
    for item in items:
        suggestion = json.loads(item["suggestion"])
        past = history.get(item["id"], [])
        state, labels, summary, notes, decided = _derive(suggestion, past)
        out.append(
            ItemState(item, suggestion, state, labels, summary, notes, past, decided, _changed(item, past))
        )
    return out


def decide(
    db: sqlite_utils.Database,
    item_id: int,
    analyst: str | None,
    action: str,
    based_on_version: int,
    **payload: Any,
) -> int:
    """Append one decision if the item is still at ``based_on_version``; return the decision id."""
    _check(analyst, action, payload)
    if item_id not in SQLITE_INTEGER:
        raise NoSuchItem(item_id)
    if based_on_version not in SQLITE_INTEGER:
        raise QueueError(f"no version {based_on_version} of item {item_id}")
    conn = db.conn
    # IMMEDIATE: take the write lock before reading the version, so two deciders serialise here.
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("select version, suggestion from queue_items where id = ?", [item_id]).fetchone()
        if row is None:
            raise NoSuchItem(item_id)
        version, suggestion = row
        if action == "relabel" and payload.get("dimension") not in json.loads(suggestion)["labels"]:
            dims = ", ".join(json.loads(suggestion)["labels"])
            raise QueueError(f"unknown dimension {payload.get('dimension')!r}: one of {dims}")
        if version != based_on_version:
            raise StaleItem(_what_changed(conn, item_id, based_on_version, version))
        from . import coding  # an item being coded blind takes its coders' actions as codings

        coded = coding.record(
            conn, item_id, analyst, action, version, json.loads(suggestion)["labels"], payload
        )
        if coded is not None:
            conn.execute("COMMIT")
            return coded
        cursor = conn.execute(
            "insert into decisions (item_id, analyst, action, payload, based_on_version, created_utc) "
            "values (?, ?, ?, ?, ?, ?)",
            [item_id, analyst, action, json.dumps(payload), based_on_version, now_utc()],
        )
        state = STATE_AFTER.get(action)
        conn.execute(
            "update queue_items set version = version + 1, updated_utc = ?, state = coalesce(?, state) "
            "where id = ?",
            [now_utc(), state, item_id],
        )
        conn.execute("COMMIT")
        assert cursor.lastrowid is not None  # set by the insert above
        return cursor.lastrowid
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check(analyst: str | None, action: str, payload: dict) -> None:
    """Refuse a decision that is wrong whatever the item's state."""
    if not analyst:
        raise QueueError("a decision needs an analyst: --analyst NAME or EVIDENCE_ANALYST")
    if action not in ACTIONS:
        raise QueueError(f"unknown action {action!r}")
    if action == "reject" and not payload.get("reason"):
        raise QueueError("a rejection needs a reason")
    if action == "relabel" and payload.get("label") not in LABELS:
        raise QueueError(f"label must be one of {', '.join(LABELS)}")
    if action == "edit" and not (payload.get("summary") or "").strip():
        raise QueueError("an edit needs the new summary")
    if action == "note" and not (payload.get("note") or "").strip():
        raise QueueError("a note needs text")


def decisions_since_suggestion(state: ItemState) -> list[dict]:
    """The decisions taken since the item's current suggestion was set, oldest first.

    An item starts at version 1, and every decision and every new suggestion adds one. So
    the decisions at the end of the history whose versions follow one another up to the
    current version came after the suggestion; a gap means a new suggestion came in between.
    """
    since: list[dict] = []
    version = state.version
    for d in reversed(state.history):
        if d["based_on_version"] + 1 != version:
            break
        since.append(d)
        version = d["based_on_version"]
    return since[::-1]


def decide_current(
    db: sqlite_utils.Database, item_id: int, analyst: str | None, action: str, *, force: bool = False,
    **payload: Any,
) -> int:  # fmt: skip
    """Decide on the item's current version, for a caller that did not say which version it saw.

    Such a caller saw at most the suggestion: an accept, reject, relabel or edit is refused
    (:class:`UnseenDecisions`, nothing written) when anyone decided on the item since its
    suggestion, unless ``force``. A note overrides nothing and is always taken. A decision
    landing between the reading and the writing makes :func:`decide` refuse it as stale.
    """
    _check(analyst, action, payload)
    state = state_of(db, item_id)
    since = decisions_since_suggestion(state)
    if since and action in OVERRIDING and not force:
        raise UnseenDecisions(state, since)
    return decide(db, item_id, analyst, action, state.version, **payload)


def _what_changed(conn, item_id: int, based_on: int, version: int) -> str:
    later = conn.execute(
        "select analyst, action, created_utc from decisions where item_id = ? and based_on_version >= ? order by id",
        [item_id, based_on],
    ).fetchall()
    said = "; ".join(f"{a} {act} at {t}" for a, act, t in later) or "the model's suggestion was updated"
    return (
        f"item {item_id} changed since version {based_on} (now version {version}): {said}. "
        f"Look at it again (`evidence queue show {item_id}`) and decide on version {version}."
    )


# ---------------------------------------------------------------------------
# Listing, claiming, stats


# An item acts in a dimension when its label there (the latest relabel, else the suggestion's) is
# not none: the queue filtered to one cell of the evidence matrix.
ACTS_IN = """coalesce(
    (select json_extract(d.payload, '$.label') from decisions d where d.item_id = q.id and d.action = 'relabel'
     and json_extract(d.payload, '$.dimension') = :dimension order by d.id desc limit 1),
    (select l.value from json_each(q.suggestion, '$.labels') l where l.key = :dimension)) in ('strong', 'weak')"""


def _where(
    member: str | None,
    commitment: int | None,
    state: str | None,
    flag: str | None,
    dimension: str | None = None,
) -> tuple[str, dict]:
    """The WHERE clause for the given filters only (so SQLite can use the indexes), and its params."""
    clauses, params = ["1"], {}
    for column, value in (("member", member), ("commitment", commitment), ("state", state)):
        if value is not None:
            clauses.append(f"q.{column} = :{column}")
            params[column] = value
    if flag is not None:
        clauses.append("exists (select 1 from json_each(q.suggestion, '$.flags') f where f.value = :flag)")
        params["flag"] = parse_flag(flag)
    if dimension is not None:
        clauses.append(ACTS_IN)
        params["dimension"] = dimension
    return " and ".join(clauses), params


def list_items(
    db: sqlite_utils.Database,
    *,
    member: str | None = None,
    commitment: int | None = None,
    state: str | None = None,
    flag: str | None = None,
    order: str = "attention",
    limit: int = 50,
    offset: int = 0,
    dimension: str | None = None,
) -> list[dict]:
    if order not in ORDERS:
        raise QueueError(f"order must be one of {', '.join(ORDERS)}")
    check_state(state)
    where, params = _where(member, commitment, state, flag, dimension)
    sql = f"""
        select q.id, q.member, q.commitment, q.published, q.version, q.attention,
               json_extract(q.suggestion, '$.summary') as summary,
               json_extract(q.suggestion, '$.flags') as flags,
               json_extract(q.suggestion, '$.confidence') as confidence,
               q.state as state,
               (select analyst from claims c where c.item_id = q.id and c.expires_utc > :now) as claimed_by
        from queue_items q
        where {where}
        order by {ORDERS[order]}
        limit :limit offset :offset
    """
    return list(db.query(sql, {**params, "limit": limit, "offset": offset, "now": now_utc()}))


def count_items(
    db: sqlite_utils.Database,
    *,
    member: str | None = None,
    commitment: int | None = None,
    flag: str | None = None,
    dimension: str | None = None,
) -> dict[str, int]:
    """How many items match the filters, by state (pending, accepted, rejected, total)."""
    where, params = _where(member, commitment, None, flag, dimension)
    sql = f"select q.state, count(*) from queue_items q where {where} group by 1"
    counts = dict.fromkeys(STATES, 0)
    counts.update({state: n for state, n in db.execute(sql, params).fetchall()})
    return {**counts, "total": sum(counts.values())}


def claim(
    db: sqlite_utils.Database, analyst: str | None, count: int = 20, minutes: int = 60, **filters: Any
) -> list[int]:
    """Claim up to ``count`` pending, unclaimed items (expired claims are free again)."""
    if not analyst:
        raise QueueError("claiming needs an analyst: --analyst NAME or EVIDENCE_ANALYST")
    now = now_utc()
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")
    from . import coding

    claimed: list[int] = []
    with db.atomic():
        for row in list_items(db, state=PENDING, limit=count * 5, **filters):
            if len(claimed) >= count:
                break
            if row["claimed_by"] and row["claimed_by"] != analyst:
                continue
            if coding.waiting_on_others(db, row["id"], analyst):
                continue
            db.table("claims").upsert(
                {"item_id": row["id"], "analyst": analyst, "claimed_utc": now, "expires_utc": expires},
                pk="item_id",
            )
            claimed.append(row["id"])
    return claimed


def stats(db: sqlite_utils.Database) -> list[dict]:
    """Items by state per commitment and member."""
    by_state = ", ".join(f"sum(state = '{s}') as {s}" for s in STATES)
    sql = f"""
        select commitment, member, {by_state}, count(*) as total
        from queue_items group by commitment, member order by commitment, member
    """
    return list(db.query(sql))


def cost_per_accepted(db: sqlite_utils.Database) -> dict[str, Any]:
    """What the model calls cost in all (every call logged, failed ones included: they are paid
    for too) over the actions analysts accepted: the cost of one confirmed action. Items the
    prefilter ruled out made no call and cost nothing."""
    calls, cost = db.execute("select count(*), coalesce(sum(cost), 0) from llm_calls").fetchone()
    accepted = db.execute("select count(*) from queue_items where state = 'accepted'").fetchone()[0]
    return {
        "calls": calls,
        "cost": round(cost, 6),
        "accepted": accepted,
        "cost_per_accepted": round(cost / accepted, 6) if accepted else None,
    }


def resolve_analyst(value: str | None) -> str | None:
    import os

    return value or os.environ.get("EVIDENCE_ANALYST") or None


__all__ = [
    "ACTIONS",
    "MEMBERS",
    "PENDING",
    "STATES",
    "STATE_AFTER",
    "NoSuchItem",
    "QueueError",
    "Segment",
    "StaleItem",
    "UnseenDecisions",
    "check_state",
    "claim",
    "cost_per_accepted",
    "decide",
    "decide_current",
    "decisions_since_suggestion",
    "fill",
    "list_items",
    "quote_segments",
    "state_of",
    "stats",
]


def queue_members(db: sqlite_utils.Database) -> list[str]:
    """The members that have queue items, in order (the queue page's member filter)."""
    return [r[0] for r in db.execute("select distinct member from queue_items order by 1")]


def export_records(db: sqlite_utils.Database, state: str | None = None) -> list[dict]:
    """Every queue item (only those in ``state`` if given) as a record for export: its current
    summary and labels, the suggestion's labels and flags, and each decision."""
    check_state(state)
    records = []
    for st in states(db):
        if state and st.state != state:
            continue
        records.append(
            {
                "id": st.item["id"],
                "commitment": st.item["commitment"],
                "member": st.item["member"],
                "state": st.state,
                "version": st.version,
                "date": st.item["published"],
                "summary": st.summary,
                "labels": st.labels,
                "suggested_labels": st.suggestion["labels"],
                "flags": st.suggestion["flags"],
                "decisions": [
                    {k: d[k] for k in ("analyst", "action", "payload", "based_on_version", "created_utc")}
                    for d in st.history
                ],
            }
        )
    return records
