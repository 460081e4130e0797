"""Benchmark: the nightly job (crawl -> classify -> queue) end to end over a local newsroom.

Serves N distinct press-release pages on 127.0.0.1 (the page generator of fetch_extract.py),
with robots.txt, ETag / If-None-Match (304) on every response, and per source a sitemap
index whose sitemaps list at most 1,000 pages each, <lastmod> being the page's own date
(all within the commitments' period). The pages are spread over a few sources, one member
each, tagged with commitments 18 and 19. The server runs in its own process and counts
the requests it answers. Then, with an embedded backend (``--backend``: the learned model,
by default, trained from the rubrics and the bundled reports' gold; or the baseline):
  1. reference (``--reference 0`` to leave it out): the backend alone on some of
     the pages' texts (extracted in memory, no HTTP), both commitments, in a fresh database,
     after a warm-up (loading the embedding model, training the learned one); its rate gives the expected duration of
     the nightly run, and the ratio nightly / reference says what the rest of the job costs
     on top of classification;
  2. one ``run_nightly`` into a fresh database: wall time and each stage's time (crawl,
     classify, queue), documents fetched, classifications made, queue items added,
     documents per second overall and per stage, requests served, the database size;
  3. a second ``run_nightly`` over the unchanged sources: requests made, documents new,
     classifications made (must be 0, or the script fails), queue changes, wall time and
     its ratio to the first run's.

The baseline classifies the generated releases at about one document (two classifications)
per second on a 2-core machine, so with it the default 10,000 documents take hours, nearly all
of it in the classify stage; the learned backend is tens of times faster.

    python -m bench.nightly_bench [--documents 10000] [--sources 4] [--reference 200]
                                  [--backend learned|baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from bench.fetch_extract import bench_config, build_pages, reply
from classifier.classify import Classifier, text_item
from classifier.config import Config
from classifier.extract import extract
from classifier.nightly import run_nightly
from classifier.rubric import rubrics_for
from classifier.sources import Source
from classifier.store import open_db

SITEMAP_SIZE = 1000  # page URLs per sitemap
MEMBER_CODES = ["CA", "FR", "DE", "IT", "JP", "UK", "US", "EU"]
COMMITMENTS = [18, 19]
FALLBACK_DATE = "2024-10-01"
# Rough baseline throughput on a 2-core machine, classifications (document x commitment) per
# second, for the expected duration when the reference is left out: it depends on the documents'
# length and on what else the machine runs.
EXPECTED_RATE = (1.5, 9)
# Request counters kept by the server: robots.txt, sitemaps (indexes included), pages, anything else.
ROBOTS, SITEMAPS, PAGES, OTHER = range(4)


def page_date(body: bytes) -> str:
    found = re.search(rb'article:published_time" content="(\d{4}-\d{2}-\d{2})', body)
    return found.group(1).decode() if found else FALLBACK_DATE


def sitemap_plan(paths: list[str], sources: int) -> dict[str, list[str]]:
    """Member code -> the page paths its source lists (contiguous shares, as even as they come)."""
    sources = max(1, min(sources, len(paths)))
    return {MEMBER_CODES[k]: paths[k * len(paths) // sources : (k + 1) * len(paths) // sources]
            for k in range(sources)}  # fmt: skip


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def sitemap_bodies(base: str, pages: dict[str, bytes], plan: dict[str, list[str]]) -> dict[str, bytes]:
    """Path -> body of every sitemap index and sitemap."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    xmlns = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
    bodies = {}
    for code, paths in plan.items():
        chunks = [paths[i : i + SITEMAP_SIZE] for i in range(0, len(paths), SITEMAP_SIZE)]
        children = []
        for k, chunk in enumerate(chunks, start=1):
            entries = "".join(
                f"<url><loc>{escape(base + p)}</loc><lastmod>{page_date(pages[p])}</lastmod></url>\n"
                for p in chunk
            )
            path = f"/sitemaps/{code.lower()}/{k}.xml"
            bodies[path] = f"{head}<urlset {xmlns}>\n{entries}</urlset>\n".encode()
            last = max(page_date(pages[p]) for p in chunk)
            children.append(f"<sitemap><loc>{escape(base + path)}</loc><lastmod>{last}</lastmod></sitemap>\n")
        index = f"{head}<sitemapindex {xmlns}>\n{''.join(children)}</sitemapindex>\n"
        bodies[f"/sitemaps/{code.lower()}/index.xml"] = index.encode()
    return bodies


