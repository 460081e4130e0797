"""The learning curve in evaluation runs: kept under the sha256 of its inputs, stored in the run
record, shown in `eval report` with its plot and a plain verdict."""

from __future__ import annotations

import pytest

from classifier import evaluate, evaluation_report, gold, learning
from classifier.classify import Classifier
from classifier.config import Config
from classifier.dataset import REFERENCE_LABELS
from classifier.rubric import rubrics_for
from classifier.store import data_file, open_db

from .conftest import REPORTS


def test_a_measured_curve_is_kept_and_reused_for_the_same_inputs(tmp_path, monkeypatch):
    """learning_curve is replaced by a stub (named so: it counts calls and returns a fixed curve);
    what is tested is the keeping: same inputs, one measurement; other settings, another."""
    calls = []

    def stub_learning_curve(rubrics, actions, pages, *, steps, seeds, n_folds):
        calls.append((len(actions), len(pages), list(steps), list(seeds), n_folds))
        return {"protocol": "stub", "steps": list(steps), "commitments": {}, "verdict": "stub"}

    monkeypatch.setattr(learning, "learning_curve", stub_learning_curve)
    rubrics = rubrics_for()
    assert learning.evaluation_curve(rubrics, cache=tmp_path, measure=False) is None
    first = learning.evaluation_curve(rubrics, cache=tmp_path)
    again = learning.evaluation_curve(rubrics, cache=tmp_path)
    assert first == again and len(calls) == 1
    assert calls[0] == (398, calls[0][1], [0, 25, 50, 100, 200], [0], 5) and calls[0][1] > 200
    assert (
        first["inputs_sha256"].startswith("sha256:")
        and len(list(tmp_path.glob("learning-curve-*.json"))) == 1
    )
    learning.evaluation_curve(rubrics, cache=tmp_path, random_orders=2)
    assert len(calls) == 2 and calls[1][3] == [0, 1]
    only19 = learning.evaluation_curve(rubrics_for(19), cache=tmp_path)
    assert len(calls) == 3 and calls[2][0] == 200 and only19["inputs_sha256"] != first["inputs_sha256"]


@pytest.mark.slow
def test_the_report_shows_the_curve_its_plot_and_verdict(tmp_path):
    """A real (small) curve: a subset of the reference-labelled actions and the real pages, two
    folds, steps 0/10/20; stored in a real run and rendered in both formats."""
    rubrics = rubrics_for()
    actions = learning.reference_actions(data_file(*REFERENCE_LABELS))
    actions = [a for a in actions if a["commitment"] == 18][:40] + [
        a for a in actions if a["commitment"] == 19
    ][:40]
    pages = learning.page_texts(data_file("eval", "data", "realpages"), cache=tmp_path / "pages.json")[:30]
    curve = learning.learning_curve(rubrics, actions, pages, steps=(0, 10, 20), seeds=(0,), n_folds=2)
    assert set(curve["commitments"]) == {"18", "19"}
    assert "uncertainty-first" in curve["verdict"] and "random" in curve["verdict"]
    db = open_db(tmp_path / "evidence.db")
    gold.import_paths(db, [REPORTS])
    run = evaluate.run_eval(db, Config(), rubrics, mode="title", limit=8, curve=curve,
                            classifier=Classifier(db, Config(), backend="baseline"))  # fmt: skip
    stored = evaluate.load_run(db, run["id"])
    assert stored["metrics"]["learning_curve"]["verdict"] == curve["verdict"]
    assert stored["config"]["protocol"] == evaluate.NOT_TRAINED
    table = evaluation_report.side_by_side([stored])
    assert "learning curve of the learned model" in table and f"verdict: {curve['verdict']}" in table
    assert "protocol of every figure below: " + evaluate.NOT_TRAINED in table.splitlines()[1]
    for fmt in ("md", "html"):
        out = evaluation_report.write_report(stored, tmp_path / "report", fmt)
        text = out.read_text(encoding="utf-8")
        assert f"{run['id']}-curve.png" in text and "verdict:" in text
    assert (tmp_path / "report" / f"{run['id']}-curve.png").stat().st_size > 5000
