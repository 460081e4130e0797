"""The regression gate: ``eval/baseline.json`` holds, per key, the sha256 of the dataset the floors were
measured on and a floor per headline metric (``ceilings``: a ceiling per figure where lower is better).

A key is ``backend:mode`` (``learned:stream``) or a plain input mode (``stream``), which means the
``baseline`` backend. A run passes when it is of that backend and mode, made on that very dataset (all of
it), every figure is at or above its floor and at or below its ceiling. ``--update`` moves floors and
ceilings to what a run measured, less (or plus) :data:`MARGIN`; a floor is lowered, a ceiling raised, or
either dropped only with ``allow_regression`` and a reason, and every change is a history entry, so the
history shows each loosening with its reason.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Iterable
from pathlib import Path

from .dataset import MODES
from .evaluate import headline
from .llm import BACKENDS

MARGIN = 0.02  # a new floor sits this far below the measured figure, rounded down to two decimals
PLAIN_BACKEND = "baseline"  # the backend of a key without one
# Figures where lower is better: the gate bounds them with a ceiling, never a floor.
LOWER_IS_BETTER = frozenset(
    {
        "coverage.failed_rate",
        "action.grounding_failure_rate",
        "score.mae",
        "stream.pages_relevant_rate",
        "stream.hard_pages_relevant",
    }
)
BOUNDS = ("floors", "ceilings")


class GateError(ValueError):
    """The gate refuses: a run below its floors, on another dataset, or a floor lowered silently."""


def parse_key(key: str) -> tuple[str, str]:
    """``(backend, mode)`` of a key: ``learned:stream`` is the learned backend's stream mode, a plain
    ``stream`` the baseline's."""
    backend, sep, mode = key.rpartition(":")
    backend = backend if sep else PLAIN_BACKEND
    if backend not in BACKENDS or mode not in MODES:
        raise GateError(
            f"{key!r} is no gate key: BACKEND:MODE or MODE (backend {' / '.join(BACKENDS)}, "
            f"mode {' / '.join(MODES)}; a plain MODE means the {PLAIN_BACKEND} backend)"
        )
    return backend, mode


def run_command(key: str) -> str:
    """The command that makes the run a key checks."""
    backend, mode = parse_key(key)
    curve = " --no-curve" if backend == "learned" else ""
    return f"evidence eval run --backend {backend} --input {mode}{curve}"


def keys(doc: dict, backend: str | None = None) -> list[str]:
    """The keys with floors or ceilings, in the file's order; with ``backend``, that backend's only."""
    out = list(dict.fromkeys(k for bound in BOUNDS for k in doc.get(bound, {})))
    for key in out:
        parse_key(key)
    if backend is not None:
        if backend not in BACKENDS:
            raise GateError(f"unknown backend {backend!r}: use {' or '.join(BACKENDS)}")
        out = [k for k in out if parse_key(k)[0] == backend]
    return out


