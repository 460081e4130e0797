"""The regression gate on eval/baseline.json: pinned datasets, floors, and floors never lowered silently."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from classifier import gate
from classifier.cli import app

from .conftest import ROOT

BASELINE = ROOT / "eval" / "baseline.json"
runner = CliRunner()


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
    assert set(doc["datasets"]) == set(doc["floors"]) | set(doc.get("ceilings", {}))
    assert all(sha.startswith("sha256:") and len(sha) == 71 for sha in doc["datasets"].values())
    # the default backend has floors of its own, on the same datasets as the baseline's
    assert {"learned:stream", "learned:paragraph", "learned:title"} <= set(doc["floors"])
    assert all(
        doc["datasets"][f"learned:{mode}"] == doc["datasets"][mode] for mode in ("stream", "paragraph")
    )
    assert doc["ceilings"]["learned:stream"] == {"stream.pages_relevant_rate": 0.05}


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
    with pytest.raises(gate.GateError, match=r"refusing an update that lowers floors .*--allow-regression"):
        gate.update(doc, {"title": _run(0.7)})  # "refusing an update that lowers floors"
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
    assert gate.check(doc, {}) == [
        "title: no run to check — `evidence eval run --backend baseline --input title`"
    ]


def _gate_command(tmp_path, doc: dict, run: dict) -> tuple:
    """A floors file holding ``doc`` and a database holding ``run`` (a baseline title run, its metrics
    written here): the file's path and the `evidence eval gate` arguments that check them."""
    from classifier.store import open_db

    path = tmp_path / "baseline.json"
    gate.write_baseline(path, doc)
    db_path = tmp_path / "eval.db"
    open_db(db_path)["eval_runs"].insert(
        {"id": run["id"], "mode": "title", "backend": "baseline", "dataset_sha": run["dataset_sha"],
         "config": json.dumps(run["config"]), "metrics": json.dumps(run["metrics"])}
    )  # fmt: skip
    return path, ["--db", str(db_path), "eval", "gate", "--baseline", str(path)]


