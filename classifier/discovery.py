"""Discovery: the item links (and their dates) a source lists now, from an RSS/Atom feed, a
sitemap (and its child sitemaps) or a paged listing, each request conditional on the source's
own validators.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import feedparser
import lxml.etree
import lxml.html
import sqlite_utils

from .dates import now_utc
from .documents import SKIPPED_OUTCOMES, Summary, known_urls, log_attempt
from .fetch import Fetcher, FetchResult, InvalidURL, normalize_url
from .sources import Source

MAX_LISTING_PAGES = 5
MAX_SITEMAPS = 50


@dataclass
class DiscoveredLink:
    """A page a source links to, with the date the source gives it (if any)."""

    url: str
    date: dt.date | None = None


def parse_feed(body: bytes, base_url: str) -> list[DiscoveredLink]:
    """Item links and dates of an RSS or Atom feed. Raises ValueError if it is not a feed."""
    parsed = feedparser.parse(body)
    if parsed.bozo and not parsed.entries:
        raise ValueError(f"not a readable feed: {parsed.get('bozo_exception')}")
    if not parsed.get("version") and not parsed.entries:
        raise ValueError("not an RSS or Atom feed")
    items = []
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            continue
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        items.append(DiscoveredLink(link if "://" in link else normalize_url(link, base=base_url),
                          dt.date(*when[:3]) if when else None))  # fmt: skip
    return items


def _xml_root(body: bytes) -> lxml.etree._Element:
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return lxml.etree.fromstring(body, parser=parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None


def parse_sitemap(body: bytes) -> tuple[list[DiscoveredLink], list[str]]:
    """(page items, child sitemap URLs) of a sitemap or sitemap index."""
    root = _xml_root(body)
    tag = lxml.etree.QName(root).localname
    if tag not in ("urlset", "sitemapindex"):
        raise ValueError(f"not a sitemap (root element {tag})")
    items, children = [], []
    for node in root:
        if not isinstance(node.tag, str):
            continue
        loc = lastmod = None
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = lxml.etree.QName(child).localname
            if name == "loc":
                loc = (child.text or "").strip()
            elif name == "lastmod":
                lastmod = (child.text or "").strip()
        if not loc:
            continue
        if tag == "sitemapindex":
            children.append(loc)
        else:
            date = None
            if lastmod:
                try:
                    date = dt.date.fromisoformat(lastmod[:10])
                except ValueError:
                    date = None
            items.append(DiscoveredLink(loc, date))
    return items, children


def parse_listing(body: bytes, base_url: str, selector: str) -> tuple[list[DiscoveredLink], str | None]:
    """(items, next page URL) of a listing page: links matched by the CSS selector."""
    try:
        root = lxml.html.fromstring(body)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ValueError(f"unreadable listing page: {exc}") from None
    items = []
    for anchor in root.cssselect(selector):
        href = anchor.get("href")
        if not href:
            continue
        date = None
        parent = anchor.getparent()
        stamp = parent.cssselect("time[datetime]") if parent is not None else []
        if stamp:
            try:
                date = dt.date.fromisoformat(stamp[0].get("datetime")[:10])
            except ValueError:
                date = None
        try:
            items.append(DiscoveredLink(normalize_url(href, base=base_url), date))
        except InvalidURL:
            continue
    following = root.cssselect('a[rel~="next"], link[rel~="next"]')
    next_url = (
        normalize_url(following[0].get("href"), base=base_url)
        if following and following[0].get("href")
        else None
    )
    return items, next_url


async def discover(
    db: sqlite_utils.Database,
    fetcher: Fetcher,
    source: Source,
    summary: Summary,
    states: list[dict] | None = None,
) -> list[DiscoveredLink]:
    """Items a source lists now. Conditional on the source's own ETag / Last-Modified.

    The source's new validators are saved at once, or, given ``states``, appended to it for the
    caller to save once the items are fetched: a run killed in between then sees the source
    again in full instead of a 304 that hides the items it never fetched."""
    state = (
        db.table("source_state").get(source.name)
        if db.table("source_state").count_where("source = ?", [source.name])
        else None
    )
    conditional = state if state and state["url"] == source.url else None
    result = await fetcher.fetch(
        source.url,
        etag=conditional["etag"] if conditional else None,
        last_modified=conditional["last_modified"] if conditional else None,
    )
    items: list[DiscoveredLink] = []
    outcome = result.outcome
    error = result.error
    if result.outcome == "fetched" and result.body is not None:
        base = result.final_url or source.url
        try:
            if source.kind == "feed":
                items = parse_feed(result.body, base)
            elif source.kind == "sitemap":
                items = await _walk_sitemap(db, fetcher, source, result, summary)
            else:
                items = await _walk_listing(db, fetcher, source, result, summary)
        except ValueError as exc:
            outcome, error = f"{source.kind}-unreadable", str(exc)
    if outcome in ("fetched", "not-modified"):
        state_row = {
            "source": source.name,
            "url": source.url,
            "etag": result.headers.get("etag") if outcome == "fetched" else (state or {}).get("etag"),
            "last_modified": result.headers.get("last-modified")
            if outcome == "fetched"
            else (state or {}).get("last_modified"),
            "last_crawled_utc": now_utc(),
            "last_outcome": outcome,
        }
        if states is None:
            db.table("source_state").upsert(state_row, pk="source")
        else:
            states.append(state_row)
    else:
        (summary.skipped if outcome in SKIPPED_OUTCOMES else summary.failed)[f"{source.kind}:{outcome}"] += 1
    log_attempt(db, summary, result, source.kind, source=source.name, outcome=outcome, error=error)
    return items


async def _walk_sitemap(
    db, fetcher: Fetcher, source: Source, first: FetchResult, summary: Summary
) -> list[DiscoveredLink]:
    items, children = parse_sitemap(first.body or b"")
    seen = {first.final_url}
    while children and len(seen) <= MAX_SITEMAPS:
        url = children.pop(0)
        if url in seen:
            continue
        seen.add(url)
        result = await fetcher.fetch(url)
        outcome, error = result.outcome, result.error
        if result.outcome == "fetched" and result.body is not None:
            try:
                more, deeper = parse_sitemap(result.body)
                items.extend(more)
                children.extend(deeper)
            except ValueError as exc:
                outcome, error = "sitemap-unreadable", str(exc)
        if outcome != "fetched":
            summary.failed[f"sitemap:{outcome}"] += 1
        log_attempt(db, summary, result, "sitemap", source=source.name, outcome=outcome, error=error)
    return items


async def _walk_listing(
    db, fetcher: Fetcher, source: Source, first: FetchResult, summary: Summary
) -> list[DiscoveredLink]:
    items, next_url = parse_listing(first.body or b"", first.final_url or source.url, source.selector or "")
    pages = 1
    known = known_urls(db, [i.url for i in items])
    # Incremental: stop paging once a page brings nothing new.
    while next_url and pages < MAX_LISTING_PAGES and len(known) < len(items):
        result = await fetcher.fetch(next_url)
        pages += 1
        outcome, error = result.outcome, result.error
        if result.outcome == "fetched" and result.body is not None:
            try:
                more, next_url = parse_listing(
                    result.body, result.final_url or next_url, source.selector or ""
                )
            except ValueError as exc:
                outcome, error, next_url = "listing-unreadable", str(exc), None
                more = []
            items.extend(more)
            known |= known_urls(db, [i.url for i in more])
        else:
            next_url = None
        if outcome != "fetched":
            summary.failed[f"listing:{outcome}"] += 1
        log_attempt(db, summary, result, "listing", source=source.name, outcome=outcome, error=error)
    return items
