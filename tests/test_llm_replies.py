"""Replies with status 200 that are not chat completions, from the OpenAI-compatible STUB endpoint.

The stub (tests/llm_stub.py) is not a model: it sends what proxies, captive portals and broken
servers send with a 200: text that echoes the request's Authorization header, an HTML login page,
an empty body, JSON cut short, JSON of another shape, a 20 MB body, a compressed body that
expands past any reason, and so on. Each must be a failed call with outcome
``invalid-response`` in the call log and a failed item that the next run retries; the run goes
on; and the key appears nowhere: not on stdout or stderr, not in log lines, not in the database
(a full ``iterdump()``), not in a run's JSON. Valid classifications through the same backend
are covered by recorded cassettes of a real model (tests/test_llm_cassettes.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import time
import tracemalloc

import pytest
from typer.testing import CliRunner

from classifier.classify import Classifier, text_item
from classifier.cli import app
from classifier.config import Config
from classifier.llm import Backend
from classifier.rubric import rubrics_for
from classifier.store import open_db

from . import newsroom
from .llm_stub import OpenAIStub
from .newsroom import Newsroom
from .test_llm_faults import DOCUMENT, VALID, llm_config
from .test_nightly_resume import feed_xml, release_html

# Not shaped like an OpenAI key, so only the exact-key redaction can catch it where it is echoed
# bare ({api_key}); where it follows "Bearer" the credential shape is caught as well.
KEY = "evidence-NOT-A-REAL-KEY-7f3a9c"
SECRET = "NOT-A-REAL"  # any piece of the key that shows up anywhere is a leak, a cut-off key too
EXE = os.path.join(os.path.dirname(sys.executable), "evidence")
PREFIX = "the endpoint's reply is not a chat completion ("
runner = CliRunner()


def completion_json(**changes) -> str:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub-model",
            "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}}  # fmt: skip
    return json.dumps({**body, **changes})


PORTAL = (
    "<!DOCTYPE html><html><head><title>Guest Wi-Fi: sign in</title></head><body>"
    "<h1>Welcome to Hotel Network</h1><form action='/login' method='post'>"
    "<input type='hidden' name='token' value='{api_key}'><input name='room'>"
    "<button>Connect</button></form></body></html>"
)

# name -> (stub step, what the recorded error says about it)
REPLIES = {
    "text-echoing-the-authorization-header": (
        {"reply": "POST /v1/chat/completions HTTP/1.1\nAuthorization: {authorization}\nX-Key: {api_key}\n",
         "content_type": "text/plain"},
        "text/plain",
    ),
    "captive-portal-html": ({"reply": PORTAL, "content_type": "text/html; charset=utf-8"}, "text/html"),
    "empty-body": ({"reply": "", "content_type": "application/json"}, "its body is empty"),
    "empty-body-without-content-type": ({"reply": ""}, "no content type, 0 bytes"),
    "truncated-json": ({"truncate": 0.4}, "its body is not JSON"),
    "json-of-another-shape": (
        {"reply": json.dumps({"args": {}, "headers": {"Authorization": "{authorization}"}, "url": "/anything"}),
         "content_type": "application/json"},
        "JSON of another shape",
    ),
    "error-object-with-status-200": (
        {"reply": json.dumps({"error": {"message": "quota exceeded for key {api_key}"}}),
         "content_type": "application/json"},
        "JSON of another shape",
    ),
    "json-list": ({"reply": "[]", "content_type": "application/json"}, "JSON of another shape (a list)"),
    "no-choices": ({"reply": completion_json(), "content_type": "application/json"}, "no choices"),
    "choice-without-message": (
        {"reply": completion_json(choices=[{"index": 0, "message": None, "finish_reason": "stop"}]),
         "content_type": "application/json"},
        "has no message",
    ),
    "20-mb-body": (
        {"reply": PORTAL, "size": 20_000_000, "content_type": "text/html"},
        "20 MB announced): its body is over the 1 MB bound",
    ),
    "20-mb-body-without-content-length": (
        {"reply": "Authorization: {authorization}\n", "size": 20_000_000, "length": False,
         "content_type": "text/plain"},
        "over 1 MB): its body is over the 1 MB bound",
    ),
    "gzip-expanding-to-20-mb": (
        {"reply": gzip.compress(b'{"choices": [' + b" " * 20_000_000 + b"]}"),
         "headers": {"Content-Encoding": "gzip"}, "content_type": "application/json"},
        "its body is over the 1 MB bound",
    ),
    "gzip-header-on-a-plain-body": (
        {"reply": completion_json(), "headers": {"Content-Encoding": "gzip"}, "content_type": "application/json"},
        "its body is not valid gzip",
    ),
    "compression-not-asked-for": (
        {"reply": completion_json(), "headers": {"Content-Encoding": "br"}, "content_type": "application/json"},
        "compressed with br, which was not asked for",
    ),
}  # fmt: skip
SHAPES = list(REPLIES)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


def dump(db_path) -> str:
    con = sqlite3.connect(db_path)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


def answer(rubric) -> dict:
    """A valid classification for any rubric (a stub's answer, not a model's)."""
    return {
        "relevant": True,
        "members": [],
        "action_date": None,
        "summary": "",
        "confidence": 0.5,
        "outside_period": False,
        "exclusions": [],
        "dimensions": {d.id: {"label": "none", "rationale": "stub", "quotes": []} for d in rubric.dimensions},
    }


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        for rubric in rubrics_for():
            server.answer_for(f"Classification{rubric.number}", answer(rubric))
        yield server


def write_config(path, stub: OpenAIStub) -> None:
    # no re-asks and no retries: one request per item, so each scripted reply meets one item
    path.write_text(
        '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\nretries = 0\n'
        "concurrency = 1\nper_host_concurrency = 1\n"
        f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\n'
        'api_key_env = "EVIDENCE_TEST_KEY"\ntimeout = 10\nbackoff = 0\nmax_retries = 0\n'
        "rate_limit_retries = 0\nconcurrency = 1\nprefilter = 0\n",
        encoding="utf-8",
    )


# -- the backend: one call per reply shape ------------------------------------------------------------


@contextlib.asynccontextmanager
async def backend(stub: OpenAIStub, **changes):
    """The openai backend with this module's key; its HTTP client closed in the loop that used it."""
    import openai

    from classifier.endpoint import OpenAIBackend

    http = openai.DefaultAsyncHttpxClient()
    try:
        yield OpenAIBackend(llm_config(stub, **changes), api_key=KEY, http_client=http)
    finally:
        await http.aclose()


