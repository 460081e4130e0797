"""`evidence llm check` and the same check before a run, against the local STUB endpoint
(tests/llm_stub.py; the real model's side of a structured request is in test_llm_cassettes.py),
and the price in use: [llm.prices], else the bundled table, else none (a cost cap refuses)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import openai
import pytest

from classifier.classify import Classifier, text_item
from classifier.config import Config, ConfigError, LLMConfig, Price, price_table
from classifier.endpoint import OpenAIBackend, run_check
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .llm_stub import OpenAIStub
from .test_llm_faults import KEY, VALID, document, llm_config

RUBRIC = rubrics_for(19)[0]


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        server.answer({"ok": True})
        server.answer_for("Classification19", VALID)
        yield server


def config(stub: OpenAIStub, **changes) -> LLMConfig:
    return llm_config(stub, **changes)


def test_check_reports_models_mode_and_price(stub):
    report = run_check(config(stub), api_key=KEY)
    assert report.problem is None and report.models == ["stub-model"]
    text = "\n".join(report.lines)
    assert "reached in" in text and "mode tools: supported" in text
    assert "$1 in / $2 out per million tokens (configuration)" in text
    (request,) = stub.requests  # one tiny structured request, in the configured mode
    assert request["body"]["tools"][0]["function"]["name"] == "_Ping"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": "gpt-x"}, "model 'gpt-x' is not among the endpoint's models (stub-model)"),
        ({"base_url": "NO_V1"}, "GET /models answered HTTP 404 (does base_url end in /v1?)"),
        ({"base_url": "http://127.0.0.1:9/v1"}, "cannot connect"),
    ],
    ids=["unknown-model", "no-v1", "closed-port"],
)
def test_check_names_the_url_and_the_problem(stub, change, expected):
    if change.get("base_url") == "NO_V1":
        change = {"base_url": stub.base_url.removesuffix("/v1")}
    cfg = config(stub, **change)
    report = run_check(cfg, api_key=KEY)
    assert report.problem.startswith(cfg.base_url + ": ") and expected in report.problem
    assert stub.requests == []  # no chat request was spent


def test_check_says_a_mode_is_not_supported(stub):
    stub.script([{"status": 500}])
    report = run_check(config(stub, mode="json_schema"), api_key=KEY)
    assert "mode json_schema: HTTP 500" in report.problem and 'try mode = "tools"' in report.problem


def test_a_run_checks_the_endpoint_first_and_spends_nothing_on_a_wrong_model(stub):
    db = open_db()

    async def go():
        http = openai.DefaultAsyncHttpxClient()
        try:
            cfg = config(stub, model="gpt-x")
            b = OpenAIBackend(cfg, api_key=KEY, http_client=http)
            classifier = Classifier(db, Config(llm=cfg), backend_object=b)
            return await classifier.run([text_item(document(n), RUBRIC) for n in range(3)])
        finally:
            await http.aclose()

    summary = asyncio.run(go())
    assert stub.requests == [] and db["llm_calls"].count == 0
    assert summary.skipped == {"endpoint-unusable": 3} and "'gpt-x' is not among" in summary.stopped


def test_the_cli_check_exits_1_with_one_line(stub, tmp_path):
    path = tmp_path / "evidence.toml"
    path.write_text(f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "gpt-x"\n')
    env = {**os.environ, "OPENAI_API_KEY": KEY, "EVIDENCE_DB": str(tmp_path / "db.sqlite")}
    done = subprocess.run(
        [sys.executable, "-m", "classifier.cli", "--config", str(path), "llm", "check"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"problem: {stub.base_url}: model 'gpt-x' is not among the endpoint's models (stub-model)"
    ]
    assert KEY not in done.stdout + done.stderr


def test_prices_come_from_the_configuration_then_the_bundled_table():
    assert price_table()["gpt-4o-mini"].input > 0
    cfg = LLMConfig(model="gpt-4o-mini")
    assert cfg.price_of() == (price_table()["gpt-4o-mini"], "bundled table (prices.toml)")
    mine = Price(input=9.0, output=9.0)
    assert LLMConfig(model="gpt-4o-mini", prices={"gpt-4o-mini": mine}).price_of() == (mine, "configuration")
    assert LLMConfig(model="local-model").price_of() == (None, "unknown")


def test_a_cost_cap_without_a_price_refuses_to_start(stub):
    cfg = config(stub, prices={}, model="local-model", cost_cap=1.0)
    with pytest.raises(ConfigError, match=r"no price: set \[llm.prices.\"local-model\"\]"):
        Classifier(open_db(), Config(llm=cfg),
                   backend_object=OpenAIBackend(cfg, api_key=KEY))  # fmt: skip
    # with a token cap instead, it starts
    cfg = config(stub, prices={}, model="local-model", token_cap=1000)
    Classifier(open_db(), Config(llm=cfg),
               backend_object=OpenAIBackend(cfg, api_key=KEY))  # fmt: skip
