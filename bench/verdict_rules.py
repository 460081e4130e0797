"""The proposal rules measured on the bundled gold: which rule, from confirmed actions, gives the
analysts' dimension readings and printed scores.

    python -m bench.verdict_rules [--json]

Imports the bundled chapters into a fresh database, labels every cited action with the reference
labels (eval/data/reference-labels/: a model's labels, not human coding) as if analysts had
confirmed them, and prints per rule: clear dimension readings agreed with (accuracy, Cohen's
kappa) and printed member scores reproduced through each rubric's rule (of 16; per commitment).
A rule's parameter is chosen in-sample (said so) and leave one member out (see
classifier/verdict_rules.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from classifier import dataset, gold, verdict_rules
from classifier.rubric import rubrics_for
from classifier.store import corpus_dir, open_db


def cited_actions(db) -> tuple[list[dict], int]:
    """The cited actions with their reference labels, and how many cited actions had none."""
    labels = dataset.reference_labels(db)
    rows = gold.evidence_items(db)
    actions = [
        {
            "commitment": r["commitment"],
            "member": r["member"],
            "dimensions": labels[f"{r['key']}@{r['commitment']}"],
        }
        for r in rows
        if f"{r['key']}@{r['commitment']}" in labels
    ]
    return actions, len(rows) - len(actions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "gold.db")
        gold.import_paths(db, [corpus_dir() / "reports"])
        actions, unlabelled = cited_actions(db)
        db.conn.close()
    rows = verdict_rules.measure(actions, rubrics_for())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{len(actions)} cited actions with reference labels ({unlabelled} without), 2 commitments, 16 members"
    )
    print(verdict_rules.render(rows))
    print("\nscores missed per rule:")
    for r in rows:
        print(f"  {r['rule']:<14} {'; '.join(r['misses']) or '-'}")
    print(f"\n({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
