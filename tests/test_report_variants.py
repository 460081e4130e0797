"""Chapters unlike the bundled two, made from them (tests/report_variants.py): each variant must
parse to the gold its transformation implies. The variation each test covers is in its name."""

from __future__ import annotations

import datetime as dt
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classifier import gold
from classifier.models import MEMBER_CODES, MEMBER_REGISTRY, MEMBERS, registered_member
from classifier.reports import ReportParseError
from classifier.store import open_db

from . import report_variants as rv


@functools.cache
def base(number: int) -> rv.ChapterDoc:
    return rv.ChapterDoc.load(number)


def doc(number: int) -> rv.ChapterDoc:
    return base(number).copy()


def check(variant: rv.ChapterDoc, **kwargs):
    """Parse the variant and compare it with what its transformations expect."""
    report = variant.parse(**kwargs)
    (chapter,) = report.chapters
    expected = variant.expected
    assert [(r.member, r.score) for r in chapter.assessment] == [(m.name, m.score) for m in expected.members]
    assert [s.member for s in chapter.members] == [m.name for m in expected.members]
    for section, member in zip(chapter.members, expected.members, strict=True):
        assert section.score == member.score, member.name
        assert section.assessed == (member.score is not None)
        assert section.analysts == member.analysts, member.name
        got = [(a.date, a.date_source, a.text, a.footnotes) for a in section.actions]
        want = [(a.date, a.date_source, a.text, a.footnotes) for a in member.actions]
        assert got == want, member.name
        if not member.score_sentence:
            assert section.score_sentence is None and section.sentence_score is None
    assert [d.name for d in chapter.dimensions] == expected.dimensions
    codes = {w.code for w in report.warnings}
    assert expected.warnings <= codes, expected.warnings - codes
    assert not (expected.no_warnings & codes), expected.no_warnings & codes
    return report


# --- the registry --------------------------------------------------------------------


def test_registry_covers_the_g7_g20_eu_and_au_with_unique_codes_and_keeps_the_g7_codes():
    codes = [m.code for m in MEMBER_REGISTRY]
    assert len(codes) == len(set(codes)) == 21
    assert sum("G20" in m.groups for m in MEMBER_REGISTRY) == 21  # 19 countries, the EU, the AU
    assert {m.name for m in MEMBER_REGISTRY if "G7" in m.groups} == set(MEMBERS.values())
    for code, name in MEMBERS.items():
        assert MEMBER_CODES[name] == code
    assert MEMBER_CODES["African Union"] != MEMBER_CODES["Australia"]
    assert registered_member("Turkey") == registered_member("Türkiye") == "Türkiye"
    assert registered_member("the Republic of Korea") == "Korea"
    assert registered_member("Atlantis") is None


def test_unchanged_bundled_chapters_render_back_to_their_own_text():
    for number in (18, 19):
        path = rv.SOURCES[number][0]
        assert doc(number).render() == path.read_text(encoding="utf-8")
        check(doc(number))


# --- members -------------------------------------------------------------------------


@pytest.mark.parametrize("number", [18, 19])
def test_g20_member_set_with_the_african_union_not_assessed(number):
    variant = rv.g20_members(doc(number))
    report = check(variant)
    (chapter,) = report.chapters
    assert len(chapter.assessment) == 21
    au = chapter.members[-1]
    assert (au.member, au.assessed, au.score, au.actions) == ("African Union", False, None, [])
    scores = [m.score for m in variant.expected.members if m.score is not None]
    assert len(scores) == 20
    assert chapter.average_printed == rv.format_average(scores)


@pytest.mark.parametrize("number", [18, 19])
def test_not_assessed_member_with_a_heading_of_its_own_and_one_without(number):
    variant = rv.g20_members(doc(number), not_assessed={"Russia": "heading", "Korea": "absent"})
    report = check(variant)
    names = [s.member for s in report.chapters[0].members]
    assert names.index("Korea") == names.index("Indonesia") + 1  # where the table lists it
    russia = next(s for s in report.chapters[0].members if s.member == "Russia")
    assert russia.heading_score is None and russia.opening == "Russia is not assessed in this report."


def test_not_assessed_members_in_the_gold_scores_and_the_average(tmp_path):
    variant = rv.g20_members(doc(18), not_assessed={"Russia": "heading"})
    path = rv.write_variant(variant, tmp_path / "reports", "g20-18.txt")
    db = open_db()
    result = gold.import_report(db, path)
    assert result.evidence == sum(len(m.actions) for m in variant.expected.members)
    (table,) = gold.score_tables(db, 18)
    rows = {m["member"]: m for m in table["members"]}
    assert rows["Russia"]["printed"] == rows["African Union"]["printed"] == "not assessed"
    assert rows["African Union"]["assessed"] is False and rows["Canada"]["assessed"] is True
    assessed = [m.score for m in variant.expected.members if m.score is not None]
    assert table["average_computed"] == table["average"] == rv.format_average(assessed)
    rendered = gold.render_score_table(table)
    assert "African Union" in rendered and "not assessed" in rendered
    codes = {r["member_code"] for r in map(gold.evidence_record, gold.evidence_items(db, 18))}
    assert {"AR", "AU", "TR", "KR"} <= codes and "AFU" not in codes  # (the AU has no actions)
    # A G20 member is filtered like a G7 one: by code, by name, by another spelling.
    expected = next(len(m.actions) for m in variant.expected.members if m.name == "Argentina")
    assert expected
    for spelling in ("AR", "ar", "Argentina"):
        items = gold.evidence_items(db, 18, member=spelling)
        assert len(items) == expected and {gold.evidence_record(i)["member"] for i in items} == {"Argentina"}
    assert (
        len(gold.evidence_items(db, 18, member="Turkey")) == len(gold.evidence_items(db, 18, member="TR")) > 0
    )


