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


# --- A chapter is identified by what it is -------------------------------------


def copy_of(tmp_path, source, name, edit=lambda text: text):
    """A copy of a bundled chapter under another name, in a folder without a manifest (the
    title page describes it), with ``edit`` applied to its text."""
    folder = tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(edit(source.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def gold_counts(db):
    per = {}
    for row in gold.evidence_items(db):
        per[row["commitment"]] = per.get(row["commitment"], 0) + 1
    return per


def test_another_file_of_a_chapter_is_a_new_version_not_a_second_report(tmp_path):
    """Renamed and edited copies of a chapter (here: cut inside its last URL, a cut nothing in
    the chapter shows) each become the chapter's next version; readers see one version."""
    db = open_db()
    gold.import_paths(db, [REPORTS])
    once = gold_counts(db)
    assert once == {18: 198, 19: 200}
    cut = copy_of(tmp_path, FINAL_19, "final-19-copy.txt", lambda text: text[:-30])
    result = gold.import_report(db, cut)
    assert gold_counts(db) == once  # every action once, not once per file
    assert len(gold.score_tables(db, 19)) == 1
    assert (result.status, result.versions, result.added) == ("new-version", {19: 2}, [19])
    edited = copy_of(
        tmp_path,
        FINAL_19,
        "re-extracted.txt",
        lambda t: t.replace("Thus, Japan receives a score of 0.", "Thus, Japan receives a score of +1."),
    )
    assert gold.import_report(db, edited).versions == {19: 3}
    assert gold_counts(db) == once  # every action once, not once per file
    tables = gold.score_tables(db)
    assert [t["commitment"] for t in tables] == [18, 19]
    assert tables[1]["version"] == 3 and tables[1]["report"] == "re-extracted.txt"
    japan = next(m for m in tables[1]["members"] if m["member"] == "Japan")
    assert japan["score"] == 1  # the newest version's reading
    assert [c["number"] for c in gold.current_commitments(db)] == [18, 19]
    assert [r["file_name"] for r in gold.current_reports(db)] == [INTERIM_18.name, "re-extracted.txt"]
    versions = [(v["number"], v["version"], v["current"], v["file_name"]) for v in gold.chapter_versions(db)]
    assert versions == [
        (18, 1, 1, INTERIM_18.name),
        (19, 3, 1, "re-extracted.txt"),
        (19, 2, 0, "final-19-copy.txt"),
        (19, 1, 0, FINAL_19.name),
    ]
    # Warnings are those of the current versions only: each chapter's once.
    codes = [w["code"] for w in gold.warnings_for(db) if w["code"] == "rule-mismatch"]
    assert codes == ["rule-mismatch"]
    assert {w["file_name"] for w in gold.warnings_for(db)} == {INTERIM_18.name, "re-extracted.txt"}


def test_the_same_text_under_another_name_is_unchanged(tmp_path):
    """The same text renamed, and a new file whose chapter reads exactly as the current version
    (only blank lines differ), add nothing."""
    db = open_db()
    gold.import_report(db, INTERIM_18)
    before = counts(db)
    renamed = gold.import_report(db, copy_of(tmp_path, INTERIM_18, "renamed.md"))
    spaced = copy_of(tmp_path, INTERIM_18, "spaced.md", lambda text: text.replace("\n\n", "\n\n\n"))
    respaced = gold.import_report(db, spaced)
    assert counts(db) == before
    assert (renamed.status, renamed.versions, renamed.added) == ("unchanged", {18: 1}, [])
    assert (respaced.status, respaced.versions, respaced.added) == ("unchanged", {18: 1}, [])


def test_a_file_of_several_chapters_adds_a_version_to_each_that_changed(tmp_path):
    text = INTERIM_18.read_text(encoding="utf-8")
    chapter = text[text.index("## 18. Migration") :]
    seventeen = chapter.replace("## 18. Migration", "## 17. Migration", 1)
    db = open_db()
    gold.import_report(db, INTERIM_18)
    both = copy_of(tmp_path, INTERIM_18, "two.md", lambda t: t + "\n\n" + seventeen)
    result = gold.import_report(db, both)
    assert gold_counts(db) == {17: 198, 18: 198}
    assert (result.status, result.versions, result.added) == ("new", {18: 1, 17: 1}, [17])
    japan = ("Thus, Japan receives a score of 0.", "Thus, Japan receives a score of +1.")
    edited = copy_of(
        tmp_path, INTERIM_18, "two-edited.md", lambda t: (t + "\n\n" + seventeen).replace(*japan)
    )
    result = gold.import_report(db, edited)
    assert (result.status, result.versions, sorted(result.added)) == ("new-version", {18: 2, 17: 2}, [17, 18])
    assert gold_counts(db) == {17: 198, 18: 198}
    assert [(c["number"], c["version"], c["file_name"]) for c in gold.current_commitments(db)] == [
        (17, 2, "two-edited.md"),
        (18, 2, "two-edited.md"),
    ]


def test_a_text_keeps_the_description_it_was_imported_with(tmp_path):
    db = open_db()
    folder = tmp_path / "reports"
    folder.mkdir()
    shutil.copy(INTERIM_18, folder)
    manifest = (REPORTS / "manifest.toml").read_text(encoding="utf-8")
    (folder / "manifest.toml").write_text(manifest, encoding="utf-8")
    gold.import_report(db, folder / INTERIM_18.name)
    (folder / "manifest.toml").write_text(
        manifest.replace('summit = "2024 Apulia"', 'summit = "2024 Puglia"', 1)
    )
    before = counts(db)
    with pytest.raises(ReportParseError, match="was imported before as 2024 Apulia interim") as info:
        gold.import_report(db, folder / INTERIM_18.name)
    assert "\n" not in str(info.value)
    assert counts(db) == before


# --- An incomplete chapter is refused -------------------------------------------


def cut_before(marker, *, after=0):
    return lambda text: text[: text.index(marker) + after]


CUTS = {
    # in the last kilobyte: the last footnotes, inside them, before the last URL
    "md: before the last footnote": (
        INTERIM_18,
        cut_before("<sup>3027</sup> Commission"),
        "footnote 3027 cited",
    ),
    "md: inside the last footnote's title": (
        INTERIM_18,
        cut_before("<sup>3027</sup> Commission proposes", after=40),
        "ends inside footnote 3027, before its URL",
    ),
    "md: inside the last footnote's link": (
        INTERIM_18,
        cut_before("[https://commission.europa.eu/news/commission-proposes", after=50),
        "ends inside footnote 3027's link",
    ),
    "md: before the last two footnotes": (
        INTERIM_18,
        cut_before("<sup>3026</sup> France"),
        "footnotes 3026-3027",
    ),
    "pdf: before the last footnote": (FINAL_19, cut_before("⁴⁶⁴¹ Eurojust Meeting"), "footnote 4641 cited"),
    "pdf: before the last footnote's URL": (
        FINAL_19,
        cut_before("Access Date: 5 April 2025. https://www.eurojust.europa.eu/publication", after=26),
        "ends inside footnote 4641, before its URL",
    ),
    # mid-member and before the footnotes
    "md: inside Japan's section": (
        INTERIM_18,
        cut_before("Thus, Japan receives"),
        "Japan has no 'receives a score of' sentence; the assessment table lists United Kingdom, "
        "United States, European Union but there is no section for them",
    ),
    "md: after the last score sentence": (
        INTERIM_18,
        cut_before("Thus, the European Union receives a score of +1.", after=48),
        "footnotes 3024-3027 cited but not printed",
    ),
    "pdf: inside the United Kingdom's section": (
        FINAL_19,
        cut_before("Thus, the United Kingdom receives"),
        "United Kingdom has no 'receives a score of' sentence",
    ),
    "pdf: before the last member's footnotes": (
        FINAL_19,
        cut_before("Analyst: Samantha de Verteuil\n\n⁴⁶³⁹"),
        "footnotes 4636-4641 cited but not printed",
    ),
}


@pytest.mark.parametrize("case", list(CUTS))
def test_a_truncated_copy_is_refused_writing_nothing(tmp_path, case):
    """Each cut copy is refused with one line naming the file and what is missing; nothing is
    written, into an empty database or one that holds the whole chapter; the full file then
    imports as before."""
    source, cut, missing = CUTS[case]
    path = copy_of(tmp_path, source, "cut.txt", cut)
    assert path.stat().st_size < source.stat().st_size
    db = open_db()
    with pytest.raises(ReportParseError) as info:
        gold.import_report(db, path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "\n" not in message
    assert "is incomplete (the file looks truncated)" in message and missing in message, message
    assert all(n == 0 for n in counts(db).values())
    full = gold.import_report(db, source)
    assert full.status == "new" and full.evidence in (198, 200)
    before = counts(db)
    with pytest.raises(ReportParseError):
        gold.import_report(db, path)
    assert counts(db) == before
    assert [v["version"] for v in gold.chapter_versions(db)] == [1]


def test_upgrade_numbers_the_chapters_already_imported_in_import_order(isolated_db):
    """A database from before chapter identity (m010), holding a chapter imported twice under
    two file names (which read back as two reports then), reads back one version of it."""
    from classifier.migrations import migrations

    db = open_db(migrate=False)
    migrations.apply(db, stop_before="m010_chapter_versions")
    for rid, name, when in (
        ("sha256:aaaa", "001_917aac6ecb12f93e.txt", "2025-01-01T00:00:00+00:00"),
        ("sha256:bbbb", "copy.txt", "2025-02-01T00:00:00+00:00"),
    ):
        db["reports"].insert(
            {
                "id": rid,
                "file_name": name,
                "version": 1,
                "kind": "final",
                "summit": "2024 Apulia",
                "period_start": "2024-06-15",
                "period_end": "2025-05-15",
                "source_format": "pdf-text",
                "imported_utc": when,
            }
        )
        cid = db["commitments"].insert({"report_id": rid, "number": 19, "title": name, "line": 1}).last_pk
        db["gold_evidence"].insert(
            {
                "key": f"{rid}:19:JP:1",
                "report_id": rid,
                "commitment_id": cid,
                "commitment": 19,
                "member": "Japan",
                "seq": 1,
                "text": name,
                "footnotes": "[]",
                "line": 2,
            }
        )
    db = open_db()
    versions = [(v["version"], v["current"], v["file_name"]) for v in gold.chapter_versions(db)]
    assert versions == [(2, 1, "copy.txt"), (1, 0, "001_917aac6ecb12f93e.txt")]
    assert [row["text"] for row in gold.evidence_items(db)] == ["copy.txt"]
    # and the next file of the chapter is its third version
    result = gold.import_report(db, FINAL_19)
    assert (result.status, result.versions) == ("new-version", {19: 3})
    assert gold_counts(db) == {19: 200}
