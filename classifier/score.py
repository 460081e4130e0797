"""Confirmed evidence -> member scores, with pending counts, receipts and summary tables.

Only accepted queue items count. Per member and dimension the analyst's confirmed verdict
goes into the rubric's rule, else the proposal from the confirmed actions (after the analysts'
relabels; :mod:`classifier.verdicts`), and a score resting on any proposal is provisional;
pending items are counted next to every score. ``include_pending`` gives an
explicitly provisional view that also counts the pending suggestions. The report draft
built on these scores is :mod:`classifier.draft`.
"""

from __future__ import annotations

import json

import sqlite_utils

from . import verdicts as verdicts_lib
from .llm import is_calibrated
from .review import UNKNOWN_MEMBER, label_states, source_of, states
from .rubric import Rubric, average_of, format_average, format_score, score
from .verdicts import DEFAULT_RULE, RANK


def _items(db: sqlite_utils.Database, commitment: int, member: str | None = None) -> list[int]:
    sql = "select id from queue_items where commitment = ? and (? is null or member = ?) order by id"
    return [row[0] for row in db.execute(sql, [commitment, member, member]).fetchall()]


def member_scores(
    db: sqlite_utils.Database,
    rubric: Rubric,
    *,
    member: str | None = None,
    include_pending: bool = False,
    rule: str = DEFAULT_RULE,
) -> list[dict]:
    """One row per member: per dimension the confirmed verdict, else the proposal from the
    confirmed actions under ``rule``; the score; pending count; provisional when any dimension
    rests on a proposal (or pending items are counted)."""
    rows = []
    by_member: dict[str, list] = {}
    backends = dict(
        db.execute(
            "select id, json_extract(suggestion, '$.backend') from queue_items where commitment = ?",
            [rubric.number],
        ).fetchall()
    )
    for item, name, state, labels in label_states(db, commitment=rubric.number, member=member):
        # a pending "strong" counts only from a backend whose strong is calibrated on held-out
        # data (Backend.calibrated); any other backend's shows as unknown
        if state == "pending" and not is_calibrated(backends.get(item)):
            labels = {d: "unknown" if v == "strong" else v for d, v in labels.items()}
        by_member.setdefault(name, []).append((state, labels))
    decided = verdicts_lib.latest(db, rubric.number)
    for name in rubric.members if member is None else [member]:
        counted: list[dict[str, str]] = []
        confirmed = pending = 0
        for state, labels in by_member.get(name, []):
            if state == "rejected":
                continue
            if state == "pending":
                pending += 1
                if not include_pending:
                    continue
            else:
                confirmed += 1
            counted.append(labels)
        chosen, sources, proposals, verdicts = {}, {}, {}, {}
        for dim in rubric.dimension_ids:
            proposal = verdicts_lib.propose([labels.get(dim, "none") for labels in counted], rule)
            verdict = decided.get((name, dim))
            proposals[dim] = proposal.as_dict()
            verdicts[dim] = verdict
            if verdict is not None and verdict["label"] in verdicts_lib.LABELS:
                chosen[dim], sources[dim] = verdict["label"], "verdict"
            else:
                chosen[dim], sources[dim] = proposal.label, "proposal"
        # unknown: evidence of action whose strength nobody confirmed, counted as weak
        value = score(
            {d: "weak" if v == "unknown" else v for d, v in chosen.items()},
            rubric.scoring,
            rubric.dimension_ids,
        )
        rows.append(
            {
                "member": name,
                "labels": chosen,
                "sources": sources,
                "proposals": proposals,
                "verdicts": verdicts,
                "unknown": [d for d, v in chosen.items() if v == "unknown"],
                "score": value,
                "printed": format_score(value),
                "confirmed": confirmed,
                "pending": pending,
                "proposed": [d for d, s in sources.items() if s == "proposal"],
                "provisional": "proposal" in sources.values() or include_pending,
            }
        )
    return rows


def commitment_table(db: sqlite_utils.Database, rubric: Rubric, *, include_pending: bool = False) -> dict:
    rows = member_scores(db, rubric, include_pending=include_pending)
    scores = [r["score"] for r in rows]
    average, percent = average_of(scores)
    unattributed = len(_items(db, rubric.number, UNKNOWN_MEMBER))
    return {
        "commitment": rubric.number,
        "title": rubric.title,
        "members": rows,
        "average": format_average(scores),
        "average_value": float(average),
        "percentage": percent,
        "provisional": any(r["provisional"] for r in rows),
        "unattributed": unattributed,
    }


