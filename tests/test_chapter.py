"""The chapter draft on the bundled gold: cited actions confirmed in a real database, rendered
as the whole chapter (Markdown, HTML, Word) and read back by the report parser."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from classifier import chapter as chapter_lib
from classifier import draft as draft_lib
from classifier import review, verdicts
from classifier.dates import long_date
from classifier.pipeline import confirm_cited_actions
from classifier.reports import parse_report
from classifier.rubric import rubrics_for
from classifier.score import member_scores
from classifier.store import open_db

from .conftest import INTERIM_18


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory, report18):
    """A database whose queue holds chapter 18's cited actions, accepted by their analysts."""
    path = tmp_path_factory.mktemp("chapter") / "gold.db"
    db = open_db(path)
    counts = confirm_cited_actions(db, report18, 18)
    assert counts["added"] == sum(len(s.actions) for s in report18.chapters[0].members)
    db.conn.close()
    return path


@pytest.fixture
def db(confirmed, isolated_db):
    shutil.copy(confirmed, isolated_db)
    return open_db(isolated_db)


def first_url(report, action) -> str | None:
    note = report.footnotes.get(action.footnotes[0]) if action.footnotes else None
    return note.url if note else None


def test_markdown_chapter_round_trips_through_the_report_parser(db, report18):
    rubric = rubrics_for(18)[0]
    drafted = chapter_lib.chapter_draft(db, rubric)
    md = chapter_lib.render_chapter(drafted, "md")
    back = parse_report(md, kind="interim", period=(rubric.period_start, rubric.period_end))
    (gold,) = report18.chapters
    (chapter,) = back.chapters
    assert (chapter.number, chapter.title) == (18, rubric.title)
    assert chapter.commitment_source == gold.commitment_source
    assert [s.member for s in chapter.members] == [s.member for s in gold.members]
    # the scores printed three times (table, heading, sentence) agree with the draft's ...
    drafted_scores = {s["member"]: s["score_value"] for s in drafted["members"]}
    for s in chapter.members:
        assert s.heading_score == s.sentence_score == s.table_score == drafted_scores[s.member]
    assert chapter.average_printed == drafted["average"]
    # ... and, from the reference labels of the cited actions by the strongest-label rule, with
    # the printed ones (all eight: Japan 0, the others +1)
    assert {s.member: s.score for s in chapter.members} == {s.member: s.score for s in gold.members}
    assert chapter.average_printed == gold.average_printed == "+0.88 (94%)"
    # the actions: member, date and text, in the draft's date order
    ours = sorted((a.member, a.date, a.text) for s in chapter.members for a in s.actions)
    theirs = sorted((a.member, a.date, a.text) for s in gold.members for a in s.actions)
    assert ours == theirs and len(ours) == 198
    for s in chapter.members:
        dates = [a.date for a in s.actions]
        assert dates == sorted(dates)
    # each action's (first) footnote URL comes back on the same action
    urls = {(a.member, a.text): first_url(report18, a) for s in gold.members for a in s.actions}
    assert {(a.member, a.text): first_url(back, a) for s in chapter.members for a in s.actions} == urls
    # numbered continuously through the chapter, one note per action, each cited once in order
    assert sorted(back.footnotes) == list(range(1, 199))
    assert [n for s in chapter.members for a in s.actions for n in a.footnotes[:1]] == list(range(1, 199))

    # translation notes: each translated source's note comes back (analyst or Google Translate)
    def notes(report, chapter):
        found = {}
        for a in (a for s in chapter.members for a in s.actions):
            note = report.footnotes[a.footnotes[0]]
            found[(a.member, a.text)] = (note.translation or "").lower() or None
        return found

    expected = notes(report18, gold)
    assert set(expected.values()) == {
        None,
        "translation provided by analyst",
        "translation provided by google translate",
    }
    assert notes(back, chapter) == expected
    # the opening verdicts and conclusions are where the parser looks for them
    for parsed, ours in zip(chapter.members, drafted["members"], strict=True):
        assert parsed.opening == ours["opening"]
        assert parsed.conclusions == [chapter_lib.plain(ours["conclusion"])]
    # the analysts who accepted the actions sign the sections
    assert [s.analysts for s in chapter.members] == [s.analysts[:1] for s in gold.members]
    # rubric texts come through
    assert chapter.features == rubric.features.text
    assert chapter.guidelines.full.startswith("Full compliance, or a score of +1")


def test_readings_agree_with_the_scores_and_the_interim_ones_with_the_strongest_rule(db):
    rubric = rubrics_for(18)[0]
    readings = draft_lib.member_readings(db, rubric)
    for row in member_scores(db, rubric):  # the draft scores as `evidence score` does
        assert draft_lib.score_of(readings[row["member"]], rubric) == row["score"]
    # the readings of a member's actions up to a date (an interim continued) are the strongest
    # confirmed label per dimension, as the verdicts' `strongest` rule reads them
    dated = draft_lib.readings_from_scores(db, rubric)
    strongest = verdicts.member_readings(db, rubric, rule="strongest")
    for member, mine in dated.items():
        assert {d: r[0] for d, r in mine.items()} == {d: r[0] for d, r in strongest[member].items()}
        for dim, (label, confirmed, items) in mine.items():
            assert confirmed
            assert all(review.state_of(db, i).labels[dim] == label for i in items)
            assert bool(items) == (label != "none")


