"""End-to-end tests of the analysts' web interface in a real browser.

What is real here: the browser (Debian's Chromium at /usr/bin/chromium, driven by Playwright's
sync API, headless), the HTTP server (the `evidence serve` application under uvicorn on a free
port of 127.0.0.1, in a thread: tests/webapp.py), and the database (a real SQLite review
database per test, built by ``build_review_db``: release pages fetched from the local newsroom,
classified, put in the queue, accounts added). What is not: the model. Its answers came from
the OpenAI-compatible STUB (tests/llm_stub.py), a stub that returns canned classifications
quoting the pages, not a language model.

The tests log in through the login form, drive the pages with the keyboard shortcuts of
classifier/static/app.js, and check what an analyst would see: the queue, an item, decisions
and their history, the scores, a conflict between two analysts, hostile press-release text
staying inert text, and a reader's read-only view. Screenshots go to tests/screenshots/.

Chromium is required, not optional: if it is missing the tests fail (`make test` installs it
with apt-get, through .ci/ensure-browser). Do not run `playwright install`; the browser is the system's.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from .webapp import HANDLER, JS_LINK, PASSWORD, SCRIPT, WebServer

# Every test drives the browser: left out of `make test-fast`.
pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("EVIDENCE_CHROMIUM", "/usr/bin/chromium"))  # as .ci/ensure-browser
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
HOSTILE_SQL = """
    select q.id from queue_items q
    join document_versions v on v.document_id = q.document_id and v.content_sha256 = q.content_sha
    where instr(v.text, '<script>') > 0 order by q.id
"""
# Recorded before any page script runs (an init script is not subject to the page's CSP):
# every CSP violation, e.g. an inline script or event handler that the page blocked.
WATCH_CSP = """
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
        window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sample);
    });
"""


# ---------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def browser(review_db_template) -> Browser:
    """One Chromium for the module. Depends on the database template so that it is built (with
    asyncio.run) before Playwright's sync API starts its own event loop in this thread."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the web end-to-end tests need Debian's Chromium "
            "(`make test` installs it through .ci/ensure-browser: apt-get install -y chromium). "
            "Do not use `playwright install`."
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(review_db):
    with WebServer(review_db) as running:
        yield running


@pytest.fixture
def new_context(browser):
    """Make browser contexts (one per user: separate cookies); all closed after the test."""
    made: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


def submit_login(page: Page, name: str) -> None:
    """Fill in and send the login form shown on ``page``."""
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Log in").click()
    if nav.value.status == 403 and "cross-origin request refused" in page.content():
        pytest.fail(
            "the login form's own POST was refused as cross-origin: Chromium sends `Origin: null` on "
            "form POSTs from a page served with `Referrer-Policy: no-referrer`, and check_post in "
            "classifier/web.py refuses that Origin (see test_same_origin_form_post_is_accepted)"
        )


def login(context: BrowserContext, base: str, name: str, start: str = "/queue") -> Page:
    """Open ``start`` logged out, get the login form, log in through it, land on ``start``."""
    page = context.new_page()
    page.goto(f"{base}{start}")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login\?next="))
    submit_login(page, name)
    expect(page).to_have_url(f"{base}{start}")
    expect(page.locator("header .who")).to_contain_text(name)
    return page


def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.is_file() and path.stat().st_size > 1000, f"screenshot {path} missing or empty"
    return path


def score_row(page: Page, commitment: int, member: str) -> dict:
    """The member's row of a commitment's score table: its cells, by column heading."""
    table = page.locator(f"#commitment-{commitment} table")
    headings = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    row = table.locator(f'tbody tr[data-member="{member}"]')
    expect(row).to_have_count(1)
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    return dict(zip(headings, cells, strict=True))


def query(db_path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql, params).fetchall()


def decisions(db_path: Path, item_id: int) -> list[tuple[str, str]]:
    return query(db_path, "select analyst, action from decisions where item_id = ? order by id", (item_id,))


