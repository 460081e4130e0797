"""Crawling: targets (pages to fetch and why), fetching them politely into documents, the URLs
the gold reports cite, and a crawl of the sources (discover, then fetch what is new or changed,
retrying transient failures of earlier runs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterable

import sqlite_utils

from .config import Config
from .discovery import discover
from .documents import Summary, Target, current_version, document_by_url, known_urls, log_attempt, store_fetch
from .fetch import Fetcher, FetchResult, InvalidURL, normalize_url
from .models import MEMBERS
from .sources import Source


def make_targets(
    urls: Iterable[str], links: dict[str, list[dict]] | None = None
) -> tuple[list[Target], list[str]]:
    """Normalise and merge URLs into targets (one per canonical spelling); return the invalid ones too."""
    merged: dict[str, Target] = {}
    invalid = []
    for url in urls:
        try:
            canonical = normalize_url(url)
        except InvalidURL:
            invalid.append(url)
            continue
        target = merged.setdefault(canonical, Target(canonical))
        for link in (links or {}).get(url, []):
            if link not in target.links:
                target.links.append(link)
    return list(merged.values()), invalid


async def fetch_targets(
    db: sqlite_utils.Database,
    targets: list[Target],
    config: Config,
    *,
    summary: Summary | None = None,
    fetcher: Fetcher | None = None,
    on_done: Callable[[Target, str], None] | None = None,
) -> Summary:
    """Fetch every target politely and store what comes back. Conditional for known documents."""
    summary = summary or Summary()
    started = time.monotonic()

    async def one(f: Fetcher, target: Target) -> None:
        document = document_by_url(db, target.url)
        version = current_version(db, document) if document else None
        result = await f.fetch(
            target.url,
            etag=document["etag"] if document and version else None,
            last_modified=document["last_modified"] if document and version else None,
        )
        # Extraction runs inline. Measured with bench/fetch_extract.py, moving it to a
        # thread made the run slower (interpreter-lock contention), not faster.
        store_fetch(db, target, result, summary)
        if on_done:
            on_done(target, result.outcome)

    if fetcher is not None:
        before = fetcher.requests_made
        await asyncio.gather(*(one(fetcher, t) for t in targets))
        summary.requests += fetcher.requests_made - before
    else:
        async with Fetcher(config.fetch) as f:
            await asyncio.gather(*(one(f, t) for t in targets))
            summary.requests += f.requests_made
    summary.elapsed += time.monotonic() - started
    return summary


def log_invalid(db: sqlite_utils.Database, urls: list[str], summary: Summary) -> None:
    """URLs refused before any request (not http or https, no host): counted and logged."""
    for url in urls:
        summary.failed["invalid-url"] += 1
        log_attempt(db, summary, FetchResult(url=url, outcome="invalid-url", error="only http and https URLs are fetched"),
             "document")  # fmt: skip


def gold_targets(
    db: sqlite_utils.Database, commitment: int | None = None, member: str | None = None
) -> list[Target]:
    """Every URL cited in the imported reports' footnotes, tagged with member and commitment."""
    from .gold import evidence_items

    links: dict[str, list[dict]] = {}
    for row in evidence_items(db, commitment, member):
        for fn in row["footnote_details"]:
            if fn["url"]:
                links.setdefault(fn["url"], []).append(
                    {
                        "member": row["member"],
                        "commitment": row["commitment"],
                        "source": "gold",
                        "report_id": row["report_id"],
                        "footnote": fn["number"],
                        "item_date": fn["published"],
                    }
                )
    # The PDF-extracted report loses hyphens at line breaks ('mediapress', 'crimeforum'); where
    # another footnote cites the same URL with them, fetch that spelling. The gold keeps the print.
    spelling: dict[str, str] = {}
    for url in sorted(links, key=lambda u: -u.count("-")):
        spelling.setdefault(url.replace("-", ""), url)
    repaired: dict[str, list[dict]] = {}
    for url, found in links.items():
        repaired.setdefault(spelling[url.replace("-", "")], []).extend(found)
    targets, _ = make_targets(repaired, repaired)
    return targets


# Failures worth another try on the next run; after MAX_ATTEMPTS runs a URL is given up.
TRANSIENT = ("rate-limited", "timeout", "network-error")
MAX_ATTEMPTS = 5


