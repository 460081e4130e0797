"""The web interface over real HTTP (uvicorn on 127.0.0.1) and a real database: accounts,
sessions, CSRF, permissions, conflicts, security headers, and hostile text kept inert.

The review database's classifications came from the OpenAI-compatible STUB endpoint (see
tests/webapp.py); the browser-level path is covered by tests/test_web_e2e.py.
"""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner

from classifier.cli import app
from classifier.review import Segment, quote_segments
from classifier.users import LoginThrottle
from classifier.web import SECURITY_HEADERS, safe_url

from .webapp import HANDLER, PASSWORD, SCRIPT, WebServer, client_from

runner = CliRunner()


@pytest.fixture
def server(review_db):
    with WebServer(review_db) as web:
        yield web


def client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=10)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


def login(server, name: str = "ana", password: str = PASSWORD, c: httpx.Client | None = None) -> httpx.Client:
    c = c or client(server)
    form = c.get("/login")
    r = c.post(
        "/login", data={"csrf": csrf_of(form.text), "name": name, "password": password, "next": "/queue"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/queue", r.text
    return c


def item_ids(db_path) -> list[int]:
    return [r[0] for r in sqlite3.connect(db_path).execute("select id from queue_items order by id")]


def hostile_item(db_path) -> int:
    sql = (
        "select q.id from queue_items q join document_versions v on v.content_sha256 = q.content_sha "
        "where v.text like '%<script>%' order by q.id limit 1"
    )
    return sqlite3.connect(db_path).execute(sql).fetchone()[0]


def decisions(db_path) -> list[tuple]:
    return (
        sqlite3.connect(db_path)
        .execute("select item_id, analyst, action from decisions order by id")
        .fetchall()
    )


def decide(c: httpx.Client, item_id: int, **form) -> httpx.Response:
    page = c.get(f"/items/{item_id}")
    version = re.search(r'name="version" value="(\d+)"', page.text)[1]
    data = {"csrf": csrf_of(page.text), "version": version, **form}
    return c.post(f"/items/{item_id}/decide", data=data)


# -- accounts and sessions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/queue", "/items/1", "/scores", "/scores/19/Canada", "/eval", "/report/19"]
)
def test_every_page_needs_a_login(server, path):
    r = client(server).get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_a_decision_without_a_session_is_refused_and_records_nothing(server, review_db):
    r = client(server).post("/items/1/decide", data={"action": "accept", "version": "1", "csrf": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert decisions(review_db) == []


def test_wrong_password_unknown_name_and_disabled_account_get_the_same_answer(server, review_db):
    answers = []
    for name, password in (("ana", "wrong password!"), ("nobody", PASSWORD)):
        c = client(server)
        r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "name": name, "password": password})
        answers.append((r.status_code, "Wrong name or password." in r.text, "evidence_session" in r.cookies))
    assert answers == [(401, True, False)] * 2
    ana = login(server)
    assert runner.invoke(app, ["users", "disable", "ana"]).exit_code == 0
    assert ana.get("/queue").status_code == 303  # the open session ended with the account
    c = client(server)
    r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "name": "ana", "password": PASSWORD})
    assert r.status_code == 401


def test_session_cookie_is_httponly_samesite_strict_and_logout_ends_it(server):
    c = client(server)
    form = c.get("/login")
    r = c.post("/login", data={"csrf": csrf_of(form.text), "name": "ana", "password": PASSWORD})
    cookie = r.headers["set-cookie"]
    assert "evidence_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; `--secure-cookies` behind an HTTPS proxy
    token = c.cookies["evidence_session"]
    assert len(token) >= 40
    queue = c.get("/queue")
    assert queue.status_code == 200
    out = c.post("/logout", data={"csrf": csrf_of(queue.text)})
    assert out.status_code == 303
    again = client(server)
    again.cookies.set("evidence_session", token)
    assert again.get("/queue").status_code == 303  # the old token no longer works


def test_session_tokens_are_stored_hashed(server, review_db):
    c = login(server)
    token = c.cookies["evidence_session"]
    stored = sqlite3.connect(review_db).execute("select id from sessions").fetchall()
    assert stored and all(token not in row[0] for row in stored)
    hashes = sqlite3.connect(review_db).execute("select password_hash from users").fetchall()
    assert all(h[0].startswith("$argon2id$") and PASSWORD not in h[0] for h in hashes)


