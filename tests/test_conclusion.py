"""A model drafts the members' conclusions: real model output replayed from a cassette, and the
check that every action the paragraph mentions is a confirmed one.

The cassette tests/cassettes/conclusion-18.yaml was recorded by tests/record_cassettes.py
(``--only tests/test_conclusion.py``) from SmolLM2-135M-Instruct served by llama-cpp-python on
127.0.0.1:8077, like the other cassettes (see tests/test_llm_cassettes.py). The tiny model's
prose is poor; the recording proves the wire path and that its paragraph is checked against the
confirmed actions before it is used.
"""

from __future__ import annotations

import shutil

import pytest

from classifier import draft as draft_lib
from classifier.conclusion import document_for, model_writer, unconfirmed_mentions
from classifier.pipeline import confirm_cited_actions
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .llm_stub import OpenAIStub
from .test_llm_cassettes import backend, recorder

PARAGRAPHS = [
    {"footnote": 3, "date": "2024-07-04", "item": 10, "text": "On 4 July 2024, the CBSA acted."},
    {"footnote": 4, "date": "2024-12-17", "item": 11, "text": "On 17 December, a Border Plan."},
]


@pytest.mark.parametrize(
    ("paragraph", "wrong"),
    [
        ("Canada acted on 4 July 2024[^3] and on 17 December[^4].", []),
        ("Canada acted on 5 July 2024[^3].", ["the date '5 July 2024'"]),
        ("Canada acted[^9], see also [7] and ^8.", ["footnote [^9]", "footnote [7]", "footnote ^8"]),
        ("On 17 December 2023, Canada acted.", ["the date '17 December 2023'"]),
        ("On 31 February 2024, Canada acted.", ["the date '31 February 2024'"]),
        ("Canada has taken strong action on border management.", []),
    ],
)
def test_mentions_must_be_confirmed_actions(paragraph, wrong):
    assert unconfirmed_mentions(paragraph, PARAGRAPHS) == wrong


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory, report18):
    path = tmp_path_factory.mktemp("conclusion") / "gold.db"
    db = open_db(path)
    confirm_cited_actions(db, report18, 18)
    db.conn.close()
    return path


@pytest.fixture
def db(confirmed, isolated_db):
    shutil.copy(confirmed, isolated_db)
    return open_db(isolated_db)


def test_the_model_drafts_from_readings_and_confirmed_actions(db):
    rubric = rubrics_for(18)[0]
    writer = model_writer(rubric, backend=backend(max_output_tokens=300), db=db)
    # the readings the recording was made with (the request must match it byte for byte,
    # whichever readings the draft would use by default)
    readings = draft_lib.readings_from_scores(db, rubric)
    with recorder.use_cassette("conclusion-18.yaml"):
        (japan,) = draft_lib.draft(db, rubric, "Japan", writer=writer, readings=readings)
    (call,) = db.query("select * from llm_calls")
    assert call["prompt_name"] == "conclusion-v1" and call["outcome"] == "ok"
    # the tiny model's paragraph cites two of Japan's confirmed actions and dates none, so it
    # passes the check and is used (its prose is poor: the check is about what it cites)
    assert japan["conclusion_by"] == "model" and japan["conclusion_flag"] is None
    assert japan["conclusion"].startswith(
        "The member took strong action on border management, resting on [^1]"
    )
    assert unconfirmed_mentions(japan["conclusion"], japan["paragraphs"]) == []
    assert japan["score_sentence"] == "Thus, Japan receives a score of 0."


def stubbed_draft(db, stub):
    """Japan's section with the conclusion from the STUB endpoint (tests/llm_stub.py): it answers
    what the test tells it, to drive the fallback paths over real HTTP."""
    rubric = rubrics_for(18)[0]
    writer = model_writer(rubric, backend=backend(base_url=stub.base_url, max_retries=0), db=db)
    (japan,) = draft_lib.draft(db, rubric, "Japan", writer=writer)
    return japan


def test_a_paragraph_naming_an_unconfirmed_action_is_not_used(db):
    with OpenAIStub() as stub:
        stub.answer({"paragraph": "On 5 July 2024, Japan signed an agreement with Italy[^99]."})
        japan = stubbed_draft(db, stub)
    assert japan["conclusion_by"] == "template"
    assert japan["conclusion_flag"] == (
        "the model's conclusion was not used: smollm2-135m-instruct's paragraph mentions footnote [^99], "
        "the date '5 July 2024', not among the confirmed actions; the template stands in"
    )
    assert japan["conclusion"].startswith("Japan has taken strong action on enhancing border management")
    md = draft_lib.render_draft([japan], rubrics_for(18)[0])
    assert "> the model's conclusion was not used" in md


def test_an_endpoint_that_fails_leaves_the_template_with_the_reason(db):
    with OpenAIStub() as stub:
        stub.script([{"status": 500}])
        japan = stubbed_draft(db, stub)
    assert japan["conclusion_by"] == "template"
    assert japan["conclusion_flag"].startswith(
        "the model's conclusion was not used: smollm2-135m-instruct gave no usable answer (http-error"
    )


def test_the_document_lists_readings_and_actions(db):
    rubric = rubrics_for(18)[0]
    (japan,) = draft_lib.draft(db, rubric, "Japan")
    document = document_for(
        "Japan", rubric, {d: tuple(r) for d, r in japan["readings"].items()}, japan["paragraphs"]
    )
    assert document.startswith("Member: Japan\n\nReadings:\n- border_management (")
    assert "organized_crime (Curbing transnational" in document and ": weak, resting on [^" in document
    assert document.count("\n[^") == len(japan["paragraphs"]) == 6


def test_report_draft_uses_the_configured_endpoint(db, isolated_db, tmp_path, monkeypatch):
    """`evidence report draft --chapter` with `[llm] backend = "openai"`: the STUB endpoint
    (tests/llm_stub.py) answers every member with a paragraph citing footnote 1, which only
    Canada's section (the first) holds; the others fall back to the template, flagged."""
    from typer.testing import CliRunner

    from classifier.cli import app

    monkeypatch.setenv("EVIDENCE_TEST_KEY", "sk-test-DUMMY")
    with OpenAIStub() as stub:
        stub.answer({"paragraph": "Canada has taken strong action on border management[^1]."})
        config = tmp_path / "evidence.toml"
        config.write_text(
            f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\n'
            'api_key_env = "EVIDENCE_TEST_KEY"\nmax_retries = 0\nrate_limit_retries = 0\n',
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            app, ["--config", str(config), "report", "draft", "-c", "18", "--chapter"]
        )
        assert result.exit_code == 0, result.output
        assert len(stub.requests) == 8
    md = result.output
    assert "Canada has taken strong action on border management<sup>1</sup>.\n" in md
    assert (
        md.count("*Note: the model's conclusion was not used: stub-model's paragraph mentions footnote [^1]")
        == 7
    )
    assert db.execute("select count(*) from llm_calls where prompt_name = 'conclusion-v1'").fetchone()[0] == 8
