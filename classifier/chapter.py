"""Confirmed evidence -> a whole chapter draft in the report's form, as Markdown, HTML or Word.

The chapter has what a compliance report's chapter has: number and title, the quoted
commitment and its source, the assessment table with the average as the report prints it,
the commitment features, definitions and guidelines from the rubric, then each member's
section (:func:`classifier.draft.draft`) and the footnotes, numbered continuously through the
chapter in the report's citation form. The Markdown is written the way the bundled chapters
are, so the report parser (:func:`classifier.reports.parse_report`) reads it back.

A final report's chapter continues the interim one of the same commitment: the same queue
items (so the evidence and decisions of the interim period carry over), and each member's
section says how its score moved ("interim 0 → final +1").
"""

from __future__ import annotations

import html
from pathlib import Path

import sqlite_utils

from .dates import long_date
from .draft import FOOTNOTE_MARK, Readings, draft, member_readings, plain, score_of
from .rubric import Rubric, format_average, format_score

FORMATS = ("md", "html", "docx")
COLUMNS = {-1: 1, 0: 2, 1: 3}  # the assessment table's columns: No, Partial, Full Compliance


class ChapterError(ValueError):
    """A chapter draft that cannot be written as asked (a format, a missing --out)."""


def chapter_draft(
    db: sqlite_utils.Database,
    rubric: Rubric,
    *,
    readings: Readings | None = None,
    writer=None,
    interim: Rubric | None = None,
    interim_readings: Readings | None = None,
) -> dict:
    """The chapter as data: heading, commitment, table, rubric texts, member sections.

    ``interim`` (for a final report's rubric): the interim report's rubric of the same
    commitment; each member's interim score is the rule on its readings as of the interim
    period's end (``interim_readings``, by default those of the items dated up to then).
    """
    until = rubric.period_end.isoformat()
    readings = readings if readings is not None else member_readings(db, rubric, until=until)
    sections = draft(db, rubric, readings=readings, writer=writer, until=until)
    if interim is not None:
        before = (
            interim_readings
            if interim_readings is not None
            else member_readings(db, interim, until=interim.period_end.isoformat())
        )
        for s in sections:
            was = score_of(before.get(s["member"], {}), interim)
            s["interim_score"] = format_score(was)
            s["moved"] = f"interim {format_score(was)} → final {s['score']}"
    scores = [s["score_value"] for s in sections]
    return {
        "number": rubric.number,
        "title": rubric.title,
        "summit": rubric.summit,
        "report_kind": rubric.report_kind,
        "period": (rubric.period_start.isoformat(), rubric.period_end.isoformat()),
        "commitment": rubric.commitment,
        "commitment_source": rubric.commitment_source,
        "average": format_average(scores),
        "features": rubric.features.text,
        "definitions": [(d.term, d.definition) for d in rubric.definitions],
        "guidelines": [rubric.guidelines.full, rubric.guidelines.partial, rubric.guidelines.non],
        "scoring_guidelines": rubric.scoring_guidelines,
        "members": sections,
        "provisional": any(s["provisional"] for s in sections),
        "continues": interim.report_kind if interim is not None else None,
    }


DRAFT_NOTE = "A draft from confirmed evidence: an analyst reads every paragraph before it is published."


def _report_title(chapter: dict) -> str:
    """The report's title as its title page prints it (which the report parser reads)."""
    year, _, place = chapter["summit"].partition(" ")
    return f"{year} G7 {place} Summit {chapter['report_kind'].title()} Compliance Report"


def _period(chapter: dict) -> str:
    start, end = chapter["period"]
    return f"{long_date(start)} to {long_date(end)}"


def _bare(chapter: dict) -> str:
    """The commitment's words without quotation marks of their own (the draft adds the report's)."""
    return chapter["commitment"].strip().strip('“”"')


def _sup(text: str) -> str:
    return FOOTNOTE_MARK.sub(lambda m: f"<sup>{m[1]}</sup>", text)


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def _analysts(names: list[str]) -> str:
    if not names:
        return "Analyst: (no analyst has accepted an action yet)"
    label = "Analyst" if len(names) == 1 else "Analysts"
    return f"{label}: {names[0] if len(names) == 1 else ', '.join(names[:-1]) + ' and ' + names[-1]}"


def _table_rows(chapter: dict) -> list[list[str]]:
    rows = [["", "No Compliance", "Partial Compliance", "Full Compliance"]]
    for s in chapter["members"]:
        row = [s["member"], "", "", ""]
        row[COLUMNS[s["score_value"]]] = s["score"]
        rows.append(row)
    # the reports print the average in the middle column, whatever its value
    rows.append(["Average", "", chapter["average"], ""])
    return rows


