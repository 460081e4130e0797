"""Locating a model's quotes in the document: exact, then normalised, then fuzzy.

A quote is stored with its character offsets in the document text and how it was found.
A label whose quotes cannot be located is ungrounded: flagged for review, never silently
accepted and never silently dropped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

from rapidfuzz import fuzz

FUZZY_THRESHOLD = 90.0
_FOLD = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "–": "-", "—": "-", "\u00a0": " "})


@dataclass
class Located:
    quote: str
    start: int | None
    end: int | None
    method: str  # exact | normalized | fuzzy | missing
    score: float

    @property
    def found(self) -> bool:
        return self.start is not None

    def as_dict(self) -> dict:
        return asdict(self)


def _normalise(text: str) -> tuple[str, list[int]]:
    """Case-folded letters and digits with single spaces, and each output char's source index."""
    out: list[str] = []
    index: list[int] = []
    space = True
    for i, ch in enumerate(unicodedata.normalize("NFC", text).translate(_FOLD)):
        if ch.isalnum():
            out.append(ch.casefold())
            index.append(i)
            space = False
        elif not space:
            out.append(" ")
            index.append(i)
            space = True
    while out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def locate(quote: str, text: str) -> Located:
    """Find ``quote`` in ``text``; offsets are into ``text``."""
    quote = quote.strip()
    if not quote:
        return Located(quote, None, None, "missing", 0.0)
    start = text.find(quote)
    if start >= 0:
        return Located(quote, start, start + len(quote), "exact", 100.0)
    norm_text, index = _normalise(text)
    norm_quote, _ = _normalise(quote)
    if not norm_quote:
        return Located(quote, None, None, "missing", 0.0)
    at = norm_text.find(norm_quote)
    if at >= 0:
        return Located(quote, index[at], index[at + len(norm_quote) - 1] + 1, "normalized", 100.0)
    if len(norm_quote) < 12 or not norm_text:
        return Located(quote, None, None, "missing", 0.0)
    alignment = fuzz.partial_ratio_alignment(norm_quote, norm_text)
    if alignment is not None and alignment.score >= FUZZY_THRESHOLD:
        begin, end = alignment.dest_start, max(alignment.dest_end - 1, alignment.dest_start)
        return Located(quote, index[begin], index[end] + 1, "fuzzy", round(alignment.score, 1))
    return Located(quote, None, None, "missing", round(alignment.score, 1) if alignment else 0.0)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the text's sentences and lines, for extractive use."""
    spans = []
    for m in re.finditer(r"[^\n.!?]+(?:[.!?]+[\"”’)]?|$)", text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e - s >= 20:
            spans.append((s, e))
    return spans
