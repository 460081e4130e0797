"""The gold in the database: importing parsed reports, reading them back, score tables.

Importing is idempotent (the same text twice changes nothing; a changed file becomes
a new version) and happens in one transaction per file, so a bad file leaves nothing
half-written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from .dates import long_date, now_utc
from .files import read_toml
from .models import MEMBER_CODES, MEMBERS, Report
from .reports import ReportParseError, parse_report, read_report_text
from .rubric import format_average, format_score

MANIFEST = "manifest.toml"
REPORT_SUFFIXES = (".txt", ".md", ".markdown")


class ManifestError(Exception):
    """A manifest.toml that cannot be read."""


@dataclass
class ImportResult:
    path: Path
    status: str  # new | unchanged | new-version
    report_id: str
    version: int
    chapters: list[int]
    evidence: int
    warnings: int


def read_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """``{file name: entry}`` from a directory's manifest.toml, or {} when there is none."""
    path = directory / MANIFEST
    if not path.exists():
        return {}
    data = read_toml(path, ManifestError, "manifest")
    entries = {}
    for entry in data.get("reports", []):
        if "file" not in entry:
            raise ManifestError(f"{path}: a [[reports]] entry has no 'file'")
        if entry.get("kind") not in (None, "interim", "final"):
            raise ManifestError(f"{path}: {entry['file']}: kind must be interim or final")
        entries[entry["file"]] = entry
    return entries


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for its manifest's files, else its report-like files."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            manifest = read_manifest(path)
            found = (
                [path / name for name in manifest]
                if manifest
                else sorted(p for p in path.iterdir() if p.suffix in REPORT_SUFFIXES)
            )
            if not found:
                raise ReportParseError("directory holds no report files", path=str(path))
            out.extend(found)
        else:
            out.append(path)
    return out


def parse_with_manifest(path: Path) -> Report:
    """Parse a report file using its directory's manifest entry when there is one."""
    entry = read_manifest(path.parent).get(path.name, {})
    period = None
    if "period_start" in entry and "period_end" in entry:
        period = (entry["period_start"], entry["period_end"])
    text = read_report_text(path)
    try:
        report = parse_report(
            text,
            file_name=path.name,
            source_format=entry.get("format"),
            kind=entry.get("kind"),
            summit=entry.get("summit"),
            period=period,
        )
    except ReportParseError as exc:
        exc.path = str(path)  # name the file as the user gave it
        raise
    if report.kind is None or report.period_start is None or report.period_end is None:
        raise ReportParseError(
            "report kind and compliance period are unknown: the title page does not give them "
            f"and {path.parent / MANIFEST} has no entry for this file",
            path=str(path),
        )
    listed = entry.get("commitments")
    if listed is not None and sorted(listed) != sorted(c.number for c in report.chapters):
        raise ReportParseError(
            f"the manifest lists commitments {listed}, the file holds {[c.number for c in report.chapters]}",
            path=str(path),
        )
    return report


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def import_report(db: sqlite_utils.Database, path: Path) -> ImportResult:
    """Parse one file and store it. Raises :class:`ReportParseError` and writes nothing on bad input."""
    report = parse_with_manifest(path)
    chapters = [c.number for c in report.chapters]
    evidence_count = sum(len(m.actions) for c in report.chapters for m in c.members)
    if db["reports"].count_where("id = ?", [report.sha256]):
        row = db["reports"].get(report.sha256)
        return ImportResult(path, "unchanged", report.sha256, row["version"], chapters, evidence_count, 0)
    previous = db.execute(
        "select max(version) from reports where file_name = ?", [report.file_name]
    ).fetchone()[0]
    version = (previous or 0) + 1
    with db.atomic():
        _store(db, report, version)
    status = "new" if version == 1 else "new-version"
    return ImportResult(path, status, report.sha256, version, chapters, evidence_count, len(report.warnings))


