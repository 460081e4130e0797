"""Benchmark: parse and import the bundled compliance-report chapters.

Prints, per chapter, the median and p95 over repeated runs of:
  - reference: reading the file, hashing it (sha256) and splitting its lines, the work any
    importer must do;
  - parse: the report parser on the text;
  - import: parse + write to a fresh SQLite file in one transaction;
and the ratio of parse and import to the reference measured in the same run.

    python -m bench.gold_import [--repeat 20]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from classifier import gold
from classifier.reports import parse_report
from classifier.store import open_db

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "corpus" / "reports"


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    manifest = gold.read_manifest(REPORTS)
    print(
        f"{'file':<28}{'chars':>8}{'actions':>9}  {'reference ms':>13}{'parse ms':>10}{'import ms':>11}  ratios"
    )
    totals = {"reference": 0.0, "parse": 0.0, "import": 0.0}
    for name in manifest:
        path = REPORTS / name

        def reference(path=path):
            text = path.read_bytes().decode("utf-8")
            hashlib.sha256(text.encode()).hexdigest()
            return text.splitlines()

        text = path.read_text(encoding="utf-8")
        report = parse_report(text, file_name=name)
        actions = sum(len(m.actions) for c in report.chapters for m in c.members)

        def do_import(path=path):
            with tempfile.TemporaryDirectory() as tmp:
                db = open_db(Path(tmp) / "bench.db")
                gold.import_report(db, path)
                db.conn.close()

        ref = timed(reference, args.repeat)
        parse = timed(lambda text=text, name=name: parse_report(text, file_name=name), args.repeat)
        imp = timed(do_import, args.repeat)
        r, p, i = statistics.median(ref), statistics.median(parse), statistics.median(imp)
        totals["reference"] += r
        totals["parse"] += p
        totals["import"] += i
        print(
            f"{name:<28}{len(text):>8}{actions:>9}  {r * 1000:>8.2f} (p95 {p95(ref) * 1000:.2f})"
            f"{p * 1000:>8.1f} (p95 {p95(parse) * 1000:.1f}){i * 1000:>8.1f} (p95 {p95(imp) * 1000:.1f})"
            f"  parse/ref {p / r:.0f}x, import/parse {i / p:.2f}x"
        )
    print(
        f"both chapters: parse {totals['parse'] * 1000:.1f} ms, parse+import {totals['import'] * 1000:.1f} ms "
        f"(medians of {args.repeat} runs; import includes creating the database and its migrations)"
    )


if __name__ == "__main__":
    main()