def _scoring_rows(chapter: dict) -> list[tuple[str, str]]:
    order = {"-1": 0, "0": 1, "+1": 2, "1": 2}
    return sorted(chapter["scoring_guidelines"].items(), key=lambda kv: order.get(kv[0], 3))


def _footnotes(chapter: dict) -> list[dict]:
    return [n for s in chapter["members"] for n in s["footnotes"]]


def render_markdown(chapter: dict) -> str:
    """The chapter in the bundled chapters' Markdown: ``<sup>N</sup>`` marks, notes at the end."""
    out = [f"## {_report_title(chapter)}", "", _period(chapter), "", f"*{DRAFT_NOTE}*", ""]
    out += [f"## {chapter['number']}. {chapter['title']}", "", f"“{_bare(chapter)}”", ""]
    if chapter["commitment_source"]:
        out += [f"*{chapter['commitment_source']}*", ""]
    out += ["### Assessment", ""]
    out += ["\t".join(row) for row in _table_rows(chapter)]
    if chapter["provisional"]:
        out += ["", "*Provisional: pending candidates or unconfirmed readings could change these scores.*"]
    out += ["", "### Commitment Features", "", *_paragraphs(chapter["features"]), ""]
    if chapter["definitions"]:
        out += ["### Definitions and Concepts", ""]
        out += [f"“{term}” {text}\n" for term, text in chapter["definitions"]]
    out += ["### General Interpretive Guidelines", ""]
    out += [p + "\n" for text in chapter["guidelines"] for p in _paragraphs(text)]
    out += ["### Scoring Guidelines", ""]
    out += [f"{k}\t{v}" for k, v in _scoring_rows(chapter)]
    out.append("")
    for s in chapter["members"]:
        out += [f"### {s['member']}: {s['score']}", "", s["opening"], ""]
        out += [f"{p['text']}<sup>{p['footnote']}</sup>\n" for p in s["paragraphs"]]
        if s.get("conclusion_flag"):
            out += [f"*Note: {s['conclusion_flag']}.*", ""]
        out += [_sup(s["conclusion"]), "", s["score_sentence"], ""]
        if s.get("moved"):
            out += [f"*Score moved: {s['moved']}.*", ""]
        out += [f"*{_analysts(s['analysts'])}*", ""]
    notes = _footnotes(chapter)
    if notes:
        out += ["---", ""]
        out += [f"<sup>{n['number']}</sup> {n['citation']}\n" for n in notes]
    return "\n".join(out).rstrip() + "\n"