def history(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#history li").all_inner_texts()]


# ---------------------------------------------------------------------------
# Tests


def test_same_origin_form_post_is_accepted(server, new_context):
    """The login form's POST, sent by a real browser from our own page, is not refused as cross-origin.

    A browser does not always send the page's origin: under `Referrer-Policy: no-referrer` the
    Fetch standard makes a form POST carry `Origin: null`. The server must accept its own forms.
    """
    base = server.url
    page = new_context().new_page()
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("origin")) if r.method == "POST" else None)
    response = page.goto(f"{base}/login")
    assert response is not None
    policy = response.headers.get("referrer-policy")
    page.get_by_label("Name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Log in").click()
    assert nav.value.status == 200 and page.url == f"{base}/queue", (
        f"the login POST got {nav.value.status} ({page.locator('main').inner_text().strip()!r}); "
        f"the browser sent Origin: {sent} from a page with Referrer-Policy: {policy}"
    )
    expect(page.locator("header .who")).to_have_text("ana")


def test_review_flow_queue_accept_relabel_scores(server, new_context, review_db):
    """Log in, see the queue, accept with `a`, relabel with `1` `w`, and see the scores move."""
    base = server.url
    page = login(new_context(), base, "ana")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # The scores before any decision: nothing confirmed.
    page.goto(f"{base}/scores")
    before = {c: score_row(page, c, "Canada") for c in (18, 19)}
    assert [before[c]["Confirmed"] for c in (18, 19)] == ["0", "0"], before
    assert [before[c]["Pending"] for c in (18, 19)] == ["4", "4"], before

    # The queue: the counts and one row per item, all pending.
    page.goto(f"{base}/queue")
    expect(page.locator("#counts")).to_contain_text("8 items")
    expect(page.locator("#counts")).to_contain_text("8 pending")
    expect(page.locator("#counts")).to_contain_text("0 accepted")
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(8)
    expect(page.locator("table.queue tbody tr.state-pending")).to_have_count(8)
    ids = [int(t) for t in page.locator("table.queue tbody tr td:first-child a").all_inner_texts()]
    assert sorted(ids) == list(range(1, 9)), ids
    shoot(page, "queue")

    # Open the first item from the queue.
    first, second = ids[0], ids[1]
    with page.expect_navigation():
        rows.first.locator("td:first-child a").click()
    expect(page).to_have_url(f"{base}/items/{first}")
    expect(page.locator("h1")).to_have_text(re.compile(rf"^Item {first}: Canada, commitment \d+$"))
    commitment = int(page.locator("h1").inner_text().rsplit(" ", 1)[1])
    expect(page.locator("#state")).to_have_text("pending")
    expect(page.locator("#history li")).to_have_text(["No decision yet."])
    expect(page.locator("#doc mark.q").first).to_be_visible()  # the quotes are highlighted
    shoot(page, "item")

    # `a` accepts and moves on to the next pending item, with a notice.
    with page.expect_navigation() as nav:
        page.keyboard.press("a")
    assert nav.value.status == 200
    expect(page).to_have_url(f"{base}/items/{second}?done=accept&from={first}")
    expect(page.locator("p.done")).to_have_text(f"Saved: accept on item {first}.")
    expect(page.locator("#state")).to_have_text("pending")
    assert decisions(review_db, first) == [("ana", "accept")]

    # On that other item, `1` picks the first dimension and `w` relabels it weak.
    row = page.locator('tr.dimension[data-key="1"]')
    dimension = row.get_attribute("data-dimension")
    expect(row.locator(".label")).to_have_text("strong")
    page.keyboard.press("1")
    expect(row).to_have_class(re.compile(r"\bpicked\b"))
    with page.expect_navigation():
        page.keyboard.press("w")
    expect(page).to_have_url(f"{base}/items/{second}?done=relabel")
    expect(page.locator("p.done")).to_have_text("Saved: relabel.")
    row = page.locator(f"#dim-{dimension}")
    expect(row.locator(".label")).to_have_text("weak")
    expect(row.locator(".was")).to_have_text("(suggested strong)")
    expect(row.locator('form.relabel button[value="weak"]')).to_be_disabled()
    entries = history(page)
    assert len(entries) == 1 and f"ana relabel {dimension} → weak (on version 1)" in entries[0], entries
    assert decisions(review_db, second) == [("ana", "relabel")]

    # The queue counts and the first item's state followed.
    page.goto(f"{base}/queue")
    expect(page.locator("#counts")).to_contain_text("7 pending")
    expect(page.locator("#counts")).to_contain_text("1 accepted")
    expect(page.locator(f'table.queue tbody tr:has(a[href="/items/{first}"])')).to_have_class(
        "state-accepted"
    )

    # The scores now count the accepted item: confirmed, pending and labels changed.
    page.goto(f"{base}/scores")
    after = score_row(page, commitment, "Canada")
    before = before[commitment]
    assert (after["Confirmed"], after["Pending"]) == ("1", "3"), (before, after)
    dimension_headings = [k for k in after if k not in ("Member", "Score", "Confirmed", "Pending", "")]
    # one confirmed strong action is proposed as weak ("?": no verdict yet; the default rule wants
    # more than one strong action), and the score stays provisional
    assert any(before[h] == "none?" and after[h] == "weak?" for h in dimension_headings), (before, after)
    assert after["Score"].endswith("*"), (before, after)
    shoot(page, "scores")

    assert errors == []


