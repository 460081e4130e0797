"""Agreement with the hand-coded report: a dataset built from the gold, metrics at three levels.

The dataset (one per input mode) holds:
- positives: every cited action, as its footnote's headline (``title``, closest to what a
  crawler sees), the analyst's paragraph (``paragraph``: it often contains the analyst's
  own verdict, so it flatters the classifier), or the fetched document (``document``);
- negatives: the chapters' background paragraphs about earlier summits, and actions dated
  outside the compliance period;
- actions cited only under the other commitment, reported separately.

Nothing that classifies an item sees its gold: rubrics are passed without their gold and
notes, the baseline learns nothing from gold paragraphs, and the metrics are computed after
the predictions are made. Statistics come from scikit-learn.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    mean_absolute_error,
    precision_score,
    recall_score,
)

from .classify import Classifier, text_item
from .config import Config
from .dates import new_run_id
from .flags import Flag
from .gold import current_commitments, evidence_items
from .rubric import Rubric, average_of, format_average, score

MODES = ("title", "paragraph", "document")
LABELS = ["strong", "weak", "none"]
FLATTERY = (
    "paragraph mode feeds the classifier the analyst's own paragraph, which often states the "
    "analyst's verdict ('indicating their strong commitment'): it flatters the classifier."
)


@dataclass
class EvalItem:
    id: str
    commitment: int
    kind: str  # positive | out_of_period | background | other_commitment
    member: str | None
    date: str | None
    text: str
    url: str | None


def without_gold(rubric: Rubric) -> Rubric:
    """The rubric as a classifier may see it: no dimension gold, no notes about members."""
    return rubric.model_copy(update={"gold": [], "notes": []})


def _title_text(row: dict) -> str | None:
    fn = next((f for f in row["footnote_details"] if f["title"]), None)
    if fn is None:
        return None
    parts = [fn["title"]]
    if fn["publisher"]:
        parts.append(fn["publisher"])
    if fn["published"]:
        parts.append(fn["published"])
    return ", ".join(parts)


def _document_text(db: sqlite_utils.Database, row: dict) -> str | None:
    from .fetch import InvalidURL, normalize_url

    for fn in row["footnote_details"]:
        if not fn["url"]:
            continue
        try:
            url = normalize_url(fn["url"])
        except InvalidURL:
            continue
        found = db.execute(
            "select v.text from documents d join document_versions v on v.document_id = d.id "
            "and v.version = d.current_version where d.canonical_url = ?",
            [url],
        ).fetchone()
        if found:
            return found[0]
    return None


def build_dataset(
    db: sqlite_utils.Database, rubrics: list[Rubric], mode: str, *, commitment: int | None = None
) -> list[EvalItem]:
    if mode not in MODES:
        raise ValueError(f"--input must be one of {', '.join(MODES)}")
    rows = evidence_items(db)
    urls_by_commitment: dict[int, set[str]] = {}
    for row in rows:
        urls_by_commitment.setdefault(row["commitment"], set()).update(
            f["url"] for f in row["footnote_details"] if f["url"]
        )
    chapters = {c["number"]: c for c in current_commitments(db)}
    items: list[EvalItem] = []
    for rubric in rubrics:
        if commitment is not None and rubric.number != commitment:
            continue
        for row in rows:
            if mode == "title":
                text = _title_text(row)
            elif mode == "paragraph":
                text = row["text"]
            else:
                text = _document_text(db, row)
            if not text:
                continue
            urls = {f["url"] for f in row["footnote_details"] if f["url"]}
            if row["commitment"] == rubric.number:
                inside = row["date"] is not None and (
                    rubric.period_start.isoformat() <= row["date"] <= rubric.period_end.isoformat()
                )
                kind = "positive" if inside else "out_of_period"
            elif urls and not urls & urls_by_commitment.get(rubric.number, set()):
                kind = "other_commitment"
            else:
                continue
            items.append(
                EvalItem(
                    id=f"{row['key']}@{rubric.number}",
                    commitment=rubric.number,
                    kind=kind,
                    member=row["member"],
                    date=row["date"],
                    text=text,
                    url=next(iter(sorted(urls)), None),
                )
            )
        chapter = chapters.get(rubric.number)
        if mode == "document":
            continue  # background paragraphs have no fetched document
        for n, paragraph in enumerate(json.loads(chapter["background"]) if chapter else [], start=1):
            if not paragraph.startswith("At the ") and "Summit" not in paragraph[:80]:
                continue  # the summit-history paragraphs: past commitments, not actions in the period
            text = paragraph.split(". ")[0] + "." if mode == "title" else paragraph
            items.append(
                EvalItem(
                    f"background:{rubric.number}:{n}", rubric.number, "background", None, None, text, None
                )
            )
    return items


def dataset_sha(items: list[EvalItem]) -> str:
    blob = json.dumps([asdict(i) for i in items], sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# Metrics


def _safe(fn, *args, **kwargs) -> float | None:
    try:
        value = float(fn(*args, **kwargs))
    except ValueError:
        return None
    return None if value != value else round(value, 4)  # NaN (one class only) -> None


def action_metrics(items: list[EvalItem], predictions: dict[str, dict]) -> dict:
    scored = [
        i for i in items if i.kind in ("positive", "background", "out_of_period") and i.id in predictions
    ]
    y_true = [1 if i.kind == "positive" else 0 for i in scored]
    y_pred = [1 if predictions[i.id]["relevant"] else 0 for i in scored]
    positives = [i for i in scored if i.kind == "positive"]
    found = [i for i in positives if predictions[i.id]["relevant"]]
    members_ok = [i for i in found if i.member in predictions[i.id]["members"]]
    dated = [i for i in found if predictions[i.id]["action_date"]]
    dates_ok = [i for i in dated if predictions[i.id]["action_date"] == i.date]
    relevant = [p for p in predictions.values() if p["relevant"]]
    ungrounded = [p for p in relevant if Flag.UNGROUNDED in p["flags"]]
    other = [i for i in items if i.kind == "other_commitment" and i.id in predictions]
    outside = [i for i in scored if i.kind == "out_of_period"]
    return {
        "items": len(scored),
        "positives": len(positives),
        "negatives": len(scored) - len(positives),
        "relevance_recall": _safe(recall_score, y_true, y_pred, zero_division=0),
        "relevance_precision": _safe(precision_score, y_true, y_pred, zero_division=0),
        "member_accuracy": round(len(members_ok) / len(found), 4) if found else None,
        "date_accuracy": round(len(dates_ok) / len(dated), 4) if dated else None,
        "date_coverage": round(len(dated) / len(found), 4) if found else None,
        "grounding_failure_rate": round(len(ungrounded) / len(relevant), 4) if relevant else None,
        "out_of_period_flagged": round(
            sum(1 for i in outside if Flag.OUTSIDE_PERIOD in predictions[i.id]["flags"]) / len(outside), 4
        )
        if outside
        else None,
        "other_commitment_items": len(other),
        "other_commitment_relevant_rate": round(
            sum(1 for i in other if predictions[i.id]["relevant"]) / len(other), 4
        )
        if other
        else None,
    }


def strongest_labels(items: list[EvalItem], predictions: dict[str, dict], rubric: Rubric) -> dict[str, dict]:
    """Per member, the strongest predicted label per dimension over its positive items."""
    rank = {"none": 0, "weak": 1, "strong": 2}
    out = {m: dict.fromkeys(rubric.dimension_ids, "none") for m in rubric.members}
    for item in items:
        if item.kind != "positive" or item.commitment != rubric.number or item.id not in predictions:
            continue
        p = predictions[item.id]
        if not p["relevant"] or item.member not in out:
            continue
        for dim, label in p["labels"].items():
            if dim in out[item.member] and rank[label] > rank[out[item.member][dim]]:
                out[item.member][dim] = label
    return out


def dimension_metrics(strongest: dict[int, dict[str, dict]], rubrics: list[Rubric]) -> dict:
    gold, pred = [], []
    unclear = 0
    rows = []
    for rubric in rubrics:
        for g in rubric.gold:
            for dim, value in g.labels.items():
                if value.label == "unclear":
                    unclear += 1
                    continue
                predicted = strongest[rubric.number][g.member][dim]
                gold.append(value.label)
                pred.append(predicted)
                rows.append({"commitment": rubric.number, "member": g.member, "dimension": dim,
                             "gold": value.label, "predicted": predicted})  # fmt: skip
    return {
        "pairs": len(gold),
        "unclear_excluded": unclear,
        "accuracy": _safe(accuracy_score, gold, pred) if gold else None,
        "kappa": _safe(cohen_kappa_score, gold, pred, labels=LABELS) if gold else None,
        "confusion": confusion_matrix(gold, pred, labels=LABELS).tolist() if gold else None,
        "labels": LABELS,
        "rows": rows,
    }


def score_metrics(strongest: dict[int, dict[str, dict]], rubrics: list[Rubric]) -> dict:
    printed, predicted, per = [], [], []
    commitments = {}
    for rubric in rubrics:
        scores = {}
        for g in rubric.gold:
            value = score(strongest[rubric.number][g.member], rubric.scoring, rubric.dimension_ids)
            scores[g.member] = value
            printed.append(g.printed_score)
            predicted.append(value)
            per.append(
                {
                    "commitment": rubric.number,
                    "member": g.member,
                    "printed": g.printed_score,
                    "predicted": value,
                }
            )
        if rubric.gold:
            avg, pct = average_of(list(scores.values()))
            commitments[rubric.number] = {
                "predicted": format_average(list(scores.values())),
                "report": format_average([g.printed_score for g in rubric.gold]),
                "predicted_average": float(avg),
                "predicted_percentage": pct,
            }
    exact = sum(a == b for a, b in zip(printed, predicted, strict=True))
    return {
        "members": len(printed),
        "exact_agreement": round(exact / len(printed), 4) if printed else None,
        "weighted_kappa": _safe(cohen_kappa_score, printed, predicted, labels=[-1, 0, 1], weights="linear")
        if printed
        else None,
        "mae": _safe(mean_absolute_error, printed, predicted) if printed else None,
        "commitments": commitments,
        "rows": per,
    }


# ---------------------------------------------------------------------------
# Runs


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
        db["eval_runs"].insert({**{k: v for k, v in record.items() if k not in ("config", "metrics")},
                                "config": json.dumps(record["config"]), "metrics": json.dumps(metrics)})  # fmt: skip
        db["eval_predictions"].insert_all(
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
    rows = list(db["eval_runs"].rows_where("id = ?", [run_id]))
    if not rows:
        # a prefix, compared as text: `like` would read % and _ in what the user typed as wildcards
        rows = list(
            db["eval_runs"].rows_where(
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
        for r in db["eval_predictions"].rows_where("run_id = ?", [run_id])
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


def compare(db: sqlite_utils.Database, a: str, b: str) -> dict:
    run_a, run_b = load_run(db, a), load_run(db, b)
    ha, hb = headline(run_a), headline(run_b)
    deltas = {
        k: (ha[k], hb[k], None if ha[k] is None or hb[k] is None else round(hb[k] - ha[k], 4)) for k in ha
    }
    pa, pb = run_predictions(db, run_a["id"]), run_predictions(db, run_b["id"])
    changed = []
    for item in sorted(set(pa) & set(pb)):
        x, y = pa[item], pb[item]
        keys = ("relevant", "members", "action_date", "labels")
        if (x is None) != (y is None) or (x and y and any(x[k] != y[k] for k in keys)):
            changed.append({"item": item, "a": x, "b": y})
    return {"a": run_a, "b": run_b, "deltas": deltas, "changed": changed,
            "same_dataset": run_a["dataset_sha"] == run_b["dataset_sha"]}  # fmt: skip


# ---------------------------------------------------------------------------
# Reports


def side_by_side(runs: list[dict]) -> str:
    """The three levels for several runs (input modes) in one table."""
    names = [f"{r['mode']} ({r['backend']})" for r in runs]
    width = max(len(n) for n in names) + 2
    lines = [f"{'metric':<34}" + "".join(n.rjust(width) for n in names)]
    rows = [
        ("1. action: relevance recall", "action", "relevance_recall"),
        ("   relevance precision", "action", "relevance_precision"),
        ("   member attribution accuracy", "action", "member_accuracy"),
        ("   date accuracy", "action", "date_accuracy"),
        ("   grounding failure rate", "action", "grounding_failure_rate"),
        ("   other-commitment items relevant", "action", "other_commitment_relevant_rate"),
        ("2. dimension: accuracy", "dimension", "accuracy"),
        ("   Cohen's kappa", "dimension", "kappa"),
        ("   pairs (unclear excluded)", "dimension", "pairs"),
        ("3. member score: exact agreement", "score", "exact_agreement"),
        ("   weighted kappa", "score", "weighted_kappa"),
        ("   mean absolute error", "score", "mae"),
    ]
    for label, level, key in rows:
        cells = []
        for r in runs:
            value = r["metrics"][level].get(key)
            cells.append(
                ("-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)).rjust(
                    width
                )
            )
        lines.append(f"{label:<34}" + "".join(cells))
    for r in runs:
        for number, c in r["metrics"]["score"]["commitments"].items():
            lines.append(
                f"   commitment {number} average ({r['mode']}): predicted {c['predicted']}, report {c['report']}"
            )
        unclear = r["metrics"]["dimension"]["unclear_excluded"]
        lines.append(
            f"   ({r['mode']}: {unclear} 'unclear' gold dimensions excluded; dataset {r['dataset_sha'][:19]})"
        )
    if any(r["mode"] == "paragraph" for r in runs):
        lines.append("Note: " + FLATTERY)
    return "\n".join(lines)


def write_report(run: dict, directory: Path, fmt: str = "md") -> Path:
    """Tables and plots (confusion matrix, predicted vs printed scores) for one run."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if fmt not in ("md", "html"):
        raise ValueError(f"--format must be md or html, not {fmt!r}")
    directory.mkdir(parents=True, exist_ok=True)
    dim = run["metrics"]["dimension"]
    images = []
    if dim["confusion"]:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        ax.imshow(dim["confusion"], cmap="Blues")
        ax.set_xticks(range(3), dim["labels"])
        ax.set_yticks(range(3), dim["labels"])
        ax.set_xlabel("predicted (strongest per member)")
        ax.set_ylabel("gold (analysts' conclusions)")
        peak = max(max(row) for row in dim["confusion"]) or 1
        for y, row in enumerate(dim["confusion"]):
            for x, value in enumerate(row):
                ax.text(
                    x, y, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black"
                )
        ax.set_title(f"Dimension labels ({run['mode']})")
        fig.tight_layout()
        path = directory / f"{run['id']}-confusion.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        images.append(path)
    rows = run["metrics"]["score"]["rows"]
    if rows:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        for commitment in sorted({r["commitment"] for r in rows}):
            mine = [r for r in rows if r["commitment"] == commitment]
            jitter = 0.06 if commitment % 2 else -0.06
            ax.scatter(
                [r["printed"] + jitter for r in mine],
                [r["predicted"] for r in mine],
                label=f"commitment {commitment}",
            )
        ax.plot([-1, 1], [-1, 1], color="grey", linewidth=0.8)
        ax.set_xticks([-1, 0, 1])
        ax.set_yticks([-1, 0, 1])
        ax.set_xlabel("printed score")
        ax.set_ylabel("predicted score")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"Member scores ({run['mode']})")
        fig.tight_layout()
        path = directory / f"{run['id']}-scores.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        images.append(path)
    table = side_by_side([run])
    title = f"Evaluation {run['id']}: {run['backend']}/{run['model']}, prompt {run['prompt']}, input {run['mode']}"
    if fmt == "md":
        text = f"# {title}\n\n```\n{table}\n```\n\n" + "".join(f"![{p.stem}]({p.name})\n\n" for p in images)
        out = directory / f"{run['id']}.md"
    else:
        text = (
            f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><pre>{html.escape(table)}</pre>"
            + "".join(f"<img src='{html.escape(p.name)}' alt='{html.escape(p.stem)}'>" for p in images)
        )
        out = directory / f"{run['id']}.html"
    out.write_text(text, encoding="utf-8")
    return out