def test_secure_cookies_option_marks_the_cookie_secure(review_db):
    import threading
    import time

    import uvicorn

    from classifier.web import create_app

    from .webapp import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(review_db, secure_cookies=True), host="127.0.0.1",
                                           port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        r = httpx.get(f"http://127.0.0.1:{port}/login")
        assert "evidence_login=" in r.headers["set-cookie"] and "; Secure" in r.headers["set-cookie"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_login_never_redirects_off_site(server):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        c = client(server)
        r = c.post("/login", data={"csrf": csrf_of(c.get("/login").text), "name": "ana", "password": PASSWORD,
                                   "next": target})  # fmt: skip
        assert r.headers["location"] == "/queue", target


# -- CSRF and permissions ---------------------------------------------------------------------------------


def test_login_form_needs_its_csrf_token(server):
    c = client(server)
    c.get("/login")
    r = c.post("/login", data={"csrf": "forged", "name": "ana", "password": PASSWORD})
    assert r.status_code == 403 and "evidence_session" not in r.cookies


def test_decisions_need_the_sessions_csrf_token_and_our_origin(server, review_db):
    c = login(server)
    item = item_ids(review_db)[0]
    page = c.get(f"/items/{item}")
    version = re.search(r'name="version" value="(\d+)"', page.text)[1]
    assert c.post(f"/items/{item}/decide", data={"action": "accept", "version": version}).status_code == 403
    bad = {"action": "accept", "version": version, "csrf": "not-the-token"}
    assert c.post(f"/items/{item}/decide", data=bad).status_code == 403
    other = login(server, "ben")  # another session's token is not this session's
    theirs = csrf_of(other.get("/queue").text)
    assert c.post(f"/items/{item}/decide", data={**bad, "csrf": theirs}).status_code == 403
    good = {"action": "accept", "version": version, "csrf": csrf_of(page.text)}
    cross = c.post(f"/items/{item}/decide", data=good, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    opaque = c.post(f"/items/{item}/decide", data=good, headers={"Origin": "null"})
    assert opaque.status_code == 403  # an opaque origin without the browser saying same-origin
    sandboxed = {"Origin": "null", "Sec-Fetch-Site": "cross-site"}
    assert c.post(f"/items/{item}/decide", data=good, headers=sandboxed).status_code == 403
    assert decisions(review_db) == []
    assert c.post(f"/items/{item}/decide", data=good).status_code == 303
    assert decisions(review_db) == [(item, "ana", "accept")]


def test_a_reader_can_read_but_not_decide(server, review_db):
    c = login(server, "rita")
    item = item_ids(review_db)[0]
    page = c.get(f"/items/{item}")
    assert page.status_code == 200 and "read-only" in page.text and 'id="accept"' not in page.text
    version = (
        sqlite3.connect(review_db)
        .execute("select version from queue_items where id = ?", [item])
        .fetchone()[0]
    )
    r = c.post(
        f"/items/{item}/decide", data={"csrf": csrf_of(page.text), "version": version, "action": "accept"}
    )
    assert r.status_code == 403 and "can read but not decide" in r.text
    assert decisions(review_db) == []


def test_decisions_are_attributed_to_the_logged_in_analyst_whatever_the_form_says(server, review_db):
    c = login(server, "ben")
    item = item_ids(review_db)[1]
    r = decide(c, item, action="reject", reason="already counted", analyst="mallory")
    assert r.status_code == 303
    assert decisions(review_db) == [(item, "ben", "reject")]


# -- decisions --------------------------------------------------------------------------------------------


def test_two_analysts_on_one_item_get_a_conflict_never_a_lost_decision(server, review_db):
    ana, ben = login(server, "ana"), login(server, "ben")
    item = item_ids(review_db)[2]
    stale = ben.get(f"/items/{item}")  # ben opens the item first
    assert decide(ana, item, action="accept").status_code == 303
    version = re.search(r'name="version" value="(\d+)"', stale.text)[1]
    r = ben.post(f"/items/{item}/decide",
                 data={"csrf": csrf_of(stale.text), "version": version, "action": "reject", "reason": "dup"})  # fmt: skip
    assert r.status_code == 409 and 'id="conflict"' in r.text and "Not saved" in r.text
    assert "accept" in r.text  # the page now shows ana's decision in the history
    assert decisions(review_db) == [(item, "ana", "accept")]


def test_relabel_edit_and_note_stay_on_the_item_and_show_in_its_history(server, review_db):
    c = login(server)
    item = item_ids(review_db)[0]
    page = c.get(f"/items/{item}")
    dim = re.search(r'name="dimension" value="([a-z_]+)"', page.text)[1]
    assert (
        decide(c, item, action="relabel", dimension=dim, label="weak")
        .headers["location"]
        .startswith(f"/items/{item}?done=relabel")
    )
    assert (
        decide(c, item, action="edit", summary="On 5 October 2024, Canada arrested smugglers.").status_code
        == 303
    )
    assert decide(c, item, action="note", note="check the date").status_code == 303
    shown = c.get(f"/items/{item}").text
    assert "On 5 October 2024, Canada arrested smugglers." in shown and "check the date" in shown
    assert re.search(rf'id="dim-{dim}".*?label-weak', shown, re.S)
    assert [d[2] for d in decisions(review_db)] == ["relabel", "edit", "note"]
    bad = decide(c, item, action="relabel", dimension=dim, label="excellent")
    assert bad.status_code == 400 and "Not saved" in bad.text


def test_accepting_moves_on_to_the_next_pending_item_and_changes_the_scores(server, review_db):
    c = login(server)
    before = c.get("/scores").text
    item = item_ids(review_db)[0]
    r = decide(c, item, action="accept")
    assert r.status_code == 303 and re.match(rf"/items/\d+\?done=accept&from={item}$", r.headers["location"])
    assert f"/items/{item}?" not in r.headers["location"]
    after = c.get("/scores").text
    assert before != after
    row = re.search(r'<tr data-member="Canada">(.*?)</tr>', after, re.S)[1]
    assert re.findall(r"<td>(\d+)</td>", row)[0] == "1"  # one confirmed item for Canada


def test_unknown_item_and_bad_filters_are_clear_errors(server):
    c = login(server)
    assert c.get("/items/999999").status_code == 404
    r = c.get("/queue?state=maybe")
    assert r.status_code == 400 and "state must be" in r.text
    assert c.get("/queue?commitment=x").status_code == 400
    r = c.get("/queue?page=x")  # was silently page 1
    assert r.status_code == 400 and "page must be a whole number" in r.text


def test_queue_filters_and_counts(server, review_db):
    c = login(server)
    everything = c.get("/queue").text
    total = len(item_ids(review_db))
    assert f"{total} items" in everything and f"{total} pending" in everything
    decide(c, item_ids(review_db)[0], action="accept")
    accepted = c.get("/queue?state=accepted").text
    assert len(re.findall(r'<tr class="state-accepted">', accepted)) == 1
    assert len(re.findall(r'<tr class="state-pending">', c.get("/queue?state=pending").text)) == total - 1
    assert "Nothing matches" in c.get("/queue?member=Japan").text
    assert "Nothing matches" in c.get("/queue?flag=ungrounded").text  # every stub quote is in its source
    # flag one item by hand (as the classifier does when a quote is not found): the filter finds it alone
    target = item_ids(review_db)[3]
    raw = sqlite3.connect(review_db)
    raw.execute(
        "update queue_items set suggestion = json_set(suggestion, '$.flags', json('[\"ungrounded\"]')) where id = ?",
        [target],
    )
    raw.commit()
    flagged = c.get("/queue?flag=ungrounded").text
    assert (
        re.findall(r'<td><a href="/items/(\d+)">\d+</a></td>', flagged) == [str(target)]
        and "1 items" in flagged
    )
    listing = runner.invoke(app, ["queue", "list", "--flag", "ungrounded"]).output.splitlines()
    assert len(listing) == 1 and listing[0].split()[0] == str(target)


# -- safety -----------------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(server):
    c = login(server)
    for path in ("/queue", "/items/1", "/items/999999", "/scores", "/static/app.css", "/login"):
        h = c.get(path).headers
        assert (
            "script-src 'self'" in h["content-security-policy"]
            and "default-src 'none'" in h["content-security-policy"]
        ), path
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["referrer-policy"] == "same-origin"


def test_hostile_text_is_escaped_everywhere_it_is_shown(server, review_db):
    c = login(server)
    item = hostile_item(review_db)
    pages = [c.get(f"/items/{item}").text, c.get("/queue").text]
    decide(c, item, action="accept")
    pages += [c.get("/scores/19/Canada").text, c.get("/scores/18/Canada").text, c.get("/report/19").text]
    for html in pages:
        assert "<script>document" not in html and "<img src=x" not in html
        assert 'href="javascript:' not in html.lower()
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts == ['<script src="/static/app.js" defer>']  # ours only, no inline code
        assert not re.search(r"<[a-z]+[^>]*\son[a-z]+=", html)  # no element carries an event handler
    item_page = pages[0]
    assert "&lt;script&gt;document.title=" in item_page  # shown as text, in the document and summary
    assert "onerror=&#34;window.__pwned=2&#34;" in item_page or "onerror=&quot;" in item_page
    assert re.search(
        r"<mark [^>]*>[^<]*&lt;script&gt;", item_page
    )  # the hostile quote is highlighted as text


def test_safe_url_keeps_only_http_links():
    assert safe_url("https://www.canada.ca/en/news.html") == "https://www.canada.ca/en/news.html"
    assert safe_url("http://example.org/x") == "http://example.org/x"
    for bad in (
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<b>x</b>",
        "vbscript:x",
        "",
        None,
    ):
        assert safe_url(bad) is None, bad


def test_highlight_marks_quotes_where_they_sit():
    text = "Alpha beta gamma delta."
    dims = {
        "a": {"quotes": [{"quote": "beta gamma", "start": 6, "end": 16}]},
        "b": {"quotes": [{"quote": "gamma delta", "start": 11, "end": 22}, {"quote": "lost", "start": None}]},
    }
    segments = quote_segments(text, dims)
    assert "".join(s.text for s in segments) == text
    assert [(s.text, s.dims) for s in segments] == [
        ("Alpha ", ()),
        ("beta ", ("a",)),
        ("gamma", ("a", "b")),
        (" delta", ("b",)),
        (".", ()),
    ]
    assert quote_segments("short", {"a": {"quotes": [{"start": 3, "end": 99}]}}) == [
        Segment("short", (), 0, 5)
    ]


# -- the commands -----------------------------------------------------------------------------------------


def test_users_add_list_disable(isolated_db):
    add = runner.invoke(app, ["users", "add", "carla", "--password-stdin"], input="a long passphrase\n")
    assert add.exit_code == 0 and "added carla (analyst)" in add.output
    reader = runner.invoke(
        app, ["users", "add", "rob", "--role", "reader", "--password-stdin"], input="another long one\n"
    )
    assert reader.exit_code == 0
    listing = runner.invoke(app, ["users", "list"]).output
    assert re.search(r"carla\s+analyst\s+active", listing) and re.search(r"rob\s+reader\s+active", listing)
    assert "a long passphrase" not in listing
    assert runner.invoke(app, ["users", "disable", "rob"]).exit_code == 0
    assert re.search(r"rob\s+reader\s+disabled", runner.invoke(app, ["users", "list"]).output)
    for args, stdin, message in (
        (["users", "add", "carla", "--password-stdin"], "a long passphrase\n", "user 'carla' exists"),
        (["users", "add", "dan", "--password-stdin"], "short\n", "at least 10 characters"),
        (
            ["users", "add", "eve", "--role", "admin", "--password-stdin"],
            "a long passphrase\n",
            "role must be",
        ),
        (["users", "add", "bad name", "--password-stdin"], "a long passphrase\n", "a user name is"),
        (["users", "disable", "nobody"], "", "no user 'nobody'"),
    ):
        result = runner.invoke(app, args, input=stdin)
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_hostile_constants_are_what_the_pages_carry():
    # guards the fixtures: the strings the safety tests look for are really markup
    assert SCRIPT.startswith("<script>") and "onerror=" in HANDLER


@pytest.mark.slow
def test_evaluation_pages_show_runs_metrics_and_plots(server, review_db, tmp_path, monkeypatch):
    from .conftest import REPORTS

    monkeypatch.setenv("EVIDENCE_EVAL_RESULTS", str(tmp_path / "results"))
    assert runner.invoke(app, ["gold", "import", str(REPORTS)]).exit_code == 0
    result = runner.invoke(app, ["eval", "run", "--backend", "baseline", "--limit", "12", "--no-curve"])
    assert result.exit_code == 0, result.output
    run_id = sqlite3.connect(review_db).execute("select id from eval_runs").fetchone()[0]
    c = login(server)
    listing = c.get("/eval").text
    assert f'href="/eval/{run_id}"' in listing and "baseline" in listing
    page = c.get(f"/eval/{run_id}").text
    plots = re.findall(r'<img src="(/plots/[^"]+\.png)"', page)
    assert plots and "recall" in page.lower()
    for plot in plots:
        image = c.get(plot)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get("/plots/..%2Fevidence.db").status_code == 404
    assert c.get("/eval/no-such-run").status_code == 404


def test_ten_failed_logins_lock_the_name_for_a_while_even_with_the_right_password(server):
    c = client(server)
    page = c.get("/login")
    for _ in range(10):
        page = c.post("/login", data={"csrf": csrf_of(page.text), "name": "ben", "password": "not it at all"})
        assert page.status_code == 401
    locked = c.post("/login", data={"csrf": csrf_of(page.text), "name": "ben", "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert int(locked.headers["retry-after"]) > 0 and "evidence_session" not in locked.cookies
    # another name is not affected
    assert login(server, "ana").get("/queue").status_code == 200


# -- hostile numbers, error pages ---------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    "1" * 20,  # beyond SQLite's 64-bit integer
    "1" * 5000,  # beyond int()'s default 4,300 digits
    str(2**63),  # one past the largest SQLite integer
    str(2**63 - 1),  # the largest: a number, just no such thing
    "²",  # str.isdigit() says yes, int() says no
    "١",  # an Arabic-Indic digit: int() takes it
    "1e20",
    "-1",
    "0",
    " 1",
    "1 ",
    "+1",
    "1_000",
    "1.0",
    "0x10",
    "\x00",  # sent as %00
    "%00",  # sent as %2500
    "",
]


def assert_security_headers(r: httpx.Response, what: str) -> None:
    for key, value in SECURITY_HEADERS.items():
        assert r.headers.get(key) == value, f"{what}: {key} is {r.headers.get(key)!r}"


def assert_a_clean_answer(r: httpx.Response, what: str) -> None:
    """Never a 500; always the security headers; an error is the usual error page."""
    assert r.status_code < 500, f"{what}: {r.status_code}"
    assert_security_headers(r, what)
    if r.status_code in (400, 404):
        assert '<p class="error" role="alert">' in r.text and 'class="brand"' in r.text, what
        assert "Traceback" not in r.text, what


def _get(path: str):
    return lambda c, item, value: c.get(path.format(v=quote(value, safe=""), item=item))


def _decide_on(*, path_value: bool):
    def send(c, item, value):
        page = c.get(f"/items/{item}")
        target = quote(value, safe="") if path_value else str(item)
        version = re.search(r'name="version" value="(\d+)"', page.text)[1]
        data = {"csrf": csrf_of(page.text), "version": version if path_value else value,
                "action": "note", "note": "hostile numbers"}  # fmt: skip
        return c.post(f"/items/{target}/decide", data=data)

    return send


NUMERIC_PARAMETERS = {
    "query page": _get("/queue?page={v}"),
    "query commitment": _get("/queue?commitment={v}"),
    "query from (queue)": _get("/queue?done=accept&from={v}"),
    "query from (item)": _get("/items/{item}?done=accept&from={v}"),
    "path item id": _get("/items/{v}"),
    "path item id (decide)": _decide_on(path_value=True),
    "form version (decide)": _decide_on(path_value=False),
    "path commitment (receipt)": _get("/scores/{v}/Canada"),
    "path commitment (report)": _get("/report/{v}"),
    "path run id": _get("/eval/{v}"),  # text ids, but the same hostile values must not hurt
    "path plot name": _get("/plots/{v}"),
}


@pytest.mark.parametrize("parameter", list(NUMERIC_PARAMETERS))
def test_hostile_numbers_in_every_parameter_never_answer_500(server, review_db, parameter):
    c = login(server)
    item = item_ids(review_db)[0]
    send = NUMERIC_PARAMETERS[parameter]
    for value in HOSTILE_NUMBERS:
        r = send(c, item, value)
        assert_a_clean_answer(r, f"{parameter} = {value[:30]!r}")
    assert decisions(review_db) == []  # no hostile value named a real item and its version


def test_numbers_are_ascii_digits_that_fit_sqlite(server, review_db):
    c = login(server)
    for value, status in (("²", 400), ("١", 400), (" 1", 400), ("1" * 20, 400), (str(2**63 - 1), 200)):
        r = c.get(f"/queue?commitment={quote(value)}")
        assert r.status_code == status, value
    last = (2**63 - 1) // 50  # the last page whose row offset fits SQLite's integer
    assert c.get(f"/queue?page={last}").status_code == 200
    assert c.get(f"/queue?page={last + 1}").status_code == 400
    for value in ("²", "1" * 20, "0x10"):
        r = c.get(f"/items/{quote(value)}")
        assert r.status_code == 404 and "no such queue item" in r.text, value
    item = item_ids(review_db)[0]
    assert "Saved: accept on item 7." in c.get(f"/items/{item}?done=accept&from=7").text
    assert "Saved" not in c.get(f"/items/{item}?done=whatever&from=7").text  # not an action: no notice


def test_error_pages_use_the_error_template_and_carry_every_security_header(server, review_db):
    c = login(server)
    item = item_ids(review_db)[0]
    page = c.get(f"/items/{item}")
    version = re.search(r'name="version" value="(\d+)"', page.text)[1]
    answers = {
        400: c.get("/queue?page=²"),
        403: c.post(f"/items/{item}/decide", data={"csrf": "forged", "version": version, "action": "accept"}),
        404: c.get("/no/such/page"),
        405: c.post("/queue", data={"csrf": csrf_of(page.text)}),
    }
    assert decide(c, item, action="note", note="first").status_code == 303
    answers[409] = c.post(f"/items/{item}/decide", data={"csrf": csrf_of(page.text), "version": version,
                                                        "action": "accept"})  # fmt: skip
    stranger = client_from(server, "127.0.0.9")
    form = stranger.get("/login")
    for _ in range(10):
        form = stranger.post(
            "/login", data={"csrf": csrf_of(form.text), "name": "ana", "password": "wrong!!"}
        )
    answers[429] = stranger.post("/login", data={"csrf": csrf_of(form.text), "name": "ana", "password": "x"})
    # an unexpected error: the database lost a table under the running server
    raw = sqlite3.connect(review_db)
    raw.execute("alter table eval_runs rename to eval_runs_lost")
    raw.commit()
    answers[500] = login(server).get("/eval")
    for status, r in answers.items():
        assert r.status_code == status, (status, r.status_code, r.text[:300])
        assert_security_headers(r, str(status))
        assert 'class="brand"' in r.text and "Traceback" not in r.text, status
    for status in (400, 403, 404, 405, 500):
        assert f"<h1>{status}</h1>" in answers[status].text and 'role="alert"' in answers[status].text
    assert answers[405].headers["allow"]
    assert "no such table" not in answers[500].text and "the error has been logged" in answers[500].text
    assert 'id="conflict"' in answers[409].text and "Too many failed logins" in answers[429].text


# -- login throttling ---------------------------------------------------------------------------------------


def fail_login(c: httpx.Client, name: str, page: httpx.Response, **headers) -> httpx.Response:
    return c.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": "not it at all"},
                  headers=headers)  # fmt: skip


def test_failed_logins_from_one_address_do_not_lock_the_analyst_out_elsewhere(server):
    attacker = client_from(server, "127.0.0.1")
    page = attacker.get("/login")
    for n in range(10):
        # a made-up X-Forwarded-For changes nothing: no proxy is trusted unless named
        page = fail_login(attacker, "ana", page, **{"X-Forwarded-For": f"198.51.100.{n}"})
        assert page.status_code == 401
    locked = attacker.post("/login", data={"csrf": csrf_of(page.text), "name": "ana", "password": PASSWORD},
                           headers={"X-Forwarded-For": "198.51.100.77"})  # fmt: skip
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60 and "evidence_session" not in locked.cookies
    # the analyst, from her own address, is not locked out of her account
    ana = login(server, "ana", c=client_from(server, "127.0.0.2"))
    assert ana.get("/queue").status_code == 200


def test_many_names_from_one_address_are_throttled_too(server):
    sprayer = client_from(server, "127.0.0.3")
    page = sprayer.get("/login")
    answers = []
    for n in range(12):
        for _ in range(2):
            page = fail_login(sprayer, f"guess{n}", page)
            answers.append(page.status_code)
    assert answers[:20] == [401] * 20 and set(answers[20:]) == {429}  # 20 failures per address
    right = sprayer.post("/login", data={"csrf": csrf_of(page.text), "name": "ben", "password": PASSWORD})
    assert right.status_code == 429  # the whole address waits, whatever the name
    assert login(server, "ben", c=client_from(server, "127.0.0.4")).get("/queue").status_code == 200


def test_forwarded_for_counts_only_behind_a_named_proxy(review_db):
    with WebServer(review_db, forwarded_allow_ips="127.0.0.1") as server:
        proxy = client_from(server, "127.0.0.1")
        page = proxy.get("/login")
        for _ in range(10):
            page = fail_login(proxy, "ana", page, **{"X-Forwarded-For": "203.0.113.7"})
        assert fail_login(proxy, "ana", page, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        # behind the proxy, another client is another address
        form = proxy.get("/login")
        ok = proxy.post("/login", data={"csrf": csrf_of(form.text), "name": "ana", "password": PASSWORD},
                        headers={"X-Forwarded-For": "203.0.113.8"})  # fmt: skip
        assert ok.status_code == 303
        # a client that is not the proxy cannot pick its address with the header
        direct = client_from(server, "127.0.0.5")
        page = direct.get("/login")
        for n in range(10):
            page = fail_login(direct, "ben", page, **{"X-Forwarded-For": f"192.0.2.{n}"})
        assert fail_login(direct, "ben", page, **{"X-Forwarded-For": "192.0.2.99"}).status_code == 429


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_throttle_windows_success_and_memory():
    clock = Clock()
    t = LoginThrottle(per_pair=3, per_address=5, window=60, max_keys=50, clock=clock)
    for _ in range(3):
        assert t.retry_after("ana", "10.0.0.1") is None
        t.failed("ana", "10.0.0.1")
    assert t.retry_after("ana", "10.0.0.1") == 60  # the oldest failure leaves the window in 60 s
    assert t.retry_after("ana", "10.0.0.2") is None and t.retry_after("ben", "10.0.0.1") is None
    clock.now += 29.5
    assert t.retry_after("ana", "10.0.0.1") == 31  # whole seconds, rounded up
    clock.now += 30.5
    assert t.retry_after("ana", "10.0.0.1") is None  # the window slid past the failures
    # a success forgets the name's failures at that address, not the address's own count
    for name in ("ana", "ana", "ben", "carl"):
        t.failed(name, "10.0.0.3")
    t.succeeded("ana", "10.0.0.3")
    t.failed("dora", "10.0.0.3")
    assert t.retry_after("eve", "10.0.0.3") is not None  # 5 failures from the address
    # an IPv6 host holds a /64: its addresses count together; IPv4-mapped is the IPv4 address
    assert LoginThrottle.address_key("2001:db8:1:2::1") == LoginThrottle.address_key("2001:db8:1:2:ffff::9")
    assert LoginThrottle.address_key("2001:db8:1:3::1") != LoginThrottle.address_key("2001:db8:1:2::1")
    assert LoginThrottle.address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert LoginThrottle.address_key(None) == "unknown"
    # a flood of addresses and names stays bounded
    for n in range(500):
        t.failed("x" * 10_000 + str(n), f"10.1.{n // 256}.{n % 256}")
    assert len(t._failures) <= 50