def one_call(stub: OpenAIStub, **changes):
    """One classification of DOCUMENT against commitment 19 through the backend (no retries by default)."""
    from classifier.classify import output_model
    from classifier.prompts import load_prompt, render

    rubric = rubrics_for(19)[0]

    async def go():
        async with backend(stub, **{"rate_limit_retries": 0, **changes}) as b:
            return await b.classify(
                render(load_prompt(), rubric, DOCUMENT), output_model(rubric), rubric, DOCUMENT
            )

    return asyncio.run(go())


@pytest.mark.parametrize("shape", SHAPES)
def test_each_reply_is_an_invalid_response_with_a_bounded_redacted_excerpt(stub, shape):
    from classifier.endpoint import EXCERPT_BYTES

    step, says = REPLIES[shape]
    stub.script([step] * 3)
    result = one_call(stub)
    assert result.outcome == "invalid-response", result.error
    assert result.error.startswith(PREFIX) and says in result.error
    assert result.output is None
    # what is kept of the body is its start, never the whole of a large one
    assert result.raw_response is not None
    assert len(result.raw_response.encode("utf-8", "replace")) <= EXCERPT_BYTES * 3
    assert {r["headers"]["authorization"] for r in stub.requests} == {f"Bearer {KEY}"}  # the key was sent
    assert_no_secret(repr(result))