def render_table(table: dict) -> str:
    lines = [f"{table['commitment']}. {table['title']}" + ("  (PROVISIONAL)" if table["provisional"] else "")]
    lines.append(f"{'':<16} {'score':>5}  {'confirmed':>9}  {'pending':>7}  dimensions")
    for r in table["members"]:
        mark = "*" if r["provisional"] else " "
        dims = ", ".join(
            f"{k} {v}{'' if r['sources'][k] == 'verdict' else '?'}" for k, v in r["labels"].items()
        )
        lines.append(
            f"{r['member']:<16} {r['printed']:>4}{mark}  {r['confirmed']:>9}  {r['pending']:>7}  {dims}"
        )
    lines.append(f"{'Average':<16} {table['average']}")
    if table["unattributed"]:
        lines.append(f"({table['unattributed']} candidate actions name no member and count for none)")
    lines.append("* provisional: a dimension rests on a proposal (?), not an analyst's verdict")
    return "\n".join(lines)


def explain(db: sqlite_utils.Database, rubric: Rubric, member: str) -> dict:
    """The receipt, the whole chain: score <- per dimension the verdict (or the proposal and its
    counts) <- the confirmed actions <- their quotes <- the source text and the bytes it was
    extracted from (sha256 of each), with the decisions that confirmed each action."""
    (row,) = member_scores(db, rubric, member=member)
    dimensions: dict[str, list[dict]] = {d: [] for d in rubric.dimension_ids}
    for state in states(db, commitment=rubric.number, member=member):
        item_id = state.item["id"]
        if state.state != "accepted":
            continue
        doc = source_of(db, state.item)
        confirmations = [
            {
                "analyst": d["analyst"],
                "action": d["action"],
                "at": d["created_utc"],
                "payload": json.loads(d["payload"]),
            }
            for d in state.history
        ]
        for dim, label in state.labels.items():
            if label == "none" or dim not in dimensions:
                continue
            quotes = state.suggestion["dimensions"].get(dim, {}).get("quotes", [])
            dimensions[dim].append(
                {
                    "item": item_id,
                    "label": label,
                    "summary": state.summary,
                    "quotes": quotes,
                    "url": doc["url"] if doc else None,
                    "content_sha256": doc["content_sha256"] if doc else state.item["content_sha"],
                    "raw_sha256": _raw_sha(db, state.item),
                    "published": doc["published"] if doc else None,
                    "prompt": state.suggestion.get("prompt"),
                    "backend": state.suggestion.get("backend"),
                    "model": state.suggestion.get("model"),
                    "decisions": confirmations,
                }
            )
    readings = {
        d: {
            "label": row["labels"][d],
            "source": row["sources"][d],
            "verdict": row["verdicts"][d],
            "proposal": row["proposals"][d],
        }
        for d in rubric.dimension_ids
    }
    for entries in dimensions.values():
        entries.sort(key=lambda e: -RANK[e["label"]])  # strongest first, as the matrix shows them
    return {
        "member": member,
        "commitment": rubric.number,
        **row,
        "readings": readings,
        "dimensions": dimensions,
    }


def _raw_sha(db: sqlite_utils.Database, item: dict) -> str | None:
    """The sha256 of the bytes as fetched that the item's text was extracted from."""
    found = db.execute(
        "select raw_sha256 from document_versions where document_id = ? and content_sha256 = ?",
        [item["document_id"], item["content_sha"]],
    ).fetchone()
    return found[0] if found else None


def overview(tables: list[dict]) -> dict:
    """The report's summary tables: by member across commitments, by commitment, overall."""
    by_member: dict[str, list[int]] = {}
    for table in tables:
        for row in table["members"]:
            by_member.setdefault(row["member"], []).append(row["score"])
    every = [s for scores in by_member.values() for s in scores]
    return {
        "by_member": {m: format_average(scores) for m, scores in by_member.items()},
        "by_commitment": {t["commitment"]: t["average"] for t in tables},
        "overall": format_average(every) if every else None,
        "provisional": any(t["provisional"] for t in tables),
    }


def render_overview(summary: dict) -> str:
    mark = "  (PROVISIONAL)" if summary["provisional"] else ""
    lines = [f"Scores by member{mark}"]
    lines += [f"  {member:<16} {value}" for member, value in summary["by_member"].items()]
    lines.append(f"Scores by commitment{mark}")
    lines += [f"  {number:<16} {value}" for number, value in summary["by_commitment"].items()]
    lines.append(f"Overall{mark}: {summary['overall']}")
    return "\n".join(lines)
