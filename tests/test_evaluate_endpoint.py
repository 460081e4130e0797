"""`eval run` against an endpoint that fails: coverage, failures as misses, exit codes, concurrency.
The endpoint here is a STUB (tests/llm_stub.py): it answers what each test scripts. The same path is
covered on real model output by the recorded cassettes (tests/test_llm_cassettes.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from classifier import evaluate, gold
from classifier.classify import Classifier
from classifier.cli import app
from classifier.config import Config, LLMConfig, Price
from classifier.dataset import build_dataset, sample_items
from classifier.endpoint import OpenAIBackend
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .conftest import REPORTS
from .llm_stub import OpenAIStub

DIMENSIONS = {d: {"label": "none", "rationale": "no such measure", "quotes": []}
              for d in ("prevent", "counter", "dismantle_networks", "disrupt_business_models")}  # fmt: skip
NOT_RELEVANT = {"relevant": False, "members": [], "action_date": None, "summary": "", "confidence": 0.8,
                "outside_period": False, "exclusions": [], "dimensions": DIMENSIONS}  # fmt: skip


def config(stub: OpenAIStub, **changes) -> Config:
    llm = dict(backend="openai", base_url=stub.base_url, model="stub-model", timeout=2.0, backoff=0.01,
               max_retries=0, rate_limit_retries=0, prices={"stub-model": Price(input=1.0, output=2.0)}, prefilter=0)  # fmt: skip
    return Config(llm=LLMConfig(**{**llm, **changes}))


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        server.answer(NOT_RELEVANT)
        yield server


@pytest.fixture
def db(tmp_path):
    db = open_db(tmp_path / "eval.db")
    gold.import_paths(db, [REPORTS])
    return db


def run(db, stub, limit: int, **changes) -> dict:
    cfg = config(stub, **changes)
    classifier = Classifier(db, cfg, backend_object=OpenAIBackend(cfg.llm, api_key="sk-stub-0000"))
    return evaluate.run_eval(
        db, cfg, rubrics_for(), mode="title", commitment=19, limit=limit, classifier=classifier
    )


def test_failed_items_are_counted_by_reason_and_as_misses(db, stub):
    """Stub: 3 of 6 items answered HTTP 500. Recall counts them as misses; beside it, on predicted only."""
    stub.answer({**NOT_RELEVANT, "relevant": True, "members": ["Canada"], "confidence": 0.9})
    sample = sample_items(build_dataset(db, rubrics_for(), "title", commitment=19), 12)
    first_positive = next(n for n, i in enumerate(sample) if i.kind == "positive")
    stub.script([{}] * first_positive + [{"status": 500}] * 3)  # one call at a time, in dataset order
    record = run(db, stub, 12, concurrency=1)
    c = record["metrics"]["coverage"]
    assert (c["items"], c["predicted"], c["failed"]) == (12, 9, 3), c
    assert c["by_reason"] == {"http-error": 3} and c["failures_counted_as"].startswith("misses")
    action = record["metrics"]["action"]
    kinds = {r["item_id"]: r["kind"] for r in db["eval_predictions"].rows_where("run_id = ?", [record["id"]])}
    predictions = evaluate.run_predictions(db, record["id"])
    positives = [i for i, k in kinds.items() if k == "positive"]
    failed = [i for i in positives if predictions[i] is None]
    assert len(failed) == 3
    assert action["relevance_recall_predicted_only"] == 1.0  # what the old figure showed
    assert action["relevance_recall"] == round((len(positives) - len(failed)) / len(positives), 4)
    assert evaluate.exit_code([record], max_failed=0.05) == evaluate.EXIT_FAILURES
    assert evaluate.exit_code([record], max_failed=0.5) == 0
    latency_calls = db.execute("select count(*) from llm_calls where outcome != 'ok'").fetchone()[0]
    assert latency_calls == 3  # failed calls are logged, and their latency counted


def test_nothing_predicted_has_its_own_exit_code(db, stub):
    """Stub: every request answered HTTP 500."""
    stub.script([{"status": 500}] * 50)
    record = run(db, stub, 4)
    assert record["metrics"]["coverage"]["predicted"] == 0
    assert evaluate.exit_code([record], max_failed=1.0) == evaluate.EXIT_NOTHING


def test_concurrency_is_honoured(db, stub, tmp_path):
    """Stub answering each call after 0.3 s: with concurrency 4, calls overlap; with 1, they do not."""
    stub.latency = 0.3
    run(db, stub, 8, concurrency=4)
    assert stub.max_in_flight > 1
    stub.reset()
    fresh = open_db(tmp_path / "fresh.db")  # no cache hits: every item is a call again
    gold.import_paths(fresh, [REPORTS])
    run(fresh, stub, 8, concurrency=1)
    assert len(stub.requests) == 8 and stub.max_in_flight == 1


def test_eval_run_exits_5_when_nothing_was_predicted_and_prints_coverage_first(
    db, stub, tmp_path, monkeypatch
):
    """Stub: every request answered HTTP 500, through the `evidence eval run` command."""
    stub.script([{"status": 500}] * 50)
    (tmp_path / "evidence.toml").write_text(
        f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\nmax_retries = 0\n'
        "rate_limit_retries = 0\nbackoff = 0.01\nprefilter = 0\n[llm.prices.stub-model]\ninput = 1.0\noutput = 2.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-stub-0000")
    monkeypatch.setenv("EVIDENCE_EVAL_RESULTS", str(tmp_path / "results"))
    args = ["--db", str(tmp_path / "eval.db"), "--config", str(tmp_path / "evidence.toml"), "eval", "run",
            "--input", "title", "--commitment", "19", "--limit", "3", "--no-curve"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == evaluate.EXIT_NOTHING, result.output
    assert result.output.index("coverage (title): 0 of 3 predicted, 3 failed") < result.output.index("metric")


def test_eval_run_on_an_endpoint_that_cannot_answer_stops_with_one_line(db, stub, tmp_path, monkeypatch):
    """The stub is asked for a model it does not serve: `eval run` checks first, sends no chat
    request, stores no run, and says in one line what is wrong (exit 1)."""
    (tmp_path / "evidence.toml").write_text(
        f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "gpt-x"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-stub-0000")
    monkeypatch.setenv("EVIDENCE_EVAL_RESULTS", str(tmp_path / "results"))
    args = ["--db", str(tmp_path / "eval.db"), "--config", str(tmp_path / "evidence.toml"), "eval", "run",
            "--input", "title", "--commitment", "19", "--limit", "3", "--no-curve"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {stub.base_url}: ") and "'gpt-x' is not among" in line
    assert stub.requests == [] and open_db(tmp_path / "eval.db")["eval_runs"].count == 0


def test_eval_run_stopped_by_the_first_answer_exits_1_naming_the_problem(db, stub, tmp_path, monkeypatch):
    """The stub lists the model but answers the first chat request HTTP 401: the rest are not sent,
    the run is stored with what stopped it, and the command ends with that line (exit 5: nothing
    was predicted)."""
    stub.script([{"status": 401}] * 10)
    (tmp_path / "evidence.toml").write_text(
        f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\nmax_retries = 0\n'
        "rate_limit_retries = 0\nbackoff = 0.01\nconcurrency = 1\n[llm.prices.stub-model]\ninput = 1.0\noutput = 2.0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-stub-0000")
    monkeypatch.setenv("EVIDENCE_EVAL_RESULTS", str(tmp_path / "results"))
    args = ["--db", str(tmp_path / "eval.db"), "--config", str(tmp_path / "evidence.toml"), "eval", "run",
            "--input", "title", "--commitment", "19", "--limit", "4", "--no-curve"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == evaluate.EXIT_NOTHING, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"error: {stub.base_url}") and "401" in last
    (run,) = open_db(tmp_path / "eval.db")["eval_runs"].rows
    assert "401" in json.loads(run["metrics"])["run"]["stopped"]
    assert len(stub.requests) == 1
