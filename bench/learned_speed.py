"""Benchmark: the learned backend's documents per second, against the embedded baseline in the
same run, with the thread count set (EVIDENCE_THREADS, default 1).

Documents: the 246 real pages of eval/data/realpages (extracted text, long and mostly
off-topic, like a crawl) and cited actions of the bundled reports, each classified against
both commitments through the classifier (cache, database, grounding) on a fresh database.
The learned model is trained first (time reported separately); the baseline's warm-up (loading
the embedding model, embedding the rubrics) is reported separately too. Before and after in
the same run: ``--before-documents`` of the documents are classified first with the learned
model computing as it did before it was made faster (``learned.reference_implementation``:
scikit-learn's own transform and predict_proba, thread pools looked up per call, instruction-like
text found again at each look), then the stored classifications are removed and all the
documents are classified as it computes now; both rates and their ratio are printed, in wall
and in CPU time (on a loaded machine the CPU figure is the steadier one).

    python -m bench.learned_speed [--documents 300] [--before-documents 100]
                                  [--baseline-documents 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--before-documents", type=int, default=100)
    parser.add_argument("--baseline-documents", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ["EVIDENCE_THREADS"] = str(args.threads)

    from classifier import gold, instructions, learned, learner, learning
    from classifier.classify import Classifier, text_item
    from classifier.config import Config
    from classifier.rubric import rubrics_for
    from classifier.store import open_db

    rubrics = rubrics_for()
    pages = learning.page_texts(
        ROOT / "eval" / "data" / "realpages", ROOT / "eval" / "results" / ".cache" / "realpages.json"
    )
    actions = learning.reference_actions(ROOT / "eval" / "data" / "reference-labels" / "actions.jsonl")
    texts = [p["text"] for p in pages if p["text"]][: args.documents // 2]
    texts += [a["text"] for a in actions][: args.documents - len(texts)]
    chars = sum(len(t) for t in texts) / len(texts)
    print(
        f"{len(texts)} documents ({len(texts) - min(len(texts), args.documents // 2)} cited actions, "
        f"the rest real pages; mean {chars:,.0f} characters) x {len(rubrics)} commitments; "
        f"threads {args.threads}; {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        gold.import_paths(db, [ROOT / "corpus" / "reports"])
        t = time.monotonic()
        learner.learn(db, rubrics)
        print(f"learned: trained both commitments' models in {time.monotonic() - t:.1f} s")

        cpu: dict[str, float] = {}

        def run(backend: str, docs: list[str]) -> float:
            db.execute("delete from classifications")  # each run classifies, none is a cache hit
            classifier = Classifier(db, Config(), backend=backend)
            items = [text_item(x, r) for x in docs for r in rubrics]
            t, c = time.monotonic(), time.process_time()
            summary = asyncio.run(classifier.run(items))
            elapsed = time.monotonic() - t
            cpu[backend] = time.process_time() - c
            assert summary.classified + summary.cached == len(items), summary.lines()
            return elapsed

        # spread over the documents like the sample of the baseline: as many pages as actions
        step = max(1, len(texts) // max(1, args.before_documents))
        before = texts[::step][: args.before_documents]
        before_rate = before_cpu = None
        if before:
            find = instructions.find
            instructions.find = lambda text: list(instructions._find.__wrapped__(text))  # type: ignore[method-assign]
            try:
                with learned.reference_implementation():
                    elapsed = run("learned", before)
            finally:
                instructions.find = find  # type: ignore[method-assign]
            before_rate, before_cpu = len(before) / elapsed, len(before) / cpu["learned"]
            print(
                f"learned, as before: {len(before)} documents in {elapsed:.1f} s: {before_rate:.1f} documents/s "
                f"({before_cpu:.1f} per CPU-second; load average {os.getloadavg()[0]:.1f})"
            )
        elapsed = run("learned", texts)
        learned_rate = len(texts) / elapsed
        learned_cpu = len(texts) / cpu["learned"]
        print(
            f"learned:  {len(texts)} documents in {elapsed:.1f} s: {learned_rate:.1f} documents/s "
            f"({learned_cpu:.1f} per CPU-second; load average {os.getloadavg()[0]:.1f})"
        )
        if before_rate and before_cpu:
            print(
                f"learned now / as before: {learned_rate / before_rate:.1f}x in wall time, "
                f"{learned_cpu / before_cpu:.1f}x in CPU time"
            )
        baseline_rate = None
        if args.baseline_documents > 0:  # 0: leave the baseline out
            warm = run("baseline", ["On 4 July 2024, the Home Office funded border technology."])
            sample = texts[:: max(1, len(texts) // args.baseline_documents)][: args.baseline_documents]
            elapsed = run("baseline", sample)
            baseline_rate = len(sample) / elapsed
            print(
                f"baseline: warm-up {warm:.1f} s; {len(sample)} documents in {elapsed:.1f} s: "
                f"{baseline_rate:.2f} documents/s"
            )
            print(f"learned / baseline: {learned_rate / baseline_rate:.0f}x")
        print(
            json.dumps(
                {
                    "learned_docs_per_s": round(learned_rate, 1),
                    "baseline_docs_per_s": round(baseline_rate, 2) if baseline_rate else None,
                    "learned_docs_per_cpu_s": round(learned_cpu, 1),
                    "learned_before_docs_per_s": round(before_rate, 1) if before_rate else None,
                    "learned_before_docs_per_cpu_s": round(before_cpu, 1) if before_cpu else None,
                    "load_average": os.getloadavg()[0],
                    "threads": args.threads,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
