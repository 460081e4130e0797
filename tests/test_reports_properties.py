"""Property-based tests: whatever the input, the parser raises only ReportParseError; and its
one-pass rewrites of quadratic patterns answer exactly as the patterns did."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier.reports import ReportParseError, parse_report

from .conftest import FINAL_19, INTERIM_18

LINES = {
    "markdown": INTERIM_18.read_text(encoding="utf-8").splitlines(),
    "pdf-text": FINAL_19.read_text(encoding="utf-8").splitlines(),
}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_own_error(text: str, fmt: str | None = None) -> None:
    try:
        report = parse_report(text, file_name="fuzz.txt", source_format=fmt)
    except ReportParseError as exc:
        assert str(exc).startswith("fuzz.txt")
    else:
        assert report.chapters


@SETTINGS
@given(st.text())
def test_arbitrary_text(text):
    parse_or_own_error(text)


@SETTINGS
@given(
    fmt=st.sampled_from(sorted(LINES)),
    data=st.data(),
)
def test_real_reports_with_lines_dropped_or_shuffled(fmt, data):
    lines = LINES[fmt]
    start = data.draw(st.integers(0, len(lines) - 1))
    stop = data.draw(st.integers(start, len(lines)))
    kept = lines[:start] + lines[stop:] if data.draw(st.booleans()) else lines[start:stop]
    swaps = data.draw(
        st.lists(
            st.tuples(st.integers(0, max(len(kept) - 1, 0)), st.integers(0, max(len(kept) - 1, 0))),
            max_size=5,
        )
    )
    for a, b in swaps:
        if kept:
            kept[a], kept[b] = kept[b], kept[a]
    parse_or_own_error("\n".join(kept), fmt)


@SETTINGS
@given(
    fmt=st.sampled_from(sorted(LINES)),
    junk=st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    where=st.integers(0, 10_000),
)
def test_real_reports_with_junk_inserted(fmt, junk, where):
    lines = list(LINES[fmt])
    lines.insert(where % len(lines), junk)
    parse_or_own_error("\n".join(lines), fmt)


# --- The one-pass rewrites do exactly what the patterns they replace did ---------------
#
# Each reference below is the earlier implementation, kept as the specification: it was
# quadratic on some inputs (it rescanned the rest of a line or paragraph from each of many
# starting points), and its replacement must give the same answer on every input.

import re  # noqa: E402

from classifier import report_text as rt  # noqa: E402
from classifier import reports as rp  # noqa: E402

EQUIVALENCE = settings(max_examples=400, deadline=None)


def pieces(*tokens):
    """Text made of the tokens a pattern cares about, and random characters between them."""
    return st.lists(st.one_of(st.sampled_from(tokens), st.text(max_size=3)), max_size=25).map("".join)


MARKDOWN = pieces(
    "[",
    "]",
    "(",
    ")",
    "](",
    "https://",
    "http://",
    "ttps://",
    "<",
    ">",
    " ",
    "\t",
    "x",
    "\\",
    "\\_",
    "_",
    "#",
    "*",
)


@EQUIVALENCE
@given(MARKDOWN)
def test_link_and_escape_rewrites_match_their_patterns(line):
    assert rt._link_targets(line) == re.sub(r"\[[^\]]*\]\((h?ttps?://[^)\s]*)\)", r"\1", line)
    assert rt._angle_targets(line) == re.sub(r"<(h?ttps?://[^>\s]+)>", r"\1", line)
    assert rt._ESCAPED.sub(rt._unescape, line) == re.sub(r"\\+([_*\[\]()#.\-])", r"\1", line)


def reference_split_footnote_starts(text, last_number):
    parts, start = [], 0
    pattern = re.compile(r"\s(\ue000(\d+)\ue001)\s*(?=\S)|\s(\d{3,5})\s+(?=[A-Z“\"‘'])")
    for m in pattern.finditer(text):
        before = text[start : m.start()].strip()
        looks_cited = bool(
            rt.URL_RE.search(before) or "Access Date" in before or reference_is_url_fragment(before)
        )
        if not looks_cited:
            continue
        if m[3] is not None:
            n = int(m[3])
            if last_number is None or not (last_number < n <= last_number + 10):
                continue
        else:
            n = int(m[2])
        parts.append(text[start : m.start()])
        start = m.start() + 1
        last_number = n
    parts.append(text[start:])
    return [p for p in (p.strip() for p in parts) if p]


def reference_is_url_fragment(text):
    t = text.strip()
    if not t:
        return False
    if re.match(r"^h?ttps?://", t):
        return True
    if (
        t[0].isupper()
        or t[0] in rt.QUOTES
        or (t.endswith((".", ",", ";", ":")) and not re.search(r"\.(html?|pdf|php|aspx?)$", t))
    ):
        return False
    if " " not in t:
        return bool(re.match(r"^[\w\-./%~?=&#+']+$", t))
    return "/" in t and ", " not in t and t.count(" ") <= 3 and not re.search(r"\s\w+\s\w+\s", t)


LINE = pieces(
    " \ue0001234\ue001 ", " \ue0005\ue001", " 1234 Title", " 1235 “A", " 1240 ", "https://e.org/a",
    "ttps://x", "Access Date", " ", "  ", "\t", "a/b", ", ", "x y", ".", "A", "word",
)  # fmt: skip


@EQUIVALENCE
@given(LINE, st.one_of(st.none(), st.integers(1225, 1240)))
def test_footnote_starts_split_as_before(line, last):
    line = line.strip()
    assert rt._split_footnote_starts(line, last) == reference_split_footnote_starts(line, last)
    facts = rt._LineFacts(line)
    for a in range(0, len(line) + 1, 3):
        for b in range(a, len(line) + 1, 2):
            assert facts.is_url_fragment(a, b) == reference_is_url_fragment(line[a:b])


def reference_glue(existing, addition):
    addition = addition.strip()
    last = existing.rstrip().split(" ")[-1] if existing.strip() else ""
    if (
        rt.URL_RE.match(last)
        and last.endswith(("-", "/", "_", "."))
        and re.match(r"^[\w\-./%~?=&#+]+(\s|$)", addition)
        and not addition[0].isupper()
    ):
        return existing.rstrip() + addition
    return existing.rstrip() + " " + addition


@EQUIVALENCE
@given(
    pieces("", "https://e.org/a-", "x "),
    st.lists(
        pieces("https://e.org/", "news-", "-", "/", ".", "_", "A", "a b", "x", "%"), min_size=1, max_size=12
    ),
)
def test_lines_glue_into_a_paragraph_as_before(first, lines):
    lines = [line.strip() for line in lines if line.strip()]
    entry = rt.Entry("para", first.strip(), 1)
    growing = rt._Growing(entry)
    expected = entry.text
    for line in lines:
        growing.glue(line)
        expected = reference_glue(expected, line)
        assert growing.last_char == expected[-1:]
    growing.close()
    assert entry.text == expected


CITATION = pieces(
    "Access Date: ", "Access date:", "AccessDate:", "2024", "12 ", "4 July 2024", ".", " ", "Translation provided by ",
    "Translation Provided by ", "x",
)  # fmt: skip


@EQUIVALENCE
@given(CITATION)
def test_final_clauses_are_found_as_before(text):
    text = rt.squash(text)
    old = re.search(r"Access\s*[Dd]ate:\s*([^.]*?\d{4})\.?\s*$", text)
    m, end = rt._final_clause(rt._ACCESS_LEAD, text)
    new = m if m and end - m.end() >= 4 and rt._FOUR_DIGITS.fullmatch(text, end - 4, end) else None
    assert (old and (old.start(), old[1])) == (new and (new.start(), text[new.end() : end]))
    old = re.search(r"(Translation [Pp]rovided by [^.]+)\.?\s*$", text)
    m, end = rt._final_clause(rt._TRANSLATION_LEAD, text)
    new = m if m and end > m.end() else None
    assert (old and (old.start(), old[1])) == (new and (new.start(), text[new.start() : end]))


SENTENCE = pieces(
    "Thus,", "thus,", " ", "  ", "   ", "\t", "the ", "Canada", "receives a score of", " receives a score of ",
    "+", "−", "1", "0", ".", "strong action", "strong actions", "weak actions", "include", ",", ";", " and", " or",
)  # fmt: skip


@EQUIVALENCE
@given(SENTENCE)
def test_sentence_patterns_match_as_before(text):
    old = re.search(r"\bThus,\s+(?:the\s+)?(.+?)\s+receives a score of\s+([+\-−–]?\s*\d)", text, re.I)
    assert rp._score_sentence(text) == (old and (old.start(), rt.parse_score(old[2])))
    assert rp._names_examples(rp._STRONG_ACTIONS, text) == bool(
        re.search(r"\bstrong actions?\b.*\binclude", text, re.I)
    )
    assert rp._drop_trailing_joiners(text) == re.sub(r"(,|;|\s+and|\s+or|\.)+\s*$", "", text)


def reference_split_publishers(parsed):
    known = sorted({fn.publisher for fn in parsed.values() if fn.publisher}, key=len, reverse=True)
    for number, fn in parsed.items():
        if fn.publisher is None and fn.title and fn.place is not None:
            for publisher in known:
                if fn.title.endswith(" " + publisher):
                    parsed[number] = fn.model_copy(
                        update={"title": fn.title[: -len(publisher)].strip(), "publisher": publisher}
                    )
                    break


WORDS = st.lists(
    st.sampled_from(["Ministry", "of", "Foreign", "Affairs", "Office", "G7", "x", ""]), max_size=5
)


@EQUIVALENCE
@given(st.lists(st.tuples(WORDS, st.one_of(st.none(), WORDS), st.booleans()), max_size=8))
def test_publishers_are_split_off_titles_as_before(rows):
    from classifier.models import Footnote

    def footnotes():
        return {
            n: Footnote(
                number=n,
                title=" ".join(title) or None,
                publisher=" ".join(publisher) if publisher else None,
                place="Ottawa" if placed else None,
                raw="x",
                line=n,
            )
            for n, (title, publisher, placed) in enumerate(rows, start=1)
        }

    new, old = footnotes(), footnotes()
    rt._split_publishers(new)
    reference_split_publishers(old)
    assert new == old
