"""Evaluation runs: classify the dataset (:mod:`.dataset`) for one input mode, compute the
metrics (:mod:`.metrics`) after the predictions are made, store the run and its predictions;
read runs back, their headline figures, and compare two runs item by item.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import sqlite_utils

from .classify import Classifier, text_item
from .config import Config
from .dataset import FLATTERY, build_dataset, dataset_sha, without_gold
from .dates import new_run_id
from .metrics import action_metrics, dimension_metrics, score_metrics, strongest_labels
from .rubric import Rubric


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
        "call_id": row["call_id"],
    }


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
    results_dir: Path | None = None,
    classifier: Classifier | None = None,
) -> dict:
    """Classify the dataset for one input mode, compute the metrics, store and return the run."""
    items = build_dataset(db, rubrics, mode, commitment=commitment)
    if limit is not None:
        items = items[:limit]
    classifier = classifier or Classifier(db, config, backend=backend, model=model, prompt=prompt)
    blind = {r.number: without_gold(r) for r in rubrics}
    calls_before = classifier.summary.calls
    cached_before = classifier.summary.cached
    tokens_before = (classifier.summary.tokens_in, classifier.summary.tokens_out, classifier.summary.cost)

    async def go() -> list[dict | None]:
        return [await classifier.classify(text_item(i.text, blind[i.commitment])) for i in items]

    rows = asyncio.run(go())
    predictions = {i.id: p for i, r in zip(items, rows, strict=True) if (p := _prediction(r)) is not None}
    used = [r for r in rubrics if commitment is None or r.number == commitment]
    strongest = {r.number: strongest_labels(items, predictions, r) for r in used}
    latency = 0
    call_ids = [p["call_id"] for p in predictions.values() if p.get("call_id")]
    if call_ids:
        marks = ",".join("?" * len(call_ids))
        latency = db.execute(
            f"select coalesce(sum(latency_ms), 0) from llm_calls where id in ({marks})", call_ids
        ).fetchone()[0]
    summary = classifier.summary
    metrics = {
        "action": action_metrics(items, predictions),
        "dimension": dimension_metrics(strongest, used),
        "score": score_metrics(strongest, used),
        "run": {
            "items": len(items),
            "predicted": len(predictions),
            "failed": len(items) - len(predictions),
            "calls": summary.calls - calls_before,
            "cache_hits": summary.cached - cached_before,
            "tokens_in": summary.tokens_in - tokens_before[0],
            "tokens_out": summary.tokens_out - tokens_before[1],
            "cost": round(summary.cost - tokens_before[2], 6),
            "latency_ms": latency,
        },
    }
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
        "config": {"llm": config.llm.model_dump(exclude={"prices"}), "limit": limit},
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
        raise ValueError(f"no evaluation run {run_id!r}: see `evidence eval list`")
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
    ("action", "relevance_recall"),
    ("action", "relevance_precision"),
    ("action", "member_accuracy"),
    ("action", "date_accuracy"),
    ("action", "grounding_failure_rate"),
    ("dimension", "accuracy"),
    ("dimension", "kappa"),
    ("score", "exact_agreement"),
    ("score", "weighted_kappa"),
    ("score", "mae"),
]


def headline(run: dict) -> dict[str, float | None]:
    return {f"{level}.{name}": run["metrics"][level].get(name) for level, name in HEADLINE}


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