def test_the_gate_command_checks_the_newest_run_and_refuses_a_silent_lowering(tmp_path):
    """`evidence eval gate` on a database holding one stored run (its metrics written here)."""
    path, base = _gate_command(tmp_path, _doc(), _run(0.75))
    result = runner.invoke(app, base)
    assert result.exit_code == 1 and "relevance_recall 0.75 is below its floor 0.8" in result.output
    before = path.read_text(encoding="utf-8")
    result = runner.invoke(app, [*base, "--update"])
    assert result.exit_code == 1 and "refusing an update that lowers floors" in result.output
    assert path.read_text(encoding="utf-8") == before  # nothing written
    result = runner.invoke(app, [*base, "--update", "--allow-regression", "--reason", "harder dataset"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, base).exit_code == 0  # 0.75 meets the new floor 0.73
    assert json.loads(path.read_text(encoding="utf-8"))["history"][-1]["reason"] == "harder dataset"


def _learned_doc() -> dict:
    """Floors for the learned backend's stream beside the baseline's title, and a ceiling."""
    floors = {"title": {"action.relevance_recall": 0.8}, "learned:stream": {"stream.pr_auc": 0.9}}
    ceilings = {"learned:stream": {"stream.pages_relevant_rate": 0.05}}
    datasets = {"title": "sha256:aaa", "learned:stream": "sha256:sss"}
    entry = {"date": "2026-12-03", "change": "first", "floors": json.loads(json.dumps(floors)),
             "ceilings": json.loads(json.dumps(ceilings)), "datasets": dict(datasets)}  # fmt: skip
    return {"floors": floors, "ceilings": ceilings, "datasets": datasets, "history": [entry]}


def _learned_run(pr_auc: float | None, rate: float | None = 0.02, *, backend: str = "learned",
                 mode: str = "stream", sha: str = "sha256:sss") -> dict:  # fmt: skip
    return {"id": f"20261203T100000-{mode}-{backend}", "backend": backend, "mode": mode, "dataset_sha": sha,
            "config": {"limit": None},
            "metrics": {"stream": {"pr_auc": pr_auc, "pages_relevant_rate": rate}}}  # fmt: skip


def test_a_key_is_backend_and_mode_and_a_plain_mode_means_the_baseline():
    assert gate.parse_key("learned:stream") == ("learned", "stream")
    assert gate.parse_key("learned:paragraph") == ("learned", "paragraph")
    assert gate.parse_key("stream") == ("baseline", "stream")
    assert gate.parse_key("baseline:title") == ("baseline", "title")
    for bad in ("learned:", "streams", "nobackend:stream", ":stream", "learned:stream:x"):
        with pytest.raises(gate.GateError, match="no gate key"):
            gate.parse_key(bad)
    assert gate.keys(_learned_doc()) == ["title", "learned:stream"]
    assert gate.keys(_learned_doc(), "learned") == ["learned:stream"]
    assert gate.keys(_learned_doc(), "baseline") == ["title"]
    assert (
        gate.run_command("learned:stream") == "evidence eval run --backend learned --input stream --no-curve"
    )
    assert gate.run_command("paragraph") == "evidence eval run --backend baseline --input paragraph"


def test_latest_runs_finds_each_keys_backend_and_mode_on_the_whole_dataset():
    from classifier.store import open_db

    db = open_db()
    for run_id, mode, backend, limit in [
        ("20261203T100000-stream-baseline", "stream", "baseline", None),
        ("20261203T110000-stream-learned", "stream", "learned", None),
        ("20261203T120000-stream-learned", "stream", "learned", 40),  # newer, but a sample
        ("20261203T130000-title-learned", "title", "learned", None),
    ]:
        db["eval_runs"].insert({"id": run_id, "mode": mode, "backend": backend, "dataset_sha": "sha256:sss",
                                "config": json.dumps({"limit": limit}), "metrics": "{}"})  # fmt: skip
    runs = gate.latest_runs(db, ["stream", "learned:stream", "learned:paragraph"])
    assert {k: r["id"] for k, r in runs.items()} == {
        "stream": "20261203T100000-stream-baseline",
        "learned:stream": "20261203T110000-stream-learned",
    }


def test_check_bounds_a_learned_run_by_its_floors_and_ceilings():
    doc = _learned_doc()
    runs = {"title": _run(0.9), "learned:stream": _learned_run(0.95)}
    assert gate.check(doc, runs) == []
    assert gate.check(doc, {**runs, "learned:stream": _learned_run(0.85)}) == [
        "learned:stream: stream.pr_auc 0.85 is below its floor 0.9"
    ]
    assert gate.check(doc, {**runs, "learned:stream": _learned_run(0.95, 0.07)}) == [
        "learned:stream: stream.pages_relevant_rate 0.07 is above its ceiling 0.05"
    ]
    assert gate.check(doc, {**runs, "learned:stream": _learned_run(0.95, None)})  # no figure is no pass
    # a baseline run is not the learned backend's, whatever its figures
    assert (
        "is of baseline:stream"
        in gate.check(doc, {**runs, "learned:stream": _learned_run(0.95, backend="baseline")})[0]
    )
    assert gate.check(doc, {"title": _run(0.9)}) == [
        "learned:stream: no run to check — `evidence eval run --backend learned --input stream --no-curve`"
    ]
    assert gate.check(doc, {"title": _run(0.9)}, backend="baseline") == []  # only the baseline's keys


def test_update_refuses_to_lower_a_learned_floor_or_raise_its_ceiling_silently():
    doc = _learned_doc()
    runs = {"title": _run(0.82), "learned:stream": _learned_run(0.99, 0.0)}
    raised, changes = gate.update(doc, runs, today=dt.date(2026, 12, 3))
    assert raised["floors"]["learned:stream"] == {"stream.pr_auc": 0.97}
    assert raised["ceilings"]["learned:stream"] == {"stream.pages_relevant_rate": 0.02}  # 0.0 plus the margin
    assert "learned:stream stream.pages_relevant_rate ceiling 0.05 -> 0.02" in changes
    assert gate.history_problems(raised) == []
    with pytest.raises(gate.GateError, match=r"lowers floors \(learned:stream stream.pr_auc 0.9 -> 0.8\)"):
        gate.update(doc, {**runs, "learned:stream": _learned_run(0.82, 0.0)})
    with pytest.raises(
        gate.GateError, match=r"raises ceilings \(learned:stream stream.pages_relevant_rate ceiling"
    ):
        gate.update(doc, {**runs, "learned:stream": _learned_run(0.99, 0.1)})
    with pytest.raises(gate.GateError, match="needs a reason"):
        gate.update(doc, {**runs, "learned:stream": _learned_run(0.82)}, allow_regression=True)
    lowered, _ = gate.update(doc, {**runs, "learned:stream": _learned_run(0.82, 0.1)}, allow_regression=True,
                             reason="a harder stream")  # fmt: skip
    assert lowered["floors"]["learned:stream"]["stream.pr_auc"] == 0.8
    assert lowered["ceilings"]["learned:stream"]["stream.pages_relevant_rate"] == 0.12
    assert gate.history_problems(lowered) == []
    # --backend learned: the baseline's floors and pin stay as they are, with no baseline run at hand
    only, _ = gate.update(doc, {"learned:stream": _learned_run(0.99, sha="sha256:ttt")}, backend="learned")
    assert only["floors"]["title"] == doc["floors"]["title"] and only["datasets"]["title"] == "sha256:aaa"
    assert only["datasets"]["learned:stream"] == "sha256:ttt"
    with pytest.raises(gate.GateError, match="learned:stream: no run to update the floors from"):
        gate.update(doc, {"title": _run(0.9)})


def test_a_dropped_learned_floor_or_ceiling_is_caught():
    doc = _learned_doc()
    dropped = json.loads(json.dumps(doc))
    dropped["history"].append(
        {**json.loads(json.dumps(doc["history"][0])), "date": "2026-12-04", "change": "x"}
    )
    del dropped["history"][-1]["floors"]["learned:stream"]
    dropped["floors"] = dropped["history"][-1]["floors"]
    assert gate.history_problems(dropped) == [
        "history entry 2 lowers floors without a reason: learned:stream stream.pr_auc dropped (was 0.9)"
    ]
    no_ceiling = json.loads(json.dumps(doc))
    no_ceiling["history"].append({**json.loads(json.dumps(doc["history"][0])), "ceilings": {}})
    no_ceiling["ceilings"] = {}
    assert gate.history_problems(no_ceiling) == [
        "history entry 2 raises ceilings without a reason: "
        "learned:stream stream.pages_relevant_rate ceiling dropped (was 0.05)"
    ]
    # a ceiling taken out of the file but not out of the history is caught too
    edited = json.loads(json.dumps(doc))
    edited["ceilings"] = {}
    assert gate.history_problems(edited) == ["the ceilings are not those of the last history entry"]
    dropped["history"][-1]["reason"] = "the stream mode is retired"
    assert gate.history_problems(dropped) == []


def test_adding_a_learned_floor_measures_it_and_a_lower_is_better_figure_gets_a_ceiling():
    doc = _doc()
    runs = {"title": _run(0.82), "learned:stream": _learned_run(0.992, 0.0246)}
    add = {"learned:stream": ["stream.pr_auc", "stream.pages_relevant_rate"]}
    new, changes = gate.update(doc, runs, add=add, reason="floors for the learned backend")
    assert changes == [
        "learned:stream stream.pr_auc floor added at 0.97 (measured 0.992)",
        "learned:stream stream.pages_relevant_rate ceiling added at 0.05 (measured 0.0246)",
        "datasets re-pinned",
    ]
    assert new["floors"]["learned:stream"] == {"stream.pr_auc": 0.97}
    assert new["ceilings"] == {"learned:stream": {"stream.pages_relevant_rate": 0.05}}
    assert new["datasets"]["learned:stream"] == "sha256:sss" and new["history"][-1]["reason"]
    assert gate.history_problems(new) == [] and gate.check(new, runs) == []
    with pytest.raises(gate.GateError, match="already has a floor"):
        gate.update(new, runs, add={"learned:stream": ["stream.pr_auc"]})
    # a kappa's floor may be below zero; a share's is not
    assert gate.proposed_floor(-0.0155, signed=True) == -0.04 and gate.proposed_floor(0.01) == 0.0


def test_the_gate_command_says_which_command_makes_a_missing_learned_run(tmp_path):
    _, base = _gate_command(tmp_path, _learned_doc(), _run(0.9))
    result = runner.invoke(app, base)
    assert result.exit_code == 1
    assert (
        "learned:stream: no run to check — `evidence eval run --backend learned --input stream --no-curve`"
        in (result.output)
    )
    result = runner.invoke(app, [*base, "--backend", "baseline"])
    assert result.exit_code == 0 and "gate passed: title run" in result.output