def load_baseline(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GateError(f"cannot read the floors in {path}: {exc}") from exc
    keys(doc)  # every key parses
    return doc


def write_baseline(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _loosened(before: dict, after: dict) -> list[str]:
    """Floors of ``before`` (a document or history entry) that ``after`` lowers or drops, ceilings it
    raises or drops (a dropped bound is a loosened one)."""
    out = []
    for bound in BOUNDS:
        what = "" if bound == "floors" else "ceiling "
        for key, values in (before.get(bound) or {}).items():
            for metric, value in values.items():
                now = (after.get(bound) or {}).get(key, {}).get(metric)
                if now is None:
                    out.append(f"{key} {metric} {what}dropped (was {value})")
                elif (now < value) if bound == "floors" else (now > value):
                    out.append(f"{key} {metric} {what}{value} -> {now}")
    return out


def _loosening(loosened: list[str]) -> str:
    """What ``loosened`` (from :func:`_loosened`) does, in words: lowers floors, raises ceilings, or both."""
    ceilings = sum(" ceiling " in line for line in loosened)
    return {0: "lowers floors", len(loosened): "raises ceilings"}.get(
        ceilings, "lowers floors and raises ceilings"
    )


def history_problems(doc: dict) -> list[str]:
    """What is wrong with the floors' history: no history, floors (or ceilings) that are not its last
    entry's, an entry that lowers or drops a floor (raises or drops a ceiling) of the one before without
    a reason."""
    history = doc.get("history") or []
    if not history:
        return ["no history: the first floors need an entry too"]
    problems = []
    if history[-1].get("floors") != doc.get("floors"):
        problems.append("the floors are not those of the last history entry")
    if (history[-1].get("ceilings") or {}) != (doc.get("ceilings") or {}):
        problems.append("the ceilings are not those of the last history entry")
    if history[-1].get("datasets", doc.get("datasets")) != doc.get("datasets"):
        problems.append("the pinned datasets are not those of the last history entry")
    for n, (earlier, later) in enumerate(itertools.pairwise(history), start=2):
        loosened = _loosened(earlier, later)
        if loosened and not later.get("reason"):
            problems.append(
                f"history entry {n} {_loosening(loosened)} without a reason: {'; '.join(loosened)}"
            )
    return problems


def _run_problem(key: str, run: dict | None, pinned: str | None = None) -> str | None:
    """Why ``run`` cannot be checked under ``key`` (none, another backend or mode, a sample, another
    dataset), or None."""
    if run is None:
        return f"{key}: no run to check — `{run_command(key)}`"
    backend, mode = parse_key(key)
    if run.get("backend", backend) != backend or run.get("mode", mode) != mode:
        return f"{key}: run {run['id']} is of {run.get('backend')}:{run.get('mode')}"
    if run["config"].get("limit") is not None:
        return f"{key}: run {run['id']} used --limit; the gate needs the whole dataset"
    if pinned and run["dataset_sha"] != pinned:
        return f"{key}: run {run['id']} is on dataset {run['dataset_sha'][:19]}, floors on {pinned[:19]}"
    return None


def check(doc: dict, runs: dict[str, dict], *, backend: str | None = None) -> list[str]:
    """Why the runs (one per key) fail the gate; empty when they pass. ``backend``: its keys only."""
    failures = []
    for key in keys(doc, backend):
        run = runs.get(key)
        if problem := _run_problem(key, run, doc.get("datasets", {}).get(key)):
            failures.append(problem)
        if run is None:
            continue
        figures = _figures(run)
        for metric, floor in doc.get("floors", {}).get(key, {}).items():
            value = figures.get(metric)
            if value is None or value < floor:
                failures.append(f"{key}: {metric} {value} is below its floor {floor}")
        for metric, ceiling in (doc.get("ceilings") or {}).get(key, {}).items():
            value = figures.get(metric)
            if value is None or value > ceiling:
                failures.append(f"{key}: {metric} {value} is above its ceiling {ceiling}")
    return failures


def _figures(run: dict) -> dict:
    return headline(run) | _flat(run)


def _flat(run: dict) -> dict:
    return {
        f"{level}.{k}": v
        for level, values in run["metrics"].items()
        if isinstance(values, dict)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def proposed_floor(value: float, *, signed: bool = False) -> float:
    """A floor :data:`MARGIN` below the measured figure, rounded down to two decimals; not below zero
    unless the figure is ``signed`` (a kappa: below zero is worse than chance)."""
    floor = math.floor((value - MARGIN) * 100 + 1e-9) / 100
    return floor if signed else max(0.0, floor)


def signed(metric: str) -> bool:
    """Whether ``metric`` can be below zero (a kappa)."""
    return "kappa" in metric.rsplit(".", 1)[-1]


def proposed_ceiling(value: float) -> float:
    """A ceiling :data:`MARGIN` above the measured figure, rounded up to two decimals."""
    return math.ceil((value + MARGIN) * 100 - 1e-9) / 100


def update(
    doc: dict, runs: dict[str, dict], *, allow_regression: bool = False, reason: str | None = None,
    today: dt.date | None = None, backend: str | None = None, add: dict[str, Iterable[str]] | None = None,
) -> tuple[dict, list[str]]:  # fmt: skip
    """Floors from the runs (each measured figure less :data:`MARGIN`; a ceiling plus it), the datasets
    re-pinned, a history entry appended. Refuses a lower floor or a higher ceiling unless
    ``allow_regression`` and a ``reason`` are given. ``backend``: update that backend's keys only, keep
    the others. ``add``: per key, metrics to bound from now on (a ceiling for :data:`LOWER_IS_BETTER`)."""
    bounds = {bound: {k: dict(v) for k, v in (doc.get(bound) or {}).items()} for bound in BOUNDS}
    changes = []
    for key, metrics in (add or {}).items():
        parse_key(key)
        for metric in metrics:
            bound = "ceilings" if metric in LOWER_IS_BETTER else "floors"
            if metric in bounds[bound].get(key, {}):
                raise GateError(f"{key}: {metric} already has a {bound[:-1]}")
            bounds[bound].setdefault(key, {})[metric] = None
    selected = keys(bounds, backend)
    if add and backend is not None and set(add) - set(selected):
        raise GateError(
            f"--backend {backend} leaves out keys to add: {', '.join(sorted(set(add) - set(selected)))}"
        )
    for key in selected:
        run = runs.get(key)
        if run is None:
            raise GateError(f"{key}: no run to update the floors from: `{run_command(key)}`")
        if problem := _run_problem(key, run):
            raise GateError(problem.replace("the gate needs", "floors come from"))
        figures = _figures(run)
        for bound in BOUNDS:
            values = bounds[bound].get(key, {})
            for metric, old in values.items():
                if figures.get(metric) is None:
                    raise GateError(f"{key}: run {run['id']} has no figure for {metric}")
                new = (
                    proposed_floor(figures[metric], signed=signed(metric))
                    if bound == "floors"
                    else proposed_ceiling(figures[metric])
                )
                if old is None:
                    changes.append(f"{key} {metric} {bound[:-1]} added at {new} (measured {figures[metric]})")
                elif new != old:
                    changes.append(f"{key} {metric} {'' if bound == 'floors' else 'ceiling '}{old} -> {new}")
                values[metric] = new
    loosened = _loosened(doc, bounds)
    if loosened and not allow_regression:
        raise GateError(
            f"refusing an update that {_loosening(loosened)} ({'; '.join(loosened)}): "
            "pass --allow-regression with --reason"
        )
    if loosened and not reason:
        raise GateError("a lowered floor or raised ceiling needs a reason: --reason TEXT")
    datasets = {**(doc.get("datasets") or {}), **{key: runs[key]["dataset_sha"] for key in selected}}
    if datasets != doc.get("datasets"):
        changes.append("datasets re-pinned")
    if not changes:
        return doc, []
    entry = {
        "date": (today or dt.date.today()).isoformat(),
        "change": "; ".join(changes) + " (from runs " + ", ".join(runs[k]["id"] for k in selected) + ")",
        "floors": bounds["floors"],
        **({"ceilings": bounds["ceilings"]} if bounds["ceilings"] else {}),
        "datasets": datasets,
    }
    if reason:
        entry["reason"] = reason
    new_doc = {**doc, "floors": bounds["floors"], "datasets": datasets, "history": [*doc["history"], entry]}
    if bounds["ceilings"]:
        new_doc["ceilings"] = bounds["ceilings"]
    return new_doc, changes


def latest_runs(db, gate_keys: Iterable[str]) -> dict[str, dict]:
    """The newest stored run on the whole dataset of each key's backend and mode."""
    from .evaluate import load_run

    out = {}
    for key in gate_keys:
        backend, mode = parse_key(key)
        for row in db.query(
            "select id from eval_runs where mode = ? and backend = ? order by id desc", [mode, backend]
        ):
            run = load_run(db, row["id"])
            if run["config"].get("limit") is None:
                out[key] = run
                break
    return out
