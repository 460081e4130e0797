"""Held-out figures for the learned model, and its learning curve.

Data (each directory has a README saying what it is):

- ``eval/data/reference-labels/actions.jsonl``: the 398 cited actions of the bundled chapters
  with per-dimension labels. They are *reference labels from a model, not human coding*; here
  they are the target for dimension agreement and the simulated analyst's decisions.
- ``eval/data/realpages/``: 246 real web pages, none of them evidence: the stream's negatives.

Protocol (stated next to every figure this module returns): folds over the actions grouped by
near-duplicate (:func:`classifier.learned.near_duplicate_groups`; a text cited under both
commitments is one group) and over the pages grouped by web site; every figure is measured on
the held-out fold and pooled over folds. The shipped model never trains on the real pages; the
``rejects`` protocol adds the training folds' pages as an analyst's rejections.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import learned
from .learned import LABELS, Example, Features

CURVE_FORMAT = 2  # raise when the curve's figures change meaning: kept curves are measured again
HARD_NEGATIVE = re.compile(
    r"(migra|smuggl|traffick|refugee|asylum|flüchtl|geflücht|schleus|menschenhandel|réfugi|passeur|"
    r"rifugiat|migrant|grenzkontroll|border control)",
    re.I,
)


def reference_actions(path: Path) -> list[dict]:
    """The reference-labelled actions (one dict per line of ``actions.jsonl``)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def page_texts(directory: Path, cache: Path | None = None) -> list[dict]:
    """The real pages' extracted text (``file``, ``url``, ``site``, ``text``, ``hard``), extracted
    with :func:`classifier.extract.extract`; cached in ``cache`` keyed by the manifest's sha256."""
    manifest = (directory / "manifest.json").read_bytes()
    key = hashlib.sha256(manifest).hexdigest()
    if cache and cache.exists():
        data = json.loads(cache.read_text(encoding="utf-8"))
        if data.get("manifest") == key:
            return data["pages"]
    from .extract import extract

    pages = []
    for row in json.loads(manifest):
        try:
            text = extract((directory / row["file"]).read_bytes(), "text/html", row["url"]).text
        except Exception:  # an unextractable page is still a page the stream sees: empty text
            text = ""
        pages.append(
            {
                "file": row["file"],
                "url": row["url"],
                "site": urlsplit(row["url"]).netloc.removeprefix("www."),
                "text": text,
                "hard": bool(HARD_NEGATIVE.search(text)),
            }
        )
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"manifest": key, "pages": pages}, ensure_ascii=False), encoding="utf-8")
    return pages


def folds(actions: Sequence[dict], pages: Sequence[dict], n: int = 5, seed: int = 0) -> list[dict]:
    """``n`` folds: held-out action and page indices; near-duplicates and sites never split."""
    groups = learned.near_duplicate_groups([a["text"] for a in actions])
    action_folds = learned._folds(groups, n, seed)
    sites = sorted({p["site"] for p in pages})
    site_group = {s: i for i, s in enumerate(sites)}
    page_folds = learned._folds([site_group[p["site"]] for p in pages], n, seed)
    return [{"actions": a, "pages": p} for a, p in zip(action_folds, page_folds, strict=False)]


# ---------------------------------------------------------------------------
# Metrics


