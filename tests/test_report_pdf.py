"""Compliance reports as published PDFs: extraction, the published layout, bad PDFs.

The PDFs are made by ``tests/report_pdfs.py`` (fpdf2) from the two bundled chapters, in the
layout the G7 Research Group publishes. Each test names the layout feature it covers.
"""

from __future__ import annotations

import io
import zlib

import pytest
import sqlite_utils
from fpdf import FPDF
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from classifier import gold
from classifier.cli import app
from classifier.report_layout import Line, Page, Run, layout_text
from classifier.report_pdf import pdf_pages, read_pdf_report
from classifier.report_text import _is_pdf_heading
from classifier.reports import ReportParseError, parse_report, parse_report_file
from classifier.store import open_db

from . import report_pdfs
from .conftest import FINAL_19, INTERIM_18

runner = CliRunner()

LAYOUTS = {"a4": report_pdfs.A4, "narrow": report_pdfs.NARROW, "wide": report_pdfs.WIDE}


@pytest.fixture(scope="session")
def pdf_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("report-pdfs")


_made: dict = {}


def chapter_pdf(pdf_dir, source, layout: str):
    key = (source.name, layout)
    if key not in _made:
        out = pdf_dir / f"chapter-{'18' if source == INTERIM_18 else '19'}-{layout}.pdf"
        _made[key] = report_pdfs.render_chapter(source, out, LAYOUTS[layout])
    return _made[key]


def gold_of(report):
    actions = [(m.member, i.date, i.text) for c in report.chapters for m in c.members for i in m.actions]
    urls = {n: f.url for n, f in report.footnotes.items()}
    scores = [(c.number, m.member, m.score) for c in report.chapters for m in c.members]
    return actions, urls, scores


@pytest.fixture(scope="session")
def text_gold():
    return {source: gold_of(parse_report_file(source)) for source in (INTERIM_18, FINAL_19)}


def parse_pdf(path):
    return parse_report(read_pdf_report(path).text, file_name=path.name, source_format="pdf-text")