def test_a_20_mb_body_is_not_held_in_memory(stub):
    one_call(stub)  # warm: imports and connection set-up are not what is measured
    stub.script([{"reply": "x" * 1000, "size": 20_000_000, "length": False, "content_type": "text/plain"}])
    tracemalloc.start()
    try:
        result = one_call(stub)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.outcome == "invalid-response" and "over the 1 MB bound" in result.error
    assert peak < 8_000_000, peak  # the whole body would be 20 MB, its text another 20


def test_an_echoed_key_is_redacted_where_it_is_stored(stub):
    stub.script([REPLIES["text-echoing-the-authorization-header"][0]])
    result = one_call(stub, max_retries=0)
    assert result.outcome == "invalid-response"
    assert "Authorization: Bearer [redacted key]" in result.raw_response
    assert "X-Key: [redacted key]" in result.raw_response


@pytest.mark.parametrize("offset", [0, 55, 4070, 4100])
def test_a_key_across_a_cut_is_redacted_before_the_cut(stub, offset):
    """The excerpt and the error are cut short: a key they cut in two must not survive in part."""
    stub.script(
        [{"reply": "x" * offset + "{api_key} and {authorization}" + "y" * 9000, "content_type": "text/plain"}]
    )
    result = one_call(stub, max_retries=0)
    assert result.outcome == "invalid-response"
    assert_no_secret(result.raw_response, result.error)


def test_an_error_message_cut_short_does_not_keep_part_of_the_key(stub):
    def error(message: str) -> str:
        stub.script([{"status": 401, "body": {"error": {"message": message, "type": "auth"}}}])
        result = one_call(stub)
        assert result.outcome == "http-error"
        return result.error

    lead = error("x" * 500).index("x")  # where the body's message starts in the recorded error
    echo = " Incorrect API key "
    for inside in range(1, len(KEY)):  # the 400-character cut falls after this many of the key's characters
        text = error("x" * (399 - lead - len(echo) - inside) + echo + KEY)
        assert len(text) == 400
        assert_no_secret(text)


def test_a_valid_answer_that_quotes_the_key_is_stored_redacted(stub):
    stub.script([{"arguments": {**VALID, "summary": f"Forwarded with Authorization: Bearer {KEY}"}}])
    result = one_call(stub)
    assert (
        result.outcome == "ok"
        and result.output["summary"] == "Forwarded with Authorization: Bearer [redacted key]"
    )
    assert_no_secret(repr(result))


def test_a_connection_dropped_mid_body_is_a_network_error_and_retried(stub):
    stub.answer(VALID)
    stub.script([{"truncate": 0.5, "drop": True}])
    result = one_call(stub, rate_limit_retries=1)
    assert (result.outcome, result.retries, len(stub.requests)) == ("ok", 1, 2)


# -- the last resort ------------------------------------------------------------------------------------


class RaisingStubBackend(Backend):
    """A STUB backend (no model, no HTTP): its first call raises what no handler foresaw."""

    name = "openai"
    model = "stub-model"

    def __init__(self):
        self.calls = 0

    async def classify(self, prompt, output_model, rubric, document, **_):
        from classifier.llm import CallResult

        self.calls += 1
        if self.calls == 1:
            raise RuntimeError(f"unforeseen: the proxy said Authorization: Bearer {KEY}")
        return CallResult("ok", output=answer(rubric), request={"model": self.model})


def test_an_unexpected_error_fails_one_item_and_the_run_goes_on(isolated_db):
    db = open_db()
    classifier = Classifier(db, Config(), backend_object=RaisingStubBackend())
    rubric = rubrics_for(19)[0]
    asyncio.run(classifier.run([text_item(DOCUMENT, rubric), text_item(DOCUMENT + "More.\n", rubric)]))
    summary = classifier.summary
    assert summary.failed == {"client-error": 1} and summary.classified == 1
    (failed,) = db["classifications"].rows_where("status = 'failed'")
    assert failed["error"].startswith("client-error: RuntimeError: unforeseen")
    (call,) = db["llm_calls"].rows_where("outcome = 'client-error'")
    assert "RuntimeError" in call["error"] and "in classify" in call["error"]
    assert_no_secret(dump(isolated_db), "\n".join(summary.lines()))