def render_html(chapter: dict) -> str:
    """A standalone, well-formed HTML document of the chapter (every value escaped)."""
    e = html.escape

    def marked(text: str) -> str:
        return FOOTNOTE_MARK.sub(lambda m: f'<sup><a href="#fn{m[1]}">{m[1]}</a></sup>', e(text))

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"/>',
        f"<title>{chapter['number']}. {e(chapter['title'])}</title></head><body>",
        f"<p>{e(_report_title(chapter))}, {e(_period(chapter))}</p>",
        f"<p><em>{e(DRAFT_NOTE)}</em></p>",
        f"<h2>{chapter['number']}. {e(chapter['title'])}</h2>",
        f"<blockquote><p>“{e(_bare(chapter))}”</p></blockquote>",
    ]
    if chapter["commitment_source"]:
        out.append(f"<p><em>{e(chapter['commitment_source'])}</em></p>")
    out.append("<h3>Assessment</h3><table>")
    rows = _table_rows(chapter)
    out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in rows[0]) + "</tr>")
    out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows[1:]]
    out.append("</table>")
    if chapter["provisional"]:
        out.append(
            "<p><em>Provisional: pending candidates or unconfirmed readings could change these scores.</em></p>"
        )
    out.append("<h3>Commitment Features</h3>")
    out += [f"<p>{e(p)}</p>" for p in _paragraphs(chapter["features"])]
    if chapter["definitions"]:
        out.append("<h3>Definitions and Concepts</h3>")
        out += [f"<p>“{e(term)}” {e(text)}</p>" for term, text in chapter["definitions"]]
    out.append("<h3>General Interpretive Guidelines</h3>")
    out += [f"<p>{e(p)}</p>" for text in chapter["guidelines"] for p in _paragraphs(text)]
    out.append("<h3>Scoring Guidelines</h3><table>")
    out += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _scoring_rows(chapter)]
    out.append("</table>")
    for s in chapter["members"]:
        out.append(f"<h3>{e(s['member'])}: {e(s['score'])}</h3>")
        out.append(f"<p>{e(s['opening'])}</p>")
        out += [
            f'<p>{e(p["text"])}<sup><a href="#fn{p["footnote"]}">{p["footnote"]}</a></sup></p>'
            for p in s["paragraphs"]
        ]
        if s.get("conclusion_flag"):
            out.append(f'<p class="flag"><em>Note: {e(s["conclusion_flag"])}.</em></p>')
        out.append(f"<p>{marked(s['conclusion'])}</p><p>{e(s['score_sentence'])}</p>")
        if s.get("moved"):
            out.append(f'<p class="moved"><em>Score moved: {e(s["moved"])}.</em></p>')
        out.append(f"<p><em>{e(_analysts(s['analysts']))}</em></p>")
    notes = _footnotes(chapter)
    if notes:
        out.append('<hr/><ol class="footnotes">')
        out += [f'<li id="fn{n["number"]}" value="{n["number"]}">{e(n["citation"])}</li>' for n in notes]
        out.append("</ol>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_docx(chapter: dict, path: Path) -> None:
    """The chapter as a Word document: headings, the assessment table, superscript note
    numbers in the text and the numbered notes at the end (Word's own footnotes are not in
    python-docx's API)."""
    import docx

    document = docx.Document()
    document.add_paragraph(f"{_report_title(chapter)}, {_period(chapter)}")
    document.add_paragraph().add_run(DRAFT_NOTE).italic = True
    document.add_heading(f"{chapter['number']}. {chapter['title']}", level=2)
    document.add_paragraph(f"“{_bare(chapter)}”", style="Quote")
    if chapter["commitment_source"]:
        document.add_paragraph().add_run(chapter["commitment_source"]).italic = True
    document.add_heading("Assessment", level=3)
    rows = _table_rows(chapter)
    table = document.add_table(rows=len(rows), cols=4)
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    if chapter["provisional"]:
        document.add_paragraph().add_run(
            "Provisional: pending candidates or unconfirmed readings could change these scores."
        ).italic = True
    document.add_heading("Commitment Features", level=3)
    for p in _paragraphs(chapter["features"]):
        document.add_paragraph(p)
    if chapter["definitions"]:
        document.add_heading("Definitions and Concepts", level=3)
        for term, text in chapter["definitions"]:
            document.add_paragraph(f"“{term}” {text}")
    document.add_heading("General Interpretive Guidelines", level=3)
    for text in chapter["guidelines"]:
        for p in _paragraphs(text):
            document.add_paragraph(p)
    document.add_heading("Scoring Guidelines", level=3)
    for k, v in _scoring_rows(chapter):
        document.add_paragraph(f"{k}\t{v}")

    def with_marks(text: str, *, italic: bool = False) -> None:
        paragraph = document.add_paragraph()
        pos = 0
        for m in FOOTNOTE_MARK.finditer(text):
            paragraph.add_run(text[pos : m.start()]).italic = italic
            paragraph.add_run(m[1]).font.superscript = True
            pos = m.end()
        paragraph.add_run(text[pos:]).italic = italic

    for s in chapter["members"]:
        document.add_heading(f"{s['member']}: {s['score']}", level=3)
        document.add_paragraph(s["opening"])
        for p in s["paragraphs"]:
            with_marks(f"{p['text']}[^{p['footnote']}]")
        if s.get("conclusion_flag"):
            with_marks(f"Note: {s['conclusion_flag']}.", italic=True)
        with_marks(s["conclusion"])
        document.add_paragraph(s["score_sentence"])
        if s.get("moved"):
            with_marks(f"Score moved: {s['moved']}.", italic=True)
        with_marks(_analysts(s["analysts"]), italic=True)
    notes = _footnotes(chapter)
    if notes:
        document.add_heading("Notes", level=3)
        for n in notes:
            paragraph = document.add_paragraph()
            paragraph.add_run(str(n["number"])).font.superscript = True
            paragraph.add_run(f" {n['citation']}")
    document.save(str(path))


def render_chapter(chapter: dict, fmt: str = "md", out: Path | None = None) -> str | None:
    """Markdown or HTML text (also written to ``out`` when given); Word needs ``out``."""
    if fmt not in FORMATS:
        raise ChapterError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "docx":
        if out is None:
            raise ChapterError("--format docx writes a file: give --out PATH (e.g. --out chapter.docx)")
        write_docx(chapter, out)
        return None
    text = render_markdown(chapter) if fmt == "md" else render_html(chapter)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text


__all__ = [
    "ChapterError",
    "chapter_draft",
    "plain",
    "render_chapter",
    "render_html",
    "render_markdown",
    "write_docx",
]
