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
