"""The report parser on the two bundled chapters and on real excerpts, one test per quirk.

Excerpts in tests/fixtures/excerpts/ are cut verbatim from corpus/reports/ (the file
name says which quirk each one shows).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from classifier.reports import (
    ReportParseError,
    parse_report,
    parse_report_file,
    read_fragment,
    scoring_table,
)

from .conftest import FINAL_19, INTERIM_18, excerpt


def paras(entries):
    return [e.text for e in entries if e.kind == "para"]


def clean(text):
    return re.sub(r"\ue000\d+\ue001", "", text)


def member(report, name):
    return next(m for m in report.chapters[0].members if m.member == name)


def action(report, name, day):
    return next(a for a in member(report, name).actions if a.date_raw.startswith(day))


# --- Quirks, on real excerpts -------------------------------------------------


def test_footnote_block_in_mid_paragraph_is_skipped_and_paragraph_rejoined():
    entries, notes, _ = read_fragment(excerpt("md-footnotes-mid-paragraph-and-next-section.md"), "markdown")
    rcmp = next(p for p in paras(entries) if p.startswith("On 17 October 2024"))
    assert "drug cartel network which trafficked drugs to North America." in clean(rcmp)
    assert "\ue0002836\ue001" in rcmp
    # footnote 2836 is printed after the next member's heading, and still resolves
    assert notes[2836].url.startswith("https://rcmp.ca/en/news/2024/10/significant-transnational")
    assert notes[2836].publisher == "Royal Canadian Mounted Police"


def test_footnote_printed_inside_next_members_section(report19):
    japan = member(report19, "Japan")
    cited = [a for a in japan.actions if 4520 in a.footnotes]
    assert len(cited) == 1
    assert report19.footnotes[4520].url == "https://www.kh.emb-japan.go.jp/files/100828154.pdf"
    # and the UK's first paragraph, cut by that block, is whole again
    uk1 = member(report19, "United Kingdom").actions[0]
    assert "apprehend smuggling gangs. Additionally" in uk1.text


def test_paragraph_starting_on_previous_lines_on():
    entries, _, warnings = read_fragment(excerpt("md-dangling-on.md"), "markdown")
    texts = [clean(p) for p in paras(entries)]
    assert any(t.startswith("On 16 November 2024, the European Parliament") for t in texts)
    assert all(not t.endswith(" On") for t in texts)
    assert [w.code for w in warnings].count("paragraph-split") == 1


def test_url_on_its_own_line_after_its_footnote():
    _, notes, warnings = read_fragment(excerpt("md-url-own-line.md"), "markdown")
    assert notes[2806].url == "https://www.g7.utoronto.ca/summit/1998birmingham/finalcom.htm"
    assert notes[2807].url == "https://www.g7.utoronto.ca/summit/2000okinawa/finalcom.htm"
    assert {w.code for w in warnings} == {"url-detached"}


def test_urls_printed_before_their_footnotes():
    _, notes, _ = read_fragment(excerpt("pdf-urls-before-footnotes.txt"), "pdf-text")
    assert notes[4416].url == "https://www.g7.utoronto.ca/summit/2024apulia/240614-apulia-communique.html"
    assert notes[4417].url == "https://www.g7.utoronto.ca/summit/1998birmingham/finalcom.htm"
    assert notes[4418].url == "https://www.g7.utoronto.ca/summit/2000okinawa/finalcom.htm"


def test_escaped_markdown_in_url_uses_the_link_target():
    _, notes, _ = read_fragment(excerpt("md-escaped-url.md"), "markdown")
    assert notes[2816].url == "https://www.g7.utoronto.ca/compliance/Compliance_Coding_Manual_2020.pdf"
    assert "\\" not in notes[2816].raw


def test_sup_ordinal_is_not_a_footnote():
    _, notes, _ = read_fragment(excerpt("md-sup-ordinal.md"), "markdown")
    assert set(notes) == {2877}
    assert notes[2877].title.startswith("7th Budapest process Ministerial conference")


def test_url_split_across_lines_through_math_mode():
    _, notes, warnings = read_fragment(excerpt("pdf-url-math-fragment.txt"), "pdf-text")
    assert notes[4449].url == (
        "https://www.canada.ca/en/public-safety-canada/news/2024/12/government-of-canada-announces-"
        "its-plan-to-strengthen-border-security-and-our-immigration-system.html"
    )
    assert notes[4450].url.endswith("starting-with-ontario.html")
    assert "url-split" in {w.code for w in warnings}


def test_url_fragments_printed_away_and_out_of_order():
    _, notes, _ = read_fragment(excerpt("pdf-fragments-out-of-order.txt"), "pdf-text")
    base = "https://www.europol.europa.eu/media-press/newsroom/news/"
    assert notes[4637].url == base + "france-arrests-26-for-smuggling-migrants-indian-sub-continent"
    assert notes[4639].url == base + "dna-of-organised-crime-changing-and-so-threat-to-europe"
    assert notes[4640].url == base + "7-arrested-for-facilitating-migrant-smuggling-across-english-channel"
    assert notes[4636].url.endswith("combatting-trafficking-human-beings-2025-01-20_en")


def test_several_footnotes_on_one_line():
    _, notes, _ = read_fragment(excerpt("pdf-several-footnotes-one-line.txt"), "pdf-text")
    assert {4593, 4594, 4595} <= set(notes)
    assert notes[4593].url.startswith("https://home-affairs.ec.europa.eu/news/national-coordinators")
    assert notes[4594].publisher == "Council of the EU"
    assert notes[4594].url.endswith("-21-june-2024-brussels/")
    assert notes[4595].title == "Frontex teams up to combat human trafficking"


def test_plain_digit_markers_in_text():
    entries, notes, _ = read_fragment(excerpt("pdf-plain-digit-markers.txt"), "pdf-text")
    actions = next(p for p in paras(entries) if p.startswith('"Actions"'))
    assert actions.endswith('repetition."\ue0004432\ue001')
    assert notes[4432].url == "https://www.merriam-webster.com/dictionary/action"
    assert notes[4433].accessed == dt.date(2024, 10, 15)  # a citation broken over two lines


def test_plain_digit_footnote_number_starting_a_line():
    _, notes, _ = read_fragment(excerpt("pdf-plain-digit-footnote-start.txt"), "pdf-text")
    assert notes[4458].publisher == "Ministero dell'Interno"
    assert notes[4458].url.startswith("https://www.interno.gov.it/it/stampa-e-comunicazione/")
    assert notes[4457].accessed == dt.date(2024, 11, 10)


def test_citation_continuing_after_a_page_break():
    _, notes, _ = read_fragment(excerpt("pdf-footnote-continues-after-break.txt"), "pdf-text")
    fn = notes[4601]
    assert fn.publisher == "European Union Agency for Criminal Justice Cooperation"
    assert fn.place == "The Hague"
    assert fn.published == dt.date(2024, 7, 10)
    assert fn.url.endswith("working-arrangements-five-latin-american")


def test_flattened_scoring_table_is_reassembled():
    entries, _, _ = read_fragment(excerpt("pdf-flattened-scoring-table.txt"), "pdf-text")
    table = scoring_table([e for e in entries if e.kind == "row"])
    assert list(table) == ["-1", "0", "+1"]
    assert table["-1"].startswith("The G7 member has not taken any action to prevent")
    assert table["-1"].endswith("contradictory to the commitment.")
    assert "weak action in at least three of these dimensions." in table["0"]
    assert table["+1"].startswith("The G7 member has strong action in all four commitment dimensions")


def test_incomplete_paragraph_date_uses_the_footnote(report18):
    item = action(report18, "Canada", "17 December")
    assert item.date == dt.date(2024, 12, 17)
    assert item.date_source == "footnote"
    assert any(w.code == "date-from-footnote" and w.member == "Canada" for w in report18.warnings)


def test_headings_at_mixed_levels_and_bold(report18):
    members = [(m.member, m.heading_score) for m in report18.chapters[0].members]
    assert [name for name, _ in members] == [
        "Canada",
        "France",
        "Germany",
        "Italy",
        "Japan",
        "United Kingdom",
        "United States",
        "European Union",
    ]
    assert dict(members)["Japan"] == 0  # '## **Japan: 0**'
    assert dict(members)["Italy"] == 1  # '#### **Italy: +1**'


def test_footnote_without_comma_between_title_and_publisher(report18):
    fn = report18.footnotes[2839]
    assert fn.title == "G7 Foreign Ministers' Meeting Statement"
    assert fn.publisher == "G7 Information Centre"
    assert fn.place == "Fiuggi – Anagni"


# --- Whole chapters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "number", "kind", "title", "average"),
    [
        ("report18", 18, "interim", "Migration and Refugees: Border Management", "+0.88 (94%)"),
        (
            "report19",
            19,
            "final",
            "Migration and Refugees: Preventing Migrant Smuggling and Trafficking",
            "+0.38 (69%)",
        ),
    ],
)
def test_chapter_structure(request, fixture, number, kind, title, average):
    report = request.getfixturevalue(fixture)
    assert report.kind == kind and report.summit == "2024 Apulia"
    (chapter,) = report.chapters
    assert (chapter.number, chapter.title, chapter.average_printed) == (number, title, average)
    assert chapter.commitment_source.endswith("Leaders’ Communiqué") or chapter.commitment_source.endswith(
        "Leaders' Communiqué"
    )
    assert len(chapter.assessment) == 8 and len(chapter.members) == 8
    for section in chapter.members:
        assert section.table_score == section.heading_score == section.sentence_score
        assert section.analysts and section.opening and section.conclusions
        assert section.score_sentence.startswith("Thus,")
        assert all(a.date is not None for a in section.actions)
    assert set(chapter.scoring_guidelines) == {"-1", "0", "+1"}
    assert chapter.guidelines.full.startswith("Full compliance")
    assert chapter.guidelines.partial.startswith("Partial compliance")
    assert chapter.guidelines.non.startswith("Non-compliance")
    assert chapter.guidelines.strong_examples and chapter.guidelines.weak_examples


def test_every_dated_action_paragraph_is_an_evidence_item(report18, report19):
    """Count 'On <day>' paragraph starts per member straight from the raw text, independently."""
    for path, report in ((INTERIM_18, report18), (FINAL_19, report19)):
        raw = path.read_text(encoding="utf-8")
        counts: dict[str, int] = {}
        current = None
        for line in raw.splitlines():
            m = re.match(r"^(?:#+ )?\**([A-Z][A-Za-z ]+): [+\-]?\d\**$", line.strip())
            if m:
                current = m[1]
            elif current and re.match(r"^(On )?\d{1,2} [A-Z][a-z]+ \d{4}, ", line):
                counts[current] = counts.get(current, 0) + 1  # also '16 November 2024, …' after 'On'
            elif current and re.match(r"^On \d{1,2} [A-Z][a-z]+,", line):
                counts[current] = counts.get(current, 0) + 1  # 'On 17 December, …'
        parsed = {m.member: len(m.actions) for m in report.chapters[0].members}
        assert parsed == counts


def test_every_action_has_date_member_and_urls(report18, report19):
    for report in (report18, report19):
        for section in report.chapters[0].members:
            for item in section.actions:
                m = re.match(r"On (\d{1,2}) ([A-Z][a-z]+)", item.text)
                assert m and item.date.day == int(m[1]) and item.date.strftime("%B") == m[2]
                for n in item.footnotes:
                    url = report.footnotes[n].url
                    assert url and url.startswith("https://") and " " not in url, (n, url)
                assert "\ue000" not in item.text and "<sup>" not in item.text


def test_report_contradictions_are_warnings_naming_the_place(report18, report19):
    codes18 = {w.code for w in report18.warnings}
    assert "dimension-count" in codes18  # Features: two dimensions; guidelines: three
    assert "rule-mismatch" not in codes18
    mismatch = [w for w in report19.warnings if w.code == "rule-mismatch"]
    assert len(mismatch) == 1 and "score 0" in mismatch[0].message and "weak >=2" in mismatch[0].message
    two = [w for w in report19.warnings if w.code == "multiple-conclusions"]
    assert [w.member for w in two] == ["Japan"] and two[0].line
    outside = [w for w in report19.warnings if w.code == "date-outside-period"]
    assert {w.member for w in outside} == {"European Union"}
    assert any("2023-03-16" in w.message for w in outside)
    truncated = [w for w in report19.warnings if w.code == "paragraph-truncated"]
    assert {w.line for w in truncated} == {626, 692}


def test_table_heading_and_sentence_disagreement_is_a_warning():
    text = INTERIM_18.read_text(encoding="utf-8").replace("Japan\t\t0\t", "Japan\t\t\t+1", 1)
    report = parse_report(text, file_name="edited.txt")
    conflicts = [w for w in report.warnings if w.code == "score-conflict"]
    assert [w.member for w in conflicts] == ["Japan"]
    assert "assessment table 1" in conflicts[0].message.replace("+", "")
    assert member(report, "Japan").sentence_score == 0  # the sentence, not the table
    assert any(w.code == "average-mismatch" for w in report.warnings)


def test_file_with_several_chapters():
    text = INTERIM_18.read_text(encoding="utf-8")
    chapter = text[text.index("## 18. Migration") :]
    both = text + "\n\n" + chapter.replace("## 18. Migration", "## 17. Migration", 1)
    report = parse_report(both, file_name="two.txt")
    assert [c.number for c in report.chapters] == [18, 17]
    assert [len(m.actions) for m in report.chapters[1].members] == [
        len(m.actions) for m in report.chapters[0].members
    ]


# --- Bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"   \n\n  ", "file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        (b"caf\xe9 au lait\n", "not UTF-8"),
        (b"# Notes\n\nA shopping list: eggs, milk.\n", "no compliance-report chapter"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ReportParseError) as info:
        parse_report_file(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path)) or str(info.value).startswith("bad.txt")
    assert "\n" not in str(info.value)


def test_truncated_file_names_the_member_and_line(tmp_path):
    text = INTERIM_18.read_text(encoding="utf-8")
    cut = text[: text.index("Thus, the United States receives")]
    path = tmp_path / "cut.txt"
    path.write_text(cut, encoding="utf-8")
    with pytest.raises(ReportParseError) as info:
        parse_report_file(path)
    assert "United States" in str(info.value) and "truncated" in str(info.value)
    assert info.value.line is not None


def test_publishers_with_commas_in_their_names(report19):
    fcdo = [fn for fn in report19.footnotes.values() if fn.publisher and "Commonwealth" in fn.publisher]
    assert fcdo and all(fn.publisher.startswith("Foreign, Commonwealth") for fn in fcdo)
    assert all(not fn.title.endswith(", Foreign") for fn in fcdo)
    family = [fn for fn in report19.footnotes.values() if fn.publisher and "Senior Citizens" in fn.publisher]
    assert (
        family and family[0].publisher.endswith("Women and Youth") and "Family Affairs" in family[0].publisher
    )


# --- Work linear in the input ----------------------------------------------------


def count_text_handed_to_helpers(monkeypatch):
    """Wrap every function of the parser modules (and their classes' methods) so that each call
    adds the length of the strings it is given to a total: the characters the parser's helpers
    are asked to read. Quadratic work shows as a total that grows with the square of the input
    (a helper handed the growing paragraph for every line, as the old line glue was)."""
    import functools
    import inspect

    from classifier import report_text, reports

    total = [0]

    def counted(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            total[0] += sum(len(a) for a in (*args, *kwargs.values()) if isinstance(a, str))
            return fn(*args, **kwargs)

        return wrapper

    wrapped = {}
    for module in (report_text, reports):
        for name, value in list(vars(module).items()):
            if inspect.isfunction(value) and value.__module__ in (report_text.__name__, reports.__name__):
                monkeypatch.setattr(module, name, wrapped.setdefault(value, counted(value)))
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                for attr, member in list(vars(value).items()):
                    if inspect.isfunction(member) and not attr.startswith("__"):
                        monkeypatch.setattr(value, attr, counted(member))
    return total


def sup(n):
    return str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


LINEAR_SHAPES = {
    "a paragraph of one-character lines": lambda n: "a\n" * n,
    "a paragraph of prose lines": lambda n: "the committee met to discuss the plan\n" * n,
    "unterminated paragraphs": lambda n: "some words without an end\n\n" * n,
    "a URL broken over every line": lambda n: "https://example.org/news/border-\n" * n,
    "lines of URLs": lambda n: "".join(f"https://example.org/news/{i}\n" for i in range(n)),
    "footnotes with their URLs printed apart": lambda n: "".join(
        f"{sup(i + 1)} Title, Ministry (Ottawa) 1 July 2024. Access Date: 2 July 2024.\n"
        + (f"https://example.org/{i}\n" if i % 2 else "")
        for i in range(n)
    ),
    "a line of footnote-like numbers": lambda n: " ".join(f"a/b {1000 + i} Alpha" for i in range(n)),
    "a citation continued over many lines": lambda n: "⁵ Title,\n" + "more words of the title,\n" * n,
}


@pytest.mark.parametrize("shape", list(LINEAR_SHAPES))
def test_the_parser_reads_each_character_a_bounded_number_of_times(monkeypatch, shape):
    """Not timed (the times are in bench/report_scaling.py): the characters handed to the
    parser's helpers, per character of input, stay flat when the input grows eightfold."""
    per_char = []
    for n in (500, 4000):
        text = LINEAR_SHAPES[shape](n)
        total = count_text_handed_to_helpers(monkeypatch)
        with pytest.raises(ReportParseError):
            parse_report(text, file_name="shape.txt", source_format="pdf-text")
        per_char.append(total[0] / len(text))
        monkeypatch.undo()
    small, large = per_char
    assert large < 40, per_char  # a few passes over the text, not one per line
    assert large < small * 1.5, per_char
