"""The main job's steps that join the stages together."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlite_utils

from .config import Config
from .dataset import EvalItem, sample_items
from .gold import ImportResult
from .models import Report


@dataclass
class MainJob:
    """What the main job did, stage by stage: the imports and the reports' own score tables, the
    evaluation runs (title and paragraph), the review queue's counts, and the provisional
    score tables (pending suggestions counted as if confirmed)."""

    imports: list[ImportResult] = field(default_factory=list)
    gold_tables: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    queued: dict[str, int] = field(default_factory=dict)
    provisional: list[dict] = field(default_factory=list)


def main_job(
    db: sqlite_utils.Database,
    config: Config,
    *,
    limit: int | None = None,
    on_stage: Callable[[str, MainJob], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    on_run: Callable[[dict], None] | None = None,
) -> MainJob:
    """The main job on embedded defaults: import the bundled reports, classify the gold dataset
    with the configured backend (title and paragraph inputs, ``limit`` items of each, sampled),
    queue the classified paragraphs for review and score them provisionally.

    ``on_stage(name, job)`` is called as each stage ends (``gold``, ``evaluation``, ``queue``,
    ``scores``) so a caller can show the job as it goes; ``on_notice`` and ``on_run`` are passed
    to `evaluate.evaluate_modes`.
    """
    from . import gold
    from . import score as score_lib
    from .dataset import build_dataset
    from .evaluate import evaluate_modes
    from .rubric import rubrics_for
    from .store import corpus_dir

    def stage(name: str) -> None:
        if on_stage:
            on_stage(name, job)

    job = MainJob()
    job.imports = gold.import_paths(db, [corpus_dir() / "reports"])
    job.gold_tables = gold.score_tables(db)
    stage("gold")
    job.runs = evaluate_modes(
        db,
        config,
        modes=["title", "paragraph"],
        limit=limit,
        on_notice=on_notice,
        on_run=on_run,
        curve="kept",  # measuring a curve takes minutes: `evidence eval run` does, and keeps it
    )
    stage("evaluation")
    rubrics = rubrics_for()
    paragraphs = build_dataset(db, rubrics, "paragraph")
    # with --limit, the paragraphs the evaluation sampled (and classified)
    job.queued = queue_gold(db, sample_items(paragraphs, limit) if limit else paragraphs)
    stage("queue")
    job.provisional = [score_lib.commitment_table(db, r, include_pending=True) for r in rubrics]
    stage("scores")
    return job


def queue_gold(db: sqlite_utils.Database, items: list[EvalItem]) -> dict[str, int]:
    """Put the classified gold paragraphs in the review queue, as documents of kind 'gold'.

    The main job's demonstration of the whole path on embedded defaults: each cited action
    paragraph becomes a document (``gold:<item id>``), its classifications are attached to
    it, and the queue is filled from them. Real press releases are never of this kind.

    Only the current version of each chapter is queued. A paragraph a new version repeats word
    for word keeps its document (under the new version's key), so its queue item and any
    decisions on it stay; the other paragraphs of superseded versions lose their current
    version, and their queue items that no one has decided on leave the queue. (An item with
    decisions stays: decisions are never removed.)
    """
    from .gold import evidence_items
    from .prompts import sha256
    from .review import fill

    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    current = {f"gold:{row['key']}" for row in evidence_items(db)}
    with db.atomic():
        superseded = {
            content: doc_id
            for doc_id, url, content in db.execute(
                "select d.id, d.canonical_url, v.content_sha256 from documents d join document_versions v "
                "on v.document_id = d.id where d.kind = 'gold'"
            ).fetchall()
            if url not in current
        }
        for item in items:
            if item.kind not in ("positive", "out_of_period"):
                continue
            url = f"gold:{item.id.split('@')[0]}"
            content = sha256(item.text)
            existing = db.execute("select id from documents where canonical_url = ?", [url]).fetchone()
            if existing is None and content in superseded:
                existing = (superseded.pop(content),)
                db.table("documents").update(
                    existing[0],
                    {"canonical_url": url, "first_url": url, "current_version": 1, "last_outcome": "gold"},
                )
            if existing is None:
                doc_id = (
                    db.table("documents")
                    .insert(
                        {
                            "canonical_url": url,
                            "first_url": url,
                            "host": "gold",
                            "kind": "gold",
                            "current_version": 1,
                            "first_seen_utc": stamp,
                            "last_fetched_utc": stamp,
                            "last_outcome": "gold",
                        }
                    )
                    .last_pk
                )
                db.table("document_versions").insert(
                    {
                        "document_id": doc_id,
                        "version": 1,
                        "content_sha256": content,
                        "fetched_utc": stamp,
                        "title": item.text[:120],
                        "text": item.text,
                        "published": item.date,
                        "date_source": "gold",
                    }
                )
            else:
                doc_id = existing[0]
            db.execute(
                "update classifications set document_id = ?, version = 1 where content_sha = ? and document_id is null",
                [doc_id, content],
            )
        for doc_id in superseded.values():
            db.table("documents").update(doc_id, {"current_version": 0, "last_outcome": "superseded"})
            undecided = (
                "document_id = ? and not exists (select 1 from decisions d where d.item_id = queue_items.id)"
            )
            db.execute(
                f"delete from claims where item_id in (select id from queue_items where {undecided})",
                [doc_id],
            )
            db.execute(f"delete from queue_items where {undecided}", [doc_id])
    return fill(db)


def confirm_cited_actions(
    db: sqlite_utils.Database,
    report: Report,
    number: int,
    *,
    labels: dict[tuple[str, str, str], dict[str, str]] | None = None,
) -> dict[str, int]:
    """A chapter's cited actions as accepted queue items, as if its analysts had confirmed them.

    Each action paragraph becomes a document (``gold:chapter:<N>:<member>:<seq>``) whose version
    is its first footnote's source: title, publisher (place), dates and URL; its classification
    carries the action's text and its dimension labels (``labels``, keyed by (member, ISO date,
    text); by default the reference labels of ``eval/data/reference-labels/``), and the
    member's analyst accepts it (after an edit, for a source the analyst translated; one that
    Google Translate translated names it as the classification's model, which is what the
    footnote's translation note then says). What the chapter draft's round trip through the
    report parser is built on. Returns the queue's counts.
    """
    import json

    from .languages import detect
    from .review import decide, fill, state_of

    chapter = next(c for c in report.chapters if c.number == number)
    labels = labels if labels is not None else reference_action_labels(number)
    dimensions = sorted({d for dims in labels.values() for d in dims})
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    analysts: dict[int, str] = {}
    translated: set[int] = set()  # the analyst's own translation: an edit before the accept
    with db.atomic():
        for section in chapter.members:
            for action in section.actions:
                note = report.footnotes.get(action.footnotes[0]) if action.footnotes else None
                key = f"gold:chapter:{number}:{section.member}:{action.seq}"
                accessed = note.accessed.isoformat() if note and note.accessed else stamp
                doc_id = (
                    db.table("documents")
                    .insert(
                        {
                            "canonical_url": key,
                            "first_url": key,
                            "host": "gold",
                            "kind": "gold",
                            "current_version": 1,
                            "first_seen_utc": accessed,
                            "last_fetched_utc": accessed,
                            "last_outcome": "gold",
                        }
                    )
                    .last_pk
                )
                assert isinstance(doc_id, int)
                place = f" ({note.place})" if note and note.place else ""
                found = detect(note.title) if note and note.title and note.translation else None
                machine = bool(note and note.translation and "google" in note.translation.lower())
                content = "sha256:" + hashlib.sha256(action.text.encode("utf-8")).hexdigest()
                db.table("document_versions").insert(
                    {
                        "document_id": doc_id,
                        "version": 1,
                        "content_sha256": content,
                        "fetched_utc": accessed,
                        "final_url": note.url if note else None,
                        "title": note.title if note else None,
                        "site": f"{note.publisher}{place}" if note and note.publisher else None,
                        "text": action.text,
                        # a source the chapter translated is not in English, whatever its title says
                        "language": (found[0] if found and found[0] != "en" else "und") if found else "en",
                        "published": note.published.isoformat() if note and note.published else None,
                        "date_source": "gold",
                    }
                )
                date = action.date.isoformat() if action.date else None
                # an action the labels miss is a confirmed action of no strength
                dims = labels.get((section.member, date or "", action.text)) or dict.fromkeys(
                    dimensions, "none"
                )
                db.table("classifications").insert(
                    {
                        "document_id": doc_id,
                        "version": 1,
                        "content_sha": content,
                        "commitment": number,
                        "backend": "gold",
                        # the English text's maker, for the footnote's translation note
                        "model": "Google Translate" if machine else "reference-labels",
                        "prompt_name": "none",
                        "status": "ok",
                        "relevant": 1,
                        "members": json.dumps([section.member]),
                        "action_date": date,
                        "summary": action.text,
                        "dimensions": json.dumps({d: {"label": v, "quotes": []} for d, v in dims.items()}),
                        "confidence": 1.0,
                        "flags": "[]",
                        "created_utc": stamp,
                    }
                )
                analysts[doc_id] = (section.analysts or ["gold"])[0]
                if found and not machine:
                    translated.add(doc_id)
    counts = fill(db)
    for item_id, doc_id in db.execute(
        "select id, document_id from queue_items where commitment = ?", [number]
    ):
        if doc_id not in analysts:
            continue
        state = state_of(db, item_id)
        version = state.item["version"]
        if doc_id in translated:
            decide(db, item_id, analysts[doc_id], "edit", version, summary=state.summary)
            version += 1
        decide(db, item_id, analysts[doc_id], "accept", version)
    return counts


def reference_action_labels(number: int) -> dict[tuple[str, str, str], dict[str, str]]:
    """The reference labels of one commitment's cited actions, keyed by (member, ISO date, text)."""
    import json

    from .dataset import REFERENCE_LABELS
    from .store import data_file

    out = {}
    for line in data_file(*REFERENCE_LABELS).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["commitment"] == number:
            out[(row["member"], row["date"] or "", row["text"])] = row["dimensions"]
    return out