def serve(pages: dict[str, bytes], plan: dict[str, list[str]], port_queue, counters) -> None:
    """The newsroom server, run in its own process so it does not share our interpreter lock."""
    lock = threading.Lock()
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # the handler is set below, once the port is known
    base = f"http://127.0.0.1:{server.server_address[1]}"
    robots = b"User-agent: *\nDisallow: /private/\n"
    bodies: dict[str, tuple[bytes, str, int]] = {"/robots.txt": (robots, "text/plain", ROBOTS)}
    bodies.update(
        (path, (body, "application/xml", SITEMAPS))
        for path, body in sitemap_bodies(base, pages, plan).items()
    )
    bodies.update((path, (body, "text/html; charset=utf-8", PAGES)) for path, body in pages.items())
    etags = {path: '"' + hashlib.sha256(body).hexdigest()[:16] + '"' for path, (body, _, _) in bodies.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            found = bodies.get(self.path)
            with lock:
                counters[found[2] if found else OTHER] += 1
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, content_type, _ = found
            reply(self, body, content_type, etags[self.path])

    server.RequestHandlerClass = Handler
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def requests_made(counts: list[int]) -> str:
    robots, sitemaps, pages, other = counts
    return (
        f"{robots + sitemaps + pages + other} requests "
        f"(robots.txt {robots}, sitemaps {sitemaps}, pages {pages}, other {other})"
    )


def db_size_mb(db, path: Path) -> float:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def per_second(count: float, seconds: float) -> str:
    return f"{count / seconds:.1f}/s" if seconds > 0 else "n/a"


ROOT = Path(__file__).resolve().parents[1]


def prepared_db(path: Path, backend: str):
    """A fresh database; for the learned backend with the bundled reports' gold imported (what
    its cold start learns from, as in a real installation)."""
    db = open_db(path)
    if backend == "learned":
        from classifier import gold

        gold.import_paths(db, [ROOT / "corpus" / "reports"])
    return db


async def backend_alone(db, texts: list[str], backend: str) -> Classifier:
    classifier = Classifier(db, Config(), backend=backend)
    await classifier.run([text_item(t, rubric) for t in texts for rubric in rubrics_for()])
    return classifier


def print_run(summary: dict, wall: float, documents: int) -> None:
    stages = summary["stages"]
    crawl, classify, queue = stages["crawl"], stages["classify"], stages["queue"]
    print(f"   status {summary['status']}, exit code {summary['exit_code']}, wall {wall:.1f} s "
          f"(summary: {summary['seconds']:.1f} s), {per_second(documents, wall)} documents overall")  # fmt: skip
    print(f"   crawl     {crawl['seconds']:8.1f} s  discovered {crawl['discovered']}, new {crawl['new']}, "
          f"changed {crawl['changed']}, unchanged {crawl['unchanged']}, failed {sum(crawl['failed'].values())}, "
          f"skipped {sum(crawl['skipped'].values())}; {per_second(crawl['new'], crawl['seconds'])} documents")  # fmt: skip
    items = classify["classified"] + classify["cached"]
    print(f"   classify  {classify['seconds']:8.1f} s  classified {classify['classified']}, cached {classify['cached']}, "
          f"failed {sum(classify['failed'].values())}, skipped {sum(classify['skipped'].values())}; "
          f"{per_second(items / len(COMMITMENTS), classify['seconds'])} documents, "
          f"{per_second(items, classify['seconds'])} classifications")  # fmt: skip
    print(f"   queue     {queue['seconds']:8.1f} s  added {queue['added']}, updated {queue['updated']}, "
          f"unchanged {queue['unchanged']}, changed after decision {queue['changed_after_decision']}; "
          f"{per_second(documents, queue['seconds'])} documents")  # fmt: skip


def reference(
    tmp: Path, base: str, pages: dict[str, bytes], count: int, backend: str
) -> tuple[float, float, Classifier]:
    """(warm-up seconds, seconds, classifier) of the backend alone on ``count`` of the pages' texts."""
    paths = list(pages)[: count + 1]
    texts = [extract(pages[p], "text/html; charset=utf-8", base + p).text for p in paths]
    db = prepared_db(tmp / "reference.db", backend)
    started = time.monotonic()
    asyncio.run(backend_alone(db, [texts[0] + "\nWarm-up."], backend))
    warm = time.monotonic() - started
    started = time.monotonic()
    alone = asyncio.run(backend_alone(db, texts[1:], backend))
    return warm, time.monotonic() - started, alone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=4, choices=range(1, len(MEMBER_CODES) + 1),
                        metavar="1-8", help="sitemap sources (one member each) the pages are spread over")  # fmt: skip
    parser.add_argument("--reference", type=int, default=200, metavar="N",
                        help="documents for the backend-alone reference (0: leave it out)")  # fmt: skip
    parser.add_argument("--backend", default="learned", choices=["learned", "baseline"])
    args = parser.parse_args(argv)

    pages = build_pages(args.documents)
    plan = sitemap_plan(list(pages), args.sources)
    context = multiprocessing.get_context("fork")
    counters = context.Array("i", 4)
    ports = context.Queue()
    server = context.Process(target=serve, args=(pages, plan, ports, counters), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=120)}"
    sources = [
        Source(
            name=f"bench-{code.lower()}",
            member=code,
            publisher=f"Benchmark newsroom {code}",
            kind="sitemap",
            url=f"{base}/sitemaps/{code.lower()}/index.xml",
            commitments=COMMITMENTS,
        )
        for code in plan
    ]
    config = bench_config()
    config.llm.backend = args.backend
    commitments = len(rubrics_for())
    print(f"{args.documents} documents ({sum(map(len, pages.values())) / 1e6:.1f} MB of HTML) in "
          f"{len(sources)} sitemap sources, {sum(-(-len(p) // SITEMAP_SIZE) for p in plan.values())} sitemaps; "
          f"{commitments} commitments, {args.backend} backend, {os.cpu_count()} CPUs, "
          f"EVIDENCE_THREADS {os.environ.get('EVIDENCE_THREADS', '1 (default)')}", flush=True)  # fmt: skip

    failed = False
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rate = None
            sample = min(args.reference, args.documents - 1)
            if sample > 0:
                warm, wall, alone = reference(Path(tmp), base, pages, sample, args.backend)
                rate = sample / wall
                print(f"\n1. reference: {args.backend} backend alone, {sample} of the pages' texts x {commitments} "
                      f"commitments (extracted in memory, fresh database, after a {warm:.1f} s warm-up)")  # fmt: skip
                print(f"   classified {alone.summary.classified}, failed {alone.summary.failures}, {wall:.1f} s: "
                      f"{rate:.2f} documents/s, {rate * commitments:.2f} classifications/s")  # fmt: skip
                expected = duration(args.documents / rate)
            else:
                print("\n1. reference: left out (--reference 0)")
                low, high = (args.documents * commitments / r for r in reversed(EXPECTED_RATE))
                expected = f"{duration(low)} to {duration(high)} (a rough range for 2 cores)"
            print(f"   expected classify stage of the first run: {args.documents * commitments} "
                  f"classifications, about {expected}", flush=True)  # fmt: skip

            path = Path(tmp) / "bench.db"
            db = prepared_db(path, args.backend)
            started = time.monotonic()
            first = run_nightly(db, config, sources)
            wall_first = time.monotonic() - started
            print(f"\n   first nightly run wall time: {duration(wall_first)} ({wall_first:.1f} s)")
            fetched = first["stages"]["crawl"]["new"]
            print(f"\n2. first nightly run: {requests_made(counters[:])}")
            print_run(first, wall_first, fetched)
            print(f"   documents fetched {fetched}, classifications made {first['stages']['classify']['classified']}, "
                  f"queue items added {first['stages']['queue']['added']}")  # fmt: skip
            print(f"   database: {db_size_mb(db, path):.1f} MB")
            if rate:
                classify = first["stages"]["classify"]
                if classify["seconds"] > 0:
                    stage = (classify["classified"] + classify["cached"]) / commitments / classify["seconds"]
                    print(
                        f"   ratio classify stage / reference: {stage / rate:.2f} ({stage:.2f} documents/s)"
                    )
                overall = fetched / wall_first
                print(f"   ratio whole run / reference: {overall / rate:.2f} ({overall:.2f} documents/s)")
            if fetched != args.documents:
                print(f"   FAIL: {fetched} documents fetched, {args.documents} served")
                failed = True
            sys.stdout.flush()

            before = counters[:]
            rows_before = db["classifications"].count
            started = time.monotonic()
            second = run_nightly(db, config, sources)
            wall_second = time.monotonic() - started
            made = second["stages"]["classify"]["classified"]
            new_rows = db["classifications"].count - rows_before
            during = [now - then for now, then in zip(counters[:], before, strict=True)]
            crawl = second["stages"]["crawl"]
            queue = second["stages"]["queue"]
            print(f"\n3. second nightly run over the unchanged sources (since {second['since']}): "
                  f"{requests_made(during)}")  # fmt: skip
            print_run(second, wall_second, crawl["new"])
            print(f"   documents new {crawl['new']} (changed {crawl['changed']}), classifications made {made} "
                  f"(rows written {new_rows}), queue added {queue['added']}, updated {queue['updated']}, "
                  f"changed after decision {queue['changed_after_decision']}")  # fmt: skip
            print(f"   ratio second / first run time: {wall_second / wall_first:.4f}")
            if made or new_rows:
                print(
                    f"   FAIL: the second run made {made} classifications ({new_rows} rows written); expected 0"
                )
                failed = True
            if crawl["new"] or crawl["changed"]:
                print(
                    f"   FAIL: the second run stored {crawl['new']} new and {crawl['changed']} changed documents"
                )
                failed = True
            print(f"   database after both runs: {db_size_mb(db, path):.1f} MB")
    finally:
        server.terminate()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
