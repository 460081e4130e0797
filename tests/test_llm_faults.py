"""Fault injection for the openai backend against a local STUB server (tests/llm_stub.py).

The stub is not a model: it plays back scripted answers and failures (429 with Retry-After,
5xx, slow answers, bodies that are not JSON, schema-invalid tool calls, refusals) in the
OpenAI wire format, so every outcome of :class:`classifier.endpoint.OpenAIBackend` and of the
classifier around it (grounding, cache, cost cap, concurrency, secrets) is exercised
without a key or a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time

import openai
import pytest

from classifier.classify import Classifier, output_model, text_item
from classifier.config import Config, LLMConfig, Price
from classifier.endpoint import OpenAIBackend
from classifier.prompts import load_prompt, render
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .llm_stub import OpenAIStub, prompt_tokens

KEY = "sk-test-NOT-A-REAL-KEY-0000"
RUBRIC = rubrics_for(19)[0]

DOCUMENT = (
    "PARIS, 8 October 2024 — French and Spanish police arrested fourteen members of a migrant "
    "smuggling network in a joint operation coordinated by Europol.\n"
    "The network had organised the crossing of more than 300 migrants in small boats over the past year.\n"
    "Investigators seized 120,000 euros in cash, four vehicles and forged travel documents.\n"
    "Prosecutors have charged the suspects with aggravated migrant smuggling and money laundering.\n"
    "The Minister of the Interior said France will keep dismantling the criminal networks that "
    "endanger lives at sea.\n"
)
ARREST = (
    "French and Spanish police arrested fourteen members of a migrant smuggling network in a joint "
    "operation coordinated by Europol."
)
SEIZURE = "Investigators seized 120,000 euros in cash, four vehicles and forged travel documents."
CHARGES = "Prosecutors have charged the suspects with aggravated migrant smuggling and money laundering."

VALID = {
    "relevant": True,
    "members": ["France"],
    "action_date": "2024-10-08",
    "summary": "On 8 October 2024, French police arrested fourteen members of a migrant smuggling network.",
    "confidence": 0.9,
    "outside_period": False,
    "exclusions": [],
    "dimensions": {
        "prevent": {"label": "none", "rationale": "no prevention measure", "quotes": []},
        "counter": {"label": "strong", "rationale": "suspects charged", "quotes": [CHARGES]},
        "dismantle_networks": {
            "label": "strong",
            "rationale": "network members arrested",
            "quotes": [ARREST],
        },
        "disrupt_business_models": {"label": "strong", "rationale": "proceeds seized", "quotes": [SEIZURE]},
    },
}


def valid(**changes) -> dict:
    return {**copy.deepcopy(VALID), **changes}


def with_dimension(dim: str, **changes) -> dict:
    arguments = valid()
    arguments["dimensions"][dim].update(changes)
    return arguments


def document(n: int) -> str:
    return DOCUMENT + f"Reference {n}: case file {n * 7919 % 10007} of the prosecutor's office.\n"


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        server.answer(VALID)
        yield server


def llm_config(stub: OpenAIStub, **changes) -> LLMConfig:
    base = dict(
        backend="openai",
        base_url=stub.base_url,
        model="stub-model",
        timeout=1.0,
        backoff=0.05,
        max_retries=1,
        rate_limit_retries=2,
        prices={"stub-model": Price(input=1.0, output=2.0)},
        prefilter=0,  # every item reaches the endpoint: its faults are what is tested
    )
    return LLMConfig(**{**base, **changes})


@contextlib.asynccontextmanager
async def backend(stub: OpenAIStub, **changes):
    """A backend whose HTTP client is closed inside the event loop that used it."""
    http = openai.DefaultAsyncHttpxClient()
    try:
        yield OpenAIBackend(llm_config(stub, **changes), api_key=KEY, http_client=http)
    finally:
        await http.aclose()


def prompt(text: str = DOCUMENT):
    return render(load_prompt(), RUBRIC, text)


def call(stub: OpenAIStub, text: str = DOCUMENT, **changes):
    """One classification through the backend; returns (result, wall seconds)."""

    async def go():
        async with backend(stub, **changes) as b:
            return await b.classify(prompt(text), output_model(RUBRIC), RUBRIC, text)

    started = time.monotonic()
    result = asyncio.run(go())
    return result, time.monotonic() - started


def classify_run(stub: OpenAIStub, texts: list[str], *, cost_cap=None, twice=False, **changes):
    """Texts through a Classifier (the test database); returns (classifier, db, wall seconds)."""
    db = open_db()

    async def go():
        async with backend(stub, **changes) as b:
            classifier = Classifier(
                db, Config(llm=llm_config(stub, **changes)), backend_object=b, cost_cap=cost_cap
            )
            await classifier.run([text_item(t, RUBRIC) for t in texts])
            if twice:
                await classifier.run([text_item(t, RUBRIC) for t in texts])
            return classifier

    started = time.monotonic()
    classifier = asyncio.run(go())
    return classifier, db, time.monotonic() - started


# -- one call ---------------------------------------------------------------------------------------------


def test_valid_answer_is_ok_with_tokens_and_exact_cost(stub):
    result, _ = call(stub)
    assert (result.outcome, result.error, result.retries) == ("ok", None, 0)
    assert result.output["dimensions"]["dismantle_networks"] == VALID["dimensions"]["dismantle_networks"]
    assert result.output["action_date"] == "2024-10-08"
    (request,) = stub.requests
    assert request["body"]["model"] == "stub-model"
    assert request["body"]["tools"][0]["function"]["name"] == "Classification19"
    tokens_in = sum(len(m["content"]) for m in prompt().messages()) // 4
    tokens_out = len(json.dumps(VALID)) // 4
    assert (result.tokens_in, result.tokens_out, result.cached_tokens) == (tokens_in, tokens_out, 0)
    assert result.cost == (tokens_in * 1.0 + tokens_out * 2.0) / 1e6
    assert result.latency > 0
    assert json.loads(result.raw_response)["usage"]["prompt_tokens"] == tokens_in


def test_retry_after_is_honoured(stub):
    stub.script([{"status": 429, "headers": {"Retry-After": "1"}}])
    result, elapsed = call(stub)
    assert result.outcome == "ok"
    first, second = stub.requests
    assert result.retries == 1
    assert elapsed >= 0.95 and second["at"] - first["end"] >= 0.9  # Retry-After: 1, not the 0.05 s backoff


def test_retry_after_beyond_the_cap_ends_the_attempts(stub):
    stub.script([{"status": 429, "headers": {"Retry-After": "30"}}])
    result, elapsed = call(stub, max_retry_after=5.0)
    assert result.outcome == "rate-limited" and "429" in result.error
    assert len(stub.requests) == 1 and result.retries == 0 and elapsed < 2


def test_server_error_then_valid_answer(stub):
    stub.script([{"status": 500}])
    result, _ = call(stub)
    assert (result.outcome, result.retries, len(stub.requests)) == ("ok", 1, 2)


def test_server_error_forever_is_an_http_error(stub):
    """On an endpoint that has answered before, a 5xx is a passing fault: retried."""

    async def go():
        async with backend(stub) as b:
            first = await b.classify(prompt(), output_model(RUBRIC), RUBRIC, DOCUMENT)
            stub.reset()
            stub.script([{"status": 500}] * 10)
            return first, await b.classify(prompt(), output_model(RUBRIC), RUBRIC, DOCUMENT), b

    first, result, b = asyncio.run(go())
    assert first.outcome == "ok"
    assert result.outcome == "http-error" and "HTTP 500" in result.error
    assert len(stub.requests) == 2 + 1  # rate_limit_retries + 1
    assert result.retries == 2 and result.output is None and b.unusable is None


def test_server_error_on_the_first_request_stops_the_run(stub):
    """A 5xx repeated before anything worked (llama.cpp's server answers json_schema mode with 500
    every time): the first item fails after one retry, the rest are not tried, and the run says
    which URL and what to change."""
    stub.script([{"status": 500}] * 10)
    classifier, db, _ = classify_run(
        stub, [document(n) for n in range(5)], concurrency=1, mode="json_schema", rate_limit_retries=4
    )
    assert len(stub.requests) == 2  # not 5 items x 5 attempts
    assert classifier.summary.failed == {"http-error": 1}
    assert classifier.summary.skipped == {"endpoint-unusable": 4}
    stopped = classifier.summary.stopped
    assert stub.base_url in stopped and "HTTP 500" in stopped and 'mode = "tools"' in stopped
    assert classifier.summary.lines()[-1] == f"stopped: {stopped}"
    assert db["llm_calls"].count == 1


@pytest.mark.parametrize(("status", "hint"), [(404, "base_url"), (401, "OPENAI_API_KEY"), (400, "mode")])
def test_client_error_on_the_first_request_stops_at_once(stub, status, hint):
    stub.script([{"status": status}] * 10)
    classifier, _, _ = classify_run(stub, [document(n) for n in range(3)], concurrency=1)
    assert len(stub.requests) == 1 and classifier.summary.skipped == {"endpoint-unusable": 2}
    assert f"HTTP {status}" in classifier.summary.stopped and hint in classifier.summary.stopped


def test_slow_answer_times_out(stub):
    stub.script([{"sleep": 2.0}])
    result, elapsed = call(stub, rate_limit_retries=0)
    assert result.outcome == "timeout"
    assert "1 s" in result.error  # names the timeout
    assert len(stub.requests) == 1 and elapsed < 1.9


def test_no_server_is_a_network_error(stub):
    stub.stop()  # nothing listens on the port any more
    result, _ = call(stub, rate_limit_retries=1)
    assert result.outcome == "network-error" and result.retries == 1 and result.error


def test_body_that_is_not_json_is_an_invalid_response_not_invalid_output(stub):
    stub.script([{"malformed": True}] * 2)
    result, _ = call(stub)
    assert result.outcome == "invalid-response" and "not JSON" in result.error
    assert result.raw_response == '{"id": "chatcmpl-stub", "choices": [ this is not JSON'
    assert result.output is None
    assert len(stub.requests) == 2 and result.retries == 1  # instructor re-sent it once (max_retries=1)


def test_body_that_is_not_json_once_then_valid(stub):
    stub.script([{"malformed": True}])
    result, _ = call(stub)
    assert (result.outcome, result.retries, len(stub.requests)) == ("ok", 1, 2)


def test_body_that_is_not_json_does_not_stop_a_run(stub):
    stub.script([{"malformed": True}] * 2)
    classifier, db, _ = classify_run(stub, [document(1), document(2)], concurrency=1)
    assert classifier.summary.failed == {"invalid-response": 1} and classifier.summary.classified == 1
    statuses = sorted(r["status"] for r in db["classifications"].rows)
    assert statuses == ["failed", "ok"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (with_dimension("counter", label="very strong"), "very strong"),
        (valid(verdict="compliant"), "Extra inputs are not permitted"),
        ('{"relevant": true, "members": [', "Invalid JSON"),
    ],
    ids=["bad-label", "extra-field", "truncated-json"],
)
def test_schema_invalid_output_is_re_asked_then_invalid(stub, arguments, message):
    stub.script([{"arguments": arguments}] * 2)
    result, _ = call(stub)
    assert result.outcome == "invalid-output" and result.output is None
    first, second = stub.requests
    assert len(stub.requests) == 1 + 1  # max_retries + 1
    assert message not in json.dumps(first["body"]["messages"])
    assert message in json.dumps(second["body"]["messages"])  # the re-ask names the problem
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    assert (
        json.loads(result.raw_response)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        == raw
    )
    # both answers are paid for, each counted once
    assert result.retries == 1 and result.tokens_out == 2 * (len(raw) // 4)
    assert result.tokens_in == sum(prompt_tokens(r["body"]["messages"]) for r in stub.requests)
    assert result.cost == (result.tokens_in * 1.0 + result.tokens_out * 2.0) / 1e6


def test_invalid_output_then_valid_after_the_re_ask(stub):
    stub.script([{"arguments": with_dimension("prevent", label="very strong")}])
    result, _ = call(stub)
    assert (result.outcome, result.retries, len(stub.requests)) == ("ok", 1, 2)


def test_refusal_is_refused(stub):
    stub.script([{"refusal": "I can't help with that."}] * 2)
    result, _ = call(stub)
    assert result.outcome == "refused" and result.output is None
    assert "I can't help with that." in result.raw_response
    assert len(stub.requests) == 1  # a refusal is not re-asked


# -- through the classifier -------------------------------------------------------------------------------


def test_quote_not_in_the_document_is_flagged_ungrounded(stub):
    stub.answer(with_dimension("counter", quotes=["Officers seized forty kilograms of cocaine at the port."]))
    _, db, _ = classify_run(stub, [DOCUMENT])
    (row,) = db["classifications"].rows
    assert row["status"] == "ok" and json.loads(row["flags"]) == ["ungrounded"]
    dims = json.loads(row["dimensions"])
    assert dims["counter"]["grounded"] is False
    assert [q["method"] for q in dims["counter"]["quotes"]] == ["missing"]
    assert dims["dismantle_networks"]["grounded"] is True
    (quote,) = dims["dismantle_networks"]["quotes"]
    assert quote["method"] == "exact" and DOCUMENT[quote["start"] : quote["end"]] == ARREST


def test_concurrency_is_bounded(stub):
    stub.latency = 0.3
    classifier, _, elapsed = classify_run(stub, [document(n) for n in range(6)], concurrency=2)
    assert classifier.summary.classified == 6 and len(stub.requests) == 6
    assert stub.max_in_flight == 2  # bounded, and actually concurrent
    assert elapsed >= 0.9  # 6 x 0.3 s / 2


def one_call_cost(stub: OpenAIStub) -> float:
    result, _ = call(stub, document(0))
    stub.reset()
    assert result.outcome == "ok" and result.cost > 0
    return result.cost


def test_cost_cap_skips_the_rest(stub):
    cap = one_call_cost(stub) * 1.02  # just above one call; the documents differ by a few characters
    classifier, db, _ = classify_run(stub, [document(n) for n in (1, 2, 3)], cost_cap=cap, concurrency=1)
    summary = classifier.summary
    assert summary.calls in (1, 2) and len(stub.requests) == summary.calls
    assert summary.skipped == {"cost-cap": 3 - summary.calls}
    assert summary.classified == summary.calls and db["classifications"].count == summary.calls


def test_cost_cap_holds_with_concurrent_calls(stub):
    stub.latency = 0.1
    cap = one_call_cost(stub) * 1.02
    classifier, _, _ = classify_run(stub, [document(n) for n in (1, 2, 3)], cost_cap=cap, concurrency=4)
    assert classifier.summary.calls <= 2


def test_same_item_twice_is_one_call(stub):
    classifier, _, _ = classify_run(stub, [DOCUMENT], twice=True)
    assert len(stub.requests) == 1
    assert (classifier.summary.calls, classifier.summary.cached, classifier.summary.classified) == (1, 1, 1)
    again, _, _ = classify_run(stub, [DOCUMENT])  # a new run over the same database
    assert len(stub.requests) == 1 and again.summary.cached == 1 and again.summary.calls == 0


# -- secrets ----------------------------------------------------------------------------------------------


def test_the_api_key_is_sent_but_never_stored_or_reported(stub):
    stub.script(
        [
            {"status": 429, "headers": {"Retry-After": "600"}},  # rate-limited
            *[{"status": 503}] * 3,  # http-error
            *[{"malformed": True}] * 2,  # invalid-response (not JSON)
            *[{"arguments": with_dimension("prevent", label="very strong")}] * 2,  # invalid-output
            {"refusal": "I can't help with that."},  # refused
            {"status": 401, "body": {"error": {"message": "Incorrect API key provided", "type": "auth"}}},
        ]
    )
    texts = [document(n) for n in range(7)]  # the last one is ok
    classifier, db, _ = classify_run(stub, texts, concurrency=1)
    assert classifier.summary.failed == {
        "http-error": 2,
        "invalid-response": 1,
        "rate-limited": 1,
        "invalid-output": 1,
        "refused": 1,
    }
    assert classifier.summary.classified == 1
    results = [call(stub, rate_limit_retries=0, timeout=0.3)[0]]
    stub.script([{"sleep": 1.0}])  # a timeout
    results.append(call(stub, rate_limit_retries=0, timeout=0.3)[0])
    assert [r.outcome for r in results] == ["ok", "timeout"]

    headers = {r["headers"]["authorization"] for r in stub.requests}
    assert headers == {f"Bearer {KEY}"}  # the key was really used
    secret = "NOT-A-REAL-KEY"
    for table in db.table_names():
        for row in db[table].rows:
            assert secret not in json.dumps(row, default=str), table
    for result in results:
        assert secret not in repr(result)
    errors = [r["error"] for r in db["llm_calls"].rows if r["error"]]
    assert len(errors) == 6 and all(secret not in e for e in errors)


def test_a_key_echoed_by_the_endpoint_is_redacted(stub):
    """A proxy that puts the key in its error body must not get it into our records."""
    stub.script(
        [
            {
                "status": 401,
                "body": {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth"}},
            }
        ]
    )
    result, _ = call(stub)
    assert result.outcome == "http-error"
    assert KEY not in (result.error or "") and "[redacted key]" in result.error