def queue_gold(db: sqlite_utils.Database, items: list[EvalItem]) -> dict[str, int]:
    """Put the classified gold paragraphs in the review queue, as documents of kind 'gold'.

    The main job's demonstration of the whole path on embedded defaults: each cited action
    paragraph becomes a document (``gold:<item id>``), its classifications are attached to
    it, and the queue is filled from them. Real press releases are never of this kind.
    """
    from .prompts import sha256
    from .review import fill

    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with db.atomic():
        for item in items:
            if item.kind not in ("positive", "out_of_period"):
                continue
            url = f"gold:{item.id.split('@')[0]}"
            content = sha256(item.text)
            existing = db.execute("select id from documents where canonical_url = ?", [url]).fetchone()
            if existing is None:
                doc_id = (
                    db["documents"]
                    .insert(
                        {
                            "canonical_url": url,
                            "first_url": url,
                            "host": "gold",
                            "kind": "gold",
                            "current_version": 1,
                            "first_seen_utc": stamp,
                            "last_fetched_utc": stamp,
                            "last_outcome": "gold",
                        }
                    )
                    .last_pk
                )
                db["document_versions"].insert(
                    {
                        "document_id": doc_id,
                        "version": 1,
                        "content_sha256": content,
                        "fetched_utc": stamp,
                        "title": item.text[:120],
                        "text": item.text,
                        "published": item.date,
                        "date_source": "gold",
                    }
                )
            else:
                doc_id = existing[0]
            db.execute(
                "update classifications set document_id = ?, version = 1 where content_sha = ? and document_id is null",
                [doc_id, content],
            )
    return fill(db)