def _store(db: sqlite_utils.Database, report: Report, version: int) -> None:
    rid = report.sha256
    db["reports"].insert(
        {
            "id": rid,
            "file_name": report.file_name,
            "version": version,
            "kind": report.kind,
            "summit": report.summit,
            "period_start": report.period_start.isoformat() if report.period_start else None,
            "period_end": report.period_end.isoformat() if report.period_end else None,
            "source_format": report.source_format,
            "chars": None,
            "imported_utc": now_utc(),
        }
    )
    db["footnotes"].insert_all(
        (
            {
                "report_id": rid,
                **fn.model_dump(mode="json"),
            }
            for fn in report.footnotes.values()
        ),
    )
    for chapter in report.chapters:
        cid = (
            db["commitments"]
            .insert(
                {
                    "report_id": rid,
                    "number": chapter.number,
                    "title": chapter.title,
                    "commitment": chapter.commitment,
                    "commitment_source": chapter.commitment_source,
                    "features": chapter.features,
                    "definitions": _j([d.model_dump() for d in chapter.definitions]),
                    "dimensions": _j([d.model_dump() for d in chapter.dimensions]),
                    "guidelines": _j(chapter.guidelines.model_dump()),
                    "scoring_guidelines": _j(chapter.scoring_guidelines),
                    "background": _j(chapter.background),
                    "average_printed": chapter.average_printed,
                    "line": chapter.line,
                }
            )
            .last_pk
        )
        columns = {row.member: row.column for row in chapter.assessment}
        for position, section in enumerate(chapter.members, start=1):
            db["member_sections"].insert(
                {
                    "commitment_id": cid,
                    "member": section.member,
                    "position": position,
                    "score": section.score,
                    "table_score": section.table_score,
                    "table_column": columns.get(section.member),
                    "heading_score": section.heading_score,
                    "sentence_score": section.sentence_score,
                    "analysts": _j(section.analysts),
                    "opening": section.opening,
                    "conclusions": _j(section.conclusions),
                    "score_sentence": section.score_sentence,
                    "line": section.line,
                }
            )
            db["gold_evidence"].insert_all(
                {
                    "key": f"{rid[7:19]}:{chapter.number}:{MEMBER_CODES[item.member]}:{item.seq}",
                    "report_id": rid,
                    "commitment_id": cid,
                    "commitment": chapter.number,
                    "member": item.member,
                    "seq": item.seq,
                    "date": item.date.isoformat() if item.date else None,
                    "date_raw": item.date_raw,
                    "date_source": item.date_source,
                    "text": item.text,
                    "footnotes": _j(item.footnotes),
                    "line": item.line,
                }
                for item in section.actions
            )
    db["parse_warnings"].insert_all({"report_id": rid, **w.model_dump()} for w in report.warnings)


def import_paths(db: sqlite_utils.Database, paths: list[Path]) -> list[ImportResult]:
    """Import files (or directories of them); stops at the first bad file, keeping earlier ones."""
    return [import_report(db, path) for path in expand_paths(paths)]


# ---------------------------------------------------------------------------
# Reading back: always the newest version of each report file.

CURRENT_REPORTS = """
select r.* from reports r
where r.version = (select max(version) from reports r2 where r2.file_name = r.file_name)
"""


def current_reports(db: sqlite_utils.Database) -> list[dict]:
    if "reports" not in db.table_names():
        return []
    return list(db.query(CURRENT_REPORTS + " order by r.file_name"))


def current_commitments(db: sqlite_utils.Database, commitment: int | None = None) -> list[dict]:
    sql = f"""
        select c.*, r.kind as report_kind, r.summit, r.file_name, r.period_start, r.period_end
        from commitments c join ({CURRENT_REPORTS}) r on r.id = c.report_id
        where (:n is null or c.number = :n)
        order by c.number, r.kind
    """
    return list(db.query(sql, {"n": commitment}))


def resolve_member(value: str | None) -> str | None:
    """'UK', 'uk', 'United Kingdom' -> 'United Kingdom'; None passes through."""
    if value is None:
        return None
    if value.upper() in MEMBERS:
        return MEMBERS[value.upper()]
    for name in MEMBERS.values():
        if name.lower() == value.strip().lower():
            return name
    raise ValueError(f"unknown member {value!r}: use one of {', '.join(MEMBERS)} or a full name")


