"""Benchmark: report import time against file size, for many shapes of file.

`evidence gold import` must take time linear in the file's size whatever its shape, so
that the 50 MB cap on a report file bounds the time an import can take. Each shape below
is generated at several sizes and imported (read, parsed, stored or refused: whatever
`gold.import_report` does with it) into a fresh SQLite file, in a fresh process; printed
are the seconds, the microseconds per kilobyte (flat across sizes when the time is linear)
and the process's peak memory.

Shapes: the bundled chapters padded with more cited actions (valid reports that import),
the bundled chapters without blank lines, and adversarial text: one huge paragraph of
short lines, one huge line, blank-line-separated unterminated paragraphs, lines of URLs,
thousands of footnotes (with URLs apart, with URL fragments, with publishers to match),
lines full of footnote-like numbers, and long runs of the characters the parser's patterns
look for (backslashes, brackets, '<https://', 'Thus,', 'Access Date:', spaces).

With --baseline PATH (a checkout of an older version, e.g. `git worktree add /tmp/old
76cc6e2`), the same inputs are imported with that version's code too, loaded under another
module name in the same way; its runs stop at --budget seconds (the older parser was
quadratic in a paragraph's length, so it gets smaller sizes: --baseline-sizes).

    python -m bench.report_scaling [--sizes 100k,1m,10m] [--cap-shapes NAME,...]
        [--shapes NAME,...] [--baseline PATH] [--baseline-sizes 25k,50k,100k] [--budget 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "corpus" / "reports"
MARKDOWN = (REPORTS / "000_977e9f2715cc7214.txt").read_text(encoding="utf-8")
PDF = (REPORTS / "001_917aac6ecb12f93e.txt").read_text(encoding="utf-8")
NEAR_CAP = 49_000_000  # bytes; the cap (classifier.reports.MAX_REPORT_BYTES) is 50,000,000
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def sup(n: int) -> str:
    return str(n).translate(SUPERSCRIPT)


def repeat(unit, size: int, head: str = "", tail: str = "") -> str:
    """``head``, then ``unit`` (a string, or a function of the copy's index) until ``size``
    bytes, then ``tail``."""
    parts, total, i = [head], len(head.encode()) + len(tail.encode()), 0
    if isinstance(unit, str):
        n = max(1, (size - total) // len(unit.encode()))
        return head + unit * n + tail
    while total < size:
        piece = unit(i)
        parts.append(piece)
        total += len(piece.encode())
        i += 1
    return "".join(parts) + tail


def padded_chapter(text: str, action_start: str, conclusion_start: str, size: int) -> str:
    """The chapter with one of its European Union actions repeated until it has ``size`` bytes:
    a valid report whose member section grows."""
    start = text.index(action_start)
    action = text[start : text.index("\n\n", start) + 2]
    cut = text.index(conclusion_start)
    return repeat(action, size, text[:cut], text[cut:])


MINI_CHAPTER = (
    "2024 G7 Apulia Summit Interim Compliance Report\n\n15 June 2024 to 20 December 2024\n\n"
    "## 1. Border Management: Cooperation\n\n“We will cooperate.”\n\nApulia Leaders’ Communiqué\n\n"
    "### Assessment\n\nCanada\t\t0\t\n\n"
)
PROSE = "the committee met again to discuss the border management plan and its costs "
SHAPES = {
    # Valid reports: the bundled chapters with one member section padded.
    "chapter-markdown": lambda n: padded_chapter(
        MARKDOWN, "On 25 November 2024, the EUBAM", "The European Union has fully complied", n
    ),
    "chapter-pdf": lambda n: padded_chapter(
        PDF, "On 31 March 2025, Eurojust published", "The European Union has fully complied", n
    ),
    # The bundled chapters' lines without any blank line, repeated.
    "chapter-no-blank-lines": lambda n: repeat("\n".join(x for x in PDF.splitlines() if x.strip()) + "\n", n),
    # One paragraph: many lines, or one line, or lines of one character.
    "paragraph-of-lines": lambda n: repeat(PROSE.strip() + "\n", n),
    "one-huge-line": lambda n: repeat(PROSE, n),
    "one-char-lines": lambda n: repeat("a\n", n),
    "unterminated-paragraphs": lambda n: repeat("some words without an end\n\n", n),
    "one-char-paragraphs": lambda n: repeat("a\n\n", n),
    # URLs: one broken over many lines, or a URL per line.
    "url-continued-lines": lambda n: repeat("https://example.org/news/border-\n", n),
    "url-lines": lambda n: repeat(lambda i: f"https://example.org/news/{i}\n", n),
    # Footnotes by the thousand.
    "footnotes-pdf": lambda n: repeat(
        lambda i: (
            f"{sup(i + 1)} Title {i}, Ministry {i} (Ottawa) 1 July 2024. "
            f"Access Date: 2 July 2024. https://example.org/n/{i}\n"
        ),
        n,
    ),
    "footnotes-markdown": lambda n: repeat(
        lambda i: (
            f"<sup>{i + 1}</sup> Title {i}, Ministry {i} (Ottawa) 1 July 2024. "
            f"Access Date: 2 July 2024. https://example.org/n/{i}\n\n"
        ),
        n,
    ),
    "tiny-footnotes": lambda n: repeat(lambda i: f"{sup(i + 1)} x\n", n),
    "footnotes-urls-apart": lambda n: repeat(
        lambda i: (
            "".join(
                f"{sup(i * 5 + k + 1)} Title, Ministry (Ottawa) 1 July 2024. Access Date: 2 July 2024.\n"
                for k in range(5)
            )
            + "".join(f"https://example.org/{i}/{k}\n" for k in range(5))
        ),
        n,
    ),
    "footnotes-url-fragments": lambda n: repeat(
        lambda i: (
            f"{sup(i + 1)} Title, Ministry (Ottawa) 1 July 2024. Access Date: 2 July 2024. "
            f"https://example.org/a-\nnews/item-{i}\n"
        ),
        n,
    ),
    "footnotes-publishers": lambda n: repeat(
        lambda i: (
            f"{sup(2 * i + 1)} Title {i}, Publisher {i} (Ottawa) 1 July 2024. https://e.org/{i}\n"
            f"{sup(2 * i + 2)} Title {i} Publisher {i} (Ottawa) 1 July 2024. https://e.org/{i}b\n"
        ),
        n,
    ),
    "many-markers-one-paragraph": lambda n: repeat(lambda i: f"word<sup>{i + 1}</sup> ", n),
    "spaced-numbers-one-line": lambda n: repeat("x 1234 Alpha ", n),
    "spaced-markers-one-line": lambda n: repeat(lambda i: f"a/b {sup(i + 1)} c/d ", n),
    # Long runs of what the parser's patterns look for.
    "run-backslashes": lambda n: repeat("\\", n, "# h\n"),
    "run-brackets": lambda n: repeat("[", n, "# h\n"),
    "run-unclosed-links": lambda n: repeat("[](http://x", n, "# h\n"),
    "run-angle-urls": lambda n: repeat("<https://a", n, "# h\n"),
    "run-spaces-after-member": lambda n: "Canada:" + " " * max(0, n - 10) + "x",
    "run-thus": lambda n: repeat("Thus, x ", n, MINI_CHAPTER + "### Canada: 0\n\n"),
    "run-access-dates": lambda n: repeat("Access Date: 1 ", n, "<sup>1</sup> "),
    "run-stray-paragraphs": lambda n: repeat(
        "Prose between actions.\n\n", n, MINI_CHAPTER + "### Canada: 0\n\nOpening.\n\nOn 1 July 2024, x.\n\n"
    ),
}
DEFAULT_CAP_SHAPES = ["chapter-markdown", "one-char-lines", "one-char-paragraphs", "tiny-footnotes"]


def load_classifier(root: Path | None):
    """This checkout's classifier, or another checkout's under the module name ``baseline``."""
    if root is None:
        from classifier import gold, store

        return gold, store
    spec = importlib.util.spec_from_file_location(
        "baseline", root / "classifier" / "__init__.py", submodule_search_locations=[str(root / "classifier")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("baseline.gold"), importlib.import_module("baseline.store")


def one(root: str, shape: str, size: int) -> dict:
    """Import one generated file (run in a child process: fresh memory, killable)."""
    gold, store = load_classifier(Path(root) if root else None)
    text = SHAPES[shape](size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{shape}.txt"
        path.write_text(text, encoding="utf-8")
        db = store.open_db(Path(tmp) / "bench.db")
        start = time.perf_counter()
        try:
            result = gold.import_report(db, path)
            outcome = f"{result.status}, {result.evidence} actions"
        except Exception as exc:  # the benchmark reports any outcome; an import refusing is one
            outcome = "refused: " + re.sub(r"^\S+: ", "", str(exc))[:60]
        seconds = time.perf_counter() - start
    return {
        "bytes": len(text.encode()),
        "seconds": seconds,
        "outcome": outcome,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(root: Path | None, shape: str, size: int, budget: float) -> dict | None:
    command = [sys.executable, __file__, "--one", str(root or ""), shape, str(size)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=budget, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", text.strip().lower())
    if not m:
        raise SystemExit(f"bad size {text!r}: use e.g. 100k, 1m, 49000000")
    return int(float(m[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[m[2]])


def label(size: int) -> str:
    return f"{size / 1e6:g} MB" if size >= 1_000_000 else f"{size / 1e3:g} KB"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        _, _, root, shape, size = sys.argv
        print(json.dumps(one(root, shape, int(size))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m,10m")
    parser.add_argument(
        "--cap-shapes", default=",".join(DEFAULT_CAP_SHAPES), help="also imported near the cap"
    )
    parser.add_argument("--shapes", default="", help="only these shapes")
    parser.add_argument("--baseline", type=Path, help="a checkout of the version to compare with")
    parser.add_argument("--baseline-sizes", default="25k,50k,100k")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds before a run is abandoned")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    cap_shapes = {s for s in args.cap_shapes.split(",") if s}
    shapes = [s for s in args.shapes.split(",") if s] or list(SHAPES)
    unknown = [s for s in shapes + sorted(cap_shapes) if s not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shapes {unknown}; known: {', '.join(SHAPES)}")
    runs = [("this", None, sizes)]
    if args.baseline:
        runs.append(
            ("baseline", args.baseline.resolve(), [parse_size(s) for s in args.baseline_sizes.split(",")])
        )
    print(f"{'shape':<28}{'code':<10}{'size':>9}{'seconds':>10}{'µs/KB':>9}{'peak MB':>9}  outcome")
    worst: dict[str, float] = {}
    for shape in shapes:
        for name, root, shape_sizes in runs:
            chosen = list(shape_sizes)
            if name == "this" and shape in cap_shapes:
                chosen.append(NEAR_CAP)
            for size in chosen:
                r = measure(root, shape, size, args.budget)
                if r is None:
                    print(
                        f"{shape:<28}{name:<10}{label(size):>9}  over the {args.budget:.0f} s budget: stopped"
                    )
                    break
                per_kb = r["seconds"] / (r["bytes"] / 1000) * 1e6
                print(
                    f"{shape:<28}{name:<10}{label(size):>9}{r['seconds']:>10.3f}{per_kb:>9.0f}"
                    f"{r['peak_mb']:>9.0f}  {r['outcome']}",
                    flush=True,
                )
                if name == "this" and size == 1_000_000:
                    worst[shape] = r["seconds"]
    if worst:
        shape, seconds = max(worst.items(), key=lambda kv: kv[1])
        print(f"slowest shape at 1 MB: {shape}, {seconds:.2f} s")


if __name__ == "__main__":
    main()
