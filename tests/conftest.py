"""Shared fixtures. Every test gets its own database: nothing touches the project's."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier.reports import parse_report_file

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "corpus" / "reports"
INTERIM_18 = REPORTS / "000_977e9f2715cc7214.txt"
FINAL_19 = REPORTS / "001_917aac6ecb12f93e.txt"
EXCERPTS = Path(__file__).resolve().parent / "fixtures" / "excerpts"


@pytest.fixture(autouse=True)
def isolated_db(tmp_path, monkeypatch):
    """Point EVIDENCE_DB at a fresh file so no test reads or writes the project's database."""
    path = tmp_path / "evidence.db"
    monkeypatch.setenv("EVIDENCE_DB", str(path))
    monkeypatch.delenv("EVIDENCE_CORPUS", raising=False)
    return path


@pytest.fixture(scope="session")
def report18():
    return parse_report_file(INTERIM_18, kind="interim", period=_period("2024-06-15", "2024-12-20"))


@pytest.fixture(scope="session")
def report19():
    return parse_report_file(FINAL_19, kind="final", period=_period("2024-06-15", "2025-05-15"))


def _period(a: str, b: str):
    import datetime as dt

    return dt.date.fromisoformat(a), dt.date.fromisoformat(b)


def excerpt(name: str) -> str:
    return (EXCERPTS / name).read_text(encoding="utf-8")


def fetch_config(**changes):
    """Fetch settings for tests: the local newsroom allowed, fast retries, no per-host delay."""
    from classifier.config import FetchConfig

    base = dict(
        contact="tests@example.org",
        allow_private=True,
        per_host_delay=0.0,
        timeout=1.0,
        retries=2,
        backoff=0.05,
        max_bytes=1_000_000,
    )
    return FetchConfig(**{**base, **changes})


@pytest.fixture(scope="session")
def review_db_template(tmp_path_factory):
    """A review database built once per session (see tests/webapp.py); copy it, do not write it."""
    from .webapp import build_review_db

    path = tmp_path_factory.mktemp("review") / "review.db"
    build_review_db(path)
    return path


@pytest.fixture
def review_db(review_db_template, isolated_db):
    """A fresh copy of the review database, as this test's database."""
    import sqlite3

    source = sqlite3.connect(review_db_template)
    target = sqlite3.connect(isolated_db)
    source.backup(target)
    source.close()
    target.close()
    return isolated_db
