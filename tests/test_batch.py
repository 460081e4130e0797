"""`evidence classify --batch`: the OpenAI Batch API against a local STUB (tests/batch_stub.py).

The stub is not a provider and not a model: it keeps uploaded files and batches in memory,
answers polls with the statuses a test asks for, and writes output and error files in the
documented format, each request answered as the live stub (tests/llm_stub.py) answers one. So
the batch path can be compared with the live path request for request and result for result,
and driven through failed lines, expired and failed batches, and a process killed (SIGKILL,
from a failpoint) between submitting a batch and reading it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import openai
import pytest
from typer.testing import CliRunner

from classifier.batch import custom_id, run_batch, status_lines
from classifier.classify import Classifier, text_item
from classifier.cli import app
from classifier.config import Config, Price
from classifier.endpoint import OpenAIBackend
from classifier.store import open_db

from . import newsroom
from .batch_stub import BatchStub
from .newsroom import Newsroom
from .test_llm_faults import DOCUMENT, RUBRIC, VALID, document, llm_config

KEY = "evidence-NOT-A-REAL-KEY-batch-4d2e"
SECRET = "NOT-A-REAL"
EXE = os.path.join(os.path.dirname(sys.executable), "evidence")
runner = CliRunner()


@pytest.fixture
def stub():
    with BatchStub() as server:
        server.answer(VALID)
        yield server


def config(stub, **changes) -> Config:
    base = {"batch_poll": 0.01, "batch_poll_max": 0.05, "max_retries": 0}
    return Config(llm=llm_config(stub, **{**base, **changes}))


@contextlib.asynccontextmanager
async def classifier_for(stub, db, **changes):
    http = openai.DefaultAsyncHttpxClient()
    try:
        cfg = config(stub, **changes)
        backend = OpenAIBackend(cfg.llm, api_key=KEY, http_client=http)
        yield Classifier(db, cfg, backend_object=backend), cfg
    finally:
        await http.aclose()


def batch_run(stub, db, texts, **changes):
    async def go():
        async with classifier_for(stub, db, **changes) as (classifier, cfg):
            items = [text_item(t, RUBRIC) for t in texts]
            batches = await run_batch(db, cfg, classifier, items, api_key=KEY)
            return classifier, batches

    return asyncio.run(go())


def live_run(stub, db, texts, **changes):
    async def go():
        async with classifier_for(stub, db, **changes) as (classifier, _):
            await classifier.run([text_item(t, RUBRIC) for t in texts])
            return classifier

    return asyncio.run(go())


def calls(db) -> list[dict]:
    return list(db.query("select * from llm_calls order by id"))


# -- the requests ------------------------------------------------------------------------------------------


def test_a_batch_line_is_the_request_a_live_call_sends(stub):
    live_run(stub, open_db(":memory:"), [DOCUMENT])
    (sent,) = stub.requests
    batch_run(stub, open_db(":memory:"), [DOCUMENT])
    (upload,) = stub.uploads
    (line,) = [json.loads(t) for t in upload.decode().splitlines()]
    assert line["body"] == sent["body"]  # messages, model, parameters and the tool, byte for byte as JSON
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert (
        line["custom_id"]
        == custom_id(text_item(DOCUMENT, RUBRIC))
        == f"19:{text_item(DOCUMENT, RUBRIC).content_sha}"
    )
    created = [c for c in stub.calls if c[0] == "POST"]
    assert created == [("POST", "/v1/files"), ("POST", "/v1/batches")]


def test_json_mode_lines_carry_instructors_response_format(stub):
    live_run(stub, open_db(":memory:"), [DOCUMENT], mode="json")
    (sent,) = stub.requests
    batch_run(stub, open_db(":memory:"), [DOCUMENT], mode="json")
    (line,) = [json.loads(t) for t in stub.uploads[0].decode().splitlines()]
    assert line["body"] == sent["body"] and "response_format" in line["body"] and "tools" not in line["body"]


def test_a_non_english_documents_line_is_the_live_request_with_its_language_note(stub):
    french = (
        "PARIS, 8 octobre 2024 — La police française et la police espagnole ont arrêté quatorze membres "
        "d'un réseau de passeurs de migrants lors d'une opération conjointe coordonnée par Europol.\n"
        "Le réseau avait organisé la traversée de plus de 300 migrants à bord de petites embarcations."
    )
    live_run(stub, open_db(":memory:"), [french])
    (sent,) = stub.requests
    batch_run(stub, open_db(":memory:"), [french])
    (line,) = [json.loads(t) for t in stub.uploads[0].decode().splitlines()]
    assert line["body"] == sent["body"]
    assert "French" in json.dumps(line["body"]["messages"], ensure_ascii=False)  # the language note


def test_the_prefilter_keeps_what_the_learned_model_rules_out_out_of_the_batch(stub):
    """As a live run: an off-topic text is stored as ruled out (no call, the learned model's verdict)
    and is not in the uploaded file; the on-topic one is; a second run finds both cached."""
    off_topic = (
        "The municipal orchestra opens its winter season on Friday with Brahms and Dvořák; tickets for "
        "the concert hall are on sale at the box office and online, with reduced prices for students."
    )
    db = open_db(":memory:")
    classifier, batches = batch_run(stub, db, [DOCUMENT, off_topic], prefilter=0.05)
    (upload,) = stub.uploads
    (line,) = [json.loads(t) for t in upload.decode().splitlines()]
    assert line["custom_id"] == custom_id(text_item(DOCUMENT, RUBRIC))
    assert classifier.summary.prefiltered == 1 and batches.submitted
    ruled = list(db.query("select relevant, call_id, prefilter_model, prefilter_probability from classifications "
                          "where prefilter_model is not null"))  # fmt: skip
    assert len(ruled) == 1 and ruled[0]["relevant"] == 0 and ruled[0]["call_id"] is None
    assert (
        ruled[0]["prefilter_model"].startswith("learned-tfidf-lr@")
        and ruled[0]["prefilter_probability"] < 0.05
    )
    assert [c["outcome"] for c in calls(db)] == ["ok"]  # one call, the batch's line; none for the ruled out
    stub.calls.clear()
    again, batches = batch_run(stub, db, [DOCUMENT, off_topic], prefilter=0.05)
    assert (again.summary.cached, again.summary.calls, batches.submitted) == (2, 0, [])


# -- results stored as a live call's ------------------------------------------------------------------------


def test_happy_path_stores_what_a_live_run_stores_at_half_the_price(stub):
    texts = [document(n) for n in range(3)]
    live_db, batch_db = open_db(":memory:"), open_db(":memory:")
    live = live_run(stub, live_db, texts)
    classifier, batches = batch_run(stub, batch_db, texts)
    assert batches.submitted and list(batches.finished.values()) == ["completed"]
    assert stub.batches_created() == 1 and stub.polled() >= 2  # in_progress once, then completed
    assert (classifier.summary.classified, classifier.summary.failures) == (3, 0)

    def rows(db):
        keep = ("content_sha", "commitment", "prompt_sha", "system_sha", "model", "status", "relevant",
                "members", "action_date", "summary", "dimensions", "flags")  # fmt: skip
        return sorted(tuple(r[k] for k in keep) for r in db["classifications"].rows)

    assert rows(batch_db) == rows(live_db)  # same cache identity, same grounding and flags
    live_calls, batch_calls = calls(live_db), calls(batch_db)
    assert [c["outcome"] for c in batch_calls] == ["ok"] * 3
    for lc, bc in zip(
        sorted(live_calls, key=lambda c: c["input_sha"]),
        sorted(batch_calls, key=lambda c: c["input_sha"]),
        strict=True,
    ):
        assert (bc["tokens_in"], bc["tokens_out"], bc["parsed"]) == (
            lc["tokens_in"],
            lc["tokens_out"],
            lc["parsed"],
        )
        assert bc["cost"] == pytest.approx(lc["cost"] * 0.5) and bc["cost"] > 0
        request = json.loads(bc["request"])
        assert request["batch"] == batches.submitted[0] and request["custom_id"].startswith("19:sha256:")
        assert {k: v for k, v in request.items() if k not in ("batch", "custom_id")} == json.loads(
            lc["request"]
        )
    assert classifier.summary.cost == pytest.approx(live.summary.cost * 0.5)
    (row,) = batch_db["batches"].rows
    assert (row["state"], row["status"], row["requests"]) == ("collected", "completed", 3)

    stub.calls.clear()
    again, batches = batch_run(stub, batch_db, texts)  # everything cached: nothing submitted
    assert (again.summary.cached, again.summary.calls, batches.submitted) == (3, 0, [])
    assert not [c for c in stub.calls if c[0] == "POST"]


def test_the_batch_price_share_is_a_price_setting(stub):
    prices = {"stub-model": Price(input=1.0, output=2.0, batch=0.25)}
    live = live_run(stub, open_db(":memory:"), [DOCUMENT], prices=prices)
    classifier, _ = batch_run(stub, open_db(":memory:"), [DOCUMENT], prices=prices)
    assert classifier.summary.cost == pytest.approx(live.summary.cost * 0.25)


def test_failing_lines_are_failures_judged_like_live_calls_and_a_live_run_retries_them(stub):
    texts = [document(n) for n in range(8)]
    stub.lines(
        [
            {},
            {"arguments": '{"relevant": true, "members": ["France"'},  # cut JSON: not re-asked
            {"arguments": {**VALID, "members": ["Atlantis"]}},  # fails validation
            {"status": 500},
            {"status": 429},
            {"refusal": "I can't help with that."},
            {"finish_reason": "length", "arguments": '{"relevant": true'},
            {"missing": True},
        ]
    )
    db = open_db(":memory:")
    classifier, _ = batch_run(stub, db, texts)
    order = [custom_id(text_item(t, RUBRIC)) for t in texts]
    outcomes = {json.loads(c["request"])["custom_id"]: c["outcome"] for c in calls(db)}
    assert [outcomes[c] for c in order] == [
        "ok", "invalid-output", "invalid-output", "http-error", "rate-limited", "refused", "output-truncated",
        "invalid-response",
    ]  # fmt: skip
    assert classifier.summary.classified == 1 and classifier.summary.failures == 7
    by_outcome = {c["outcome"]: c for c in calls(db)}
    assert "not re-asked" in by_outcome["invalid-output"]["error"]
    assert by_outcome["http-error"]["error"].startswith("HTTP 500")
    assert "max_output_tokens" in by_outcome["output-truncated"]["error"]
    assert "no line for this request" in by_outcome["invalid-response"]["error"]
    assert len(stub.requests) == 0  # no re-ask went out live
    failed = list(db["classifications"].rows_where("status = 'failed'"))
    assert len(failed) == 7 and all(f["error"].split(":")[0] in outcomes.values() for f in failed)

    live = live_run(stub, db, texts)  # the stub answers every live request validly
    assert (live.summary.cached, live.summary.classified, len(stub.requests)) == (1, 7, 7)
    assert sorted({r["status"] for r in db["classifications"].rows}) == ["ok"]


def test_an_expired_batch_stores_what_was_done_and_fails_the_rest(stub):
    stub.end = "expired"
    stub.lines([{}, {"expired": True}, {"missing": True}])
    db = open_db(":memory:")
    classifier, batches = batch_run(stub, db, [document(n) for n in range(3)])
    assert list(batches.finished.values()) == ["expired"]
    assert sorted(c["outcome"] for c in calls(db)) == ["expired", "expired", "ok"]
    errors = sorted(c["error"] or "" for c in calls(db) if c["outcome"] == "expired")
    assert errors[0].startswith("batch_expired:") and "expired (24 h window)" in errors[1]
    assert classifier.summary.failed == {"expired": 2}
    (row,) = db["batches"].rows
    assert (row["state"], row["status"]) == ("collected", "expired")


def test_a_failed_batch_fails_every_item_with_the_providers_reason(stub):
    stub.end = "failed"
    db = open_db(":memory:")
    classifier, batches = batch_run(stub, db, [document(n) for n in range(2)])
    assert list(batches.finished.values()) == ["failed"]
    assert [c["outcome"] for c in calls(db)] == ["batch-failed"] * 2
    assert all("stub: this batch was refused" in c["error"] for c in calls(db))
    assert classifier.summary.failed == {"batch-failed": 2}
    (row,) = db["batches"].rows
    assert "this batch was refused" in row["error"]
    stub.end = "completed"
    again, batches = batch_run(stub, db, [document(n) for n in range(2)])
    assert stub.batches_created() == 2 and again.summary.classified == 2  # a rerun submits them again


# -- the command: resumable, and no key anywhere -------------------------------------------------------------


@pytest.fixture(scope="module")
def fetched_db(tmp_path_factory):
    """Two press releases fetched from the local newsroom into a database (copied by each test)."""
    folder = tmp_path_factory.mktemp("fetched")
    path, cfg = folder / "evidence.db", folder / "fetch.toml"
    cfg.write_text('[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\n')
    with Newsroom() as site:
        pages = [site.url(newsroom.CANADA_PATH), site.url(newsroom.GERMANY_PATH)]
        result = runner.invoke(app, ["--db", str(path), "--config", str(cfg), "fetch", *pages])
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def world(fetched_db, isolated_db, tmp_path, stub, monkeypatch):
    from classifier.rubric import rubrics_for

    from .test_llm_replies import answer

    source, target = sqlite3.connect(fetched_db), sqlite3.connect(isolated_db)
    source.backup(target)
    source.close()
    target.close()
    for rubric in rubrics_for():
        stub.answer_for(f"Classification{rubric.number}", answer(rubric))
    path = tmp_path / "evidence.toml"
    path.write_text(
        f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\n'
        'api_key_env = "EVIDENCE_TEST_KEY"\ntimeout = 10\nbackoff = 0\nmax_retries = 0\n'
        "batch_poll = 0.05\nbatch_poll_max = 0.1\n"
        "prefilter = 0\n"  # both releases go into the batch: its mechanics are tested here, the
        # prefilter in front of a batch in test_the_prefilter_keeps_what_the_learned_model_rules_out...
        '[llm.prices."stub-model"]\ninput = 1.0\noutput = 2.0\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("EVIDENCE_CONFIG", str(path))
    monkeypatch.setenv("EVIDENCE_TEST_KEY", KEY)
    return {**os.environ}


def dump(path) -> str:
    con = sqlite3.connect(path)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


def test_classify_batch_stores_results_shows_status_and_leaks_no_key(world, stub, isolated_db):
    done = runner.invoke(app, ["classify", "--batch", "--commitment", "19"])
    assert done.exit_code == 0, done.output
    assert "classified 2, cached 0, failed 0" in done.output
    assert "submitted 1 batch(es): batch-stub-" in done.output and "completed" in done.output
    status = runner.invoke(app, ["classify", "--batch", "--status"])
    assert (
        status.exit_code == 0 and "collected/completed  2 requests, 2 completed / 0 failed" in status.output
    )
    assert status_lines(open_db(isolated_db))[0].startswith("1  batch-stub-")
    assert SECRET not in done.output + status.output + dump(isolated_db)
    assert all(SECRET not in u.decode() for u in stub.uploads)
    assert runner.invoke(app, ["calls", "list"]).output.count("openai/stub-model") == 2
    again = runner.invoke(app, ["classify", "--batch", "--commitment", "19"])
    assert "classified 0, cached 2" in again.output and stub.batches_created() == 1


def test_status_without_batch_and_batch_without_the_openai_backend_are_one_line_errors(world, monkeypatch):
    assert "use it with --batch" in runner.invoke(app, ["classify", "--status"]).output
    result = runner.invoke(app, ["classify", "--batch", "--backend", "baseline"])
    assert result.exit_code == 1 and "--batch needs the openai backend" in result.output


@pytest.mark.parametrize("point", ["batch.created", "batch.submitted"])
def test_a_run_killed_between_submitting_and_reading_back_is_resumed_without_a_second_batch(
    world, stub, isolated_db, point
):
    stub.polls = None  # in progress until the test lets it end
    env = {**world, "EVIDENCE_FAILPOINTS": f"{point}=kill"}
    killed = subprocess.run(
        [EXE, "classify", "--batch", "--commitment", "19"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr  # SIGKILL, from the failpoint
    assert stub.batches_created() == 1
    (row,) = open_db(isolated_db)["batches"].rows
    assert row["state"] == ("submitting" if point == "batch.created" else "submitted")
    assert (row["batch_id"] is None) == (point == "batch.created")
    assert open_db(isolated_db)["classifications"].count == 0

    stub.polls = 1
    resumed = runner.invoke(app, ["classify", "--batch", "--commitment", "19"])
    assert resumed.exit_code == 0, resumed.output
    assert "picked up 1 batch(es) in flight" in resumed.output
    assert "classified 2, cached 0, failed 0" in resumed.output
    assert stub.batches_created() == 1 and len(stub.uploads) == 1  # not submitted again
    db = open_db(isolated_db)
    (row,) = db["batches"].rows
    assert row["state"] == "collected" and row["batch_id"].startswith("batch-stub-")
    assert [c["outcome"] for c in db["llm_calls"].rows] == ["ok", "ok"]
    assert SECRET not in resumed.output + killed.stdout + killed.stderr + dump(isolated_db)


def test_a_batch_the_endpoint_no_longer_knows_is_one_line_and_stays_stored(
    world, stub, isolated_db, monkeypatch
):
    monkeypatch.setenv("EVIDENCE_FAILPOINTS", "batch.submitted=error")
    stopped = runner.invoke(app, ["classify", "--batch", "-c", "19"])
    assert stopped.exit_code == 1 and "failpoint batch.submitted" in stopped.output
    monkeypatch.delenv("EVIDENCE_FAILPOINTS")
    stub.forget()  # the provider answers 404 for the batch (another account, or deleted)
    failed = runner.invoke(app, ["classify", "--batch", "-c", "19"])
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    (line,) = [x for x in failed.output.splitlines() if x.startswith("error:")]
    assert f"{stub.base_url}: could not poll batch batch-stub-" in line and "HTTP 404" in line
    assert "rerun `evidence classify --batch` to pick it up" in line
    (row,) = open_db(isolated_db)["batches"].rows
    assert row["state"] == "submitted" and stub.batches_created() == 1


def test_migration_m016_adds_the_batches_table_to_an_existing_database(tmp_path):
    from classifier.migrations import migrations

    db = open_db(tmp_path / "old.db", migrate=False)
    migrations.apply(db, stop_before="m016_batches")
    assert "batches" not in db.table_names()
    db["prompt_versions"].insert({"name": "kept", "sha": "sha256:0", "text": "x"})
    migrations.apply(db)
    assert "batches" in db.table_names() and db["prompt_versions"].count == 1
    assert {"batch_id", "state", "status", "items", "input_file_id"} <= set(db["batches"].columns_dict)
    assert "m016_batches" in {m.name for m in migrations.applied(db)}


def test_a_run_stopped_before_its_upload_was_stored_uploads_once_more_and_submits_one_batch(
    stub, monkeypatch
):
    from classifier.failpoints import FailpointError

    db = open_db(":memory:")
    texts = [document(n) for n in range(2)]
    monkeypatch.setenv("EVIDENCE_FAILPOINTS", "batch.uploading=error")
    with pytest.raises(FailpointError):
        batch_run(stub, db, texts)
    (row,) = db["batches"].rows
    assert row["state"] == "uploading" and stub.uploads == []
    monkeypatch.delenv("EVIDENCE_FAILPOINTS")
    classifier, batches = batch_run(stub, db, texts)
    assert batches.resumed == [] and len(batches.submitted) == 1 and classifier.summary.classified == 2
    assert (len(stub.uploads), stub.batches_created()) == (1, 1)
    (row,) = db["batches"].rows
    assert row["state"] == "collected"


def test_a_batch_picked_up_under_other_settings_is_judged_with_the_settings_it_was_sent_with(
    stub, monkeypatch
):
    from classifier.failpoints import FailpointError

    db = open_db(":memory:")
    texts = [document(n) for n in range(2)]
    monkeypatch.setenv("EVIDENCE_FAILPOINTS", "batch.submitted=error")
    with pytest.raises(FailpointError):
        batch_run(stub, db, texts, max_output_tokens=1200)
    monkeypatch.delenv("EVIDENCE_FAILPOINTS")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # the batch's own backend reads the configured variable
    classifier, batches = batch_run(stub, db, texts, max_output_tokens=900, temperature=0.3)
    assert len(batches.resumed) == 1 and classifier.summary.classified == 2 and stub.batches_created() == 1
    assert {json.loads(c["request"])["max_tokens"] for c in calls(db)} == {1200}
    assert {json.loads(c["request"])["temperature"] for c in calls(db)} == {0.0}
    assert all(c["cost"] > 0 for c in calls(db))


def test_polls_wait_longer_each_time_up_to_the_cap(stub):
    stub.polls = 5
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go():
        db = open_db(":memory:")
        async with classifier_for(stub, db, batch_poll=2.0, batch_poll_max=5.0) as (classifier, cfg):
            await run_batch(db, cfg, classifier, [text_item(DOCUMENT, RUBRIC)], api_key=KEY, sleep=sleep)

    asyncio.run(go())
    assert waits == [2.0, 3.0, 4.5, 5.0, 5.0] and stub.polled() == 6
