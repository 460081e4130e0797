"""What the prefilter costs in recall and saves in calls, on the stream, held out.

    python -m bench.prefilter [--folds 5] [--out DIR]

The prefilter (classifier/prefilter.py) sends a model endpoint only what the embedded learned
model gives a calibrated relevance of at least ``[llm] prefilter``. Here every probability is a
held-out one: 5 folds over the cited actions (eval/data/reference-labels, grouped by
near-duplicate) and the 246 real pages (eval/data/realpages, all negatives, grouped by site);
each fold's model learns from the rubric, the training folds' cited actions and the shipped
off-topic text, never from a real page. Per commitment and pooled, at several thresholds: items
ruled out, the share of calls saved, the positives ruled out and the recall lost (positives
ruled out / positives). Figures are printed and written as JSON to --out (default eval/results/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier import learning, prefilter  # noqa: E402
from classifier.rubric import load_rubrics  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results")
    args = parser.parse_args(argv)
    rubrics = load_rubrics(ROOT / "corpus" / "commitments")
    actions = learning.reference_actions(ROOT / "eval" / "data" / "reference-labels" / "actions.jsonl")
    pages = learning.page_texts(ROOT / "eval" / "data" / "realpages", args.out / ".cache" / "realpages.json")
    started = time.monotonic()
    held = prefilter.held_out_relevance(rubrics, actions, pages, n_folds=args.folds)
    seconds = time.monotonic() - started
    pooled = {"probability": [], "positive": [], "hard": []}
    for bucket in held.values():
        for key in pooled:
            pooled[key] += bucket[key]
    result: dict = {
        "protocol": (
            f"{args.folds} folds; actions grouped by near-duplicate, pages by site; trained on rubric text, "
            "training-fold cited actions and shipped off-topic text (no real page); held-out calibrated "
            "relevance; each commitment's stream = its held-out cited actions + every held-out real page"
        ),
        "seconds": round(seconds, 1),
        "commitments": {},
    }
    print(result["protocol"])
    print(f"{'stream':<14}{'P <':>6}{'ruled out':>11}{'calls saved':>13}{'positives lost':>16}{'recall lost':>13}"
          f"{'hard pages sent':>17}")  # fmt: skip
    for name, bucket in [*((str(n), b) for n, b in held.items()), ("pooled", pooled)]:
        rows = []
        hard_total = sum(bucket["hard"])
        for threshold in prefilter.THRESHOLDS:
            f = prefilter.figures(bucket["probability"], bucket["positive"], threshold)
            f["hard_pages_sent"] = sum(
                1 for p, h in zip(bucket["probability"], bucket["hard"], strict=True) if h and p >= threshold
            )
            f["hard_pages"] = hard_total
            rows.append(f)
            label = f"commitment {name}" if name != "pooled" else "pooled"
            print(
                f"{label:<14}{threshold:>6g}{f['ruled_out']:>6} of {f['items']:<4}{f['calls_saved_share']:>10.1%}"
                f"{f['positives_ruled_out']:>8} of {f['positives']:<5}{f['recall_lost']:>10.1%}"
                f"{f['hard_pages_sent']:>9} of {hard_total}"
            )
        result["commitments"][name] = rows
    print(f"{seconds:.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "prefilter.json"
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"written: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
