"""The evidence matrix page and its verdict form over real HTTP (uvicorn on 127.0.0.1) and a real
database (tests/webapp.py: classifications from the OpenAI-compatible STUB endpoint, a stub)."""

from __future__ import annotations

import re
import sqlite3
from html import unescape

import pytest

from classifier.rubric import rubrics_for

from .test_web import csrf_of, decide, item_ids, login
from .webapp import WebServer


@pytest.fixture
def server(review_db):
    with WebServer(review_db) as web:
        yield web


def cell(html: str, row: int, col: int) -> str:
    found = re.search(rf'<td class="cell[^"]*"[^>]*id="cell-{row}-{col}".*?</td>', html, re.S)
    assert found, f"no cell {row}-{col}"
    return unescape(found[0])


def verdict_form(html: str, row: int, col: int) -> dict:
    text = cell(html, row, col)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', text))
    return fields


def verdicts_in(db_path) -> list[tuple]:
    sql = "select member, dimension, label, analyst, version from verdicts order by id"
    return sqlite3.connect(db_path).execute(sql).fetchall()


def test_the_matrix_shows_each_cell_and_links_it_to_the_queue(server, review_db):
    rubric = rubrics_for(18)[0]
    c = login(server)
    page = c.get("/matrix?commitment=18")
    assert page.status_code == 200
    canada = rubric.members.index("Canada")
    first = cell(page.text, canada, 0)
    assert "none" in first and "proposed: no confirmed action" in first
    assert "no confirmed action — 4 pending candidates" in first
    link = re.search(r'<a class="open" href="([^"]+)"', first)[1]
    assert link == f"/queue?member=Canada&commitment=18&dimension={rubric.dimension_ids[0]}"
    queue = c.get(link)
    assert queue.status_code == 200 and 'id="cell-filter"' in queue.text
    assert len(re.findall(r'<tr class="state-pending">', queue.text)) == 4
    other = c.get(f"/queue?member=Canada&commitment=18&dimension={rubric.dimension_ids[1]}")
    assert '<tr class="state-' not in other.text  # the stub suggests action in the first dimension only

    for item in item_ids(review_db):  # accept every item: the cells fill with confirmed actions
        assert decide(c, item, action="accept").status_code == 303
    first = cell(c.get("/matrix?commitment=18").text, canada, 0)
    assert "4 strong, 0 weak of 4 confirmed actions (points-5)" in first and 'class="gap"' not in first
    assert len(re.findall(r'<li><a href="/items/\d+">', first)) == 4
    assert c.get("/matrix?commitment=99").status_code == 404
    assert c.get("/matrix?commitment=x").status_code == 400
    assert c.get("/matrix").status_code == 200  # the first commitment


def test_verdicts_from_the_matrix_are_versioned_and_attributed(server, review_db):
    rubric = rubrics_for(18)[0]
    canada = rubric.members.index("Canada")
    ana, ben = login(server, "ana"), login(server, "ben")
    page = ana.get("/matrix?commitment=18").text
    form = verdict_form(page, canada, 0)
    assert form["member"] == "Canada" and form["version"] == "0"
    seen_by_ben = verdict_form(ben.get("/matrix?commitment=18").text, canada, 0)
    r = ana.post(
        "/matrix/verdict", data={**form, "label": "weak", "note": "statements only", "analyst": "zed"}
    )
    assert r.status_code == 303 and "done=verdict" in r.headers["location"]
    after = ana.get(r.headers["location"]).text
    assert "verdict by ana: statements only" in cell(after, canada, 0) and "Saved: verdict" in after
    assert f'data-focus-row="{canada}" data-focus-col="0"' in after  # the keyboard stays on the cell
    # ben decided on version 0 too: refused, nothing lost, the page shows ana's verdict
    late = ben.post("/matrix/verdict", data={**seen_by_ben, "label": "strong"})
    assert late.status_code == 409 and "changed since version 0 (now version 1)" in unescape(late.text)
    assert verdicts_in(review_db) == [("Canada", rubric.dimension_ids[0], "weak", "ana", 1)]
    bad = ana.post("/matrix/verdict", data={**verdict_form(after, canada, 0), "label": "great"})
    assert bad.status_code == 400 and "label must be one of" in bad.text
    wrong = ana.post(
        "/matrix/verdict", data={**verdict_form(after, canada, 0), "label": "weak", "member": "Narnia"}
    )
    assert wrong.status_code == 400 and "not a member of commitment 18" in unescape(wrong.text)
    forged = ana.post(
        "/matrix/verdict", data={**verdict_form(after, canada, 0), "label": "none", "csrf": "x"}
    )
    assert forged.status_code == 403
    rita = login(server, "rita")
    page = rita.get("/matrix?commitment=18")
    assert page.status_code == 200 and "verdict-form" not in page.text
    refused = rita.post(
        "/matrix/verdict", data={**form, "csrf": csrf_of(page.text), "label": "none", "version": "1"}
    )
    assert refused.status_code == 403
    assert len(verdicts_in(review_db)) == 1
    scores = ana.get("/scores/18/Canada").text
    assert "Verdict by ana" in scores and "statements only" in scores