def test_conclusion_names_the_dimensions_and_cites_the_actions_it_rests_on(db):
    rubric = rubrics_for(18)[0]
    sections = {s["member"]: s for s in draft_lib.draft(db, rubric)}
    japan = sections["Japan"]
    crime = next(d.name for d in rubric.dimensions if d.id == "organized_crime")
    assert japan["conclusion"].startswith("Japan has taken strong action on enhancing border management")
    assert f"but has not adequately addressed {crime[0].lower() + crime[1:]}" in japan["conclusion"]
    assert japan["score_sentence"] == "Thus, Japan receives a score of 0."
    cited = {int(n) for n in draft_lib.FOOTNOTE_MARK.findall(japan["conclusion"])}
    by_note = {p["footnote"]: p["item"] for p in japan["paragraphs"]}
    assert cited and cited <= set(by_note)
    for n in cited:  # a cited action carries a label the conclusion names
        assert set(review.state_of(db, by_note[n]).labels.values()) & {"strong", "weak"}
    assert sections["United States"]["score_sentence"] == "Thus, the United States receives a score of +1."


def test_an_unassessed_dimension_and_no_action_read_as_such(db):
    rubric = rubrics_for(18)[0]
    readings = {"Canada": {"border_management": ("weak", False, []), "organized_crime": ("none", True, [])}}
    (canada,) = [s for s in draft_lib.draft(db, rubric, readings=readings) if s["member"] == "Canada"]
    assert canada["conclusion"] == (
        "Canada has taken only weak action on enhancing border management and enforcement. It has not "
        "addressed curbing transnational organized crime involved in migrant smuggling and trafficking in "
        "persons. No verdict has been reached yet on partnering with countries of origin and transit."
    )
    assert canada["score"] == "-1" and canada["provisional"]


def test_docx_opens_and_html_is_well_formed(db, tmp_path):
    import docx

    rubric = rubrics_for(18)[0]
    drafted = chapter_lib.chapter_draft(db, rubric)
    path = tmp_path / "chapter.docx"
    assert chapter_lib.render_chapter(drafted, "docx", path) is None
    document = docx.Document(str(path))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert headings[0] == "18. Migration and Refugees: Border Management"
    assert "Japan: 0" in headings and headings[-1] == "Notes"
    (table,) = document.tables
    assert [c.text for c in table.rows[-1].cells] == ["Average", "", "+0.88 (94%)", ""]
    texts = [p.text for p in document.paragraphs]
    assert "Thus, Japan receives a score of 0." in texts
    notes = texts[texts.index("Notes") + 1 :]
    assert len(notes) == 198 and notes[0].startswith("1 New regulatory amendments")
    assert sum(r.font.superscript is True for p in document.paragraphs for r in p.runs) >= 2 * 198

    page = chapter_lib.render_chapter(drafted, "html")
    root = ET.fromstring(page.split("\n", 1)[1])  # after the doctype: well-formed XML
    assert root.tag == "html"
    assert len(root.findall(".//ol/li")) == 198
    ids = {li.get("id") for li in root.findall(".//ol/li")}
    links = {a.get("href")[1:] for a in root.iter("a")}
    assert links <= ids


def test_unsafe_text_is_escaped_in_html(db):
    rubric = rubrics_for(18)[0]
    item = review.list_items(db, commitment=18, member="Canada", limit=1)[0]["id"]
    state = review.state_of(db, item)
    review.decide(db, item, "ana", "edit", state.version, summary="On 4 July 2024, <script>x</script> & co.")
    page = chapter_lib.render_chapter(chapter_lib.chapter_draft(db, rubric), "html")
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt; &amp; co." in page
    ET.fromstring(page.split("\n", 1)[1])


def final_copy(rubric):
    """A final report's rubric for the same commitment: the bundled interim one, transformed
    (no final chapter of commitment 18 is bundled)."""
    return rubric.model_copy(update={"report_kind": "final", "period_end": dt.date(2025, 5, 15)})


