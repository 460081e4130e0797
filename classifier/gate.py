"""The regression gate: ``eval/baseline.json`` holds, per input mode, the sha256 of the dataset the
floors were measured on and a floor per headline metric. A run passes when it was made on that very
dataset (all of it) and every figure is at or above its floor. ``--update`` raises floors to what a run
measured; a floor is lowered (or dropped) only with ``allow_regression`` and a reason, and every change is
a history entry, so the history shows each lowering with its reason.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from pathlib import Path

from .evaluate import headline

MARGIN = 0.02  # a new floor sits this far below the measured figure, rounded down to two decimals


class GateError(ValueError):
    """The gate refuses: a run below its floors, on another dataset, or a floor lowered silently."""


def load_baseline(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GateError(f"cannot read the floors in {path}: {exc}") from exc


def write_baseline(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _lowered(before: dict, after: dict) -> list[str]:
    """Floors of ``before`` that ``after`` lowers or drops (a dropped floor is a lowered one)."""
    out = []
    for mode, floors in before.items():
        for metric, value in floors.items():
            now = after.get(mode, {}).get(metric)
            if now is None:
                out.append(f"{mode} {metric} dropped (was {value})")
            elif now < value:
                out.append(f"{mode} {metric} {value} -> {now}")
    return out


def history_problems(doc: dict) -> list[str]:
    """What is wrong with the floors' history: no history, floors that are not its last entry, an entry
    that lowers or drops a floor of the one before without a reason."""
    history = doc.get("history") or []
    if not history:
        return ["no history: the first floors need an entry too"]
    problems = []
    if history[-1].get("floors") != doc.get("floors"):
        problems.append("the floors are not those of the last history entry")
    if history[-1].get("datasets", doc.get("datasets")) != doc.get("datasets"):
        problems.append("the pinned datasets are not those of the last history entry")
    for n, (earlier, later) in enumerate(itertools.pairwise(history), start=2):
        lowered = _lowered(earlier.get("floors", {}), later.get("floors", {}))
        if lowered and not later.get("reason"):
            problems.append(f"history entry {n} lowers floors without a reason: {'; '.join(lowered)}")
    return problems


def check(doc: dict, runs: dict[str, dict]) -> list[str]:
    """Why the runs (one per input mode) fail the gate; empty when they pass."""
    failures = []
    for mode, floors in doc["floors"].items():
        run = runs.get(mode)
        if run is None:
            failures.append(f"{mode}: no run to check")
            continue
        if run["config"].get("limit") is not None:
            failures.append(f"{mode}: run {run['id']} used --limit; the gate needs the whole dataset")
        pinned = doc.get("datasets", {}).get(mode)
        if pinned and run["dataset_sha"] != pinned:
            failures.append(
                f"{mode}: run {run['id']} is on dataset {run['dataset_sha'][:19]}, floors on {pinned[:19]}"
            )
        figures = headline(run) | _flat(run)
        for metric, floor in floors.items():
            value = figures.get(metric)
            if value is None or value < floor:
                failures.append(f"{mode}: {metric} {value} is below its floor {floor}")
    return failures


def _flat(run: dict) -> dict:
    return {
        f"{level}.{k}": v
        for level, values in run["metrics"].items()
        if isinstance(values, dict)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def proposed_floor(value: float) -> float:
    return max(0.0, math.floor((value - MARGIN) * 100 + 1e-9) / 100)


def update(
    doc: dict, runs: dict[str, dict], *, allow_regression: bool = False, reason: str | None = None,
    today: dt.date | None = None,
) -> tuple[dict, list[str]]:  # fmt: skip
    """Floors from the runs (each measured figure less :data:`MARGIN`), the datasets re-pinned, a history
    entry appended. Refuses a lower floor unless ``allow_regression`` and a ``reason`` are given."""
    floors = {mode: dict(values) for mode, values in doc["floors"].items()}
    changes = []
    for mode, values in floors.items():
        run = runs.get(mode)
        if run is None:
            raise GateError(f"{mode}: no run to update the floors from: `evidence eval run --input {mode}`")
        if run["config"].get("limit") is not None:
            raise GateError(f"{mode}: run {run['id']} used --limit; floors come from the whole dataset")
        figures = headline(run) | _flat(run)
        for metric, old in values.items():
            if figures.get(metric) is None:
                raise GateError(f"{mode}: run {run['id']} has no figure for {metric}")
            new = proposed_floor(figures[metric])
            if new != old:
                values[metric] = new
                changes.append(f"{mode} {metric} {old} -> {new}")
    lowered = _lowered(doc["floors"], floors)
    if lowered and not allow_regression:
        raise GateError(
            f"refusing to lower floors ({'; '.join(lowered)}): pass --allow-regression with --reason"
        )
    if lowered and not reason:
        raise GateError("a lowered floor needs a reason: --reason TEXT")
    datasets = {mode: runs[mode]["dataset_sha"] for mode in floors}
    if datasets != doc.get("datasets"):
        changes.append("datasets re-pinned")
    if not changes:
        return doc, []
    entry = {
        "date": (today or dt.date.today()).isoformat(),
        "change": "; ".join(changes) + " (from runs " + ", ".join(runs[m]["id"] for m in floors) + ")",
        "floors": floors,
        "datasets": datasets,
    }
    if reason:
        entry["reason"] = reason
    return {**doc, "floors": floors, "datasets": datasets, "history": [*doc["history"], entry]}, changes


def latest_runs(db, modes, *, backend: str = "baseline") -> dict[str, dict]:
    """The newest stored run of ``backend`` on the whole dataset of each mode."""
    from .evaluate import load_run

    out = {}
    for mode in modes:
        for row in db.query(
            "select id from eval_runs where mode = ? and backend = ? order by id desc", [mode, backend]
        ):
            run = load_run(db, row["id"])
            if run["config"].get("limit") is None:
                out[mode] = run
                break
    return out
