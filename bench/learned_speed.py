"""Benchmark: the learned backend's documents per second, against the embedded baseline in the
same run, with the thread count set (EVIDENCE_THREADS, default 1).

Documents: the 246 real pages of eval/data/realpages (extracted text, long and mostly
off-topic, like a crawl) and cited actions of the bundled reports, each classified against
both commitments through the classifier (cache, database, grounding) on a fresh database.
The learned model is trained first (time reported separately); the baseline's warm-up (loading
the embedding model, embedding the rubrics) is reported separately too.

    python -m bench.learned_speed [--documents 300] [--baseline-documents 20] [--threads 1]
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
    parser.add_argument("--baseline-documents", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ["EVIDENCE_THREADS"] = str(args.threads)

    from classifier import gold, learner, learning
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
            classifier = Classifier(db, Config(), backend=backend)
            items = [text_item(x, r) for x in docs for r in rubrics]
            t, c = time.monotonic(), time.process_time()
            summary = asyncio.run(classifier.run(items))
            elapsed = time.monotonic() - t
            cpu[backend] = time.process_time() - c
            assert summary.classified + summary.cached == len(items), summary.lines()
            return elapsed

        elapsed = run("learned", texts)
        learned_rate = len(texts) / elapsed
        learned_cpu = len(texts) / cpu["learned"]
        print(
            f"learned:  {len(texts)} documents in {elapsed:.1f} s: {learned_rate:.1f} documents/s "
            f"({learned_cpu:.1f} per CPU-second; load average {os.getloadavg()[0]:.1f})"
        )
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
                    "baseline_docs_per_s": round(baseline_rate, 2),
                    "learned_docs_per_cpu_s": round(learned_cpu, 1),
                    "load_average": os.getloadavg()[0],
                    "threads": args.threads,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