# -- one redaction function -------------------------------------------------------------------------------


def test_redact_removes_remembered_keys_and_credential_shapes():
    from classifier.redaction import redact, redact_all, remember

    remember("plain-secret-value")
    assert redact("x plain-secret-value y") == "x [redacted key] y"
    assert redact("Authorization: Bearer abcDEF123456789") == "Authorization: Bearer [redacted key]"
    assert redact("authorization: bearer eyJhbGciOi.J9x1") == "authorization: Bearer [redacted key]"
    assert redact("key=sk-proj-AbC123xyz_-789") == "key=[redacted key]"
    assert redact("the bearer of the passport, a task-force of ask-me desks") == (
        "the bearer of the passport, a task-force of ask-me desks"
    )
    assert redact(None) is None
    assert redact_all({"a": ["sk-abcdefgh12", 3], "b": ("Bearer tok3n-long-enough",)}) == {
        "a": ["[redacted key]", 3],
        "b": ("Bearer [redacted key]",),
    }


# -- evidence classify, as a real process ----------------------------------------------------------------


@pytest.fixture(scope="module")
def fetched_db(tmp_path_factory):
    """Two press releases fetched from the local newsroom into a database (copied by each test)."""
    folder = tmp_path_factory.mktemp("fetched")
    path, config = folder / "evidence.db", folder / "fetch.toml"
    config.write_text('[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\n')
    with Newsroom() as site:
        pages = [site.url(newsroom.CANADA_PATH), site.url(newsroom.GERMANY_PATH)]
        result = runner.invoke(app, ["--db", str(path), "--config", str(config), "fetch", *pages])
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def world(fetched_db, isolated_db, tmp_path, stub, monkeypatch):
    source, target = sqlite3.connect(fetched_db), sqlite3.connect(isolated_db)
    source.backup(target)  # the database may be in WAL mode: copy it whole, not its main file
    source.close()
    target.close()
    config = tmp_path / "evidence.toml"
    write_config(config, stub)
    monkeypatch.setenv("EVIDENCE_CONFIG", str(config))
    monkeypatch.setenv("EVIDENCE_TEST_KEY", KEY)
    return {**os.environ}


