"""Double coding in a real browser: an analyst does not see the other coder's coding before coding.

Real here, as in tests/test_web_e2e.py (whose browser, server and login helpers this uses):
Debian's Chromium driven by Playwright, the application under uvicorn, a real SQLite review
database. Not real: the model (its answers came from the OpenAI-compatible stub).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from playwright.sync_api import expect

from classifier import coding, review
from classifier.store import open_db

from .test_web_e2e import browser, login, new_context, server, shoot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_second_coder_does_not_see_the_first_coders_coding(server, new_context, review_db):  # noqa: F811
    db = open_db(review_db)
    _, (item,) = coding.assign(db, ["ana", "ben"], 1, commitment=18, seed=5)
    dim = next(iter(review.state_of(db, item).labels))  # the stub suggests it strong
    db.conn.close()
    base = server.url

    # ana codes it with the keyboard: the first dimension weak (1 w), then accept (a)
    ana = login(new_context(), base, "ana")
    ana.goto(f"{base}/items/{item}")
    expect(ana.locator("#coding-status")).to_contain_text("0 of 2 coded")
    ana.keyboard.press("1")
    with ana.expect_navigation():
        ana.keyboard.press("w")
    expect(ana.locator(f"#dim-{dim} .label")).to_have_text("weak")  # her own coding's label
    with ana.expect_navigation():
        ana.keyboard.press("a")
    ana.goto(f"{base}/items/{item}")
    expect(ana.locator("#coding-status")).to_contain_text("1 of 2 coded")
    expect(ana.locator("#codings tr.coding-row")).to_have_count(1)
    expect(ana.locator('#codings tr[data-analyst="ana"]')).to_contain_text("accept")

    # ben opens it: one coder has coded, but not what; the suggestion's label, no history
    ben = login(new_context(), base, "ben")
    ben.goto(f"{base}/items/{item}")
    expect(ben.locator("#state")).to_have_text("pending")
    expect(ben.locator("#coding-status")).to_contain_text("1 of 2 coded")
    expect(ben.locator('#codings tr[data-analyst="ana"]')).to_have_count(0)
    expect(ben.locator('#codings tr[data-analyst="ben"]')).to_contain_text("not coded yet")
    expect(ben.locator(f"#dim-{dim} .label")).to_have_text("strong")
    expect(ben.locator("#history li")).to_have_text(["No decision yet."])
    assert "weak" not in ben.locator("#coding").inner_text()
    shoot(ben, "coding-blind")

    # ben codes it: accept as suggested; now both see both codings and the disagreement
    with ben.expect_navigation():
        ben.keyboard.press("a")
    for page in (ana, ben):
        page.goto(f"{base}/items/{item}")
        expect(page.locator("#codings tr.coding-row")).to_have_count(2)
        expect(page.locator("#coding-status")).to_contain_text(f"disagree on {dim}")
        expect(page.locator('#codings tr[data-analyst="ana"]')).to_contain_text("weak")
    shoot(ben, "coding-revealed")
    with closing(sqlite3.connect(review_db)) as conn:
        assert conn.execute("select count(*) from decisions where item_id = ?", [item]).fetchone()[0] == 0
        assert conn.execute(
            "select analyst, action from codings where item_id = ? order by id", [item]
        ).fetchall() == [
            ("ana", "relabel"),
            ("ana", "accept"),
            ("ben", "accept"),
        ]
