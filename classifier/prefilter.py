"""The prefilter: the embedded learned model in front of a model endpoint.

With a backend whose calls go to an endpoint and cost (``Backend.prefiltered``: the ``openai``
one), every item is first judged by the commitment's learned model (:mod:`classifier.learner`).
An item whose calibrated probability of relevance is below ``[llm] prefilter`` is stored as not
relevant, with the learned model's version and its probability, and never sent: no call, no
cost. A nightly crawl is mostly pages about other things, and those are the ones ruled out.

Such a classification stands while the learned model that made it is the commitment's current
one and its probability is still below the threshold in use: a retrain, a lower threshold or
``--no-prefilter`` decides it again (and sends it when it is no longer ruled out).

What this costs in recall is measured on the stream with held-out probabilities
(``python -m bench.prefilter``) and reported by ``evidence eval run`` (:func:`figures`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import instructions

if TYPE_CHECKING:
    import sqlite_utils

    from .rubric import Rubric

# thresholds the benchmark and the evaluation report compare
THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


@dataclass
class Verdict:
    """What the learned model said about one item."""

    model: str  # the learned model's string, naming its version: learned-tfidf-lr@<16 hex>
    probability: float  # calibrated probability of relevance
    ruled_out: bool


class Prefilter:
    """Judges items with the learned model of their commitment against one threshold."""

    def __init__(self, db: sqlite_utils.Database, threshold: float):
        from .learner import LearnedBackend

        self.db = db
        self.threshold = threshold
        self._learned = LearnedBackend()
        self._learned.bind(db)

    def version(self, rubric: Rubric) -> str:
        """The commitment's current learned model (trained from the cold start if it has none)."""
        return self._learned.model_for(rubric)

    async def judge(self, rubric: Rubric, text: str) -> Verdict:
        """The learned model's calibrated relevance of ``text`` (instruction-like sentences blanked,
        as the learned backend reads it) and whether that rules the item out. The database is read
        here; only the computing runs in a worker thread."""
        from .learner import current_model

        version = self.version(rubric)
        model = current_model(self.db, rubric.number)
        probability = await asyncio.to_thread(_relevance, model, rubric.number, text)
        return Verdict(version, probability, probability < self.threshold)


def _relevance(model: Any, commitment: int, text: str) -> float:
    from . import learned

    text = instructions.neutralise(text)
    if model is None or not text.strip():
        return 0.0
    with learned.limited_threads():
        return round(float(model.judge(text, commitment).relevance), 6)


def ruled_out_output(rubric: Rubric, verdict: Verdict, threshold: float) -> dict[str, Any]:
    """The stored classification of an item the prefilter ruled out: not relevant, no labels."""
    why = f"ruled out before any model call: {verdict.model} gives P(relevant) {verdict.probability:.3f} < {threshold:g}"
    return {
        "relevant": False,
        "members": [],
        "action_date": None,
        "summary": "",
        "confidence": round(1 - verdict.probability, 3),
        "outside_period": False,
        "exclusions": [],
        "dimensions": {d: {"label": "none", "rationale": why, "quotes": []} for d in rubric.dimension_ids},
    }


def figures(probabilities: Sequence[float], truth: Sequence[bool], threshold: float) -> dict[str, Any]:
    """At one threshold: items ruled out, the share of calls saved, positives ruled out and the
    recall lost (positives ruled out / positives)."""
    ruled = [p < threshold for p in probabilities]
    positives = sum(1 for t in truth if t)
    lost = sum(1 for r, t in zip(ruled, truth, strict=True) if r and t)
    items = len(ruled)
    return {
        "threshold": threshold,
        "items": items,
        "ruled_out": sum(ruled),
        "calls_saved_share": round(sum(ruled) / items, 4) if items else None,
        "positives": positives,
        "positives_ruled_out": lost,
        "recall_lost": round(lost / positives, 4) if positives else None,
        "negatives_ruled_out": sum(ruled) - lost,
        "negatives": items - positives,
    }


def held_out_relevance(
    rubrics: Sequence[Rubric], actions: Sequence[dict], pages: Sequence[dict], *, n_folds: int = 5
) -> dict[int, dict[str, list]]:
    """Per commitment, the learned model's calibrated relevance on the stream, every item held out:
    the commitment's cited actions (positives) and the real pages (negatives), in folds that keep
    near-duplicate actions and a site's pages together (:func:`classifier.learning.folds`). Each
    fold's model learns what the shipped one does before any decision (rubric, training-fold cited
    actions, shipped off-topic text) and never sees a real page, as the shipped model never does."""
    from . import learned, learning

    settings = learned.SETTINGS
    out: dict[int, dict[str, list]] = {
        r.number: {"probability": [], "positive": [], "hard": []} for r in rubrics
    }
    for fold in learning.folds(actions, pages, n_folds, settings["seed"]):
        test_a, test_p = set(fold["actions"]), set(fold["pages"])
        train_a = [i for i in range(len(actions)) if i not in test_a]
        train_p = [i for i in range(len(pages)) if i not in test_p]
        with learned.limited_threads():
            features = learning._feature_space(rubrics, actions, pages, train_a, train_p, settings)
            for rubric in rubrics:
                model = learned.train(
                    learning._fold_examples(rubric, actions, train_a),
                    [rubric],
                    settings=settings,
                    features=features,
                )
                own = [i for i in sorted(test_a) if actions[i]["commitment"] == rubric.number]
                held = [pages[i] for i in sorted(test_p)]
                texts = [actions[i]["text"] for i in own] + [instructions.neutralise(p["text"]) for p in held]
                judged = model.judge_many(texts, rubric.number)
                bucket = out[rubric.number]
                bucket["probability"] += [round(float(j.relevance), 6) for j in judged]
                bucket["positive"] += [True] * len(own) + [False] * len(held)
                bucket["hard"] += [False] * len(own) + [bool(p["hard"]) for p in held]
    return out


IN_SAMPLE_NOTE = (
    "the learned model judging here was trained on the gold's cited actions, the evaluation's "
    "positives, so the recall lost here is in-sample (a floor); the held-out figure: python -m bench.prefilter"
)


def evaluation_figures(
    items: Sequence[Any], rows: Sequence[dict | None], threshold: float | None
) -> dict | None:
    """For an evaluation run with a prefilter: what it ruled out among the run's items, the share of
    calls saved and the recall lost (positives it ruled out / positives); None without one."""
    if threshold is None:
        return None
    ruled = [bool(row and row.get("prefilter_model")) for row in rows]
    positive = [getattr(i, "kind", None) == "positive" for i in items]
    positives = sum(positive)
    lost = sum(1 for r, p in zip(ruled, positive, strict=True) if r and p)
    return {
        "threshold": threshold,
        "items": len(items),
        "ruled_out": sum(ruled),
        "calls_saved_share": round(sum(ruled) / len(items), 4) if items else None,
        "positives": positives,
        "positives_ruled_out": lost,
        "recall_lost": round(lost / positives, 4) if positives else None,
        "models": sorted({row["prefilter_model"] for row, r in zip(rows, ruled, strict=True) if r and row}),
        "note": IN_SAMPLE_NOTE,
    }


__all__ = ["THRESHOLDS", "Prefilter", "Verdict", "evaluation_figures", "figures", "ruled_out_output"]
