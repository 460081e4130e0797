"""Importing reports into a real SQLite file: idempotence, versions, transactions, queries."""

from __future__ import annotations

import json
import shutil

import pytest
import sqlite_utils

from classifier import gold
from classifier.reports import ReportParseError
from classifier.store import open_db

from .conftest import FINAL_19, INTERIM_18, REPORTS


def counts(db):
    return {
        t: db[t].count
        for t in ("reports", "commitments", "member_sections", "footnotes", "gold_evidence", "parse_warnings")
    }


def test_import_is_idempotent(isolated_db):
    db = open_db()
    first = gold.import_paths(db, [REPORTS])
    assert [r.status for r in first] == ["new", "new"]
    before = counts(db)
    second = gold.import_paths(db, [REPORTS])
    assert [r.status for r in second] == ["unchanged", "unchanged"]
    assert counts(db) == before
    assert before["gold_evidence"] == sum(r.evidence for r in first) > 0


def test_changed_file_becomes_a_new_version(tmp_path):
    db = open_db()
    folder = tmp_path / "reports"
    folder.mkdir()
    shutil.copy(REPORTS / "manifest.toml", folder)
    target = folder / INTERIM_18.name
    shutil.copy(INTERIM_18, target)
    assert gold.import_report(db, target).version == 1
    text = target.read_text(encoding="utf-8")
    target.write_text(
        text.replace("Thus, Japan receives a score of 0.", "Thus, Japan receives a score of +1."),
        encoding="utf-8",
    )
    result = gold.import_report(db, target)
    assert (result.status, result.version) == ("new-version", 2)
    assert [r["version"] for r in gold.current_reports(db)] == [2]
    (table,) = gold.score_tables(db, 18)
    japan = next(m for m in table["members"] if m["member"] == "Japan")
    assert japan["score"] == 1  # the sentence's score, with a warning about the table
    assert db["reports"].count == 2  # the old version is kept
    assert any(w["code"] == "score-conflict" for w in gold.warnings_for(db))


def test_failed_import_writes_nothing(tmp_path, monkeypatch):
    """Fault injection (a stub that fails mid-write): the transaction leaves no partial report."""
    db = open_db()
    gold.import_report(db, FINAL_19)
    before = counts(db)

    real_insert_all = sqlite_utils.db.Table.insert_all

    def insert_all_failing_on_warnings(self, records, *args, **kwargs):
        if self.name == "parse_warnings":
            raise RuntimeError("disk full while writing warnings")
        return real_insert_all(self, records, *args, **kwargs)

    monkeypatch.setattr(sqlite_utils.db.Table, "insert_all", insert_all_failing_on_warnings)
    with pytest.raises(RuntimeError):
        gold.import_report(db, INTERIM_18)
    fresh = open_db()
    assert counts(fresh) == before


def test_bad_file_among_good_ones_keeps_earlier_imports(tmp_path):
    db = open_db()
    bad = tmp_path / "bad.txt"
    bad.write_text("## 3. Title: With colon\n\n“quoted”\n\n### Assessment\n", encoding="utf-8")
    with pytest.raises(ReportParseError) as info:
        gold.import_paths(db, [INTERIM_18, bad])
    assert str(bad) in str(info.value)
    assert [r["file_name"] for r in gold.current_reports(db)] == [INTERIM_18.name]


def test_evidence_records_have_the_documented_shape():
    db = open_db()
    gold.import_paths(db, [REPORTS])
    rows = gold.evidence_items(db, commitment=18, member="uk")
    assert len(rows) == 29
    record = gold.evidence_record(rows[0])
    assert {"report", "commitment", "member", "date", "text", "footnotes"} <= set(record)
    assert record["member"] == "United Kingdom" and record["commitment"] == 18
    assert record["date"] == "2024-07-07"
    (fn,) = record["footnotes"]
    assert set(fn) == {"number", "title", "publisher", "place", "published", "accessed", "url"}
    assert fn["url"] and fn["published"] == "2024-07-07"
    json.dumps(record)  # serialisable
    with pytest.raises(ValueError, match="unknown member"):
        gold.evidence_items(db, member="Atlantis")


def test_score_tables_read_back_as_printed():
    db = open_db()
    gold.import_paths(db, [REPORTS])
    tables = {t["commitment"]: t for t in gold.score_tables(db)}
    assert tables[18]["average"] == tables[18]["average_computed"] == "+0.88 (94%)"
    assert tables[19]["average"] == tables[19]["average_computed"] == "+0.38 (69%)"
    assert [m["printed"] for m in tables[19]["members"]] == ["0"] * 5 + ["+1"] * 3


def test_manifest_errors(tmp_path):
    (tmp_path / "manifest.toml").write_text("[[reports]]\nkind = 'interim'\n", encoding="utf-8")
    with pytest.raises(gold.ManifestError, match="has no 'file'"):
        gold.read_manifest(tmp_path)
    (tmp_path / "manifest.toml").write_text("[[reports]\n", encoding="utf-8")
    with pytest.raises(gold.ManifestError, match="not valid TOML"):
        gold.read_manifest(tmp_path)


def test_report_without_kind_or_period_is_refused(tmp_path):
    text = INTERIM_18.read_text(encoding="utf-8")
    anonymous = text[text.index("## 18. Migration") :]
    path = tmp_path / "chapter.txt"
    path.write_text(anonymous, encoding="utf-8")
    with pytest.raises(ReportParseError, match="kind and compliance period are unknown"):
        gold.import_report(open_db(), path)