def _retryable(db: sqlite_utils.Database, sources: list[str]) -> dict[str, list[dict]]:
    """Items of these sources never stored because their fetch failed transiently (a 5xx, a
    429, a timeout), tried fewer than MAX_ATTEMPTS times: URL -> its links."""
    if not sources:
        return {}
    marks = ",".join("?" * len(sources))
    sql = f"""
        select l.canonical_url as url, l.member, l.commitment, l.source, l.report_id, l.footnote, l.item_date,
               (select count(*) from fetch_log f where f.canonical_url = l.canonical_url
                  and f.purpose = 'document') as attempts,
               (select f.outcome || ' ' || coalesce(f.status, '') from fetch_log f
                  where f.canonical_url = l.canonical_url and f.purpose = 'document'
                  order by f.id desc limit 1) as last
        from document_links l
        where l.source in ({marks})
          and not exists (select 1 from documents d where d.canonical_url = l.canonical_url and d.current_version > 0)
    """
    retry: dict[str, list[dict]] = {}
    for row in db.query(sql, sources):
        outcome, _, status = (row.pop("last") or "").partition(" ")
        transient = outcome in TRANSIENT or (
            outcome == "http-error" and status.isdigit() and int(status) >= 500
        )
        if transient and row.pop("attempts") < MAX_ATTEMPTS:
            retry.setdefault(row.pop("url"), []).append(row)
    return retry


async def crawl(
    db: sqlite_utils.Database,
    sources: list[Source],
    config: Config,
    *,
    since: dt.date | None = None,
    since_last_crawl: bool = False,
    fetcher: Fetcher | None = None,
    on_discovered: Callable[[int], None] | None = None,
    on_done: Callable[[Target, str], None] | None = None,
) -> Summary:
    """Discover new items from the sources and fetch them; return the summary.

    Items dated before ``since`` are left out; with ``since_last_crawl``, so are items dated
    before the day each source was last crawled in full (a source never crawled gives all its
    items). Stored items are fetched again (conditionally) only when the source dates them on
    or after the day we last fetched them.
    """
    summary = Summary()
    started = time.monotonic()

    async def run(f: Fetcher) -> None:
        before = f.requests_made
        states: list[dict] = []
        found = await asyncio.gather(*(discover(db, f, s, summary, states) for s in sources))
        links: dict[str, list[dict]] = {}
        dates: dict[str, dt.date] = {}
        cutoffs = {source.name: since for source in sources}
        if since_last_crawl:
            for row in db.table("source_state").rows:
                if row["source"] in cutoffs and row["last_crawled_utc"]:
                    cutoffs[row["source"]] = dt.date.fromisoformat(row["last_crawled_utc"][:10])
        for source, items in zip(sources, found, strict=True):
            cutoff = cutoffs[source.name]
            for item in items:
                if cutoff and item.date and item.date < cutoff:
                    continue
                if item.date:
                    dates[item.url] = max(item.date, dates.get(item.url, item.date))
                links.setdefault(item.url, []).extend(
                    {
                        "member": MEMBERS[source.member],
                        "commitment": commitment,
                        "source": source.name,
                        "report_id": None,
                        "footnote": None,
                        "item_date": item.date.isoformat() if item.date else None,
                    }
                    for commitment in (tuple(source.commitments) or (None,))
                )
        fetched_on = known_urls(db, list(links))
        # New items; known ones the source dates on or after our last fetch (changed, maybe: the
        # request is conditional); and earlier transient failures of these sources, retried.
        wanted = [
            u for u in links if u not in fetched_on or (u in dates and dates[u].isoformat() >= fetched_on[u])
        ]
        retry = {u: v for u, v in _retryable(db, [s.name for s in sources]).items() if u not in links}
        targets, invalid = make_targets(wanted + list(retry), {**links, **retry})
        for url in invalid:
            summary.failed["invalid-url"] += 1
            log_attempt(
                db,
                summary,
                FetchResult(url=url, outcome="invalid-url", error="not an http(s) URL"),
                "document",
            )
        summary.discovered = len(targets)
        summary.counts["retried"] += len(retry)
        if on_discovered:
            on_discovered(len(targets))
        summary.requests += f.requests_made - before
        await fetch_targets(db, targets, config, summary=summary, fetcher=f, on_done=on_done)
        for state in states:
            db.table("source_state").upsert(state, pk="source")

    if fetcher is not None:
        await run(fetcher)
    else:
        async with Fetcher(config.fetch) as f:
            await run(f)
    summary.elapsed = time.monotonic() - started
    return summary
