"""HTML and PDF -> document text and metadata, with a reconciled publication date.

HTML goes through ``trafilatura.bare_extraction`` (title, text, author, site, canonical
URL, date), PDF through pypdf. The language is the declared one (metadata, ``<html lang>``)
unless the text is confidently in another (:func:`classifier.languages.page_language`).
Anything else is skipped with the reason. The publication
date is reconciled from three witnesses, the metadata, the URL and the text's dateline;
the chosen date says where it came from and is flagged when the witnesses disagree.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field

import charset_normalizer
import lxml.html
import trafilatura

from .languages import page_language

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
MAX_TEXT_CHARS = 2_000_000

MONTH_NAMES = {
    # English, French, German, Italian, Spanish month names -> month number
    **{m: i for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august",
         "september", "october", "november", "december"], start=1)},
    **{m: i for i, m in enumerate(
        ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
         "septembre", "octobre", "novembre", "décembre"], start=1)},
    **{m: i for i, m in enumerate(
        ["januar", "februar", "märz", "april", "mai", "juni", "juli", "august",
         "september", "oktober", "november", "dezember"], start=1)},
    **{m: i for i, m in enumerate(
        ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
         "settembre", "ottobre", "novembre", "dicembre"], start=1)},
    **{m: i for i, m in enumerate(
        ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
         "septiembre", "octubre", "noviembre", "diciembre"], start=1)},
}  # fmt: skip
MONTH_ALT = "|".join(sorted(MONTH_NAMES, key=len, reverse=True))


class ExtractionSkipped(Exception):
    """Content we do not extract (unsupported type, empty body): recorded as skipped."""


class ExtractionFailed(Exception):
    """Content we should extract but cannot (broken PDF, no text found)."""


@dataclass
class Extracted:
    kind: str  # html | pdf
    text: str
    title: str | None = None
    language: str | None = None  # ISO 639-1 code, e.g. 'de'
    language_source: str | None = None  # metadata | text (detected from the text)
    site: str | None = None
    author: str | None = None
    description: str | None = None
    canonical_url: str | None = None
    published: dt.date | None = None
    date_source: str | None = None  # metadata | url | text
    date_conflict: bool = False
    date_candidates: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    encoding_source: str | None = None  # header | meta | utf-8 | detected
    truncated: bool = False


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def extract(body: bytes, content_type: str | None, url: str) -> Extracted:
    """Extract a fetched body. Raises :class:`ExtractionSkipped` or :class:`ExtractionFailed`."""
    if not body or not body.strip():
        raise ExtractionSkipped("empty body")
    kind = media_type(content_type)
    if kind in PDF_TYPES or (not kind and body[:5] == b"%PDF-") or body[:5] == b"%PDF-":
        result = extract_pdf(body)
    elif kind in HTML_TYPES or (not kind and body.lstrip()[:1] == b"<"):
        result = extract_html(body, content_type, url)
    else:
        raise ExtractionSkipped(f"unsupported content type {kind or 'unknown'}")
    reconcile_date(result, url)
    return result


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str, str]:
    """Bytes -> text: the header's charset, else a <meta> charset, else UTF-8, else detection."""
    m = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.I)
    if m:
        try:
            return body.decode(m[1]), m[1].lower(), "header"
        except (LookupError, UnicodeDecodeError):
            pass
    head = body[:4096].decode("ascii", "ignore")
    m = re.search(r"<meta[^>]+charset=[\"']?([\w.:-]+)", head, re.I)
    if m:
        try:
            return body.decode(m[1]), m[1].lower(), "meta"
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return body.decode("utf-8"), "utf-8", "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(body).best()
    if best is not None:
        encoding = best.encoding
        # The detector often names a Latin-1 cousin; on the web, Windows-1252 is what is meant.
        if encoding in ("latin_1", "iso8859_1", "iso-8859-1", "cp1250", "iso8859_15"):
            try:
                return body.decode("cp1252"), "cp1252", "detected"
            except UnicodeDecodeError:
                pass
        return str(best), encoding, "detected"
    return body.decode("utf-8", "replace"), "utf-8", "detected"


