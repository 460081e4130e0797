"""Agreement with the gold at three levels: actions (relevance, member, date, grounding),
dimension labels (strongest per member), member scores. Statistics come from scikit-learn.
"""

from __future__ import annotations

from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    mean_absolute_error,
    precision_score,
    recall_score,
)

from .dataset import EvalItem
from .flags import Flag
from .rubric import Rubric, average_of, format_average, score

LABELS = ["strong", "weak", "none"]


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
