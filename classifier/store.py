"""Opening the SQLite database and finding the project's files.

The project directory holds what a user writes: the database, ``evidence.toml`` and evaluation
results. It is ``EVIDENCE_HOME``, else the nearest directory (from the working directory
upwards) that holds ``corpus/commitments``, else the checkout the package runs from, else the
working directory. It is never the installed package itself.

The database path comes from ``--db``, then ``EVIDENCE_DB``, then
``<project>/.evidence/evidence.db``.

The read-only data (``corpus/`` and ``prompts/``) is looked up in the project directory, then
in the checkout the package runs from, then in the copies installed with the package
(``classifier/bundled/``, built from the repository's top-level directories).
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
HOME_ENV = "EVIDENCE_HOME"
# The repository root when the package runs from a checkout (directly or as an editable install).
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Where a regular (non-editable) install keeps its copies of corpus/ and prompts/: pyproject.toml
# maps the top-level directories into the wheel under this directory.
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


class StoreError(Exception):
    """The database cannot be opened or is not ours."""


def _is_project(directory: Path) -> bool:
    return (directory / "corpus" / "commitments").is_dir()


def project_dir(start: Path | None = None) -> Path:
    """The directory for the user's files: database, ``evidence.toml``, evaluation results.

    ``EVIDENCE_HOME``; else the nearest directory at or above ``start`` (the working directory)
    holding ``corpus/commitments``; else the checkout the package runs from; else ``start``.
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if _is_project(candidate):
            return candidate
    if _is_project(PACKAGE_ROOT):
        return PACKAGE_ROOT
    return here


def data_dir(name: str) -> Path:
    """The read-only directory ``name`` (``corpus`` or ``prompts``), first found of: the project
    directory's, the checkout's, the copy installed with the package."""
    candidates = [project_dir() / name, PACKAGE_ROOT / name, BUNDLED_DIR / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    # Nothing anywhere (a broken install): name the first place, so the error says where to look.
    return candidates[0]


def data_file(*parts: str) -> Path:
    """A read-only data file (e.g. ``eval/data/reference-labels/actions.jsonl``), first found of:
    the project directory's, the checkout's, the copy installed with the package. Looked up file
    by file, because a project's own ``eval/`` holds its results and need not hold the data."""
    candidates = [root.joinpath(*parts) for root in (project_dir(), PACKAGE_ROOT, BUNDLED_DIR)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def corpus_dir() -> Path:
    """The corpus directory: ``EVIDENCE_CORPUS``, else the first ``corpus/`` of :func:`data_dir`."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else data_dir("corpus")


def results_dir() -> Path:
    """Where evaluation runs are written: ``EVIDENCE_EVAL_RESULTS``, else ``<project>/eval/results``."""
    env = os.environ.get("EVIDENCE_EVAL_RESULTS")
    return Path(env) if env else project_dir() / "eval" / "results"


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


def new_id(table: sqlite_utils.db.Table) -> int:
    """The integer primary key of the row just inserted into `table` (`table.insert(...)` returns it)."""
    pk = table.last_pk
    if not isinstance(pk, int):  # every table the package inserts into this way has an integer id
        raise TypeError(f"{table.name}: the inserted row's key is {pk!r}, not an integer id")
    return pk