def classify(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "classify", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("shape", SHAPES)
def test_classify_records_the_reply_marks_the_item_failed_and_the_next_run_retries_it(
    world, stub, shape, isolated_db
):
    step, says = REPLIES[shape]
    stub.script([step])
    done = classify(world, "--commitment", "19")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert "classified 1, cached 0, failed 1 (invalid-response 1)" in done.stdout
    (reason,) = [line for line in done.stdout.splitlines() if line.startswith("  ")]
    assert reason.startswith(f"  invalid-response 1: {PREFIX}") and says in reason
    assert (
        "1 failed, retried by the next run: see `evidence calls list --outcome invalid-response`"
        in done.stderr
    )
    db = open_db(isolated_db)
    (call,) = db["llm_calls"].rows_where("outcome = 'invalid-response'")
    assert call["error"].startswith(PREFIX) and call["raw_response"] is not None
    (failed,) = db["classifications"].rows_where("status = 'failed'")
    assert failed["error"].startswith(f"invalid-response: {PREFIX}")
    listed = runner.invoke(app, ["calls", "list", "--outcome", "invalid-response"]).output
    shown = runner.invoke(app, ["calls", "show", str(call["id"])]).output
    assert_no_secret(done.stdout, done.stderr, dump(isolated_db), listed, shown)

    again = runner.invoke(app, ["classify", "--commitment", "19"])  # the stub answers correctly now
    assert again.exit_code == 0, again.output
    assert "classified 1, cached 1, failed 0" in again.output
    statuses = sorted(r["status"] for r in open_db(isolated_db)["classifications"].rows)
    assert statuses == ["ok", "ok"]  # the failed attempt was replaced
    assert_no_secret(again.output, dump(isolated_db))


def test_classify_prints_one_line_per_kind_of_failure(world, stub, isolated_db):
    stub.script(
        [
            REPLIES["text-echoing-the-authorization-header"][0],
            REPLIES["captive-portal-html"][0],
            {"status": 500},
        ]
    )
    done = classify(world)  # both documents x every commitment
    assert done.returncode == 1 and "Traceback" not in done.stderr
    reasons = [line for line in done.stdout.splitlines() if line.startswith("  ")]
    assert len(reasons) == 2, done.stdout + done.stderr
    assert reasons[0].startswith(f"  invalid-response 2: {PREFIX}") and reasons[0].endswith(
        "(and 1 other error)"
    )
    assert reasons[1].startswith("  http-error 1: HTTP 500:")
    assert "failed 3 (invalid-response 2, http-error 1)" in done.stdout
    assert_no_secret(done.stdout, done.stderr, dump(isolated_db))


# -- evidence nightly, as a real process ------------------------------------------------------------------


def test_nightly_records_every_reply_goes_on_and_the_next_run_classifies_the_failed_items(
    stub, tmp_path, isolated_db
):
    with Newsroom() as site:
        releases = range(1, len(SHAPES) // 2 + 2)  # x 2 commitments: one item per shape, and more
        dates = {}
        for n in releases:
            site.set_page(f"/generated/{n}.html", release_html(n))
            dates[n] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        site.set_page("/generated/feed.rss", feed_xml(site.base_url, dates), "application/rss+xml")
        config = tmp_path / "evidence.toml"
        write_config(config, stub)
        sources = tmp_path / "sources.toml"
        sources.write_text(
            f'[[sources]]\nname = "generated"\nmember = "CA"\npublisher = "T"\nkind = "feed"\n'
            f'url = "{site.url("/generated/feed.rss")}"\ncommitments = [18, 19]\n',
            encoding="utf-8",
        )
        results = tmp_path / "results"
        env = {**os.environ, "EVIDENCE_CONFIG": str(config), "EVIDENCE_DB": str(isolated_db),
               "EVIDENCE_TEST_KEY": KEY, "EVIDENCE_EVAL_RESULTS": str(results / "eval")}  # fmt: skip
        env.pop("EVIDENCE_FAILPOINTS", None)

        def nightly(log_format: str):
            done = subprocess.run([EXE, "nightly", "--sources", str(sources), "--log-format", log_format],
                                  env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
            return done, json.loads(done.stdout)

        stub.script([REPLIES[shape][0] for shape in SHAPES])
        first, summary = nightly("json")
        items = 2 * len(releases)
        assert first.returncode == 1, first.stderr
        assert "Traceback" not in first.stderr
        stage = summary["stages"]["classify"]
        assert "error" not in stage, stage
        assert stage["failed"] == {"invalid-response": len(SHAPES)}
        assert stage["classified"] == items - len(SHAPES)
        assert stage["failure_reasons"]["invalid-response"].startswith(PREFIX)
        assert summary["status"] == "failures" and summary["failures"] == {"classify": stage["failed"]}
        assert "error" not in summary["stages"]["queue"]  # the run went on
        logs = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
        (classified,) = [e for e in logs if e.get("event") == "stage-done" and e.get("stage") == "classify"]
        assert "invalid-response" in classified["message"]
        shown = runner.invoke(app, ["--db", str(isolated_db), "runs", "show", summary["run"]]).output
        assert "invalid-response" in shown
        (written,) = (results / "runs").glob("nightly-*.json")
        assert_no_secret(first.stdout, first.stderr, shown, written.read_text(), dump(isolated_db))
        failed = open_db(isolated_db)["classifications"].count_where("status = 'failed'")
        assert failed == len(SHAPES)

        second, again = nightly("text")  # the stub answers correctly now
        assert second.returncode == 0, second.stderr
        assert again["stages"]["classify"]["classified"] == len(SHAPES)
        assert again["stages"]["classify"]["failed"] == {}
        db = open_db(isolated_db)
        assert db["classifications"].count_where("status = 'failed'") == 0
        assert db["classifications"].count_where("status = 'ok'") == items
        assert_no_secret(second.stdout, second.stderr, dump(isolated_db))
