"""Evaluation runs: classify the dataset (:mod:`.dataset`) for one input mode, compute the
metrics (:mod:`.metrics`) after the predictions are made, store the run and its predictions;
read runs back, their headline figures, and compare two runs item by item.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from .classify import Classifier, text_item
from .config import Config
from .dataset import (
    FLATTERY,
    base_rate,
    build_dataset,
    dataset_sha,
    reference_labels,
    sample_items,
    without_gold,
)
from .dates import new_run_id
from .errors import EndpointUnusable, NotFound
from .metrics import (
    action_metrics,
    dimension_metrics,
    reference_dimension_metrics,
    score_metrics,
    stream_metrics,
    strongest_labels,
)
from .prefilter import evaluation_figures
from .rubric import Rubric

if TYPE_CHECKING:
    from .heldout import HeldOut


def _prediction(row: dict | None) -> dict | None:
    if row is None or row["status"] != "ok":
        return None
    dims = json.loads(row["dimensions"])
    return {
        "relevant": bool(row["relevant"]),
        "members": json.loads(row["members"]),
        "action_date": row["action_date"],
        "labels": {k: v["label"] for k, v in dims.items()},
        "flags": json.loads(row["flags"]),
        "summary": row["summary"],
        "confidence": row["confidence"],
        "call_id": row["call_id"],
    }


def _failure(row: dict | None) -> str | None:
    """Why an item has no prediction (its outcome, e.g. ``invalid-output``), or None."""
    if row is None:
        return "skipped"  # a budget stopped it before any call
    if row["status"] == "ok":
        return None
    return (row["error"] or "failed").split(":")[0].strip() or "failed"


def coverage(items: list, rows: list[dict | None]) -> dict:
    """Predicted, failed and failures by reason: the first thing a report says."""
    reasons: dict[str, int] = {}
    for row in rows:
        if (why := _failure(row)) is not None:
            reasons[why] = reasons.get(why, 0) + 1
    failed = sum(reasons.values())
    return {
        "items": len(items),
        "predicted": len(items) - failed,
        "failed": failed,
        "failed_rate": round(failed / len(items), 4) if items else None,
        "by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "failures_counted_as": "misses (not relevant, no member, no date, labels none)",
    }


# The protocol of a backend that learns nothing from the gold (the baseline, a model endpoint).
NOT_TRAINED = (
    "no training on the gold: every item judged by the backend as is, given the rubric without its gold"
)
_COUNTS = ("calls", "cached", "tokens_in", "tokens_out", "cost")


def _totals(classifiers: list[Classifier]) -> dict[int, tuple]:
    return {id(c): tuple(getattr(c.summary, k) for k in _COUNTS) for c in classifiers}


def _spent(before: dict[int, tuple], classifiers: list[Classifier]) -> dict[str, Any]:
    """Calls, cache hits, tokens and cost since ``before`` (a :func:`_totals`), over every classifier
    (a classifier made since counts from zero)."""
    now = _totals(classifiers)
    zero = (0,) * len(_COUNTS)
    sums = [sum(now[c][n] - before.get(c, zero)[n] for c in now) for n in range(len(_COUNTS))]
    return {"calls": sums[0], "cache_hits": sums[1], "tokens_in": sums[2], "tokens_out": sums[3],
            "cost": round(sums[4], 6)}  # fmt: skip


def run_eval(
    db: sqlite_utils.Database,
    config: Config,
    rubrics: list[Rubric],
    *,
    mode: str,
    backend: str | None = None,
    model: str | None = None,
    prompt: str | None = None,
    commitment: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    results_dir: Path | None = None,
    classifier: Classifier | None = None,
    heldout: HeldOut | None = None,
    curve: dict | None = None,
) -> dict:
    """Classify the dataset for one input mode, compute the metrics, store and return the run.
    ``limit`` samples that many items across commitments and positives / negatives (seeded).

    The learned backend is cross-validated (:mod:`.heldout`): each item is judged by a model that
    never learned from its cited action; ``heldout`` holds the fold models (made here if not
    given; share one between the modes of an evaluation). ``curve`` is a learning curve
    (:func:`learning_curve`) to keep in the run record."""
    from .heldout import HeldOut

    items = build_dataset(db, rubrics, mode, commitment=commitment)
    full_sha = dataset_sha(items)
    if limit is not None:
        items = sample_items(items, limit, seed=seed)
    classifier = classifier or Classifier(db, config, backend=backend, model=model, prompt=prompt)
    # an endpoint that cannot answer stops the run here, with one line, before anything is sent
    if items and (problem := classifier.backend.check_now()):
        raise EndpointUnusable(problem)
    if classifier.backend.learns_from_gold and heldout is None:
        heldout = HeldOut(db, config, prompt=classifier.template.name, seed=seed)
    blind = {r.number: without_gold(r) for r in rubrics}
    before = _totals([classifier, *(heldout.classifiers() if heldout else [])])

    last_call = db.execute("select coalesce(max(id), 0) from llm_calls").fetchone()[0]
    # as many calls in flight as the configuration allows (one for a backend that is not concurrent)
    width = max(1, config.llm.concurrency) if classifier.backend.concurrent else 1
    semaphore = asyncio.Semaphore(width)

    def judge(item) -> Classifier:
        return heldout.classifier(heldout.fold(item)) if heldout else classifier

    async def one(item) -> dict | None:
        async with semaphore:
            return await judge(item).classify(text_item(item.text, blind[item.commitment]))

    # one text's items (a page against each commitment) one after another: a backend that embeds a
    # text once for all commitments keeps it; the results go back in dataset order
    first: dict[str, int] = {}
    dispatch = sorted(range(len(items)), key=lambda n: (first.setdefault(items[n].text, n), n))

    async def go() -> list[dict | None]:
        done = await asyncio.gather(*(one(items[n]) for n in dispatch))
        by_index = dict(zip(dispatch, done, strict=True))
        return [by_index[n] for n in range(len(items))]

    rows = asyncio.run(go())
    predictions = {i.id: p for i, r in zip(items, rows, strict=True) if (p := _prediction(r)) is not None}
    used = [r for r in rubrics if commitment is None or r.number == commitment]
    strongest = {r.number: strongest_labels(items, predictions, r) for r in used}
    # latency of the calls this run made, failed ones included; cache hits made none
    latency = db.execute(
        "select coalesce(sum(latency_ms), 0) from llm_calls where id > ?", [last_call]
    ).fetchone()[0]
    spent = _spent(before, [classifier, *(heldout.classifiers() if heldout else [])])
    metrics = {
        "coverage": coverage(items, rows),
        "action": action_metrics(items, predictions),
        "dimension": dimension_metrics(strongest, used),
        "score": score_metrics(strongest, used),
        "reference": reference_dimension_metrics(items, predictions, reference_labels(db)),
        "run": {
            "items": len(items),
            "predicted": len(predictions),
            "failed": len(items) - len(predictions),
            "concurrency": width,
            "base_rate": base_rate(items),
            **spent,
            "latency_ms": latency,
            "stopped": classifier.backend.unusable,  # why no further item was sent, if so
        },
    }
    if mode == "stream":
        metrics["stream"] = stream_metrics(items, predictions)
    relevant = sum(1 for p in predictions.values() if p["relevant"])
    metrics["run"]["relevant_predictions"] = relevant
    metrics["run"]["cost_per_relevant_prediction"] = (
        round(metrics["run"]["cost"] / relevant, 6) if relevant else None
    )
    threshold = classifier.prefilter.threshold if classifier.prefilter else None
    if (ruled := evaluation_figures(items, rows, threshold)) is not None:
        metrics["prefilter"] = ruled
    if heldout is not None:
        metrics["heldout"] = heldout.record()
    if curve is not None:
        metrics["learning_curve"] = curve
    run_id = new_run_id(mode, classifier.backend.name)
    record = {
        "id": run_id,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "backend": classifier.backend.name,
        "model": classifier.backend.model,
        "prompt": classifier.template.name,
        "prompt_sha": classifier.template.sha,
        "dataset_sha": dataset_sha(items),
        "commitment": commitment,
        "config": {
            "llm": config.llm.model_dump(exclude={"prices"}),
            "limit": limit,
            "seed": seed,
            "full_dataset_sha": full_sha,
            "protocol": heldout.protocol if heldout else NOT_TRAINED,
        },
        "metrics": metrics,
        "note": FLATTERY if mode == "paragraph" else None,
    }
    with db.atomic():
        db.table("eval_runs").insert({**{k: v for k, v in record.items() if k not in ("config", "metrics")},
                                "config": json.dumps(record["config"]), "metrics": json.dumps(metrics)})  # fmt: skip
        db.table("eval_predictions").insert_all(
            {
                "run_id": run_id,
                "item_id": i.id,
                "commitment": i.commitment,
                "kind": i.kind,
                "member": i.member,
                "gold_date": i.date,
                "prediction": json.dumps(predictions.get(i.id)),
            }
            for i in items
        )
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        predictions_out = [
            {"item": asdict(i) | {"text": i.text[:300]}, "prediction": predictions.get(i.id)} for i in items
        ]
        (results_dir / f"{run_id}.json").write_text(
            json.dumps({**record, "predictions": predictions_out}, indent=1, ensure_ascii=False),
            encoding="utf-8",
        )
    return record


def evaluate_modes(
    db: sqlite_utils.Database,
    config: Config,
    *,
    modes: list[str],
    backend: str | None = None,
    model: str | None = None,
    prompt: str | None = None,
    commitment: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    results_dir: Path | None = None,
    on_notice: Callable[[str], None] | None = None,
    on_run: Callable[[dict], None] | None = None,
    curve: bool | str = True,
    random_orders: int = 1,
) -> list[dict]:
    """Evaluate one classifier on each input mode in turn; the stored runs, in ``modes`` order.

    Each run's file goes to ``results_dir``, by default `store.results_dir`: under the project
    directory, never next to the corpus (that may be the installed package's copy).
    ``on_notice`` gets the backend's line for the reader, ``on_run`` each run as it finishes.
    The learned backend's fold models are trained once for all modes; with ``curve`` the learned
    model's learning curve (``random_orders`` random orders against uncertainty-first) is measured
    once and kept in every run's record (``curve="kept"``: only a curve measured before, none else).
    """
    from .gold import current_reports
    from .heldout import HeldOut
    from .learning import evaluation_curve
    from .rubric import rubrics_for
    from .store import results_dir as default_results_dir

    if not current_reports(db):
        raise ValueError("no reports imported: run `evidence gold import corpus/reports` first")
    rubrics = rubrics_for(commitment)
    classifier = Classifier(db, config, backend=backend, model=model, prompt=prompt)
    # before anything is measured or sent: an endpoint that cannot answer stops here, in one line
    if problem := classifier.backend.check_now():
        raise EndpointUnusable(problem)
    if on_notice and (notice := classifier.backend.notice()):
        on_notice(notice)
    heldout = None
    if classifier.backend.learns_from_gold:
        heldout = HeldOut(db, config, prompt=classifier.template.name, seed=seed)
        if on_notice:
            on_notice(f"evaluated by {heldout.protocol}")
    kept = (results_dir or default_results_dir()) / "curves"
    measured = (
        None
        if curve is False
        else evaluation_curve(rubrics, random_orders=random_orders, cache=kept, measure=curve is True)
    )
    runs = []
    for mode in modes:
        run = run_eval(
            db,
            config,
            rubrics,
            mode=mode,
            commitment=commitment,
            limit=limit,
            seed=seed,
            results_dir=results_dir or default_results_dir(),
            classifier=classifier,
            heldout=heldout,
            curve=measured,
        )
        if on_run:
            on_run(run)
        runs.append(run)
    return runs


class NoSuchRun(NotFound, ValueError):
    """No evaluation run has that id or id prefix."""


def list_runs(db: sqlite_utils.Database, limit: int = 20) -> list[dict]:
    """Stored evaluation runs, newest first, each as `load_run` gives it."""
    ids = [r["id"] for r in db.query("select id from eval_runs order by id desc limit ?", [limit])]
    return [load_run(db, run_id) for run_id in ids]


def load_run(db: sqlite_utils.Database, run_id: str) -> dict:
    rows = list(db.table("eval_runs").rows_where("id = ?", [run_id]))
    if not rows:
        # a prefix, compared as text: `like` would read % and _ in what the user typed as wildcards
        rows = list(
            db.table("eval_runs").rows_where(
                "substr(id, 1, length(:p)) = :p", {"p": run_id}, order_by="id desc", limit=1
            )
        )
    if not rows:
        raise NoSuchRun(f"no evaluation run {run_id!r}: see `evidence eval list`")
    run = rows[0]
    run["metrics"] = json.loads(run["metrics"])
    run["config"] = json.loads(run["config"])
    return run


def run_predictions(db: sqlite_utils.Database, run_id: str) -> dict[str, Any]:
    return {
        r["item_id"]: json.loads(r["prediction"]) if r["prediction"] else None
        for r in db.table("eval_predictions").rows_where("run_id = ?", [run_id])
    }


HEADLINE = [
    ("coverage", "failed_rate"),
    ("action", "relevance_recall"),
    ("action", "relevance_precision"),
    ("action", "relevance_f1"),
    ("action", "member_exact"),
    ("action", "member_top1"),
    ("action", "member_exact_attributable"),
    ("action", "member_in_set"),
    ("action", "date_accuracy"),
    ("action", "grounding_failure_rate"),
    ("dimension", "accuracy"),
    ("dimension", "kappa"),
    ("score", "exact_agreement"),
    ("score", "weighted_kappa"),
    ("score", "mae"),
    ("reference", "kappa_mean"),
    ("stream", "pr_auc"),
    ("stream", "precision_at_25"),
    ("stream", "pages_relevant_rate"),
    ("stream", "hard_pages_relevant"),
]


def headline(run: dict) -> dict[str, float | None]:
    return {f"{level}.{name}": run["metrics"].get(level, {}).get(name) for level, name in HEADLINE}


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 4)


def compare(db: sqlite_utils.Database, a: str, b: str) -> dict:
    run_a, run_b = load_run(db, a), load_run(db, b)
    ha, hb = headline(run_a), headline(run_b)
    deltas = {k: (ha[k], hb[k], _delta(ha[k], hb[k])) for k in ha}
    pa, pb = run_predictions(db, run_a["id"]), run_predictions(db, run_b["id"])
    changed = []
    for item in sorted(set(pa) & set(pb)):
        x, y = pa[item], pb[item]
        keys = ("relevant", "members", "action_date", "labels")
        if (x is None) != (y is None) or (x and y and any(x[k] != y[k] for k in keys)):
            changed.append({"item": item, "a": x, "b": y})
    return {"a": run_a, "b": run_b, "deltas": deltas, "changed": changed,
            "same_dataset": run_a["dataset_sha"] == run_b["dataset_sha"]}  # fmt: skip


EXIT_FAILURES = 4  # more items failed than the threshold allows
EXIT_NOTHING = 5  # no item was predicted at all


def exit_code(runs: list[dict], max_failed: float) -> int:
    """0, or :data:`EXIT_NOTHING` when a run predicted nothing, or :data:`EXIT_FAILURES` when a run's
    failed share is above ``max_failed``."""
    coverages = [r["metrics"]["coverage"] for r in runs]
    if any(c["items"] and c["predicted"] == 0 for c in coverages):
        return EXIT_NOTHING
    if any((c["failed_rate"] or 0) > max_failed for c in coverages):
        return EXIT_FAILURES
    return 0
