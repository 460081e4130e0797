"""Benchmark: the review queue at scale.

Builds a database with N queue items (default 100,000) and 3·N decisions (300,000) over
synthetic documents and classifications, then times, over repeated runs (median and p95):
  - `queue list` first page with each ordering, and with the pending filter;
  - `queue show` (an item's derived state plus its document text);
  - one decision (an immediate transaction with the version check);
  - `score` for all commitments (every item's state derived, rule applied);
  - `evidence matrix` for one commitment, and the queue filtered to one of its cells.

    python -m bench.queue_bench [--items 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from classifier import review
from classifier.rubric import load_rubrics
from classifier.score import commitment_table
from classifier.store import open_db

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = [
    "Canada",
    "France",
    "Germany",
    "Italy",
    "Japan",
    "United Kingdom",
    "United States",
    "European Union",
]


def build(db, items: int, rubrics) -> None:
    rng = random.Random(7)
    conn = db.conn
    conn.execute("BEGIN")
    conn.executemany(
        "insert into documents (id, canonical_url, first_url, host, kind, current_version, first_seen_utc) "
        "values (?, ?, ?, 'bench.example', 'html', 1, '2025-01-01')",
        ((i, f"https://bench.example/{i}", f"https://bench.example/{i}") for i in range(1, items + 1)),
    )
    conn.executemany(
        "insert into document_versions (document_id, version, content_sha256, text, published) values (?, 1, ?, ?, ?)",
        (
            (i, f"sha256:{i:064x}", f"On 4 July 2024, officers seized boats in operation {i}. " * 8,
             f"2024-{rng.randint(6, 12):02d}-{rng.randint(1, 28):02d}")
            for i in range(1, items + 1)
        ),
    )  # fmt: skip
    conn.executemany(
        "insert into classifications (id, document_id, version, content_sha, commitment, backend, model, "
        "prompt_name, prompt_sha, status, relevant, members, dimensions, confidence, flags, created_utc) "
        "values (?, ?, 1, ?, ?, 'baseline', 'm', 'classify-v1', 'sha256:p', 'ok', 1, '[]', '{}', 0.5, '[]', 'now')",
        ((i, i, f"sha256:{i:064x}", rubrics[i % 2].number) for i in range(1, items + 1)),
    )
    rows = []
    for i in range(1, items + 1):
        rubric = rubrics[i % 2]
        labels = {d: rng.choice(["strong", "weak", "none"]) for d in rubric.dimension_ids}
        dims = {d: {"label": v, "rationale": "r", "quotes": [{"quote": "seized boats", "start": 24, "end": 36,
                "method": "exact", "score": 100.0}], "grounded": True} for d, v in labels.items()}  # fmt: skip
        flags = rng.choice([[], [], ["ungrounded"], ["outside-period"]])
        suggestion = {"labels": labels, "dimensions": dims, "summary": f"On 4 July 2024, item {i}.",
                      "action_date": "2024-07-04", "confidence": rng.random(), "flags": flags, "relevant": True,
                      "backend": "baseline", "model": "m", "prompt": "classify-v1", "members": []}  # fmt: skip
        rows.append(
            (i, i, f"sha256:{i:064x}", rubric.number, MEMBERS[i % 8], i, json.dumps(suggestion), f"sha256:{i}", 4,
             rng.randint(0, 7), f"2024-{rng.randint(6, 12):02d}-{rng.randint(1, 28):02d}")
        )  # fmt: skip
    conn.executemany(
        "insert into queue_items (id, document_id, content_sha, commitment, member, classification_id, suggestion, "
        "suggestion_sha, version, attention, published, created_utc, updated_utc) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'now', 'now')",
        rows,
    )
    decisions = []
    for i in range(1, items + 1):
        acts = [
            ("note", {"note": "seen"}),
            ("relabel", {"dimension": (rubrics[i % 2].dimension_ids[0]), "label": "weak"}),
        ]
        acts.append(rng.choice([("accept", {}), ("reject", {"reason": "no"}), ("note", {"note": "later"})]))
        for v, (action, payload) in enumerate(acts, start=1):
            decisions.append((i, "bench", action, json.dumps(payload), v))
    conn.executemany(
        "insert into decisions (item_id, analyst, action, payload, based_on_version, created_utc) "
        "values (?, ?, ?, ?, ?, 'now')",
        decisions,
    )
    # the state decide() keeps on each item, for decisions written in bulk here
    conn.execute(
        "update queue_items set state = coalesce((select case d.action when 'accept' then 'accepted' "
        "else 'rejected' end from decisions d where d.item_id = queue_items.id and d.action in "
        "('accept', 'reject') order by d.id desc limit 1), 'pending')"
    )
    conn.execute("COMMIT")


def timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rubrics = load_rubrics(ROOT / "corpus" / "commitments")
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        started = time.perf_counter()
        build(db, args.items, rubrics)
        print(
            f"built {db['queue_items'].count} items and {db['decisions'].count} decisions "
            f"in {time.perf_counter() - started:.1f} s"
        )
        rng = random.Random(1)
        results = []
        for order in review.ORDERS:
            results.append((f"queue list --order {order} (first page)",
                            timed(lambda order=order: review.list_items(db, order=order), args.repeat)))  # fmt: skip
        results.append(("queue list --state pending (first page)",
                        timed(lambda: review.list_items(db, state="pending"), args.repeat)))  # fmt: skip

        def show():
            item = rng.randint(1, args.items)
            review.state_of(db, item)
            db.execute("select text from document_versions where document_id = ?", [item]).fetchone()

        results.append(("queue show", timed(show, args.repeat * 5)))

        def one_decision():
            item = rng.randint(1, args.items)
            review.decide(db, item, "bench", "note", review.get_item(db, item)["version"], note="timed")

        results.append(("one decision", timed(one_decision, args.repeat * 5)))
        results.append(
            (
                "score, all commitments",
                timed(lambda: [commitment_table(db, r) for r in rubrics], max(3, args.repeat // 4)),
            )
        )
        from classifier.verdicts import matrix

        results.append(
            (
                "evidence matrix, one commitment",
                timed(lambda: matrix(db, rubrics[0]), max(3, args.repeat // 4)),
            )
        )
        from classifier.verdicts import cell_version, set_verdict

        def one_verdict():
            cell = (rubrics[0], "Canada", rubrics[0].dimension_ids[0])
            set_verdict(db, *cell, "weak", "bench", cell_version(db, rubrics[0].number, *cell[1:]))

        results.append(("one verdict (one member's cells read)", timed(one_verdict, args.repeat)))
        dim = rubrics[0].dimension_ids[1]
        results.append(("queue list, one matrix cell (first page)",
                        timed(lambda: review.list_items(db, member="Canada", commitment=rubrics[0].number,
                                                        dimension=dim), args.repeat)))  # fmt: skip
        for label, (median, p95) in results:
            print(f"{label:<42} median {median * 1000:9.1f} ms   p95 {p95 * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
