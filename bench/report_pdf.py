"""Benchmark: compliance reports as PDFs, three extraction libraries, and a 650-page report.

Part 1 compares pypdf (the dependency), pdfplumber and pypdfium2 on PDFs of the two bundled
chapters rendered in the published layout (tests/report_pdfs.py, fpdf2) at two page widths.
Each library's text pieces, with position and font size, go through the same layout rebuilding
(classifier.report_layout) and parser; printed per library: pages per second of extraction,
and the parse recovered against the text files' gold: cited actions (member, date, text),
footnote URLs and member scores that match. A library that is not installed is named and left
out (pip install pdfplumber pypdfium2; neither is a runtime dependency).

Part 2 renders a whole report of at least 650 pages (the chapters again and again, renumbered)
and times `gold import` of it end to end (extraction, layout, parse, store) with the runtime
path (pypdf), and the pages per second of that.

    python -m bench.report_pdf [--pages 650] [--skip-long]   (from the project root)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from classifier import gold
from classifier.report_layout import Page, Run, layout_text, lines_from_runs
from classifier.report_pdf import pdf_pages
from classifier.reports import ReportParseError, parse_report, parse_report_file
from classifier.store import open_db
from tests import report_pdfs

ROOT = Path(__file__).resolve().parents[1]


def _runs(chars) -> list[Run]:
    """Characters (text, x0, x1, baseline, size, bold) into runs; a gap between two characters
    on one baseline wider than a quarter of the font size is a space."""
    runs: list[Run] = []
    last_x1 = 0.0
    for c, x0, x1, base, size, bold in chars:
        last = runs[-1] if runs else None
        same_line = last is not None and abs(last.top - base) < 0.5 * size
        if same_line and last.size == size and last.bold == bold:
            if x0 - last_x1 > 0.25 * size and not last.text.endswith(" ") and c != " ":
                last.text += " "
            last.text += c
        else:
            if same_line and x0 - last_x1 > 0.25 * size and c != " ":
                c = " " + c
            runs.append(Run(c, x0, base, size, bold))
        last_x1 = x1
    return runs


def text_pypdf(path: Path) -> int:
    from pypdf import PdfReader

    reader = PdfReader(path)
    return sum(len(page.extract_text()) for page in reader.pages)


def text_pdfplumber(path: Path) -> int:
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        return sum(len(page.extract_text() or "") for page in pdf.pages)


def text_pypdfium2(path: Path) -> int:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        return sum(len(doc[i].get_textpage().get_text_range()) for i in range(len(doc)))
    finally:
        doc.close()


def pages_pypdf(path: Path) -> list[Page]:
    return pdf_pages(path)


def pages_pdfplumber(path: Path) -> list[Page]:
    import pdfplumber

    pages = []
    with pdfplumber.open(path) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            runs = _runs(
                (ch["text"], ch["x0"], ch["x1"], ch["bottom"], round(ch["size"], 2), "Bold" in ch["fontname"])
                for ch in page.chars
            )
            pages.append(Page(number, lines_from_runs(runs)))
    return pages


def pages_pypdfium2(path: Path) -> list[Page]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pages = []
    doc = pdfium.PdfDocument(str(path))
    try:
        for number in range(1, len(doc) + 1):
            page = doc[number - 1]
            height = page.get_height()
            text = page.get_textpage()
            count = text.count_chars()
            chars = text.get_text_range(0, count) if count else ""

            def chars_of(text=text, chars=chars, count=count, height=height):
                for i in range(min(count, len(chars))):
                    c = chars[i]
                    if c in "\r\n\ufffe" or raw.FPDFText_IsGenerated(text.raw, i):
                        continue  # pdfium's own spaces and line breaks: the gaps say the same
                    left, bottom, right, _ = text.get_charbox(i, loose=True)
                    size = round(raw.FPDFText_GetFontSize(text.raw, i), 2)
                    bold = raw.FPDFText_GetFontWeight(text.raw, i) >= 600
                    yield c, left, right, height - bottom, size, bold

            runs = _runs(chars_of())
            pages.append(Page(number, lines_from_runs(runs)))
            text.close()
            page.close()
    finally:
        doc.close()
    return pages


LIBRARIES = {
    "pypdf": (pages_pypdf, text_pypdf),
    "pdfplumber": (pages_pdfplumber, text_pdfplumber),
    "pypdfium2": (pages_pypdfium2, text_pypdfium2),
}


def gold_of(report):
    actions = [(m.member, i.date, i.text) for c in report.chapters for m in c.members for i in m.actions]
    urls = {n: f.url for n, f in report.footnotes.items()}
    scores = [(c.number, m.member, m.score) for c in report.chapters for m in c.members]
    return actions, urls, scores


def compare(source: Path, pages: list[Page]) -> str:
    want_actions, want_urls, want_scores = gold_of(parse_report_file(source))
    try:
        report = parse_report(layout_text(pages).text, source_format="pdf-text")
    except ReportParseError as exc:
        return f"refused: {exc.message[:60]}"
    actions, urls, scores = gold_of(report)
    same_actions = sum(a == b for a, b in zip(actions, want_actions, strict=False))
    same_urls = sum(urls.get(n) == u for n, u in want_urls.items())
    same_scores = sum(a == b for a, b in zip(scores, want_scores, strict=False))
    return (
        f"{same_actions}/{len(want_actions)} actions, {same_urls}/{len(want_urls)} URLs, "
        f"{same_scores}/{len(want_scores)} scores"
    )


def part_one(work: Path) -> None:
    print("Part 1: extraction libraries on the bundled chapters in the published layout")
    inputs = []
    for source in (report_pdfs.CHAPTER_18, report_pdfs.CHAPTER_19):
        for name, layout in (("a4", report_pdfs.A4), ("narrow", report_pdfs.NARROW)):
            out = work / f"{source.stem}-{name}.pdf"
            report_pdfs.render_chapter(source, out, layout)
            inputs.append((source, name, out))
    print("pages/s: 'layout' = text pieces with positions and sizes (what the rebuilding needs),")
    print("         'text' = the library's own plain-text extraction (for reference)")
    print(f"{'library':<12}{'chapter':>8}{'width':>8}{'pages':>7}{'layout':>8}{'text':>8}  recovered")
    for library, (extract, plain) in LIBRARIES.items():
        try:
            extract(inputs[0][2])
        except ImportError:
            print(f"{library:<12}  not installed (pip install {library})")
            continue
        for source, name, path in inputs:
            start = time.perf_counter()
            pages = extract(path)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            plain(path)
            text_seconds = time.perf_counter() - start
            chapter = "18" if source == report_pdfs.CHAPTER_18 else "19"
            n = len(pages)
            print(
                f"{library:<12}{chapter:>8}{name:>8}{n:>7}{n / seconds:>8.1f}{n / text_seconds:>8.1f}"
                f"  {compare(source, pages)}"
            )


def part_two(work: Path, pages: int) -> None:
    print(f"\nPart 2: a whole report of at least {pages} pages, `gold import` end to end (pypdf)")
    path = work / "long-report.pdf"
    start = time.perf_counter()
    report_pdfs.long_report(pages, path)
    rendered = time.perf_counter() - start
    os.environ["EVIDENCE_DB"] = str(work / "bench.db")
    db = open_db()
    start = time.perf_counter()
    extracted = pdf_pages(path)
    extraction = time.perf_counter() - start
    start = time.perf_counter()
    (result,) = gold.import_paths(db, [path])
    seconds = time.perf_counter() - start
    print(f"rendered {len(extracted)} pages in {rendered:.1f} s (fpdf2, not part of the import)")
    print(f"extraction alone: {extraction:.1f} s, {len(extracted) / extraction:.1f} pages/s")
    print(
        f"gold import: {seconds:.1f} s for {len(extracted)} pages ({len(extracted) / seconds:.1f} pages/s), "
        f"{len(result.chapters)} chapters, {result.evidence} cited actions, {result.warnings} warnings "
        f"(limit 60 s: {'within' if seconds <= 60 else 'OVER'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=650)
    parser.add_argument("--skip-long", action="store_true", help="only part 1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        part_one(work)
        if not args.skip_long:
            part_two(work, args.pages)


if __name__ == "__main__":
    main()
