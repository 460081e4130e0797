"""The main job's steps that join the stages together."""

from __future__ import annotations

import datetime as dt

import sqlite_utils

from .dataset import EvalItem


def queue_gold(db: sqlite_utils.Database, items: list[EvalItem]) -> dict[str, int]:
    """Put the classified gold paragraphs in the review queue, as documents of kind 'gold'.

    The main job's demonstration of the whole path on embedded defaults: each cited action
    paragraph becomes a document (``gold:<item id>``), its classifications are attached to
    it, and the queue is filled from them. Real press releases are never of this kind.
    """
    from .prompts import sha256
    from .queue import fill

    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with db.atomic():
        for item in items:
            if item.kind not in ("positive", "out_of_period"):
                continue
            url = f"gold:{item.id.split('@')[0]}"
            content = sha256(item.text)
            existing = db.execute("select id from documents where canonical_url = ?", [url]).fetchone()
            if existing is None:
                doc_id = (
                    db["documents"]
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
                db["document_versions"].insert(
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
    return fill(db)
