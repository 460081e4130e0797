"""The regression gate on eval/baseline.json: pinned datasets, floors, and floors never lowered silently."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from classifier import gate

from .conftest import ROOT

BASELINE = ROOT / "eval" / "baseline.json"


def _doc(floor: float = 0.8) -> dict:
    floors = {"title": {"action.relevance_recall": floor}}
    datasets = {"title": "sha256:aaa"}
    return {"floors": floors, "datasets": datasets, "history": [{"date": "2026-11-23", "change": "first",
            "floors": json.loads(json.dumps(floors)), "datasets": dict(datasets)}]}  # fmt: skip


def _run(recall: float | None, *, sha: str = "sha256:aaa", limit: int | None = None) -> dict:
    return {"id": "20261202T100000-title-baseline", "dataset_sha": sha, "config": {"limit": limit},
            "metrics": {"action": {"relevance_recall": recall}}}  # fmt: skip


def test_the_shipped_floors_have_an_honest_history_and_pinned_datasets():
    doc = gate.load_baseline(BASELINE)
    assert gate.history_problems(doc) == []
    assert set(doc["datasets"]) == set(doc["floors"])
    assert all(sha.startswith("sha256:") and len(sha) == 71 for sha in doc["datasets"].values())


def test_a_floor_lowered_in_place_of_the_only_history_entry_is_caught():
    """One history entry: the old test's pairwise loop never ran, so this passed. Now the floors must
    be the last entry's, and an entry lowering (or dropping) a floor needs a reason."""
    doc = _doc()
    doc["floors"] = {"title": {"action.relevance_recall": 0.7}}
    assert gate.history_problems(doc) == ["the floors are not those of the last history entry"]
    lowered = _doc()
    lowered["history"].append({"date": "2026-12-02", "change": "x", "datasets": {"title": "sha256:aaa"},
                               "floors": {"title": {"action.relevance_recall": 0.7}}})  # fmt: skip
    lowered["floors"] = lowered["history"][-1]["floors"]
    assert gate.history_problems(lowered) == [
        "history entry 2 lowers floors without a reason: title action.relevance_recall 0.8 -> 0.7"
    ]
    lowered["history"][-1]["floors"] = lowered["floors"] = {"title": {}}  # dropping a floor is lowering it
    assert "dropped (was 0.8)" in gate.history_problems(lowered)[0]
    lowered["history"][-1]["reason"] = "the dataset gained hard negatives"
    assert gate.history_problems(lowered) == []


def test_update_raises_floors_and_refuses_to_lower_one_without_allow_regression():
    doc = _doc()
    raised, changes = gate.update(doc, {"title": _run(0.9)}, today=dt.date(2026, 12, 2))
    assert raised["floors"]["title"]["action.relevance_recall"] == 0.88  # 0.9 less the margin
    assert changes and raised["history"][-1]["date"] == "2026-12-02"
    assert gate.history_problems(raised) == []
    with pytest.raises(gate.GateError, match=r"refusing to lower floors .*--allow-regression"):
        gate.update(doc, {"title": _run(0.7)})
    with pytest.raises(gate.GateError, match="needs a reason"):
        gate.update(doc, {"title": _run(0.7)}, allow_regression=True)
    lowered, _ = gate.update(doc, {"title": _run(0.7)}, allow_regression=True, reason="harder dataset")
    assert lowered["floors"]["title"]["action.relevance_recall"] == 0.68
    assert lowered["history"][-1]["reason"] == "harder dataset" and gate.history_problems(lowered) == []
    assert gate.update(raised, {"title": _run(0.9)}) == (raised, [])  # nothing measured differently
    with pytest.raises(gate.GateError, match="--limit"):
        gate.update(doc, {"title": _run(0.9, limit=40)})


def test_check_fails_below_a_floor_on_another_dataset_or_on_a_sample():
    doc = _doc()
    assert gate.check(doc, {"title": _run(0.81)}) == []
    assert gate.check(doc, {"title": _run(0.79)}) == [
        "title: action.relevance_recall 0.79 is below its floor 0.8"
    ]
    assert gate.check(doc, {"title": _run(None)})  # no figure is not a pass
    assert "floors on sha256:aaa" in gate.check(doc, {"title": _run(0.9, sha="sha256:bbb")})[0]
    assert "--limit" in gate.check(doc, {"title": _run(0.9, limit=10)})[0]
    assert gate.check(doc, {}) == ["title: no run to check"]


def test_the_gate_command_checks_the_newest_run_and_refuses_a_silent_lowering(tmp_path):
    """`evidence eval gate` on a database holding one stored run (its metrics written here)."""
    from typer.testing import CliRunner

    from classifier.cli import app
    from classifier.store import open_db

    path = tmp_path / "baseline.json"
    gate.write_baseline(path, _doc())
    db_path = tmp_path / "eval.db"
    db = open_db(db_path)
    run = _run(0.75)
    db["eval_runs"].insert({"id": run["id"], "mode": "title", "backend": "baseline", "dataset_sha": run["dataset_sha"],
                            "config": json.dumps(run["config"]), "metrics": json.dumps(run["metrics"])})  # fmt: skip
    runner = CliRunner()
    base = ["--db", str(db_path), "eval", "gate", "--baseline", str(path)]
    result = runner.invoke(app, base)
    assert result.exit_code == 1 and "relevance_recall 0.75 is below its floor 0.8" in result.output
    before = path.read_text(encoding="utf-8")
    result = runner.invoke(app, [*base, "--update"])
    assert result.exit_code == 1 and "refusing to lower floors" in result.output
    assert path.read_text(encoding="utf-8") == before  # nothing written
    result = runner.invoke(app, [*base, "--update", "--allow-regression", "--reason", "harder dataset"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, base).exit_code == 0  # 0.75 meets the new floor 0.73
    assert json.loads(path.read_text(encoding="utf-8"))["history"][-1]["reason"] == "harder dataset"
