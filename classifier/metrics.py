"""Agreement with the gold at three levels: actions (relevance, member, date, grounding),
dimension labels (strongest per member), member scores; on the stream, relevance among real pages;
per action, dimension labels against a model's reference labels. Statistics come from scikit-learn.

Failures, one declared way at every level: an item whose classification failed counts as a miss
(not relevant, no member, no date, every label ``none``). Where that moves a figure, the same figure
over the predicted items only is given beside it, with the suffix ``_predicted_only``.
"""

from __future__ import annotations

import warnings

from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
)

from .dataset import EvalItem
from .flags import Flag
from .rubric import Rubric, average_of, format_average, score

LABELS = ["strong", "weak", "none"]
NEGATIVE_KINDS = ("background", "out_of_period", "page", "hard_page")
MISS = {"relevant": False, "members": [], "action_date": None, "labels": {}, "flags": [], "confidence": None}


def _safe(fn, *args, **kwargs) -> float | None:
    """``fn``'s figure, or None where it is undefined (one class only): said once, by None, not
    by scikit-learn's warnings on the terminal."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            value = float(fn(*args, **kwargs))
    except ValueError:
        return None
    return None if value != value else round(value, 4)  # NaN (one class only) -> None


def _relevance(items: list[EvalItem], predictions: dict[str, dict]) -> dict:
    y_true = [1 if i.kind == "positive" else 0 for i in items]
    y_pred = [1 if predictions.get(i.id, MISS)["relevant"] else 0 for i in items]
    return {
        "relevance_recall": _safe(recall_score, y_true, y_pred, zero_division=0) if items else None,
        "relevance_precision": _safe(precision_score, y_true, y_pred, zero_division=0) if items else None,
        "relevance_f1": _safe(f1_score, y_true, y_pred, zero_division=0) if items else None,
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def action_metrics(items: list[EvalItem], predictions: dict[str, dict]) -> dict:
    """Relevance, member attribution and dates over every judged item, failures counted as misses."""
    scored = [i for i in items if i.kind == "positive" or i.kind in NEGATIVE_KINDS]
    predicted = [i for i in scored if i.id in predictions]
    positives = [i for i in scored if i.kind == "positive"]
    found = [i for i in positives if predictions.get(i.id, MISS)["relevant"]]
    exact = [i for i in found if predictions[i.id]["members"] == [i.member]]
    top1 = [i for i in found if predictions[i.id]["members"][:1] == [i.member]]
    in_set = [i for i in found if i.member in predictions[i.id]["members"]]
    shared = shared_positives(positives)
    attributable = [i for i in found if i.id not in shared]
    dated = [i for i in found if predictions[i.id]["action_date"]]
    dates_ok = [i for i in dated if predictions[i.id]["action_date"] == i.date]
    relevant = [p for p in predictions.values() if p["relevant"]]
    ungrounded = [p for p in relevant if Flag.UNGROUNDED in p["flags"]]
    other = [i for i in items if i.kind == "other_commitment"]
    outside = [i for i in scored if i.kind == "out_of_period"]
    on_predicted = {f"{k}_predicted_only": v for k, v in _relevance(predicted, predictions).items()}
    return {
        "items": len(scored),
        "positives": len(positives),
        "negatives": len(scored) - len(positives),
        "base_rate": _share(len(positives), len(scored)),
        **_relevance(scored, predictions),
        **on_predicted,
        # member attribution over the positives found: the predicted set is exactly the cited member;
        # the first member predicted is it; it is anywhere in the set (flatters a long list)
        "member_exact": _share(len(exact), len(found)),
        "member_top1": _share(len(top1), len(found)),
        "member_in_set": _share(len(in_set), len(found)),
        # exact, leaving out the actions the text alone cannot attribute: one text (or near-duplicates)
        # cited under several members, as a joint G7 statement is under each of them
        "member_exact_attributable": _share(sum(1 for i in attributable if i in exact), len(attributable)),
        "member_shared_actions": len(shared),
        "date_accuracy": _share(len(dates_ok), len(dated)),
        "date_coverage": _share(len(dated), len(found)),
        "grounding_failure_rate": _share(len(ungrounded), len(relevant)),
        "out_of_period_flagged": _share(
            sum(1 for i in outside if Flag.OUTSIDE_PERIOD in predictions.get(i.id, MISS)["flags"]),
            len(outside),
        ),
        "other_commitment_items": len(other),
        "other_commitment_relevant_rate": _share(
            sum(1 for i in other if predictions.get(i.id, MISS)["relevant"]), len(other)
        ),
    }


def shared_positives(positives: list[EvalItem]) -> set[str]:
    """Ids of the positives whose text, or a near-duplicate of it, is cited under more than one member
    of the same commitment (:func:`classifier.learned.shared_citations`): no text-only attribution can
    get all of them right."""
    from .learned import shared_citations

    shared = shared_citations([(i.commitment, i.text, i.member) for i in positives])
    return {positives[n].id for n in shared}


def relevance_score(prediction: dict | None) -> float:
    """How relevant a prediction says the item is, 0..1: its confidence when relevant, one minus it
    when not; a failure (or no confidence) ranks last."""
    if prediction is None or prediction.get("confidence") is None:
        return 0.0
    c = float(prediction["confidence"])
    return c if prediction["relevant"] else 1.0 - c


def stream_metrics(
    items: list[EvalItem], predictions: dict[str, dict], *, at: tuple[int, ...] = (25, 50, 100)
) -> dict:
    """The stream: the cited actions among real off-topic pages. Precision, recall, F1, PR-AUC (average
    precision of :func:`relevance_score`), precision at the top of the queue, real pages let through."""
    scored = [i for i in items if i.kind == "positive" or i.kind in NEGATIVE_KINDS]
    pages = [i for i in scored if i.kind in ("page", "hard_page")]
    hard = [i for i in pages if i.kind == "hard_page"]
    y_true = [1 if i.kind == "positive" else 0 for i in scored]
    scores = [relevance_score(predictions.get(i.id)) for i in scored]
    ranked = sorted(zip(scores, y_true, range(len(scored)), strict=True), key=lambda t: (-t[0], t[2]))
    queue = [t for t in ranked if predictions.get(scored[t[2]].id, MISS)["relevant"]]
    through = [i for i in pages if predictions.get(i.id, MISS)["relevant"]]
    return {
        **_relevance(scored, predictions),
        "pr_auc": _safe(average_precision_score, y_true, scores) if any(y_true) else None,
        **{f"precision_at_{k}": _share(sum(t[1] for t in queue[:k]), min(k, len(queue))) for k in at},
        "queue": len(queue),
        "pages": len(pages),
        "pages_relevant": len(through),
        "pages_relevant_rate": _share(len(through), len(pages)),
        "hard_pages": len(hard),
        "hard_pages_relevant": sum(1 for i in through if i.kind == "hard_page"),
        "pages_through": sorted(i.id for i in through),
    }


def reference_dimension_metrics(
    items: list[EvalItem], predictions: dict[str, dict], reference: dict[str, dict[str, str]]
) -> dict:
    """Per cited action and dimension, the predicted label versus a model's reference labels
    (``eval/data/reference-labels/``): agreement with a model's reference labels, not human coding.
    An action predicted not relevant, or failed, has every label ``none``."""
    per: dict[str, tuple[list[str], list[str]]] = {}
    for item in items:
        if item.kind != "positive" or item.id not in reference:
            continue
        p = predictions.get(item.id, MISS)
        for dim, label in reference[item.id].items():
            predicted = p["labels"].get(dim, "none") if p["relevant"] else "none"
            gold, pred = per.setdefault(dim, ([], []))
            gold.append(label)
            pred.append(predicted)
    dims = {}
    for dim, (gold, pred) in sorted(per.items()):
        dims[dim] = {
            "pairs": len(gold),
            "accuracy": _safe(accuracy_score, gold, pred),
            "kappa": _safe(cohen_kappa_score, gold, pred, labels=LABELS),
            "confusion": confusion_matrix(gold, pred, labels=LABELS).tolist(),
        }
    gold = [g for g_, _ in per.values() for g in g_]
    pred = [q for _, p_ in per.values() for q in p_]
    return {
        "about": "agreement with a model's reference labels (eval/data/reference-labels), not human coding",
        "actions": sum(1 for i in items if i.kind == "positive" and i.id in reference),
        "pairs": len(gold),
        "accuracy": _safe(accuracy_score, gold, pred) if gold else None,
        "kappa": _safe(cohen_kappa_score, gold, pred, labels=LABELS) if gold else None,
        "kappa_mean": round(sum(kappas) / len(kappas), 4)
        if (kappas := [d["kappa"] for d in dims.values() if d["kappa"] is not None])
        else None,
        "confusion": confusion_matrix(gold, pred, labels=LABELS).tolist() if gold else None,
        "labels": LABELS,
        "dimensions": dims,
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