def stream_figures(
    scores: Sequence[float], truth: Sequence[int], predicted: Sequence[bool], hard: Sequence[bool]
) -> dict:
    """Precision, recall, F1 at the model's own threshold; PR-AUC; precision at 25/50/100; the
    best precision at recall >= 0.9 (an oracle threshold, said so); negatives judged relevant."""
    import numpy as np
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = np.asarray(truth)
    s = np.asarray(scores)
    p = np.asarray(predicted, dtype=bool)
    tp = int((p & (y == 1)).sum())
    fp = int((p & (y == 0)).sum())
    fn = int((~p & (y == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    order = np.argsort(-s, kind="stable")
    at = {f"precision_at_{k}": round(float(y[order[:k]].mean()), 3) for k in (25, 50, 100) if len(y) >= k}
    curve_p, curve_r, _ = precision_recall_curve(y, s)
    best = float(max((pp for pp, rr in zip(curve_p, curve_r, strict=True) if rr >= 0.9), default=0.0))
    negatives = int((y == 0).sum())
    hard_arr = np.asarray(hard, dtype=bool)
    return {
        "positives": int(y.sum()),
        "negatives": negatives,
        "base_rate": round(float(y.mean()), 3),
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(2 * precision * recall / (precision + recall), 3) if precision + recall else 0.0,
        "pr_auc": round(float(average_precision_score(y, s)), 3),
        **at,
        "best_precision_at_recall_0.9": round(best, 3),
        "negatives_judged_relevant": fp,
        "negatives_judged_relevant_share": round(fp / negatives, 3) if negatives else 0.0,
        "hard_negatives": int(hard_arr.sum()),
        "hard_negatives_judged_relevant": int((p & (y == 0) & hard_arr).sum()),
        "positive_score_quantiles": _quantiles(s[y == 1]),
        "negative_score_quantiles": _quantiles(s[y == 0]),
    }


def _quantiles(values: Any) -> list[float]:
    """Minimum, 10th, 50th, 90th percentile and maximum."""
    import numpy as np

    if not len(values):
        return []
    return [round(float(v), 3) for v in np.quantile(values, [0, 0.1, 0.5, 0.9, 1])]


def kappa(truth: Sequence[str], predicted: Sequence[str]) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(set(truth) | set(predicted)) < 2:
        return 1.0 if list(truth) == list(predicted) else 0.0
    return round(float(cohen_kappa_score(truth, predicted, labels=list(LABELS))), 3)


def confusion(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, int]]:
    table = {t: dict.fromkeys(LABELS, 0) for t in LABELS}
    for t, p in zip(truth, predicted, strict=True):
        table[t][p] += 1
    return table


# ---------------------------------------------------------------------------
# One held-out study of the TF-IDF model


def _fold_examples(
    rubric: Any, actions: Sequence[dict], train_actions: Sequence[int], *, labelled: bool = False
) -> list[Example]:
    out = learned.rubric_examples(rubric)
    for i in train_actions:
        a = actions[i]
        if a["commitment"] == rubric.number:
            labels = dict(a["dimensions"]) if labelled else None
            out.append(
                Example(a["text"], a["commitment"], True, member=a["member"], labels=labels, source="gold")
            )
    return out + learned.offtopic_examples()


def _feature_space(rubrics, actions, pages, train_actions, train_pages, settings) -> Features:
    """Fitted on training-fold texts only (no labels): rubrics, off-topic, actions, page windows."""
    texts = [e.text for r in rubrics for e in learned.rubric_examples(r)]
    texts += [t for _, t in learned.offtopic_paragraphs()]
    texts += [actions[i]["text"] for i in train_actions]
    for i in train_pages:
        texts += learned.windows(pages[i]["text"], settings["window_chars"], settings["max_windows"])
    return Features(settings).fit(texts)


def cross_validate(
    rubrics: Sequence[Any],
    actions: Sequence[dict],
    pages: Sequence[dict],
    *,
    protocol: str = "cold",
    n_folds: int = 5,
    settings: dict | None = None,
    calibrate: bool = True,
) -> dict:
    """Held-out figures of the TF-IDF model per commitment: relevance on the stream (held-out
    actions of the commitment + held-out real pages), dimension kappa and member attribution on
    the held-out actions.

    ``protocol``: ``cold`` (rubrics, training-fold actions as positives without dimension labels,
    shipped off-topic text), ``rejects`` (also the training folds' pages as rejections) or
    ``labelled`` (also the training-fold actions' reference labels, as if all were decided).
    """
    settings = {**learned.SETTINGS, **(settings or {})}
    split = folds(actions, pages, n_folds, settings["seed"])
    shared = _shared(actions)
    out: dict[str, Any] = {"protocol": _protocol_text(protocol, n_folds, calibrate), "commitments": {}}
    collected: dict[int, dict[str, Any]] = {
        r.number: {"scores": [], "truth": [], "pred": [], "hard": [], "dims": {}, "members": []}
        for r in rubrics
    }
    started = time.monotonic()
    for fold in split:
        test_a, test_p = set(fold["actions"]), set(fold["pages"])
        train_a = [i for i in range(len(actions)) if i not in test_a]
        train_p = [i for i in range(len(pages)) if i not in test_p]
        features = _feature_space(rubrics, actions, pages, train_a, train_p, settings)
        for rubric in rubrics:
            examples = _fold_examples(rubric, actions, train_a, labelled=protocol == "labelled")
            if protocol in ("rejects", "labelled"):
                examples += [Example(pages[i]["text"], 0, False, source="rejected") for i in train_p]
            model = learned.train(
                examples, [rubric], settings=settings, features=features, calibrate=calibrate
            )
            _collect(
                model,
                rubric,
                actions,
                pages,
                sorted(test_a),
                sorted(test_p),
                collected[rubric.number],
                shared,
            )
    for rubric in rubrics:
        out["commitments"][str(rubric.number)] = _summarise(collected[rubric.number], rubric)
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def _protocol_text(protocol: str, n_folds: int, calibrate: bool) -> str:
    trained = {
        "cold": "rubric text, training-fold cited actions (relevance and member only), shipped off-topic text",
        "rejects": "as cold, plus the training folds' real pages as rejections",
        "labelled": "as rejects, plus the training-fold actions' reference labels (every action decided)",
    }[protocol]
    return (
        f"{n_folds} folds; actions grouped by near-duplicate (word 5-gram Jaccard >= 0.5), pages by site; "
        f"trained on {trained}; measured on the held-out fold, pooled; "
        f"{'calibrated on inner grouped folds' if calibrate else 'uncalibrated'}; dimension targets are "
        "reference labels from a model, not human coding"
    )


def _shared(actions: Sequence[dict]) -> set[int]:
    """The actions cited under several members (:func:`classifier.learned.shared_citations`)."""
    return learned.shared_citations([(a["commitment"], a["text"], a["member"]) for a in actions])


def _collect(model, rubric, actions, pages, test_a, test_p, bucket, shared: set[int]) -> None:
    own = [i for i in test_a if actions[i]["commitment"] == rubric.number]
    judged_a = model.judge_many([actions[i]["text"] for i in own], rubric.number)
    judged_p = model.judge_many([pages[i]["text"] for i in test_p], rubric.number)
    for j in judged_a:
        bucket["scores"].append(j.relevance)
        bucket["pred"].append(j.relevant)
        bucket["truth"].append(1)
        bucket["hard"].append(False)
    for i, j in zip(test_p, judged_p, strict=True):
        if j.relevant:
            bucket.setdefault("through", []).append(pages[i]["file"])
        bucket["scores"].append(j.relevance)
        bucket["pred"].append(j.relevant)
        bucket["truth"].append(0)
        bucket["hard"].append(pages[i]["hard"])
    for i, j in zip(own, judged_a, strict=True):
        a = actions[i]
        for d in rubric.dimension_ids:
            predicted = learned.label_of(j.dimensions[d])
            bucket["dims"].setdefault(d, []).append((a["dimensions"][d], predicted))
        bucket["members"].append((a["member"], j.members, i in shared))


def _summarise(bucket: dict, rubric: Any) -> dict:
    dims: dict[str, dict[str, Any]] = {}
    for d, pairs in bucket["dims"].items():
        truth, pred = [t for t, _ in pairs], [p for _, p in pairs]
        dims[d] = {"kappa": kappa(truth, pred), "confusion": confusion(truth, pred)}
    members: list[tuple[str, list[str], bool]] = bucket["members"]
    attributable = [(t, p) for t, p, shared in members if not shared]
    return {
        "stream": stream_figures(bucket["scores"], bucket["truth"], bucket["pred"], bucket["hard"]),
        "dimensions": dims,
        "mean_kappa": round(sum(v["kappa"] for v in dims.values()) / max(1, len(dims)), 3),
        "member_exact": round(sum(bool(p == [t]) for t, p, _ in members) / max(1, len(members)), 3),
        "member_top1": round(sum(bool(p) and p[0] == t for t, p, _ in members) / max(1, len(members)), 3),
        # leaving out the actions whose text (or a near-duplicate) is cited under several members
        "member_exact_attributable": round(
            sum(bool(p == [t]) for t, p in attributable) / max(1, len(attributable)), 3
        ),
        "pages_judged_relevant": sorted(bucket.get("through", [])),
    }


# ---------------------------------------------------------------------------
# The learning curve: simulated analysts deciding training-fold items


def _decide(item: tuple[str, int], rubric: Any, actions: Sequence[dict], pages: Sequence[dict]) -> Example:
    """The simulated analyst: an action is accepted with its reference labels (a relabel where the
    model said otherwise), a page is rejected."""
    kind, i = item
    if kind == "action":
        a = actions[i]
        return Example(
            a["text"],
            rubric.number,
            True,
            member=a["member"],
            labels=dict(a["dimensions"]),
            source="decision",
        )
    return Example(pages[i]["text"], rubric.number, False, source="decision")


def _uncertainty(j: Any) -> float:
    """How unsure a judgement is: of relevance, and (as far as relevant) of the dimensions' labels."""
    relevance = 1 - abs(2 * j.relevance - 1)
    dims = [1 - max(p.values()) for p in j.dimensions.values()]
    return relevance + j.relevance * sum(dims) / max(1, len(dims))


def _next_decisions(model, rubric, order, decided, count, actions, pages, *, uncertainty, queue):
    """The ``count`` items the simulated analyst decides next, from the undecided ones in ``order``.

    With ``queue``, the analyst works through the review queue: the items the current model judges
    relevant come first (what the queue holds), the others only once the queue is empty (an analyst
    searching beyond it). Uncertainty-first ranks each part by :func:`_uncertainty`; otherwise the
    items keep ``order`` (a seeded random order)."""
    done = set(decided)
    rest = [it for it in order if it not in done]
    texts = [actions[i]["text"] if k == "action" else pages[i]["text"] for k, i in rest]
    judged = model.judge_many(texts, rubric.number)
    parts: list[list[tuple[float, tuple[str, int]]]] = [[], []]
    for position, (item, j) in enumerate(zip(rest, judged, strict=True)):
        key = -_uncertainty(j) if uncertainty else float(position)
        parts[0 if (j.relevant or not queue) else 1].append((key, item))
    ranked = [item for part in parts for _, item in sorted(part, key=lambda p: p[0])]
    return ranked[:count]


def learning_curve(
    rubrics: Sequence[Any],
    actions: Sequence[dict],
    pages: Sequence[dict],
    *,
    steps: Sequence[int] = (0, 25, 50, 100, 200),
    seeds: Sequence[int] = (0, 1, 2),
    n_folds: int = 5,
    settings: dict | None = None,
    queue: bool = True,
) -> dict:
    """Figures after 0, 25, 50, 100, 200 simulated decisions, uncertainty-first and at random.

    In each fold the analyst decides training-fold items (that commitment's cited actions and the
    real pages); the model is retrained from the cold start plus the decisions so far and measured
    on the held-out fold. With ``queue`` (the default) the analyst decides what the review queue
    holds, the items the current model judges relevant, before anything else
    (:func:`_next_decisions`); without it, any training-fold item. Uncertainty-first picks, at each
    step, the undecided items the current model is least sure of; random uses each seed's order.
    """
    settings = {**learned.SETTINGS, **(settings or {})}
    split = folds(actions, pages, n_folds, settings["seed"])
    shared = _shared(actions)
    strategies = ["uncertainty"] + [f"random:{s}" for s in seeds]
    raw: dict[int, dict[str, dict[int, dict]]] = {
        r.number: {s: {n: _bucket() for n in steps} for s in strategies} for r in rubrics
    }
    started = time.monotonic()
    for fold in split:
        test_a, test_p = sorted(fold["actions"]), sorted(fold["pages"])
        held_a, held_p = set(test_a), set(test_p)
        train_a = [i for i in range(len(actions)) if i not in held_a]
        train_p = [i for i in range(len(pages)) if i not in held_p]
        features = _feature_space(rubrics, actions, pages, train_a, train_p, settings)
        for rubric in rubrics:
            base = _fold_examples(rubric, actions, train_a)
            pool = [("action", i) for i in train_a if actions[i]["commitment"] == rubric.number]
            pool += [("page", i) for i in train_p]
            cold = _train_with(base, [], rubric, actions, pages, features, settings)
            for strategy in strategies:
                order = list(pool)
                if strategy.startswith("random"):
                    random.Random(int(strategy.split(":")[1])).shuffle(order)
                decided: list[tuple[str, int]] = []
                model = cold
                for n in steps:
                    if n > len(decided):
                        decided += _next_decisions(
                            model, rubric, order, decided, n - len(decided), actions, pages,
                            uncertainty=strategy == "uncertainty", queue=queue,
                        )  # fmt: skip
                        model = _train_with(base, decided, rubric, actions, pages, features, settings)
                    _collect(
                        model, rubric, actions, pages, test_a, test_p, raw[rubric.number][strategy][n], shared
                    )
    curve: dict[str, Any] = {
        "protocol": (
            f"{n_folds} folds (actions grouped by near-duplicate, pages by site); in each, a simulated "
            "analyst decides training-fold items (the commitment's cited actions: accept with the "
            "reference labels; real pages: reject)"
            + (
                ", those the current model puts in the review queue (judged relevant) first, the rest "
                "only once the queue is empty"
                if queue
                else ", from all of them, in the queue or not"
            )
            + "; the model is retrained from the cold start plus "
            f"the decisions and measured on the held-out fold, pooled; random orders: seeds {list(seeds)}; "
            "uncalibrated; dimension targets are reference labels from a model, not human coding"
        ),
        "steps": list(steps),
        "commitments": {},
    }
    for rubric in rubrics:
        per = {}
        for strategy in strategies:
            per[strategy] = {str(n): _summarise(raw[rubric.number][strategy][n], rubric) for n in steps}
        per["random"] = _mean_random(per, [s for s in strategies if s.startswith("random")], steps)
        curve["commitments"][str(rubric.number)] = per
    curve["verdict"] = _verdict(curve, steps)
    curve["seconds"] = round(time.monotonic() - started, 1)
    return curve


def evaluation_curve(
    rubrics: Sequence[Any],
    *,
    random_orders: int = 1,
    n_folds: int = 5,
    steps: Sequence[int] = (0, 25, 50, 100, 200),
    cache: Path | None = None,
    measure: bool = True,
) -> dict | None:
    """The learning curve of an evaluation run (:func:`learning_curve`) on the shipped data: the
    reference-labelled cited actions and the real pages of the stream, ``random_orders`` random
    orders (seeds 0, 1, ...) against uncertainty-first.

    It depends on the shipped data, the rubrics and the model's settings only, not on the database
    or the backend evaluated: it is kept in ``cache`` (a directory) under the sha256 of all of
    those, so every later run carries it at no cost. With ``measure`` False, only a kept curve is
    returned (None when there is none)."""
    from .dataset import REFERENCE_LABELS, real_pages
    from .store import data_file

    if not measure and not (cache and any(cache.glob("learning-curve-*.json"))):
        return None  # nothing kept: not even the inputs need reading
    labels = data_file(*REFERENCE_LABELS)
    numbers = {r.number for r in rubrics}
    seeds = list(range(random_orders))
    key = hashlib.sha256(
        json.dumps(
            [labels.read_text(encoding="utf-8"), sorted(p[2] for p in real_pages()),
             [r.model_dump_json() for r in rubrics], learned.offtopic_paragraphs(), learned.SETTINGS,
             list(steps), seeds, n_folds, CURVE_FORMAT],
            sort_keys=True, default=str,
        ).encode("utf-8")
    ).hexdigest()  # fmt: skip
    kept = cache / f"learning-curve-{key[:16]}.json" if cache else None
    if kept and kept.is_file():
        return json.loads(kept.read_text(encoding="utf-8"))
    if not measure:
        return None
    actions = [a for a in reference_actions(labels) if a["commitment"] in numbers]
    pages = [
        {"file": name, "url": url, "site": urlsplit(url).netloc.removeprefix("www."), "text": text,
         "hard": kind == "hard_page"}
        for name, url, text, kind in real_pages()
    ]  # fmt: skip
    with learned.limited_threads():
        curve = learning_curve(rubrics, actions, pages, steps=steps, seeds=seeds, n_folds=n_folds)
    curve["inputs_sha256"] = "sha256:" + key
    if kept:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(curve, ensure_ascii=False), encoding="utf-8")
    return curve


def _bucket() -> dict:
    return {"scores": [], "truth": [], "pred": [], "hard": [], "dims": {}, "members": []}


def _train_with(base, decided, rubric, actions, pages, features, settings):
    decided_texts = {actions[i]["text"] for k, i in decided if k == "action"}
    examples = [e for e in base if not (e.source == "gold" and e.text in decided_texts)]
    examples += [_decide(item, rubric, actions, pages) for item in decided]
    return learned.train(examples, [rubric], settings=settings, features=features, calibrate=False)


def _mean_random(per: dict, names: list[str], steps: Sequence[int]) -> dict:
    out = {}
    for n in steps:
        rows = [per[s][str(n)] for s in names]
        out[str(n)] = {
            "mean_kappa": round(sum(r["mean_kappa"] for r in rows) / len(rows), 3),
            "pr_auc": round(sum(r["stream"]["pr_auc"] for r in rows) / len(rows), 3),
            "negatives_judged_relevant_share": round(
                sum(r["stream"]["negatives_judged_relevant_share"] for r in rows) / len(rows), 3
            ),
            "member_exact": round(sum(r["member_exact"] for r in rows) / len(rows), 3),
            "member_exact_attributable": round(
                sum(r["member_exact_attributable"] for r in rows) / len(rows), 3
            ),
            "kappa": {
                d: round(sum(r["dimensions"][d]["kappa"] for r in rows) / len(rows), 3)
                for d in rows[0]["dimensions"]
            },
        }
    return out


def _verdict(curve: dict, steps: Sequence[int]) -> str:
    lines = []
    for number, per in curve["commitments"].items():
        wins = [
            n
            for n in steps[1:]
            if per["uncertainty"][str(n)]["mean_kappa"] > per["random"][str(n)]["mean_kappa"]
        ]
        if len(wins) == len(steps) - 1:
            lines.append(f"commitment {number}: uncertainty-first beats random on mean kappa at every step")
        elif not wins:
            lines.append(
                f"commitment {number}: uncertainty-first does not beat random on mean kappa at any step"
            )
        else:
            lines.append(
                f"commitment {number}: uncertainty-first beats random on mean kappa at {wins} decisions only"
            )
    return "; ".join(lines)


def plot_learning_curve(curve: dict, path: Path) -> Path:
    """The curve as a PNG: mean dimension kappa and stream PR-AUC against decisions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = curve["steps"]
    numbers = list(curve["commitments"])
    fig, axes = plt.subplots(2, len(numbers), figsize=(5 * len(numbers), 7), squeeze=False)
    for col, number in enumerate(numbers):
        per = curve["commitments"][number]
        for strategy, style in (("uncertainty", "o-"), ("random", "s--")):
            kappas = [per[strategy][str(n)]["mean_kappa"] for n in steps]
            aucs = [
                per[strategy][str(n)]["stream"]["pr_auc"]
                if strategy != "random"
                else per[strategy][str(n)]["pr_auc"]
                for n in steps
            ]
            axes[0][col].plot(steps, kappas, style, label=strategy)
            axes[1][col].plot(steps, aucs, style, label=strategy)
        axes[0][col].set_title(f"commitment {number}: mean dimension kappa")
        axes[1][col].set_title(f"commitment {number}: stream PR-AUC")
        for row in (0, 1):
            axes[row][col].set_xlabel("simulated decisions")
            axes[row][col].legend()
            axes[row][col].grid(alpha=0.3)
    fig.text(0.01, 0.005, "kappa against reference labels from a model, not human coding", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


__all__ = [
    "confusion",
    "cross_validate",
    "evaluation_curve",
    "folds",
    "kappa",
    "learning_curve",
    "page_texts",
    "plot_learning_curve",
    "reference_actions",
    "stream_figures",
]