def test_conflict_between_two_analysts(server, new_context, review_db):
    """ana and ben open the same item; ana accepts; ben's stale reject and relabel are refused (409)."""
    base = server.url
    ana = login(new_context(), base, "ana")
    ben_context = new_context()
    ben = login(ben_context, base, "ben")
    ben_again = ben_context.new_page()  # a second stale tab of ben's
    item = 3
    for page in (ana, ben, ben_again):
        page.goto(f"{base}/items/{item}")
        expect(page.locator("#state")).to_have_text("pending")
        expect(page.locator("#accept-form input[name=version]")).to_have_value("1")

    with ana.expect_navigation():
        ana.keyboard.press("a")
    expect(ana.locator("p.done")).to_have_text(f"Saved: accept on item {item}.")

    # ben rejects from his stale page, with a reason (`x` focuses the reason field, Enter sends).
    ben.keyboard.press("x")
    expect(ben.locator("#reason")).to_be_focused()
    ben.keyboard.type("duplicate of another release")
    with ben.expect_navigation() as nav:
        ben.keyboard.press("Enter")
    assert nav.value.status == 409
    conflict = ben.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("Not saved")
    expect(conflict).to_contain_text("ana accept")
    # The page now shows the item as it is: accepted, at the new version.
    expect(ben.locator("#state")).to_have_text("accepted")
    expect(ben.locator("#accept-form input[name=version]")).to_have_value("2")
    shoot(ben, "conflict")

    # ben's other stale tab: relabel with the keyboard, refused the same way.
    ben_again.keyboard.press("1")
    with ben_again.expect_navigation() as nav:
        ben_again.keyboard.press("w")
    assert nav.value.status == 409
    expect(ben_again.locator("#conflict")).to_contain_text("ana accept")

    # Nothing of ben's was recorded: the history and the database have ana's accept only.
    ben.goto(f"{base}/items/{item}")
    entries = history(ben)
    assert len(entries) == 1 and "ana accept (on version 1)" in entries[0], entries
    expect(ben.locator('tr.dimension[data-key="1"] .label')).to_have_text("strong")
    assert decisions(review_db, item) == [("ana", "accept")]
    assert query(review_db, "select count(*) from decisions where analyst = 'ben'") == [(0,)]


