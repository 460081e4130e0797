"""Benchmark: fetch and extract press releases end to end from a local server.

Serves N newsroom pages on 127.0.0.1 (built from the test newsroom's release pages, each
made unique), then:
  1. fetches, extracts and stores all N into a fresh database: pages per second;
  2. reference, measured in the same run: bare ``trafilatura.bare_extraction`` of the same
     HTML bodies, no HTTP and no database; the ratio end-to-end / reference says what the
     fetching, politeness and storage cost on top of extraction;
  3. a second run over the unchanged pages: requests made, new versions written (must be
     0), time.

    python -m bench.fetch_extract [--pages 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import re
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trafilatura

from classifier import crawl
from classifier.config import Config, FetchConfig
from classifier.store import open_db

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "tests" / "fixtures" / "newsroom"


def build_pages(count: int) -> dict[str, bytes]:
    templates = [
        p.read_text(encoding="utf-8")
        for p in sorted(TEMPLATES.glob("*.html"))
        if "<article" in p.read_text(encoding="utf-8") and "private" not in p.name
    ]
    pages = {}
    for n in range(count):
        html = templates[n % len(templates)].replace("{{BASE_URL}}", "")
        html = re.sub(r'<link rel="canonical"[^>]*>', "", html)
        # make each page distinct text, as real releases are
        html = html.replace(
            "</article>", f"<p>Reference number {n}: release {n} of the benchmark set.</p></article>", 1
        )
        pages[f"/news/bench/{n}.html"] = html.encode("utf-8")
    return pages


def bench_config() -> Config:
    """Fetch settings for a local server: no delay, 8 requests in flight, no retries."""
    return Config(
        fetch=FetchConfig(
            contact="bench@example.org",
            allow_private=True,
            per_host_delay=0,
            per_host_concurrency=8,
            concurrency=8,
            retries=0,
        )
    )


def reply(handler: BaseHTTPRequestHandler, body: bytes, content_type: str, etag: str) -> None:
    """200 with the body and its ETag, or 304 when the request's If-None-Match is that ETag."""
    if handler.headers.get("If-None-Match") == etag:
        handler.send_response(304)
        handler.send_header("ETag", etag)
        handler.end_headers()
        return
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("ETag", etag)
    handler.end_headers()
    handler.wfile.write(body)


def serve(pages: dict[str, bytes], port_queue, counter) -> None:
    """The page server, run in its own process so it does not share our interpreter lock."""
    lock = threading.Lock()
    etags = {path: '"' + hashlib.sha256(body).hexdigest()[:16] + '"' for path, body in pages.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            with lock:
                counter.value += 1
            if self.path == "/robots.txt":
                body = b"User-agent: *\nDisallow: /private/\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            body = pages.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            reply(self, body, "text/html; charset=utf-8", etags[self.path])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    pages = build_pages(args.pages)
    context = multiprocessing.get_context("fork")
    counter = context.Value("i", 0)
    ports = context.Queue()
    server = context.Process(target=serve, args=(pages, ports, counter), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    config = bench_config()
    urls = [base + path for path in pages]
    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        targets, _ = crawl.make_targets(urls)
        started = time.perf_counter()
        first = asyncio.run(crawl.fetch_targets(db, targets, config))
        end_to_end = time.perf_counter() - started

        started = time.perf_counter()
        for url, body in zip(urls, pages.values(), strict=True):
            trafilatura.bare_extraction(
                body.decode("utf-8"), url=url, with_metadata=True, favor_precision=True
            )
        reference = time.perf_counter() - started

        versions_before = db["document_versions"].count
        counter.value = 0
        targets, _ = crawl.make_targets(urls)
        started = time.perf_counter()
        second = asyncio.run(crawl.fetch_targets(db, targets, config))
        rerun = time.perf_counter() - started
        new_versions = db["document_versions"].count - versions_before
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
    requests_second = counter.value
    server.terminate()

    print(f"pages: {args.pages} ({sum(map(len, pages.values())) / 1e6:.1f} MB of HTML)")
    print(
        f"first run: {end_to_end:.2f} s, {args.pages / end_to_end:.0f} pages/s; "
        f"new {first.counts['new']}, failed {first.failures}; {first.requests} requests"
    )
    print(
        f"reference (bare trafilatura extraction, same HTML): {reference:.2f} s, {args.pages / reference:.0f} pages/s"
    )
    print(f"ratio end-to-end / reference: {end_to_end / reference:.2f}")
    print(
        f"second run over unchanged pages: {rerun:.2f} s, {requests_second} requests "
        f"({second.counts['unchanged']} not modified), new versions written: {new_versions}"
    )
    print(f"database after both runs: {size_mb:.1f} MB")


if __name__ == "__main__":
    main()
