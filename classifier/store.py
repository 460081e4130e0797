"""Opening the SQLite database and finding the project's files.

The database path comes from ``--db``, then ``EVIDENCE_DB``, then
``<project>/.evidence/evidence.db``, where the project is the nearest directory
(from the working directory upwards) that holds ``corpus/commitments``.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlite_utils
from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from .migrations import migrations

DB_ENV = "EVIDENCE_DB"
CORPUS_ENV = "EVIDENCE_CORPUS"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class StoreError(Exception):
    """The database cannot be opened or is not ours."""


def project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding ``corpus/commitments``.

    Falls back to the checkout the package runs from, then to ``start`` itself.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "corpus" / "commitments").is_dir():
            return candidate
    if (PACKAGE_ROOT / "corpus" / "commitments").is_dir():
        return PACKAGE_ROOT
    return here


def corpus_dir() -> Path:
    """The corpus directory: ``EVIDENCE_CORPUS`` or ``<project>/corpus``."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else project_dir() / "corpus"


def resolve_db_path(db: str | Path | None = None) -> Path:
    """``--db``, then ``EVIDENCE_DB``, then the per-project default."""
    if db:
        return Path(db)
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    return project_dir() / ".evidence" / "evidence.db"


def open_db(path: str | Path | None = None, *, migrate: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) the database and apply pending migrations."""
    path = resolve_db_path(path)
    if str(path) != ":memory:":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path.parent}: cannot create the database directory: {exc.strerror}") from None
    try:
        db = sqlite_utils.Database(path)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA foreign_keys = ON")
        if str(path) == ":memory:":
            if migrate:
                migrations.apply(db)
            return db
        # Switching to WAL and migrating are not safe against another process doing the same
        # (two commands started at once on a new database): one at a time, by a lock file.
        with FileLock(f"{path}.open-lock", timeout=120):
            db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: no corruption on a crash, one fsync per checkpoint instead of per commit
            db.execute("PRAGMA synchronous = NORMAL")
            if migrate:
                migrations.apply(db)
    except FileLockTimeout:
        raise StoreError(f"{path}: another process has been opening the database for 2 minutes") from None
    except sqlite_utils.db.sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database ({exc})") from None
    return db
