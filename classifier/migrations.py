"""Numbered schema migrations. Never edit one that has shipped: add the next."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("g7-evidence")


@migrations()
def m001_gold(db: Database) -> None:
    """Compliance reports as data: reports, chapters, member sections, evidence, footnotes."""
    db["reports"].create(
        {
            "id": str,  # sha256:<hex> of the file's text
            "file_name": str,
            "version": int,
            "kind": str,
            "summit": str,
            "period_start": str,
            "period_end": str,
            "source_format": str,
            "chars": int,
            "imported_utc": str,
        },
        pk="id",
    )
    db["reports"].create_index(["file_name", "version"], unique=True)
    db["commitments"].create(
        {
            "id": int,
            "report_id": str,
            "number": int,
            "title": str,
            "commitment": str,
            "commitment_source": str,
            "features": str,
            "definitions": str,  # JSON list of {term, definition}
            "dimensions": str,  # JSON list of {number, name, description} as the report writes them
            "guidelines": str,  # JSON {full, partial, non, strong_examples, weak_examples}
            "scoring_guidelines": str,  # JSON {"-1": text, "0": text, "+1": text}
            "background": str,  # JSON list of paragraphs
            "average_printed": str,
            "line": int,
        },
        pk="id",
        foreign_keys=[("report_id", "reports", "id")],
    )
    db["commitments"].create_index(["report_id", "number"], unique=True)
    db["member_sections"].create(
        {
            "id": int,
            "commitment_id": int,
            "member": str,
            "position": int,
            "score": int,
            "table_score": int,
            "table_column": str,
            "heading_score": int,
            "sentence_score": int,
            "analysts": str,  # JSON list
            "opening": str,
            "conclusions": str,  # JSON list of paragraphs
            "score_sentence": str,
            "line": int,
        },
        pk="id",
        foreign_keys=[("commitment_id", "commitments", "id")],
    )
    db["member_sections"].create_index(["commitment_id", "member"], unique=True)
    db["footnotes"].create(
        {
            "report_id": str,
            "number": int,
            "title": str,
            "publisher": str,
            "place": str,
            "published": str,
            "published_raw": str,
            "accessed": str,
            "url": str,
            "translation": str,
            "raw": str,
            "line": int,
        },
        pk=("report_id", "number"),
        foreign_keys=[("report_id", "reports", "id")],
    )
    db["gold_evidence"].create(
        {
            "id": int,
            "key": str,  # stable across re-imports of the same text: <report sha prefix>:<n>:<member>:<seq>
            "report_id": str,
            "commitment_id": int,
            "commitment": int,
            "member": str,
            "seq": int,
            "date": str,
            "date_raw": str,
            "date_source": str,
            "text": str,
            "footnotes": str,  # JSON list of footnote numbers, in citation order
            "line": int,
        },
        pk="id",
        foreign_keys=[("report_id", "reports", "id"), ("commitment_id", "commitments", "id")],
    )
    db["gold_evidence"].create_index(["key"], unique=True)
    db["gold_evidence"].create_index(["commitment", "member"])
    db["parse_warnings"].create(
        {
            "id": int,
            "report_id": str,
            "code": str,
            "message": str,
            "line": int,
            "commitment": int,
            "member": str,
        },
        pk="id",
        foreign_keys=[("report_id", "reports", "id")],
    )
