"""Compliance reports as published: PDF -> the pages' lines -> report text.

The text is read with pypdf (measured against pdfplumber and pypdfium2 in
``bench/report_pdf.py``): each piece of text the page draws, with its position and font
size, in the order the page draws it, which for these reports is reading order. Lines are
built from the pieces, and :mod:`classifier.report_layout` turns the pages into the text the
parser reads (running headers and page numbers out, footnotes from the page feet, paragraphs
and tables rebuilt).

Input that is not a readable PDF with a text layer raises
:class:`~classifier.reports.ReportParseError` naming the file (and the page): an encrypted
PDF, a scan without text, a damaged or truncated file.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from .report_layout import LaidOut, Page, Run, layout_text, lines_from_runs
from .reports import MAX_REPORT_BYTES, ReportParseError

__all__ = ["PDF_MAGIC", "is_pdf", "pdf_pages", "read_pdf_report"]

PDF_MAGIC = b"%PDF-"


def is_pdf(path: Path) -> bool:
    """Whether the file is a PDF, by its first bytes (whatever its name)."""
    try:
        with path.open("rb") as f:
            return f.read(1024).lstrip()[:5] == PDF_MAGIC
    except OSError:
        return False


def _page_runs(page, number: int, path: Path) -> list[Run]:
    runs: list[Run] = []
    height = float(page.mediabox.height)

    def visit(text, cm, tm, font_dict, font_size):
        if not text or text == "\n":
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        scale = math.hypot(tm[0], tm[1]) * math.hypot(cm[0], cm[1])
        base = str(font_dict.get("/BaseFont", "")) if font_dict else ""
        runs.append(Run(text.replace("\n", " "), x, height - y, font_size * scale, "Bold" in base))

    page.extract_text(visitor_text=visit)
    return runs


def pdf_pages(path: Path) -> list[Page]:
    """The lines of each page of a PDF (see the module docstring)."""
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

    name = str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReportParseError(f"cannot read file: {exc.strerror}", path=name) from None
    if size > MAX_REPORT_BYTES * 4:
        raise ReportParseError(f"file is {size} bytes, larger than {MAX_REPORT_BYTES * 4}", path=name)
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)  # its warnings about damaged files become our one line
    pages: list[Page] = []
    number = 0
    try:
        try:
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted:
                try:
                    opened = reader.decrypt("")
                except Exception:  # an encryption pypdf cannot open (e.g. AES without cryptography)
                    opened = PasswordType.NOT_DECRYPTED
                if not opened:
                    raise ReportParseError(
                        "the PDF is encrypted (password-protected): save an unprotected copy and import that",
                        path=name,
                    )
            count = len(reader.pages)
        except ReportParseError:
            raise
        except (
            PdfReadError,
            PdfStreamError,
            FileNotDecryptedError,
            ValueError,
            KeyError,
            TypeError,
            OSError,
        ) as exc:
            raise ReportParseError(f"not a readable PDF ({_reason(exc)})", path=name) from None
        if count == 0:
            raise ReportParseError("the PDF has no pages", path=name)
        for number in range(1, count + 1):
            try:
                runs = _page_runs(reader.pages[number - 1], number, path)
            except ReportParseError:
                raise
            except Exception as exc:  # pypdf raises many types on damaged content streams
                raise ReportParseError(
                    f"page {number} cannot be read, the PDF is damaged or truncated ({_reason(exc)})",
                    path=name,
                ) from None
            pages.append(Page(number, lines_from_runs(runs)))
    finally:
        pypdf_log.setLevel(level)
    empty = [p.number for p in pages if not p.lines]
    if len(empty) == len(pages):
        raise ReportParseError(
            "the PDF has no text layer (a scan?): no text on page 1"
            + (f" or any of its {len(pages)} pages" if len(pages) > 1 else "")
            + "; run it through OCR first",
            path=name,
        )
    return pages


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


def read_pdf_report(path: Path) -> LaidOut:
    """The report text of a PDF, with the page each line came from."""
    return layout_text(pdf_pages(path))