def extract_html(body: bytes, content_type: str | None, url: str) -> Extracted:
    html, encoding, encoding_source = decode_html(body, content_type)
    try:
        document = trafilatura.bare_extraction(html, url=url, with_metadata=True, favor_precision=True)
    except Exception as exc:  # trafilatura raises assorted errors on broken markup
        raise ExtractionFailed(f"HTML extraction failed: {type(exc).__name__}: {exc}") from None
    if document is None:
        raise ExtractionFailed("no main text found in the HTML")
    data = document if isinstance(document, dict) else document.as_dict()
    text = (data.get("text") or "").strip()
    if not text:
        raise ExtractionFailed("no main text found in the HTML")
    language, language_source = page_language(text, data.get("language") or _html_lang(html))
    truncated = len(text) > MAX_TEXT_CHARS
    return Extracted(
        kind="html",
        text=text[:MAX_TEXT_CHARS],
        title=data.get("title"),
        language=language,
        language_source=language_source,
        site=data.get("sitename"),
        author=data.get("author"),
        description=data.get("description"),
        canonical_url=data.get("url") if data.get("url") and data.get("url") != url else None,
        date_candidates={"metadata": data["date"]} if data.get("date") else {},
        encoding=encoding,
        encoding_source=encoding_source,
        truncated=truncated,
    )


def _html_lang(html: str) -> str | None:
    m = re.search(r"<html[^>]*\blang=[\"']?([A-Za-z]{2,3})", html[:4096], re.I)
    if m:
        return m[1].lower()
    try:
        root = lxml.html.fromstring(html[:20000])
    except (ValueError, lxml.etree.ParserError):
        return None
    lang = root.get("lang")
    return lang[:2].lower() if lang else None


def extract_pdf(body: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta = reader.metadata
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ExtractionFailed(f"unreadable PDF: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise ExtractionFailed("the PDF has no extractable text (scanned?)")
    title = (meta.title if meta and meta.title else None) or text.strip().splitlines()[0][:200]
    candidates = {}
    if meta is not None:
        created = meta.creation_date
        if created is not None:
            candidates["metadata"] = created.date().isoformat()
    language, language_source = page_language(text, None)
    return Extracted(
        kind="pdf",
        text=text[:MAX_TEXT_CHARS],
        title=title,
        language=language,
        language_source=language_source,
        author=meta.author if meta and meta.author else None,
        date_candidates=candidates,
        truncated=len(text) > MAX_TEXT_CHARS,
    )


# ---------------------------------------------------------------------------
# Dates


def date_from_url(url: str) -> tuple[str, str] | None:
    """('2024-07-04', 'day') or ('2024-07', 'month') from a URL's path, if it carries one."""
    path = url.split("?", 1)[0]
    for pattern in (
        r"(?<!\d)(20\d\d)[/-](0[1-9]|1[0-2])[/-](0[1-9]|[12]\d|3[01])(?!\d)",
        r"(?<!\d)(20\d\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)",
    ):
        m = re.search(pattern, path)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat(), "day"
            except ValueError:
                continue
    m = re.search(r"/(20\d\d)/(0[1-9]|1[0-2])(?:/|$)", path)
    if m:
        return f"{m[1]}-{m[2]}", "month"
    return None


def date_from_text(text: str) -> str | None:
    """The first full date in the opening of the text (the dateline), in several languages."""
    head = text[:600].lower()
    patterns = [
        rf"\b(\d{{1,2}})(?:er|\.)?\s+({MONTH_ALT})\s+(20\d\d)\b",  # 4 July 2024, 1er octobre 2024, 2. Oktober
        rf"\b({MONTH_ALT})\s+(\d{{1,2}}),?\s+(20\d\d)\b",  # July 4, 2024
    ]
    found: list[tuple[int, dt.date]] = []
    for k, pattern in enumerate(patterns):
        for m in re.finditer(pattern, head):
            try:
                if k == 0:
                    day, month, year = int(m[1]), MONTH_NAMES[m[2]], int(m[3])
                else:
                    day, month, year = int(m[2]), MONTH_NAMES[m[1]], int(m[3])
                found.append((m.start(), dt.date(year, month, day)))
            except (ValueError, KeyError):
                continue
    return min(found)[1].isoformat() if found else None


def reconcile_date(result: Extracted, url: str) -> None:
    """Choose the publication date: metadata, else the text's dateline, else the URL; flag disagreement."""
    candidates = dict(result.date_candidates)
    in_url = date_from_url(url)
    if in_url:
        candidates["url"] = in_url[0]
    in_text = date_from_text(result.text)
    if in_text:
        candidates["text"] = in_text
    result.date_candidates = candidates
    for source in ("metadata", "text", "url"):
        value = candidates.get(source)
        if value and len(value) == 10:
            result.published = dt.date.fromisoformat(value)
            result.date_source = source
            break
    else:
        if "url" in candidates:  # only year and month: take the first of the month, say so
            result.published = dt.date.fromisoformat(candidates["url"] + "-01")
            result.date_source = "url"
    if result.published is None:
        return
    chosen = result.published
    for value in candidates.values():
        if len(value) == 7:
            if value != chosen.isoformat()[:7]:
                result.date_conflict = True
        elif abs((dt.date.fromisoformat(value) - chosen).days) > 1:
            result.date_conflict = True