CASES = [
    pytest.param(INTERIM_18, "a4", id="18-a4"),
    pytest.param(FINAL_19, "a4", id="19-a4"),
    pytest.param(INTERIM_18, "narrow", id="18-narrow", marks=pytest.mark.slow),
    pytest.param(FINAL_19, "narrow", id="19-narrow", marks=pytest.mark.slow),
    pytest.param(FINAL_19, "wide", id="19-wide", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("source", "layout"), CASES)
def test_published_layout_pdf_gives_the_text_gold(pdf_dir, text_gold, source, layout):
    """Layout: running headers and page numbers on every page, footnotes at the page foot with
    glued and spaced numbers, footnotes and URLs continuing overleaf, superscript markers glued
    to words, quotes and punctuation, bold headings wrapped at narrow widths, the assessment
    and scoring tables flattened, compound words broken at their hyphen, URLs broken anywhere.
    Each page width wraps every paragraph differently; the gold is the text file's."""
    path = chapter_pdf(pdf_dir, source, layout)
    actions, urls, scores = gold_of(parse_pdf(path))
    want_actions, want_urls, want_scores = text_gold[source]
    assert len(actions) == len(want_actions) == (198 if source == INTERIM_18 else 200)
    assert actions == want_actions
    assert urls == want_urls
    assert scores == want_scores and len(scores) == 8


def test_running_headers_and_page_numbers_are_dropped(pdf_dir):
    """Layout: running header (title, 'G7 Research Group / <date>') and page number on every page."""
    path = chapter_pdf(pdf_dir, FINAL_19, "a4")
    pages = pdf_pages(path)
    assert len(pages) > 20
    # the extraction sees them on every page ...
    assert all("G7 Research Group / 9 June 2025" in p.lines[0].text for p in pages)
    assert all(p.lines[-1].text == str(p.number) for p in pages)
    laid = read_pdf_report(path)
    # ... the text keeps the report's title once and no page header or page number line
    assert laid.text.count("G7 Research Group / 9 June 2025") == 0
    assert laid.text.splitlines()[0] == "2024 G7 Apulia Summit Final Compliance Report"
    assert laid.running == ["2024 G7 Apulia Summit Final Compliance Report G7 Research Group / 9 June 2025"]
    numbers = {str(p.number) for p in pages}
    assert not [line for line in laid.text.splitlines() if line.strip() in numbers]


def test_footnote_markers_become_superscripts_and_feet_become_footnotes(pdf_dir):
    """Layout: superscript markers glued to words and punctuation; footnote numbers glued
    ('4417Communiqué') or spaced at the page foot; a footnote continued on the next page."""
    path = chapter_pdf(pdf_dir, FINAL_19, "a4")
    raw = [line.text for page in pdf_pages(path) for line in page.lines]
    assert any(line.startswith("⁴⁴¹⁷C") for line in raw)  # glued
    assert any(line.startswith("⁴⁴¹⁸ ") for line in raw)  # spaced
    laid = read_pdf_report(path).text
    assert "⁴⁴¹⁷Communiqué, G7 Information Centre (Toronto) 17 May 1998." in laid
    # a citation split over two pages comes out whole, with its URL
    report = parse_pdf(path)
    assert (
        report.footnotes[4641].url
        == "https://www.eurojust.europa.eu/publication/eurojust-meeting-migrant-smuggling-2024"
    )


def test_gold_import_of_a_pdf(pdf_dir, isolated_db):
    """`evidence gold import FILE.pdf`: the chapter imports, gold show lists it, a second
    import is unchanged; errors and warnings name pages, not lines of the rebuilt text."""
    path = chapter_pdf(pdf_dir, INTERIM_18, "a4")
    result = runner.invoke(app, ["gold", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        "new" in result.output
        and "commitment 18 v1" in result.output
        and "198 cited actions" in result.output
    )
    db = sqlite_utils.Database(isolated_db)
    assert db["gold_evidence"].count == 198
    assert [r["file_name"] for r in db["reports"].rows] == [path.name]
    warnings = list(db["parse_warnings"].rows)
    paged = [w for w in warnings if w["message"].startswith("page ")]
    assert paged and all(w["line"] is None for w in warnings)
    again = runner.invoke(app, ["gold", "import", str(path)])
    assert again.exit_code == 0 and again.output.startswith("unchanged")
    show = runner.invoke(app, ["gold", "show", "--no-warnings"])
    assert path.name in show.output and "Migration and Refugees: Border Management" in show.output


# ---------------------------------------------------------------------------
# Bad PDFs: one line naming the file (and the page), nothing written


def _import_fails(path, isolated_db, *needles):
    result = runner.invoke(app, ["gold", "import", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {path}")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.output
    db = open_db()
    for table in ("reports", "commitments", "gold_evidence", "footnotes", "parse_warnings"):
        assert table not in db.table_names() or db[table].count == 0
    return lines[0]


def _text_pdf(text: str, **encrypt) -> bytes:
    pdf = FPDF()
    if encrypt:
        pdf.set_encryption(**encrypt)
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def test_encrypted_pdf_is_refused(tmp_path, isolated_db):
    path = tmp_path / "locked.pdf"
    path.write_bytes(
        _text_pdf("2024 G7 Apulia Summit Final Compliance Report", owner_password="o", user_password="u")
    )
    _import_fails(path, isolated_db, "encrypted")


def _png(width: int, height: int) -> bytes:
    """A grey image as PNG bytes (a page scan stands in for any image)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    rows = b"".join(b"\x00" + bytes([(x * 7 + y) % 256 for x in range(width)]) for y in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x00\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_scan_without_text_layer_is_refused(tmp_path, isolated_db):
    pdf = FPDF()
    for _ in range(3):
        pdf.add_page()
        pdf.image(io.BytesIO(_png(120, 160)), x=10, y=10, w=190)
    path = tmp_path / "scan.pdf"
    path.write_bytes(bytes(pdf.output()))
    _import_fails(path, isolated_db, "no text layer", "page 1")


def test_pdf_that_is_not_a_compliance_report_is_refused(tmp_path, isolated_db):
    path = tmp_path / "minutes.pdf"
    path.write_bytes(
        _text_pdf("Minutes of the annual meeting.\n\nThe committee met on 4 July 2024 and agreed the budget.")
    )
    _import_fails(path, isolated_db, "no compliance-report chapter found")


def test_truncated_and_damaged_pdfs_are_refused(pdf_dir, tmp_path, isolated_db):
    whole = chapter_pdf(pdf_dir, INTERIM_18, "a4").read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(whole[: len(whole) // 2])
    _import_fails(cut, isolated_db)
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    _import_fails(garbage, isolated_db, "PDF")


def test_pdf_errors_are_report_parse_errors(tmp_path):
    """The library raises only its own error for a bad PDF (the CLI's one line comes from it)."""
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(ReportParseError) as info:
        gold.parse_with_manifest(path)
    assert str(info.value).startswith(str(path))


def test_words_hyphenated_at_line_ends_are_rejoined(pdf_dir):
    """Layout: hyphenation at the line's end ("an-" / "nounced") beside compound words broken at
    their own hyphen ("cross-" / "border"): the first loses its hyphen, the second keeps it."""
    path = chapter_pdf(pdf_dir, FINAL_19, "a4")
    source = FINAL_19.read_text(encoding="utf-8")
    lines = [line.text for page in pdf_pages(path) for line in page.lines]
    broken = []
    for k, line in enumerate(lines[:-1]):
        if line.endswith("-") and line[-2:-1].isalpha() and lines[k + 1][:1].islower():
            head = line.rsplit(" ", 1)[-1][:-1]
            tail = lines[k + 1].split(" ", 1)[0].rstrip(".,;:")
            broken.append((head, tail))
    soft = [(h, t) for h, t in broken if f"{h}{t}" in source and f"{h}-{t}" not in source]
    compound = [(h, t) for h, t in broken if f"{h}-{t}" in source]
    assert len(soft) >= 5 and len(compound) >= 1
    text = read_pdf_report(path).text
    for head, tail in soft:
        assert f"{head}{tail}" in text
    for head, tail in compound:
        assert f"{head}-{tail}" in text


# ---------------------------------------------------------------------------
# Whole reports: front matter, contents list, numbered chapters


@pytest.fixture(scope="session")
def whole_report(pdf_dir):
    return report_pdfs.render_whole_report([INTERIM_18, FINAL_19], pdf_dir / "whole-report.pdf")


def test_whole_report_imports_every_chapter(whole_report, text_gold, isolated_db):
    """Layout: a whole report (title page, contents list, Tables A-D, chapters on new pages,
    footnote numbering running on): every chapter is imported with the text files' gold."""
    result = runner.invoke(app, ["gold", "import", str(whole_report)])
    assert result.exit_code == 0, result.output
    assert "commitment 18 v1, 19 v1" in result.output and "398 cited actions" in result.output
    report = gold.parse_with_manifest(whole_report)
    actions, urls, scores = gold_of(report)
    want = [text_gold[INTERIM_18], text_gold[FINAL_19]]
    assert actions == want[0][0] + want[1][0] and len(actions) == 398
    assert urls == {**want[0][1], **want[1][1]}
    assert scores == want[0][2] + want[1][2] and len(scores) == 16
    assert not [w for w in report.warnings if w.code == "front-matter"]
    show = runner.invoke(app, ["gold", "show", "--no-warnings"])
    assert "2024 Apulia final 18. Migration and Refugees: Border Management" in show.output
    assert "2024 Apulia final 19. Migration and Refugees: Preventing Migrant Smuggling" in show.output


def test_front_matter_tables_are_read(whole_report):
    """Layout: the contents list and Tables A-D flattened to lines ("18 +1 +1 ... +0.88 (94%)")."""
    from classifier.report_book import read_front_matter

    laid = read_pdf_report(whole_report)
    front = read_front_matter(laid.text)
    assert sorted(front.contents) == sorted(front.selected) == [18, 19]
    assert front.scores[18]["Japan"] == 0 and front.scores[19]["United Kingdom"] == 1
    assert front.by_commitment == {18: "+0.88 (94%)", 19: "+0.38 (69%)"}
    assert front.by_member["Japan"] == "0.00 (50%)" and len(front.by_member) == 8
    assert front.overall == "+0.63 (81%)"


def test_front_matter_disagreeing_with_the_chapters_is_a_warning(pdf_dir, isolated_db):
    """Whole report: Table B, C, D and the overall score printed differently from the chapters."""

    def change(table, key, value):
        if table == "B" and key == (18, "Japan"):
            return 1
        if table == "D" and key == 19:
            return "+0.50 (75%)"
        if table == "C" and key == "Canada":
            return "+0.25 (63%)"
        if table == "overall":
            return "+0.70 (85%)"
        return value

    path = report_pdfs.render_whole_report([INTERIM_18, FINAL_19], pdf_dir / "disagrees.pdf", change=change)
    result = runner.invoke(app, ["gold", "import", str(path)])
    assert result.exit_code == 0, result.output  # warnings, not a refusal
    rows = list(open_db()["parse_warnings"].rows_where("code = ?", ["front-matter"]))
    messages = sorted(r["message"] for r in rows)
    assert len(messages) == 4, messages
    assert any("Table B gives Japan +1 on commitment 18, the chapter +0" in m for m in messages)
    assert any("Table D prints commitment 19's average as +0.50 (75%)" in m for m in messages)
    assert any(
        "Table C prints Canada's average as +0.25 (63%), the chapters give +0.50 (75%)" in m for m in messages
    )
    assert any("overall score as +0.70 (85%), the chapters give +0.63 (81%)" in m for m in messages)


def test_chapter_listed_but_missing_is_a_warning(pdf_dir):
    """Whole report: the contents list and Table A name a chapter the file does not hold."""
    from classifier.report_book import check_front_matter, read_front_matter

    path = report_pdfs.render_whole_report([FINAL_19], pdf_dir / "one-chapter.pdf")
    text = read_pdf_report(path).text.replace("Table A: 2024 Priority", "Table A: 2024 Priority", 1)
    text = text.replace(
        "\n19. Migration and Refugees: Preventing Migrant Smuggling and Trafficking\n",
        "\n18. Migration and Refugees: Border Management\n\n19. Migration and Refugees: Preventing Migrant Smuggling and Trafficking\n",
        1,
    )
    report = parse_report(text, source_format="pdf-text")
    warnings = check_front_matter(read_front_matter(text, report.chapters[0].line), report)
    assert [w.commitment for w in warnings] == [18]
    assert "no such chapter was found" in warnings[0].message


# ---------------------------------------------------------------------------
# Properties: re-wrapping and page headers never change the parse; only our own error


# No shrinking: a failing example is a whole chapter, and its parameters are printed as found.
PROPERTY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)


@pytest.fixture(scope="session")
def laid_out_19(pdf_dir):
    return read_pdf_report(chapter_pdf(pdf_dir, FINAL_19, "a4")).text


def _line(text: str, top: float, size: float, bold: bool = False) -> Line:
    return Line([Run(text, 60.0, top, size, bold)], top, size, bold, text)


def _wrap(text: str, width: int, *, break_anywhere: bool) -> list[str]:
    lines, current = [], ""
    for word in text.split(" "):
        while break_anywhere and len(word) > width:  # a URL broken anywhere
            room = max(1, width - len(current) - 1)
            head, word = word[:room], word[room:]
            lines.append(f"{current} {head}".strip())
            current = ""
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


def synthetic_pages(text: str, width: int, page_lines: int, header: bool, split_notes: bool) -> list[Page]:
    """The rebuilt text laid out again: paragraphs wrapped at ``width`` characters, ``page_lines``
    body lines a page, its footnotes at the foot in a smaller font (the last one continuing
    overleaf when ``split_notes``), a running header and page number on every page."""
    pages: list[Page] = []
    body: list[tuple[str, bool, bool]] = []  # (line, starts a paragraph, heading)
    notes: list[str] = []
    lines_used = 0

    def close(carry: list[str]) -> None:
        number = len(pages) + 1
        page = Page(number)
        top = 40.0
        if header:
            page.lines.append(_line("2024 G7 Apulia Summit Final Compliance Report", top, 8.0))
            page.lines.append(_line("G7 Research Group / 9 June 2025", top + 10, 8.0))
        top = 70.0
        for k, (line, starts, heading) in enumerate(body):
            top += 18.0 if starts and k > 0 else 13.0
            if starts and k == 0:
                top += 6.0
            page.lines.append(_line(line, top, 11.0 if heading else 10.0, heading))
        top += 20.0
        for note_line in notes:
            top += 9.0
            page.lines.append(_line(note_line, top, 7.5))
        page.lines.append(_line(str(number), top + 30.0, 8.0))
        pages.append(page)
        body.clear()
        notes.clear()
        notes.extend(carry)

    for paragraph in text.split("\n\n"):
        paragraph = paragraph.strip()
        if not paragraph or paragraph == "2024 G7 Apulia Summit Final Compliance Report":
            continue
        if paragraph[:1] in "⁰¹²³⁴⁵⁶⁷⁸⁹":
            notes.extend(_wrap(paragraph, width + 30, break_anywhere=True))
            continue
        heading = "\t" not in paragraph and _is_pdf_heading(paragraph)  # printed in bold
        rows = paragraph.split("\n") if "\t" in paragraph else [paragraph]
        for row in rows:
            # a table row flattened ("Japan 0"), a paragraph wrapped
            wrapped = [" ".join(row.split())] if "\t" in row else _wrap(row, width, break_anywhere=False)
            for k, line in enumerate(wrapped):
                if lines_used >= page_lines:
                    carry = []
                    if split_notes and len(notes) > 1:
                        carry = notes[-1:]
                        del notes[-1:]
                    close(carry)
                    lines_used = 0
                body.append((line, k == 0 or bool(rows[1:]), heading))
                lines_used += 1
    close([])
    return pages


@PROPERTY
@given(
    width=st.integers(min_value=45, max_value=140),
    page_lines=st.integers(min_value=25, max_value=70),
    header=st.booleans(),
    split_notes=st.booleans(),
)
def test_rewrapping_and_page_headers_never_change_the_parse(
    laid_out_19, text_gold, width, page_lines, header, split_notes
):
    """Layout: lines re-wrapped at any width, pages of any length, running headers and page
    numbers inserted or not, the last footnote of a page continued overleaf: the same gold."""
    pages = synthetic_pages(laid_out_19, width, page_lines, header, split_notes)
    text = layout_text(pages).text
    actions, urls, scores = gold_of(parse_report(text, source_format="pdf-text"))
    want_actions, want_urls, want_scores = text_gold[FINAL_19]
    assert actions == want_actions
    assert urls == want_urls
    assert scores == want_scores


@PROPERTY
@given(data=st.data())
def test_mangled_pages_raise_only_our_error(laid_out_19, data):
    """Pages with lines dropped, sizes and positions scrambled and random text inserted: the
    layout never fails, and the parser raises only ReportParseError."""
    pages = synthetic_pages(laid_out_19, 90, 50, True, True)
    for page in pages[: data.draw(st.integers(1, len(pages)))]:
        for line in list(page.lines):
            action = data.draw(st.sampled_from(["keep", "keep", "drop", "size", "top", "text"]))
            if action == "drop":
                page.lines.remove(line)
            elif action == "size":
                line.size = data.draw(st.floats(0.0, 30.0))
            elif action == "top":
                line.top = data.draw(st.floats(-1000.0, 1000.0))
            elif action == "text":
                line.text = data.draw(st.text(max_size=40))
    try:
        parse_report(layout_text(pages).text, source_format="pdf-text")
    except ReportParseError as exc:
        assert str(exc)  # a message to print, whatever the damage


@PROPERTY
@given(cut=st.integers(min_value=0, max_value=100), noise=st.binary(max_size=200))
def test_damaged_pdf_bytes_raise_only_our_error(pdf_dir, tmp_path_factory, cut, noise):
    """Bad input: a rendered PDF cut anywhere and followed by noise, read by the PDF path."""
    whole = chapter_pdf(pdf_dir, FINAL_19, "a4").read_bytes()
    path = tmp_path_factory.mktemp("damaged") / "damaged.pdf"
    path.write_bytes(whole[: len(whole) * cut // 100] + noise)
    try:
        laid = read_pdf_report(path)
        parse_report(laid.text, source_format="pdf-text")
    except ReportParseError as exc:
        assert str(exc)


def test_text_extracted_from_a_published_pdf_imports(pdf_dir, text_gold, tmp_path, isolated_db):
    """Layout, as plain text (pypdf's extract_text, page after page): running headers, page
    numbers, footnotes at the page foot with glued numbers ('44817th Budapest …' is footnote
    4481), markers as plain digits glued to words, a wrapped chapter heading, flattened tables.
    Without positions, paragraph ends are guessed from sentence ends and line lengths; measured
    here on chapter 19: the chapter imports, its scores are the text file's, and at least 95%
    of its cited actions and footnote URLs are."""
    from pypdf import PdfReader

    reader = PdfReader(chapter_pdf(pdf_dir, FINAL_19, "a4"))
    path = tmp_path / "chapter-19-extracted.txt"
    path.write_text("\n".join(page.extract_text() for page in reader.pages), encoding="utf-8")
    result = runner.invoke(app, ["gold", "import", str(path)])
    assert result.exit_code == 0, result.output
    actions, urls, scores = gold_of(gold.parse_with_manifest(path))
    want_actions, want_urls, want_scores = text_gold[FINAL_19]
    assert scores == want_scores
    assert sum(a in want_actions for a in actions) >= 0.95 * len(want_actions)
    assert sum(urls.get(n) == u for n, u in want_urls.items()) >= 0.95 * len(want_urls)


@PROPERTY
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(
                [
                    "2024 G7 Apulia Summit Final Compliance Report G7 Research Group / 9 June 2025",
                    "4417Communiqué, G7 Information Centre (Toronto) 17 May 1998.",
                    "4418 https://www.g7.utoronto.ca/summit/",
                    "19. Migration and Refugees: Preventing Migrant Smuggling and",
                    "Trafficking",
                    "Assessment",
                    "Japan 0",
                    "Average +0.63 (81%)",
                    "smuggling.4417 Next words",
                    "12",
                ]
            ),
        ),
        max_size=80,
    )
)
def test_published_plain_text_raises_only_our_error(tmp_path_factory, lines):
    """Bad input: any text with running headers goes through the plain-text layout path to
    ReportParseError or a report, nothing else."""
    path = tmp_path_factory.mktemp("plain") / "extracted.txt"
    header = "2024 G7 Apulia Summit Final Compliance Report G7 Research Group / 9 June 2025"
    path.write_text("\n".join([header, *lines, header, *lines[::-1]]), encoding="utf-8")
    try:
        gold.parse_with_manifest(path)
    except ReportParseError as exc:
        assert str(exc).startswith(str(path))


def test_flattened_tables_with_unicode_minus_and_any_spacing():
    """Layout: the assessment table flattened to lines with the column lost, a Unicode minus
    ('−1'), and the Scoring Guidelines table with its label on the first line of a cell."""
    from classifier.report_layout import rows_from_flat_lines

    rows = rows_from_flat_lines(
        [
            "No Compliance Partial Compliance Full Compliance",
            "Japan −1",
            "United Kingdom  +1",
            "Average +0.63 (81%)",
        ],
        "assessment",
    )
    assert rows == [
        "\tNo Compliance\tPartial Compliance\tFull Compliance",
        "Japan\t−1",
        "United Kingdom\t\t\t+1",
        "Average\t+0.63 (81%)",
    ]
    scoring = rows_from_flat_lines(
        ["−1 The G7 member has not", "taken any action.", "0 The G7 member"], "scoring"
    )
    assert scoring == ["−1\tThe G7 member has not", "\ttaken any action.", "0\tThe G7 member"]
    # the row as rebuilt reads as a score of -1 in the no-compliance column
    text = FINAL_19.read_text(encoding="utf-8").replace("Japan\t\t0", rows[1], 1)
    report = parse_report(text, source_format="pdf-text")
    japan = next(row for row in report.chapters[0].assessment if row.member == "Japan")
    assert (japan.score, japan.column) == (-1, "no")