def test_a_name_in_the_table_that_is_no_member_is_a_warning():
    variant = doc(18)
    variant.head.append("Atlantis\t\t\t+1")
    report = variant.parse()
    assert "member-unknown" in {w.code for w in report.warnings}
    assert [r.member for r in report.chapters[0].assessment] == rv.G7


# --- dimensions ----------------------------------------------------------------------


@pytest.mark.parametrize("number", [18, 19])
@pytest.mark.parametrize("count", [1, 3, 5])
def test_dimensions_counted_alike_in_features_guidelines_and_table(number, count):
    check(rv.dimensions(doc(number), count))


@pytest.mark.parametrize("number", [18, 19])
@pytest.mark.parametrize("count", [1, 2, 4])
def test_dimensions_counted_but_never_enumerated(number, count):
    check(rv.dimensions(doc(number), count, named=False))


@pytest.mark.parametrize(("count", "table_count"), [(2, 3), (4, 1), (5, 3)])
def test_dimension_counts_that_disagree_are_a_warning(count, table_count):
    report = check(rv.dimensions(doc(19), count, table_count=table_count))
    (warning,) = [w for w in report.warnings if w.code == "dimension-count"]
    assert f"Scoring Guidelines: {table_count}" in warning.message
    assert f"Commitment Features: {count}" in warning.message


# --- analysts ------------------------------------------------------------------------


@pytest.mark.parametrize("number", [18, 19])
@pytest.mark.parametrize("form", rv.ANALYST_FORMS)
def test_analyst_line_forms(number, form):
    check(rv.analysts(doc(number), [form]))


def test_analyst_forms_mixed_in_one_chapter():
    variant = rv.analysts(doc(18), list(rv.ANALYST_FORMS))
    check(variant)
    assert {len(m.analysts) for m in variant.expected.members} == {0, 1, 2, 3}


# --- conclusions without 'Thus' ------------------------------------------------------


@pytest.mark.parametrize("number", [18, 19])
def test_no_score_sentences_anywhere_scores_by_the_headings(number):
    report = check(rv.without_score_sentences(doc(number)))
    assert all(s.conclusions for s in report.chapters[0].members)


def test_one_section_without_its_score_sentence_is_a_warning_when_others_follow():
    report = check(rv.without_score_sentences(doc(19), ["Japan"]))
    (warning,) = [w for w in report.warnings if w.code == "no-score-sentence"]
    assert warning.member == "Japan"


def test_the_last_section_alone_without_its_score_sentence_still_reads_as_truncated():
    with pytest.raises(ReportParseError, match="European Union has no 'receives a score of' sentence"):
        rv.without_score_sentences(doc(18), ["European Union"]).parse()


# --- dates without a year ------------------------------------------------------------


@pytest.mark.parametrize("number", [18, 19])
def test_action_dates_without_a_year_take_it_from_the_compliance_period(number):
    variant = rv.yearless_dates(doc(number))
    report = check(variant)
    sources = [a.date_source for s in report.chapters[0].members for a in s.actions]
    assert "paragraph" not in sources  # every year was removed
    assert {"period", "footnote"} <= set(sources)  # (a footnote dated that very day gives its date)
    assert "date-year-ambiguous" not in {w.code for w in report.warnings}


def test_a_period_holding_the_day_in_two_years_is_ambiguous_and_says_so():
    variant = rv.yearless_dates(doc(18), period=(dt.date(2023, 6, 15), dt.date(2024, 12, 20)))
    report = check(variant)
    ambiguous = [w for w in report.warnings if w.code == "date-year-ambiguous"]
    assert ambiguous and all("2023 and 2024" in w.message for w in ambiguous)


# --- everything at once, and random combinations --------------------------------------


def test_g20_five_dimensions_mixed_analysts_no_sentences_and_no_years():
    variant = rv.g20_members(doc(19), not_assessed={"Mexico": "heading"})
    variant = rv.dimensions(variant, 5)
    variant = rv.analysts(variant, list(rv.ANALYST_FORMS))
    variant = rv.without_score_sentences(variant)
    variant = rv.yearless_dates(variant)
    check(variant)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    number=st.sampled_from([18, 19]),
    g20=st.booleans(),
    count=st.none() | st.integers(1, 5),
    forms=st.none() | st.lists(st.sampled_from(rv.ANALYST_FORMS), min_size=1, max_size=4),
    sentences=st.booleans(),
    years=st.booleans(),
)
def test_any_combination_of_variations_parses_to_its_expected_gold(
    number, g20, count, forms, sentences, years
):
    variant = doc(number)
    if g20:
        variant = rv.g20_members(variant)
    if count is not None:
        variant = rv.dimensions(variant, count)
    if forms is not None:
        variant = rv.analysts(variant, forms)
    if not sentences:
        variant = rv.without_score_sentences(variant)
    if years:
        variant = rv.yearless_dates(variant)
    check(variant)


def test_a_member_the_table_has_not_assessed_but_its_section_scores_is_a_warning():
    variant = doc(18)
    variant.expected.members[4].score = None  # Japan's row printed as N/A; its section says 0
    report = variant.parse()
    japan = next(s for s in report.chapters[0].members if s.member == "Japan")
    assert (japan.table_score, japan.score) == (None, 0)
    (warning,) = [w for w in report.warnings if w.code == "assessed-conflict"]
    assert warning.member == "Japan" and "scores it 0" in warning.message
    assert "average-mismatch" not in {w.code for w in report.warnings}  # seven members averaged