def assert_inert(page: Page, dialogs: list[str], errors: list[str]) -> None:
    """No hostile markup ran or became markup on this page."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("window.__pwned") is None
    assert "PWNED" not in page.title()
    assert dialogs == []
    assert page.evaluate("window.__violations") == [], "the page tried to run something the CSP blocked"
    assert errors == []
    assert page.locator('a[href^="javascript:" i]').count() == 0
    assert page.locator("img[onerror], [onerror], [onclick], [onload]").count() == 0
    assert page.locator("main script, main img, main iframe, main object").count() == 0
    scripts = page.evaluate("Array.from(document.scripts, (s) => new URL(s.src).pathname)")
    assert scripts == ["/static/app.js"], scripts


def test_hostile_text_stays_inert(server, new_context, review_db):
    """Script tags, event handlers and javascript: links in a release are shown as text, never run."""
    hostile = [row[0] for row in query(review_db, HOSTILE_SQL)]
    assert hostile, "the review database has no item on the hostile release"
    item = hostile[0]

    base = server.url
    context = new_context()
    context.add_init_script(WATCH_CSP)
    page = login(context, base, "ana")
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    response = page.goto(f"{base}/items/{item}")
    assert response is not None and response.status == 200
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp, csp
    assert "'unsafe-inline'" not in csp
    assert response.headers.get("x-content-type-options") == "nosniff"

    # Rendered as text, visibly, where the release put it: the document, summary, rationale.
    doc = page.locator("#doc")
    expect(doc).to_contain_text(SCRIPT)
    expect(doc).to_contain_text(HANDLER)
    expect(doc).to_contain_text(JS_LINK)
    assert "<script>" in (page.text_content("main") or "")
    expect(page.locator("#doc mark.q", has_text="<script>").first).to_be_visible()
    expect(page.locator("#summary")).to_contain_text(SCRIPT)
    expect(page.locator("section.dimensions")).to_contain_text(HANDLER)
    expect(page.locator("section.source")).to_contain_text("<script>")  # the release's title
    page.wait_for_timeout(300)  # give any handler (img onerror) the time to fire
    assert_inert(page, dialogs, errors)
    shoot(page, "hostile-item")

    # The queue shows the hostile summary, as text.
    response = page.goto(f"{base}/queue")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("table.queue")).to_contain_text("<script>")
    assert_inert(page, dialogs, errors)

    # Accepted, the item's text reaches the receipt and the report draft: still text there.
    page.goto(f"{base}/items/{item}")
    commitment = int(page.locator("h1").inner_text().rsplit(" ", 1)[1])
    with page.expect_navigation():
        page.keyboard.press("a")
    assert decisions(review_db, item) == [("ana", "accept")]
    for path in (f"/scores/{commitment}/Canada", f"/report/{commitment}"):
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expect(page.locator("main")).to_contain_text("<script>")
        page.wait_for_timeout(200)
        assert_inert(page, dialogs, errors)


def test_reader_cannot_decide(server, new_context, review_db):
    """rita (reader) sees the item without decision buttons, the read-only marker, and cannot POST."""
    base = server.url
    page = login(new_context(), base, "rita", start="/items/1")  # the login form brings her back
    expect(page.locator("header .who")).to_have_text("rita (read-only)")
    expect(page.locator("h1")).to_contain_text("Item 1")
    expect(page.locator("p.readonly")).to_have_text("Your account is read-only.")
    for selector in ("#accept", "#reject", "#reason", "#note", "#edit-summary", "form.relabel", "form.edit"):
        expect(page.locator(selector)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"^(Accept|Reject|strong|weak|none)"))).to_have_count(0)
    assert "Relabel" not in page.locator("section.dimensions thead th").all_inner_texts()
    shoot(page, "reader-item")

    # The shortcuts find nothing to press.
    page.keyboard.press("a")
    page.keyboard.press("1")
    page.keyboard.press("w")
    page.wait_for_timeout(300)
    expect(page).to_have_url(f"{base}/items/1")

    # Even a hand-made POST with rita's own CSRF token (from the log-out form) is refused.
    csrf = page.locator("form.logout input[name=csrf]").input_value()
    response = page.request.post(
        f"{base}/items/1/decide", form={"csrf": csrf, "version": "1", "action": "accept"}, max_redirects=0
    )
    assert response.status == 403
    assert "read but not decide" in response.text()
    assert decisions(review_db, 1) == []

    # Logging out ends the session: the pages ask for the login form again.
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/items/1")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login\?next="))


def test_login_returns_to_the_page_asked_for_with_its_filters(server, new_context):
    """A bookmarked, filtered queue page asks for the login form and, after it, shows the same filters."""
    base = server.url
    asked = "/queue?member=Canada&state=accepted"
    page = new_context().new_page()
    page.goto(f"{base}{asked}")
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/login\?next="))
    submit_login(page, "ana")
    expect(page.locator("header .who")).to_have_text("ana")
    assert page.url == f"{base}{asked}", (
        f"asked for {asked}, landed on {page.url.removeprefix(base)}: the login redirect kept the path "
        "and dropped the query (classifier/web.py, current(): next = request.url.path)"
    )
    expect(page.locator("table.queue")).to_contain_text("Nothing matches these filters.")


def test_accepting_the_last_pending_item_says_saved(server, new_context, review_db):
    """With nothing left pending, an accept lands on the queue, which still confirms what was saved."""
    from classifier import review
    from classifier.store import open_db

    db = open_db(review_db, migrate=False)
    try:
        for item_id in range(2, 9):
            review.decide(db, item_id, "ben", "accept", 1)
    finally:
        db.conn.close()
    base = server.url
    page = login(new_context(), base, "ana", start="/items/1")
    expect(page.locator("#next-item")).to_have_count(0)  # nothing else is pending
    with page.expect_navigation():
        page.keyboard.press("a")
    expect(page).to_have_url(f"{base}/queue?done=accept&from=1")
    expect(page.locator("#counts")).to_contain_text("0 pending")
    assert decisions(review_db, 1) == [("ana", "accept")]
    status = page.get_by_role("status")
    expect(status).to_have_count(1)  # the queue page must show the notice too
    expect(status).to_have_text("Saved: accept on item 1.")


def test_edit_summary_and_note_with_the_keyboard(server, new_context, review_db):
    """`e` focuses the summary, Ctrl+Enter saves it; `o` focuses the note, Enter saves it."""
    base = server.url
    page = login(new_context(), base, "ana", "/items/2")
    page.keyboard.press("e")
    expect(page.locator("#edit-summary")).to_be_focused()
    page.locator("#edit-summary").fill("On 2 October 2024, Canada charged the smugglers.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    expect(page.locator("#summary")).to_have_text("On 2 October 2024, Canada charged the smugglers.")
    page.keyboard.press("o")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("ask the team about the date")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert any("note: ask the team about the date" in line for line in history(page)), history(page)
    assert decisions(review_db, 2) == [("ana", "edit"), ("ana", "note")]
    shoot(page, "edited-item")


def test_the_evidence_matrix_with_the_keyboard(server, new_context, review_db):
    """Arrow keys move between cells, `o` types a note, `w` sets the verdict, Enter opens the
    cell's queue; the verdict shows in the cell and in the receipt, attributed to ana."""
    from classifier.rubric import rubrics_for

    rubric = rubrics_for(18)[0]
    canada = rubric.members.index("Canada")
    base = server.url
    page = login(new_context(), base, "ana", "/matrix?commitment=18")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    start = page.locator("#cell-0-0")
    expect(start).to_be_focused()  # the page opens on the first cell
    for _ in range(canada):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")
    target = page.locator(f"#cell-{canada}-0")
    expect(target).to_be_focused()
    expect(target.locator(".gap")).to_have_text("no confirmed action — 4 pending candidates")
    shoot(page, "matrix")

    page.keyboard.press("o")
    note = target.locator("input.note")
    expect(note).to_be_focused()
    page.keyboard.type("statements only")
    page.keyboard.press("Escape")
    expect(target).to_be_focused()  # back on the cell, the note kept
    with page.expect_navigation() as nav:
        page.keyboard.press("w")
    assert nav.value.status == 200
    target = page.locator(f"#cell-{canada}-0")
    expect(target).to_be_focused()  # the keyboard stays where it was
    expect(target.locator(".verdict")).to_contain_text("weak")
    expect(target.locator(".verdict")).to_contain_text("verdict by ana: statements only")
    assert query(review_db, "select member, label, analyst, note from verdicts") == [
        ("Canada", "weak", "ana", "statements only")
    ]

    # `c` confirms the next cell's proposal (none: no confirmed action) as ana's verdict
    page.keyboard.press("ArrowRight")
    with page.expect_navigation():
        page.keyboard.press("c")
    expect(page.locator(f"#cell-{canada}-1 .verdict")).to_contain_text("verdict by ana")
    assert query(review_db, "select dimension, label from verdicts where id = 2") == [
        (rubric.dimension_ids[1], "none")
    ]
    page.keyboard.press("ArrowLeft")

    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/queue\?member=Canada&commitment=18&dimension="))
    expect(page.locator("#cell-filter")).to_be_visible()
    expect(page.locator("table.queue tbody tr")).to_have_count(4)

    page.goto(f"{base}/scores/18/Canada")
    expect(page.locator("p.reading").first).to_contain_text("Verdict by ana")
    assert errors == []
