"""The gold in the database: importing parsed reports, reading them back, score tables.

A chapter is identified by what it is: (summit, report kind, commitment number). A file
adds a version of each chapter it holds, unless that chapter is unchanged; importing the
same text twice changes nothing. Another file of the same chapter (renamed, re-extracted,
edited) is a new version of it, never a second report, and every reader goes through
:data:`CURRENT_CHAPTERS`, the newest version of each chapter. Each file is imported in one
transaction, so a bad file leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from .dates import long_date, now_utc
from .files import read_toml
from .models import MEMBER_CODES, Chapter, Report, resolve_member
from .report_book import check_front_matter, read_front_matter
from .report_layout import layout_text, looks_published, pages_from_text
from .report_pdf import is_pdf, read_pdf_report
from .reports import ReportParseError, parse_report, read_report_text
from .rubric import format_average, format_score

MANIFEST = "manifest.toml"
REPORT_SUFFIXES = (".txt", ".md", ".markdown", ".pdf")


class ManifestError(Exception):
    """A manifest.toml that cannot be read."""


@dataclass
class ImportResult:
    """What importing one file did."""

    path: Path
    status: str  # new (all its chapters are new) | new-version (some became a new version) | unchanged
    report_id: str
    chapters: list[int]  # the commitment numbers the file holds
    versions: dict[int, int]  # commitment -> the version of it this file's text is
    added: list[int]  # the chapters this import added a version of
    current: dict[int, int]  # commitment -> its current version, after this import
    evidence: int
    warnings: int

    @property
    def version(self) -> int:
        """The (highest) version of the file's chapters this text is."""
        return max(self.versions.values())


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
    laid_out = None
    source_format: str | None
    if path.suffix.lower() == ".pdf" or is_pdf(path):
        # A PDF: its pages' text rebuilt into the PDF-text shape; errors and warnings name pages.
        laid_out = read_pdf_report(path)
        text, source_format = laid_out.text, "pdf-text"
    else:
        text, source_format = read_report_text(path), entry.get("format")
        if looks_published(text):
            # Text a PDF library extracted page by page, running headers and page feet included.
            laid_out = layout_text(pages_from_text(text))
            text, source_format = laid_out.text, "pdf-text"
    try:
        report = parse_report(
            text,
            file_name=path.name,
            source_format=source_format,
            kind=entry.get("kind"),
            summit=entry.get("summit"),
            period=period,
        )
    except ReportParseError as exc:
        exc.path = str(path)  # name the file as the user gave it
        if laid_out is not None and exc.line is not None:
            exc.path, exc.line = f"{path}, page {laid_out.page_of(exc.line)}", None
        raise
    # A whole report's front matter (contents, Tables A-D) checked against its chapters.
    first_line = min((c.line for c in report.chapters), default=None)
    report.warnings.extend(check_front_matter(read_front_matter(text, first_line), report))
    if laid_out is not None:
        for warning in report.warnings:
            if warning.line is not None:  # a line of the rebuilt text means nothing to a reader
                warning.message = f"page {laid_out.page_of(warning.line)}: {warning.message}"
                warning.line = None
    if report.kind is None or report.period_start is None or report.period_end is None:
        raise ReportParseError(
            "report kind and compliance period are unknown: the title page does not give them "
            f"and {path.parent / MANIFEST} has no entry for this file",
            path=str(path),
        )
    if not report.summit:
        raise ReportParseError(
            "the summit is unknown (a chapter is identified by summit, report kind and commitment): "
            f"the title page does not give it and {path.parent / MANIFEST} has no 'summit' for this file",
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


def chapter_sha(report: Report, chapter: Chapter) -> str:
    """Content id of a chapter as data: what was parsed from it (without line numbers, which
    move when the chapter sits elsewhere in a file), the footnotes it cites, its period."""

    def without_lines(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_lines(v) for k, v in value.items() if k != "line"}
        if isinstance(value, list):
            return [without_lines(v) for v in value]
        return value

    cited = [report.footnotes[n].model_dump(mode="json") for n in chapter.footnotes if n in report.footnotes]
    data = {
        "period": [str(report.period_start), str(report.period_end)],
        "chapter": chapter.model_dump(mode="json"),
        "footnotes": cited,
    }
    blob = json.dumps(without_lines(data), sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _versions(db: sqlite_utils.Database, report: Report, number: int) -> list[dict]:
    """The versions of one of the report's chapters, newest first."""
    return list(
        db.query(
            """select version, content_sha, report_id from commitments
               where summit = ? and report_kind = ? and number = ? order by version desc""",
            [report.summit, report.kind, number],
        )
    )


def _check_same_description(db: sqlite_utils.Database, report: Report, path: Path) -> None:
    """A text imported before must be described as it was then (the text's id is its content)."""
    row = db.table("reports").get(report.sha256)
    then = (row["summit"], row["kind"], row["period_start"], row["period_end"])
    now = (report.summit, report.kind, str(report.period_start), str(report.period_end))
    if then != now:
        raise ReportParseError(
            f"this text was imported before as {' '.join(map(str, then))} and is now described as "
            f"{' '.join(map(str, now))}; a text keeps the description it was first imported with",
            path=str(path),
        )


def import_report(db: sqlite_utils.Database, path: Path) -> ImportResult:
    """Parse one file and add a version of each chapter in it that differs from the chapter's
    current version. Raises :class:`ReportParseError` and writes nothing on bad or incomplete
    input; a text imported before changes nothing (``unchanged``)."""
    report = parse_with_manifest(path)
    numbers = [c.number for c in report.chapters]
    evidence_count = sum(len(m.actions) for c in report.chapters for m in c.members)
    versions: dict[int, int] = {}
    current: dict[int, int] = {}
    new: list[tuple[Chapter, int, str]] = []
    with db.atomic():
        seen = db.table("reports").count_where("id = ?", [report.sha256]) > 0
        if seen:
            _check_same_description(db, report, path)
        for chapter in report.chapters:
            sha = chapter_sha(report, chapter)
            known = _versions(db, report, chapter.number)
            current[chapter.number] = known[0]["version"] if known else 0
            if seen or (known and known[0]["content_sha"] == sha):
                # Which version this text is: the one stored from it, or with its content.
                same = [v for v in known if v["report_id"] == report.sha256 or v["content_sha"] == sha]
                versions[chapter.number] = (same or known)[0]["version"]
                continue
            versions[chapter.number] = current[chapter.number] = current[chapter.number] + 1
            new.append((chapter, versions[chapter.number], sha))
        if new:
            _store(db, report, new)
    added = [chapter.number for chapter, _, _ in new]
    if not added:
        status = "unchanged"
    elif any(versions[n] > 1 for n in added):
        status = "new-version"
    else:
        status = "new"
    warnings = len(report.warnings) if added else 0
    return ImportResult(
        path, status, report.sha256, numbers, versions, added, current, evidence_count, warnings
    )


def _store(db: sqlite_utils.Database, report: Report, chapters: list[tuple[Chapter, int, str]]) -> None:
    """Write the file (its footnotes and warnings) and the given (chapter, version, content id)s."""
    rid = report.sha256
    previous = db.execute(
        "select max(version) from reports where file_name = ?", [report.file_name]
    ).fetchone()[0]
    db.table("reports").insert(
        {
            "id": rid,
            "file_name": report.file_name,
            "version": (previous or 0) + 1,  # the how-manyth text under this file name
            "kind": report.kind,
            "summit": report.summit,
            "period_start": report.period_start.isoformat() if report.period_start else None,
            "period_end": report.period_end.isoformat() if report.period_end else None,
            "source_format": report.source_format,
            "chars": None,
            "imported_utc": now_utc(),
        }
    )
    db.table("footnotes").insert_all(
        (
            {
                "report_id": rid,
                **fn.model_dump(mode="json"),
            }
            for fn in report.footnotes.values()
        ),
    )
    for chapter, version, content_sha in chapters:
        cid = (
            db.table("commitments")
            .insert(
                {
                    "report_id": rid,
                    "number": chapter.number,
                    "summit": report.summit,
                    "report_kind": report.kind,
                    "version": version,
                    "content_sha": content_sha,
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
            db.table("member_sections").insert(
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
            db.table("gold_evidence").insert_all(
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
    db.table("parse_warnings").insert_all({"report_id": rid, **w.model_dump()} for w in report.warnings)


def import_paths(db: sqlite_utils.Database, paths: list[Path]) -> list[ImportResult]:
    """Import files (or directories of them); stops at the first bad file, keeping earlier ones."""
    return [import_report(db, path) for path in expand_paths(paths)]


# ---------------------------------------------------------------------------
# Reading back: always the newest version of each chapter. Every query of the gold tables
# (commitments, member_sections, gold_evidence, footnotes, parse_warnings) starts from
# this definition, so no reader can see two versions of one chapter.

CURRENT_CHAPTERS = """
select c.* from commitments c
where c.version = (
    select max(c2.version) from commitments c2
    where c2.summit = c.summit and c2.report_kind = c.report_kind and c2.number = c.number
)
"""


def current_reports(db: sqlite_utils.Database) -> list[dict]:
    """The imported files that hold the current version of at least one chapter."""
    if "reports" not in db.table_names():
        return []
    sql = f"select r.* from reports r where r.id in (select report_id from ({CURRENT_CHAPTERS})) order by r.file_name"
    return list(db.query(sql))


def current_commitments(db: sqlite_utils.Database, commitment: int | None = None) -> list[dict]:
    """The current version of each chapter, with its file's name and compliance period."""
    sql = f"""
        select c.*, r.file_name, r.period_start, r.period_end, r.source_format
        from ({CURRENT_CHAPTERS}) c join reports r on r.id = c.report_id
        where (:n is null or c.number = :n)
        order by c.number, c.report_kind, c.summit
    """
    return list(db.query(sql, {"n": commitment}))


def commitment_sections(db: sqlite_utils.Database, commitment: dict) -> tuple[int, list[dict]]:
    """A stored commitment's cited actions, and its member sections in order, each with
    ``actions``: the number of cited actions for that member."""
    actions = db["gold_evidence"].count_where("commitment_id = ?", [commitment["id"]])
    sections = []
    for s in db["member_sections"].rows_where("commitment_id = ?", [commitment["id"]], order_by="position"):
        count = db["gold_evidence"].count_where(
            "commitment_id = ? and member = ?", [commitment["id"], s["member"]]
        )
        sections.append({**s, "actions": count})
    return actions, sections


def chapter_versions(db: sqlite_utils.Database) -> list[dict]:
    """Every version of every chapter, newest first within a chapter, ``current`` marking the one read."""
    if "commitments" not in db.table_names():
        return []
    sql = f"""
        select c.summit, c.report_kind, c.number, c.version, c.title, c.content_sha,
               r.file_name, r.id as report_id, r.imported_utc,
               c.id in (select id from ({CURRENT_CHAPTERS})) as current,
               (select count(*) from gold_evidence e where e.commitment_id = c.id) as actions
        from commitments c join reports r on r.id = c.report_id
        order by c.number, c.report_kind, c.summit, c.version desc
    """
    return list(db.query(sql))


def evidence_items(
    db: sqlite_utils.Database, commitment: int | None = None, member: str | None = None
) -> list[dict]:
    """Every cited action of the current reports, with its resolved footnotes."""
    member = resolve_member(member)
    sql = f"""
        select e.*, r.file_name, c.report_kind, c.summit, c.version, c.title as commitment_title
        from gold_evidence e
        join ({CURRENT_CHAPTERS}) c on c.id = e.commitment_id
        join reports r on r.id = c.report_id
        where (:n is null or e.commitment = :n) and (:m is null or e.member = :m)
        order by e.commitment, c.report_kind, c.summit, (select position from member_sections s
            where s.commitment_id = e.commitment_id and s.member = e.member), e.seq
    """
    rows = list(db.query(sql, {"n": commitment, "m": member}))
    notes: dict[tuple[str, int], dict | None] = {}  # None: a footnote number the report lacks
    for row in rows:
        numbers = json.loads(row["footnotes"])
        missing = [(row["report_id"], n) for n in numbers if (row["report_id"], n) not in notes]
        for rid, n in missing:
            found = list(db.table("footnotes").rows_where("report_id = ? and number = ?", [rid, n]))
            notes[(rid, n)] = found[0] if found else None
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
        "version": row["version"],
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
        sections = list(
            db.table("member_sections").rows_where("commitment_id = ?", [c["id"]], order_by="position")
        )
        scores = [s["score"] for s in sections if s["score"] is not None]  # (not assessed: left out)
        tables.append(
            {
                "report": c["file_name"],
                "report_kind": c["report_kind"],
                "summit": c["summit"],
                "version": c["version"],
                "commitment": c["number"],
                "title": c["title"],
                "period": [c["period_start"], c["period_end"]],
                "members": [
                    {
                        "member": s["member"],
                        "score": s["score"],
                        "assessed": s["score"] is not None,
                        "printed": printed_score(s["score"]),
                        "column": s["table_column"],
                    }
                    for s in sections
                ],
                "average": c["average_printed"],
                "average_computed": format_average(scores) if scores else None,
            }
        )
    return tables


NOT_ASSESSED = "not assessed"


def printed_score(score: int | None) -> str:
    """'+1', '0', '-1' as the reports print a score; 'not assessed' for a member without one."""
    return NOT_ASSESSED if score is None else format_score(score)


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
        if m["score"] is None:
            lines.append(m["member"].ljust(name_width) + m["printed"])
            continue
        cells = []
        for (key, _), width in zip(COLUMNS, widths, strict=True):
            cells.append((m["printed"] if SCORE_COLUMN[m["score"]] == key else "").ljust(width))
        lines.append(m["member"].ljust(name_width) + "".join(cells).rstrip())
    average = table["average"] or table["average_computed"] or ""
    lines.append("Average".ljust(name_width) + " " * widths[0] + average)
    return "\n".join(lines)


def warnings_for(db: sqlite_utils.Database) -> list[dict]:
    """The parse warnings of the current chapters, and of the files that hold them (a warning
    about one chapter is shown only while that chapter's version from that file is current)."""
    sql = f"""
        select w.*, r.file_name from parse_warnings w join reports r on r.id = w.report_id
        where exists (
            select 1 from ({CURRENT_CHAPTERS}) c
            where c.report_id = w.report_id and (w.commitment is null or c.number = w.commitment)
        )
        order by r.file_name, w.id
    """
    return list(db.query(sql))
