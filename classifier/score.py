"""Confirmed evidence -> member scores, with pending counts and receipts.

Only accepted queue items count. Per member and dimension the strongest confirmed label
(after the analysts' relabels) goes into the rubric's rule; pending items are counted next
to every score, and a score with pending items is provisional. ``include_pending`` gives an
explicitly provisional view that also counts the pending suggestions.
"""

from __future__ import annotations

import json

import sqlite_utils

from .dates import long_date
from .review import UNKNOWN_MEMBER, label_states, source_of, states
from .rubric import Rubric, average_of, format_average, format_score, score

RANK = {"none": 0, "weak": 1, "strong": 2}


def _items(db: sqlite_utils.Database, commitment: int, member: str | None = None) -> list[int]:
    sql = "select id from queue_items where commitment = ? and (? is null or member = ?) order by id"
    return [row[0] for row in db.execute(sql, [commitment, member, member]).fetchall()]


def member_scores(
    db: sqlite_utils.Database, rubric: Rubric, *, member: str | None = None, include_pending: bool = False
) -> list[dict]:
    """One row per member: strongest label per dimension, score, pending count, provisional."""
    rows = []
    by_member: dict[str, list] = {}
    for _item, name, state, labels in label_states(db, commitment=rubric.number, member=member):
        by_member.setdefault(name, []).append((state, labels))
    for name in rubric.members if member is None else [member]:
        strongest = dict.fromkeys(rubric.dimension_ids, "none")
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
            for dim, label in labels.items():
                if dim in strongest and RANK[label] > RANK[strongest[dim]]:
                    strongest[dim] = label
        value = score(strongest, rubric.scoring, rubric.dimension_ids)
        rows.append(
            {
                "member": name,
                "labels": strongest,
                "score": value,
                "printed": format_score(value),
                "confirmed": confirmed,
                "pending": pending,
                "provisional": bool(pending) or include_pending,
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
        dims = ", ".join(f"{k} {v}" for k, v in r["labels"].items())
        lines.append(
            f"{r['member']:<16} {r['printed']:>4}{mark}  {r['confirmed']:>9}  {r['pending']:>7}  {dims}"
        )
    lines.append(f"{'Average':<16} {table['average']}")
    if table["unattributed"]:
        lines.append(f"({table['unattributed']} candidate actions name no member and count for none)")
    lines.append("* provisional: pending items could change this score")
    return "\n".join(lines)


def explain(db: sqlite_utils.Database, rubric: Rubric, member: str) -> dict:
    """The receipt: per dimension, the confirmed actions, their quotes, source and decisions."""
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
                    "published": doc["published"] if doc else None,
                    "prompt": state.suggestion.get("prompt"),
                    "backend": state.suggestion.get("backend"),
                    "model": state.suggestion.get("model"),
                    "decisions": confirmations,
                }
            )
    return {"member": member, "commitment": rubric.number, **row, "dimensions": dimensions}


# ---------------------------------------------------------------------------
# Report drafts

VERDICT = {1: "fully complied", 0: "partially complied", -1: "not complied"}


def draft(db: sqlite_utils.Database, rubric: Rubric, member: str | None = None) -> list[dict]:
    """Member sections in the report's own form, from confirmed evidence; footnotes numbered from 1."""
    sections = []
    footnote = 0
    for name in rubric.members if member is None else [member]:
        (row,) = member_scores(db, rubric, member=name)
        paragraphs, notes = [], []
        for state in states(db, commitment=rubric.number, member=name):
            if state.state != "accepted":
                continue
            doc = source_of(db, state.item)
            footnote += 1
            text = state.summary.strip()
            if not text.startswith("On "):
                text = (
                    f"On {long_date(state.item['published'])}, {text[0].lower() + text[1:]}" if text else ""
                )
            paragraphs.append({"text": text, "footnote": footnote, "date": state.item["published"]})
            doc = doc or {}
            url, title, site = doc.get("url"), doc.get("title"), doc.get("site")
            published, fetched = doc.get("published"), doc.get("fetched")
            notes.append(
                {
                    "number": footnote,
                    "citation": f"{title or 'Untitled'}, {site or 'n/a'} {long_date(published)}. "
                    f"Access Date: {long_date(fetched)}. {url or ''}".strip(),
                }
            )
        paragraphs.sort(key=lambda p: p["date"] or "")
        strong = [d.name for d in rubric.dimensions if row["labels"][d.id] == "strong"]
        weak = [d.name for d in rubric.dimensions if row["labels"][d.id] == "weak"]
        subject = f"the {name}" if name in ("United Kingdom", "United States", "European Union") else name
        opening = f"{subject[0].upper() + subject[1:]} has {VERDICT[row['score']]} with its commitment to {rubric.title.split(': ', 1)[-1].lower()}."
        conclusion = opening[:-1] + "."
        if strong:
            conclusion += (
                f" {subject[0].upper() + subject[1:]} has taken strong action on {', '.join(strong)}."
            )
        if weak:
            conclusion += f" It has taken weak action on {', '.join(weak)}."
        if not strong and not weak:
            conclusion += " No confirmed action was found."
        sections.append(
            {
                "member": name,
                "score": row["printed"],
                "provisional": row["provisional"],
                "opening": opening,
                "paragraphs": paragraphs,
                "conclusion": conclusion,
                "score_sentence": f"Thus, {subject} receives a score of {row['printed']}.",
                "footnotes": notes,
            }
        )
    return sections


def render_draft(sections: list[dict], rubric: Rubric, fmt: str = "md") -> str:
    """Markdown or HTML (every value escaped) of a draft."""
    import html

    if fmt not in ("md", "html"):
        raise ValueError(f"--format must be md or html, not {fmt!r}")
    if fmt == "md":
        out = [f"## {rubric.number}. {rubric.title}", ""]
        for s in sections:
            flag = " (provisional)" if s["provisional"] else ""
            out += [f"### {s['member']}: {s['score']}{flag}", "", s["opening"], ""]
            out += [f"{p['text']}[^{p['footnote']}]\n" for p in s["paragraphs"]]
            out += [s["conclusion"], "", s["score_sentence"], ""]
            out += [f"[^{n['number']}]: {n['citation']}" for n in s["footnotes"]]
            out.append("")
        return "\n".join(out)
    e = html.escape
    out = [f"<h2>{e(str(rubric.number))}. {e(rubric.title)}</h2>"]
    for s in sections:
        flag = " (provisional)" if s["provisional"] else ""
        out.append(f"<h3>{e(s['member'])}: {e(s['score'])}{flag}</h3><p>{e(s['opening'])}</p>")
        out += [f"<p>{e(p['text'])}<sup>{p['footnote']}</sup></p>" for p in s["paragraphs"]]
        out.append(f"<p>{e(s['conclusion'])}</p><p>{e(s['score_sentence'])}</p>")
        if s["footnotes"]:
            out.append('<ol class="footnotes">')
            out += [f'<li value="{n["number"]}">{e(n["citation"])}</li>' for n in s["footnotes"]]
            out.append("</ol>")
    return "\n".join(out)


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