def test_a_final_draft_continues_the_interim_and_shows_how_scores_moved(db, report18):
    interim = rubrics_for(18)[0]
    final = final_copy(interim)
    japan = [i["id"] for i in review.list_items(db, commitment=18, member="Japan", limit=50)]
    before = {s["member"]: s for s in chapter_lib.chapter_draft(db, interim)["members"]}
    # after the interim period: three new actions for Japan, confirmed strong in every dimension
    # (copies of a real item's rows, moved to March 2025: enough for any proposal rule), and one
    # for Canada dated later still, outside even the final period
    later = [
        ("Japan", "2025-03-04"),
        ("Japan", "2025-03-05"),
        ("Japan", "2025-03-06"),
        ("Canada", "2025-06-01"),
    ]
    for member, published in later:
        row = dict(next(db.query("select * from classifications where id = (select classification_id "
                                 "from queue_items where member = ? limit 1)", [member])))  # fmt: skip
        doc = dict(db.table("documents").get(row["document_id"]))
        version = dict(next(db.query("select * from document_versions where document_id = ?", [doc["id"]])))
        doc.pop("id"), version.pop("id"), row.pop("id")
        doc["canonical_url"] = doc["first_url"] = f"gold:later:{member}:{published}"
        doc_id = db.table("documents").insert(doc).last_pk
        text = f"On {long_date(published)}, {member} signed a readmission agreement."
        sha = "sha256:" + published
        db.table("document_versions").insert({**version, "document_id": doc_id, "content_sha256": sha,
                                               "text": text, "published": published})  # fmt: skip
        dims = {d: {"label": "strong", "quotes": []} for d in interim.dimension_ids}
        db.table("classifications").insert({**row, "document_id": doc_id, "content_sha": sha, "summary": text,
                                             "action_date": published, "dimensions": json.dumps(dims)})  # fmt: skip
    review.fill(db)
    for item in review.list_items(db, commitment=18, state="pending", limit=10):
        review.decide(db, item["id"], "ana", "accept", review.state_of(db, item["id"]).version)
    drafted = chapter_lib.chapter_draft(db, final, interim=interim)
    after = {s["member"]: s for s in drafted["members"]}
    assert after["Japan"]["moved"] == "interim 0 → final +1"
    assert after["Canada"]["moved"] == "interim +1 → final +1"
    # the interim's evidence and decisions carry over: the same items, three more for Japan
    assert [p["item"] for p in after["Japan"]["paragraphs"]][: len(japan)] == [
        p["item"] for p in before["Japan"]["paragraphs"]
    ]
    assert len(after["Japan"]["paragraphs"]) == len(before["Japan"]["paragraphs"]) + 3
    assert len(after["Canada"]["paragraphs"]) == len(before["Canada"]["paragraphs"])  # June 2025: out
    assert drafted["average"] == "+1.00 (100%)" and drafted["continues"] == "interim"
    md = chapter_lib.render_chapter(drafted, "md")
    assert "*Score moved: interim 0 → final +1.*" in md
    back = parse_report(md, kind="final", period=(final.period_start, final.period_end))
    (japan_back,) = [s for s in back.chapters[0].members if s.member == "Japan"]
    assert japan_back.score == 1 and japan_back.opening == after["Japan"]["opening"]
    assert japan_back.actions[-1].date == dt.date(2025, 3, 6)
    # the interim draft itself is unchanged by what came later
    again = {s["member"]: s for s in chapter_lib.chapter_draft(db, interim)["members"]}
    assert again["Japan"]["score"] == "0" and "moved" not in again["Japan"]


def cli(*args):
    from typer.testing import CliRunner

    from classifier.cli import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.slow  # several whole-chapter commands, a gold import among them
def test_report_draft_chapter_command(db, tmp_path):
    md = cli("report", "draft", "--commitment", "18", "--chapter")
    assert md.exit_code == 0, md.output
    assert md.output.startswith(
        "## 2024 G7 Apulia Summit Interim Compliance Report\n\n15 June 2024 to 20 December 2024\n"
    )
    assert "\n## 18. Migration and Refugees: Border Management\n" in md.output
    assert "Average\t\t+0.88 (94%)\t" in md.output
    no_out = cli("report", "draft", "--commitment", "18", "--chapter", "--format", "docx")
    assert no_out.exit_code == 1 and no_out.output.strip().count("\n") == 0
    assert "give --out PATH" in no_out.output
    bad = cli("report", "draft", "--commitment", "18", "--chapter", "--format", "pdf")
    assert bad.exit_code == 1 and "--format must be one of md, html, docx" in bad.output
    out = tmp_path / "18.docx"
    written = cli("report", "draft", "--commitment", "18", "--chapter", "--format", "docx", "--out", str(out))
    assert written.exit_code == 0 and out.stat().st_size > 10_000
    # the Markdown draft is a report file `evidence gold import` takes (its title page says what it is)
    md_out = tmp_path / "18.md"
    assert cli("report", "draft", "-c", "18", "--chapter", "-o", str(md_out)).exit_code == 0
    imported = cli("gold", "import", str(md_out))
    assert imported.exit_code == 0, imported.output
    assert "18" in imported.output
    html_out = tmp_path / "18.html"
    assert cli("report", "draft", "-c", "18", "--chapter", "-f", "html", "-o", str(html_out)).exit_code == 0
    assert html_out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_bundled_text_is_what_the_round_trip_compares(report18):
    assert report18.file_name == INTERIM_18.name and len(report18.chapters) == 1
