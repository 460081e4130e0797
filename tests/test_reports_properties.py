"""Property-based tests: whatever the input, the parser raises only ReportParseError."""

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
