"""The learned backend's evaluation never judges an item with a model that learned from it: the
folds over the imported gold (real reports, real SQLite), the fold models' training sets, and a
run through `evaluate.run_eval` (real models, no stub)."""

from __future__ import annotations

import json

import pytest

from classifier import dataset, evaluate, gold, learned
from classifier.config import Config
from classifier.heldout import HeldOut, action_key
from classifier.learner import model_name
from classifier.prompts import sha256
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .conftest import REPORTS


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    db = open_db(tmp_path_factory.mktemp("heldout") / "evidence.db")
    gold.import_paths(db, [REPORTS])
    return db


def test_every_cited_action_is_held_out_once_with_its_near_duplicates(db):
    heldout = HeldOut(db, Config())
    rows = gold.evidence_items(db)
    assert len(rows) == 398 and set(heldout.fold_of) == {r["key"] for r in rows}
    assert sorted(set(heldout.fold_of.values())) == [0, 1, 2, 3, 4]
    assert sum(len(heldout.held_out(f)) for f in range(5)) == len(rows)
    groups = dataset.near_duplicate_groups([r["text"] for r in rows])
    fold_of_group: dict[int, set[int]] = {}
    for row, group in zip(rows, groups, strict=True):
        fold_of_group.setdefault(group, set()).add(heldout.fold_of[row["key"]])
    assert all(len(folds) == 1 for folds in fold_of_group.values())
    # an item made from a cited action (any input mode, either commitment) is judged in its fold
    items = dataset.build_dataset(db, rubrics_for(), "title")
    assert all(heldout.fold(i) == heldout.fold_of[action_key(i)] for i in items if i.kind == "positive")


def test_a_fold_model_learns_nothing_from_its_held_out_actions(db):
    """The training set of each fold and commitment holds no held-out text and no near-duplicate
    of one (rubric examples included), while it keeps every other cited action of the commitment."""
    heldout = HeldOut(db, Config())
    for rubric in rubrics_for():
        own = [r for r in heldout.rows if int(r["commitment"]) == rubric.number]
        for fold in range(5):
            held = heldout.held_out(fold)
            training = heldout.training_examples(rubric, fold)
            texts = [e.text for e in training]
            assert not {r["text"] for r in held} & set(texts)
            groups = dataset.near_duplicate_groups([r["text"] for r in held] + texts)
            assert not set(groups[: len(held)]) & set(groups[len(held) :])
            kept = [e for e in training if e.source == "gold"]
            assert len(kept) == sum(1 for r in own if heldout.fold_of[r["key"]] != fold) > 0


@pytest.mark.slow
def test_flipping_an_items_own_gold_leaves_its_prediction_unchanged(db):
    """Change one held-out action's gold (its member): its fold's model is the same model (same
    version, same judgement of the item); every other fold's model of that commitment changes."""
    rubric = rubrics_for(19)[0]
    rows = gold.evidence_items(db)
    target = next(r for r in rows if int(r["commitment"]) == 19 and r["member"] == "Canada")
    flipped = [{**r, "member": "Japan"} if r is target else r for r in rows]
    before, after = HeldOut(db, Config(), rows=rows), HeldOut(db, Config(), rows=flipped)
    fold = before.fold_of[target["key"]]
    assert after.fold_of == before.fold_of
    a, b = before.model(rubric, fold), after.model(rubric, fold)
    assert a.version == b.version
    ja, jb = a.judge(target["text"], 19), b.judge(target["text"], 19)
    assert (ja.relevance, ja.members, ja.dimensions) == (jb.relevance, jb.members, jb.dimensions)
    for other in set(range(5)) - {fold}:
        assert learned.version_of(
            before.training_examples(rubric, other), learned.SETTINGS
        ) != learned.version_of(after.training_examples(rubric, other), learned.SETTINGS)


@pytest.mark.slow
def test_an_evaluation_of_the_learned_backend_is_cross_validated(db, tmp_path):
    """Every item of a learned run was classified by its fold's model, which did not learn from
    its cited action; the record states the protocol and each fold model's version."""
    from classifier.classify import Classifier

    rubrics = rubrics_for()
    classifier = Classifier(db, Config(), backend="learned")
    heldout = HeldOut(db, Config(), prompt=classifier.template.name)
    run = evaluate.run_eval(db, Config(), rubrics, mode="paragraph", limit=40, classifier=classifier,
                            heldout=heldout, results_dir=tmp_path)  # fmt: skip
    assert run["backend"] == "learned" and run["config"]["protocol"].startswith(
        "5-fold grouped cross-validation"
    )
    assert run["metrics"]["heldout"]["protocol"] == run["config"]["protocol"]
    assert run["metrics"]["run"]["calls"] == 40
    items = dataset.sample_items(dataset.build_dataset(db, rubrics, "paragraph"), 40)
    by_number = {r.number: r for r in rubrics}
    for item in items:
        fold = heldout.fold(item)
        model = heldout.model(by_number[item.commitment], fold)
        stored = db.execute(
            "select model from classifications where content_sha = ? and commitment = ? order by id desc",
            [sha256(item.text), item.commitment],
        ).fetchone()[0]
        assert stored == model_name(model.version)
        assert run["metrics"]["heldout"]["models"][f"{fold}:{item.commitment}"]["version"] == model.version
        if item.kind in ("positive", "out_of_period"):
            held = {r["key"] for r in heldout.held_out(fold)}
            assert action_key(item) in held
            assert item.text not in {
                e.text for e in heldout.training_examples(by_number[item.commitment], fold)
            }
    # the same evaluation again is cache hits: the fold models' versions key the classifications
    again = evaluate.run_eval(db, Config(), rubrics, mode="paragraph", limit=40, classifier=classifier,
                              heldout=heldout, results_dir=tmp_path)  # fmt: skip
    assert again["metrics"]["run"]["cache_hits"] == 40 and again["metrics"]["run"]["calls"] == 0
    saved = json.loads((tmp_path / f"{run['id']}.json").read_text(encoding="utf-8"))
    assert saved["config"]["protocol"] == run["config"]["protocol"]


@pytest.mark.slow
def test_eval_run_says_which_backend_and_protocol_by_default(tmp_path, monkeypatch):
    """No backend configured: `eval run` uses the learned model, says so, and prints the protocol
    above the figures; --no-curve leaves the curve out of the record."""
    from typer.testing import CliRunner

    from classifier.cli import app

    monkeypatch.setenv("EVIDENCE_EVAL_RESULTS", str(tmp_path / "results"))
    runner = CliRunner()
    assert runner.invoke(app, ["gold", "import", str(REPORTS)]).exit_code == 0
    result = runner.invoke(app, ["eval", "run", "--input", "title", "-c", "19", "--limit", "6", "--no-curve"])
    assert result.exit_code == 0, result.output
    assert "backend: learned" in result.output and "no model endpoint configured" in result.output
    assert "protocol of every figure below: 5-fold grouped cross-validation" in result.output
    assert result.output.index("protocol of every figure") < result.output.index("1. action")
    assert "learning curve" not in result.output
    run = json.loads(next((tmp_path / "results").glob("*-title-learned.json")).read_text(encoding="utf-8"))
    assert "learning_curve" not in run["metrics"] and run["metrics"]["heldout"]["folds"] == 5