def evidence_items(
    db: sqlite_utils.Database, commitment: int | None = None, member: str | None = None
) -> list[dict]:
    """Every cited action of the current reports, with its resolved footnotes."""
    member = resolve_member(member)
    sql = f"""
        select e.*, r.file_name, r.kind as report_kind, r.summit, c.title as commitment_title
        from gold_evidence e
        join ({CURRENT_REPORTS}) r on r.id = e.report_id
        join commitments c on c.id = e.commitment_id
        where (:n is null or e.commitment = :n) and (:m is null or e.member = :m)
        order by e.commitment, r.kind, (select position from member_sections s
            where s.commitment_id = e.commitment_id and s.member = e.member), e.seq
    """
    rows = list(db.query(sql, {"n": commitment, "m": member}))
    notes: dict[tuple[str, int], dict] = {}
    for row in rows:
        numbers = json.loads(row["footnotes"])
        missing = [(row["report_id"], n) for n in numbers if (row["report_id"], n) not in notes]
        for rid, n in missing:
            found = list(db["footnotes"].rows_where("report_id = ? and number = ?", [rid, n]))
            notes[(rid, n)] = found[0] if found else None  # type: ignore[assignment]
        out_notes = []
        for n in numbers:
            fn = notes.get((row["report_id"], n))
            out_notes.append(
                {
                    "number": n,
                    "title": fn and fn["title"],
                    "publisher": fn and fn["publisher"],
                    "place": fn and fn["place"],
                    "published": fn and fn["published"],
                    "accessed": fn and fn["accessed"],
                    "url": fn and fn["url"],
                }
            )
        row["footnote_details"] = out_notes
    return rows


def evidence_record(row: dict) -> dict:
    """The JSON shape of one cited action for ``gold evidence --format jsonl``."""
    return {
        "id": row["key"],
        "report": row["file_name"],
        "report_kind": row["report_kind"],
        "summit": row["summit"],
        "commitment": row["commitment"],
        "commitment_title": row["commitment_title"],
        "member": row["member"],
        "member_code": MEMBER_CODES[row["member"]],
        "seq": row["seq"],
        "date": row["date"],
        "date_source": row["date_source"],
        "text": row["text"],
        "footnotes": row["footnote_details"],
        "line": row["line"],
    }


def score_tables(db: sqlite_utils.Database, commitment: int | None = None) -> list[dict]:
    """Member scores per commitment with the average and percentage as printed."""
    tables = []
    for c in current_commitments(db, commitment):
        sections = list(db["member_sections"].rows_where("commitment_id = ?", [c["id"]], order_by="position"))
        scores = [s["score"] for s in sections]
        tables.append(
            {
                "report": c["file_name"],
                "report_kind": c["report_kind"],
                "summit": c["summit"],
                "commitment": c["number"],
                "title": c["title"],
                "period": [c["period_start"], c["period_end"]],
                "members": [
                    {
                        "member": s["member"],
                        "score": s["score"],
                        "printed": format_score(s["score"]),
                        "column": s["table_column"],
                    }
                    for s in sections
                ],
                "average": c["average_printed"],
                "average_computed": format_average(scores) if scores else None,
            }
        )
    return tables


COLUMNS = [("no", "No Compliance"), ("partial", "Partial Compliance"), ("full", "Full Compliance")]
SCORE_COLUMN = {-1: "no", 0: "partial", 1: "full"}


def render_score_table(table: dict) -> str:
    """The assessment table in the report's own layout, as plain text."""
    name_width = max(len("European Union"), *(len(m["member"]) for m in table["members"])) + 2
    widths = [len(title) + 3 for _, title in COLUMNS]
    kind = table["report_kind"].capitalize()
    lines = [
        f"{table['commitment']}. {table['title']}",
        f"{table['summit']} Summit {kind} Compliance Report, "
        f"{long_date(table['period'][0], '?')} to {long_date(table['period'][1], '?')}",
        "",
        (
            " " * name_width + "".join(title.ljust(w) for (_, title), w in zip(COLUMNS, widths, strict=True))
        ).rstrip(),
    ]
    for m in table["members"]:
        cells = []
        for (key, _), width in zip(COLUMNS, widths, strict=True):
            cells.append((m["printed"] if SCORE_COLUMN[m["score"]] == key else "").ljust(width))
        lines.append(m["member"].ljust(name_width) + "".join(cells).rstrip())
    average = table["average"] or table["average_computed"] or ""
    lines.append("Average".ljust(name_width) + " " * widths[0] + average)
    return "\n".join(lines)


def warnings_for(db: sqlite_utils.Database) -> list[dict]:
    sql = f"""
        select w.*, r.file_name from parse_warnings w join ({CURRENT_REPORTS}) r on r.id = w.report_id
        order by r.file_name, w.id
    """
    return list(db.query(sql))
