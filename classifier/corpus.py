"""The press-release corpus: sources, discovery, fetching into versioned documents.

``corpus/sources.toml`` names the newsrooms (feeds, sitemaps, listing pages). Crawling
discovers new item URLs from them; fetching stores each page once per canonical URL,
with a new version only when its extracted text changes, the raw bytes compressed under
their sha256, and every attempt in the fetch log. A failed fetch never deletes what we
had; a crash loses at most the pages in flight (each page is stored in its own
transaction), so a rerun continues.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import feedparser
import lxml.etree
import lxml.html
import sqlite_utils
from pydantic import Field, ValidationError, field_validator, model_validator

from .config import Config
from .dates import new_run_id, now_utc
from .extract import Extracted, ExtractionFailed, ExtractionSkipped, extract
from .fetch import Fetcher, FetchResult, InvalidURL, host_of, normalize_url
from .files import first_problem, read_toml
from .models import MEMBERS, Model

# Outcomes that are policy, not failure: they are skipped and do not fail a run.
SKIPPED_OUTCOMES = {"robots-disallowed"}
MAX_LISTING_PAGES = 5
MAX_SITEMAPS = 50


class SourcesError(Exception):
    """A sources.toml that cannot be used."""


class Source(Model):
    name: str
    member: str
    publisher: str
    kind: Literal["feed", "sitemap", "listing"]
    url: str
    selector: str | None = None
    language: str | None = None
    commitments: list[int] = Field(default_factory=list)
    cited: int = 0
    topics: list[str] = Field(default_factory=list)

    @field_validator("member")
    @classmethod
    def _member(cls, value: str) -> str:
        if value not in MEMBERS:
            raise ValueError(f"must be one of {', '.join(MEMBERS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Source:
        if self.kind == "listing" and not self.selector:
            raise ValueError("a listing source needs a CSS selector for its item links")
        try:
            normalize_url(self.url)
        except InvalidURL as exc:
            raise ValueError(str(exc)) from None
        return self


def load_sources(path: Path) -> list[Source]:
    data = read_toml(path, SourcesError, "sources file")
    sources = []
    for k, entry in enumerate(data.get("sources", []), start=1):
        try:
            sources.append(Source.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("name", f"#{k}")
            raise SourcesError(f"{path}: source {name}: {first_problem(exc)}") from None
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourcesError(f"{path}: source names repeat: {', '.join(duplicates)}")
    return sources


# ---------------------------------------------------------------------------
# Run bookkeeping


@dataclass
class Target:
    """A page to fetch and what we know about why (links to members, commitments, sources)."""

    url: str
    links: list[dict] = field(default_factory=list)


@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)  # new, changed, unchanged
    skipped: Counter = field(default_factory=Counter)  # reason -> n
    failed: Counter = field(default_factory=Counter)  # reason -> n
    discovered: int = 0
    requests: int = 0
    elapsed: float = 0.0
    run_id: str = field(default_factory=new_run_id)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def lines(self) -> list[str]:
        def part(label: str, counter: Counter) -> str:
            total = sum(counter.values())
            detail = ", ".join(f"{k} {v}" for k, v in counter.most_common())
            return f"{label} {total}" + (f" ({detail})" if detail else "")

        head = f"{self.requests} requests in {self.elapsed:.1f} s"
        if self.discovered:
            head = f"{self.discovered} items discovered, " + head
        return [
            head,
            f"new {self.counts['new']}, changed {self.counts['changed']}, "
            f"unchanged {self.counts['unchanged']}, "
            + (f"retried {self.counts['retried']}, " if self.counts["retried"] else "")
            + f"{part('skipped', self.skipped)}, {part('failed', self.failed)}",
        ]

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "new": self.counts["new"],
            "changed": self.counts["changed"],
            "unchanged": self.counts["unchanged"],
            "retried": self.counts["retried"],
            "skipped": dict(self.skipped),
            "failed": dict(self.failed),
            "discovered": self.discovered,
            "requests": self.requests,
            "elapsed_s": round(self.elapsed, 3),
        }


def _log(db: sqlite_utils.Database, summary: Summary, result: FetchResult, purpose: str, **extra) -> None:
    db["fetch_log"].insert(
        {
            "run_id": summary.run_id,
            "url": result.url,
            "canonical_url": extra.pop("canonical_url", result.final_url or result.url),
            "purpose": purpose,
            "source": extra.pop("source", None),
            "started_utc": now_utc(),
            "elapsed_ms": int(result.elapsed * 1000),
            "outcome": extra.pop("outcome", result.outcome),
            "status": result.status,
            "attempts": result.attempts,
            "bytes": len(result.body) if result.body is not None else None,
            "error": extra.pop("error", result.error),
            "document_id": extra.pop("document_id", None),
            "version": extra.pop("version", None),
        }
    )


# ---------------------------------------------------------------------------
# Storing documents


def store_raw(db: sqlite_utils.Database, body: bytes, content_type: str | None) -> str:
    sha = "sha256:" + hashlib.sha256(body).hexdigest()
    if not db["raw_responses"].count_where("sha256 = ?", [sha]):
        db["raw_responses"].insert(
            {
                "sha256": sha,
                "content_type": content_type,
                "size": len(body),
                "compression": "zlib",
                "body": zlib.compress(body, 6),
                "stored_utc": now_utc(),
            },
            ignore=True,
        )
    return sha


def raw_body(db: sqlite_utils.Database, sha: str) -> bytes:
    row = db["raw_responses"].get(sha)
    return zlib.decompress(row["body"])


def _canonical(result: FetchResult, declared: str | None) -> str:
    """The page's own canonical URL when it names one on the same host, else the final URL."""
    final = result.final_url or result.url
    if declared:
        try:
            canonical = normalize_url(declared, base=final)
        except InvalidURL:
            return final
        if host_of(canonical) == host_of(final):
            return canonical
    return final


def run_extraction(result: FetchResult) -> Extracted | ExtractionSkipped | ExtractionFailed:
    """Extract a fetched body; the outcome, success or the reason it was not, as a value."""
    try:
        return extract(result.body or b"", result.content_type, result.final_url or result.url)
    except (ExtractionSkipped, ExtractionFailed) as exc:
        return exc


def store_fetch(
    db: sqlite_utils.Database,
    target: Target,
    result: FetchResult,
    summary: Summary,
    extraction: Extracted | ExtractionSkipped | ExtractionFailed | None = None,
) -> None:
    """Record one fetch: a new document, a new version, an unchanged page, or a failure.

    ``extraction`` is :func:`run_extraction`'s outcome when the caller already ran it
    (off the event loop); otherwise it is run here.
    """
    existing = _document(db, target.url)
    with db.atomic():
        _link(db, target)
        if result.outcome == "not-modified" and existing is not None:
            db["documents"].update(
                existing["id"], {"last_fetched_utc": now_utc(), "last_outcome": "not-modified"}
            )
            summary.counts["unchanged"] += 1
            _log(db, summary, result, "document", canonical_url=existing["canonical_url"],
                 outcome="not-modified", document_id=existing["id"], version=existing["current_version"])  # fmt: skip
            return
        if not result.ok or result.body is None:
            reason = result.outcome if result.outcome != "not-modified" else "not-modified-unknown"
            (summary.skipped if reason in SKIPPED_OUTCOMES else summary.failed)[reason] += 1
            if existing is not None:
                db["documents"].update(existing["id"], {"last_outcome": reason})
            _log(db, summary, result, "document", canonical_url=target.url,
                 document_id=existing["id"] if existing else None)  # fmt: skip
            return
        extracted = extraction if extraction is not None else run_extraction(result)
        if isinstance(extracted, ExtractionSkipped):
            summary.skipped[str(extracted)] += 1
            _log(
                db,
                summary,
                result,
                "document",
                canonical_url=target.url,
                outcome="skipped",
                error=str(extracted),
            )
            return
        if isinstance(extracted, ExtractionFailed):
            summary.failed["extraction"] += 1
            _log(db, summary, result, "document", canonical_url=target.url, outcome="extraction-failed",
                 error=str(extracted))  # fmt: skip
            return
        canonical = _canonical(result, extracted.canonical_url)
        document = existing or _document(db, canonical)
        if canonical != target.url:
            _link(db, Target(canonical, target.links))
        raw_sha = store_raw(db, result.body, result.content_type)
        content_sha = "sha256:" + hashlib.sha256(extracted.text.encode("utf-8")).hexdigest()
        stamp = now_utc()
        validators = {
            "etag": result.headers.get("etag"),
            "last_modified": result.headers.get("last-modified"),
            "last_fetched_utc": stamp,
            "last_outcome": "fetched",
        }
        if document is None:
            document_id = (
                db["documents"]
                .insert(
                    {
                        "canonical_url": canonical,
                        "first_url": target.url,
                        "host": host_of(canonical),
                        "kind": extracted.kind,
                        "current_version": 0,
                        "first_seen_utc": stamp,
                        **validators,
                    }
                )
                .last_pk
            )
            current = None
        else:
            document_id = document["id"]
            current = _current_version(db, document)
        if canonical != target.url:
            db["document_aliases"].upsert({"url": target.url, "document_id": document_id}, pk="url")
        if current is not None and current["content_sha256"] == content_sha:
            db["documents"].update(document_id, validators)
            summary.counts["unchanged"] += 1
            _log(db, summary, result, "document", canonical_url=canonical, outcome="unchanged",
                 document_id=document_id, version=current["version"])  # fmt: skip
            return
        version = (current["version"] if current else 0) + 1
        db["document_versions"].insert(
            {
                "document_id": document_id,
                "version": version,
                "content_sha256": content_sha,
                "raw_sha256": raw_sha,
                "fetched_utc": stamp,
                "final_url": result.final_url,
                "title": extracted.title,
                "text": extracted.text,
                "language": extracted.language,
                "site": extracted.site,
                "author": extracted.author,
                "description": extracted.description,
                "published": extracted.published.isoformat() if extracted.published else None,
                "date_source": extracted.date_source,
                "date_conflict": int(extracted.date_conflict),
                "date_candidates": json.dumps(extracted.date_candidates),
                "encoding": extracted.encoding,
                "encoding_source": extracted.encoding_source,
                "truncated": int(extracted.truncated),
            }
        )
        db["documents"].update(
            document_id, {"current_version": version, "kind": extracted.kind, **validators}
        )
        summary.counts["new" if version == 1 else "changed"] += 1
        _log(db, summary, result, "document", canonical_url=canonical, outcome="new" if version == 1 else "changed",
             document_id=document_id, version=version)  # fmt: skip


def _document(db: sqlite_utils.Database, url: str) -> dict | None:
    """The document stored under this canonical URL, or under which this URL is an alias."""
    rows = list(db["documents"].rows_where("canonical_url = ?", [url], limit=1))
    if rows:
        return rows[0]
    rows = list(
        db.query(
            "select d.* from document_aliases a join documents d on d.id = a.document_id where a.url = ?",
            [url],
        )
    )
    return rows[0] if rows else None


def _current_version(db: sqlite_utils.Database, document: dict) -> dict | None:
    rows = list(
        db["document_versions"].rows_where(
            "document_id = ? and version = ?", [document["id"], document["current_version"]], limit=1
        )
    )
    return rows[0] if rows else None


def _link(db: sqlite_utils.Database, target: Target) -> None:
    if not target.links:
        return
    db["document_links"].insert_all(
        ({"canonical_url": target.url, "discovered_utc": now_utc(), **link} for link in target.links),
        ignore=True,
    )


# ---------------------------------------------------------------------------
# Fetching


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
        document = _document(db, target.url)
        version = _current_version(db, document) if document else None
        result = await f.fetch(
            target.url,
            etag=document["etag"] if version else None,
            last_modified=document["last_modified"] if version else None,
        )
        # Extraction runs inline. Measured with eval/bench/fetch_extract.py, moving it to a
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
        _log(db, summary, FetchResult(url=url, outcome="invalid-url", error="only http and https URLs are fetched"),
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


# ---------------------------------------------------------------------------
# Discovery


@dataclass
class Item:
    url: str
    date: dt.date | None = None


def parse_feed(body: bytes, base_url: str) -> list[Item]:
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
        items.append(Item(link if "://" in link else normalize_url(link, base=base_url),
                          dt.date(*when[:3]) if when else None))  # fmt: skip
    return items


def _xml_root(body: bytes) -> lxml.etree._Element:
    parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return lxml.etree.fromstring(body, parser=parser)
    except lxml.etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None


def parse_sitemap(body: bytes) -> tuple[list[Item], list[str]]:
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
            items.append(Item(loc, date))
    return items, children


def parse_listing(body: bytes, base_url: str, selector: str) -> tuple[list[Item], str | None]:
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
            items.append(Item(normalize_url(href, base=base_url), date))
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
) -> list[Item]:
    """Items a source lists now. Conditional on the source's own ETag / Last-Modified.

    The source's new validators are saved at once, or, given ``states``, appended to it for the
    caller to save once the items are fetched: a run killed in between then sees the source
    again in full instead of a 304 that hides the items it never fetched."""
    state = (
        db["source_state"].get(source.name)
        if db["source_state"].count_where("source = ?", [source.name])
        else None
    )
    conditional = state if state and state["url"] == source.url else None
    result = await fetcher.fetch(
        source.url,
        etag=conditional["etag"] if conditional else None,
        last_modified=conditional["last_modified"] if conditional else None,
    )
    items: list[Item] = []
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
            db["source_state"].upsert(state_row, pk="source")
        else:
            states.append(state_row)
    else:
        (summary.skipped if outcome in SKIPPED_OUTCOMES else summary.failed)[f"{source.kind}:{outcome}"] += 1
    _log(db, summary, result, source.kind, source=source.name, outcome=outcome, error=error)
    return items


async def _walk_sitemap(
    db, fetcher: Fetcher, source: Source, first: FetchResult, summary: Summary
) -> list[Item]:
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
        _log(db, summary, result, "sitemap", source=source.name, outcome=outcome, error=error)
    return items


async def _walk_listing(
    db, fetcher: Fetcher, source: Source, first: FetchResult, summary: Summary
) -> list[Item]:
    items, next_url = parse_listing(first.body or b"", first.final_url or source.url, source.selector or "")
    pages = 1
    known = _known_urls(db, [i.url for i in items])
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
            known |= _known_urls(db, [i.url for i in more])
        else:
            next_url = None
        if outcome != "fetched":
            summary.failed[f"listing:{outcome}"] += 1
        _log(db, summary, result, "listing", source=source.name, outcome=outcome, error=error)
    return items


def _known_urls(db: sqlite_utils.Database, urls: list[str]) -> dict[str, str]:
    """Of ``urls``, those stored as documents, each with the date it was last fetched (or '')."""
    if not urls:
        return {}
    normal = {}
    for url in urls:
        try:
            normal[normalize_url(url)] = url
        except InvalidURL:
            continue
    found: dict[str, str] = {}
    keys = list(normal)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = (
            "select canonical_url, last_fetched_utc from documents"
            f" where current_version > 0 and canonical_url in ({marks})"
        )
        found |= {normal[row[0]]: (row[1] or "")[:10] for row in db.execute(sql, chunk).fetchall()}
    return found


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
            for row in db["source_state"].rows:
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
                    for commitment in (source.commitments or [None])
                )
        fetched_on = _known_urls(db, list(links))
        # New items; known ones the source dates on or after our last fetch (changed, maybe: the
        # request is conditional); and earlier transient failures of these sources, retried.
        wanted = [
            u for u in links if u not in fetched_on or (u in dates and dates[u].isoformat() >= fetched_on[u])
        ]
        retry = {u: v for u, v in _retryable(db, [s.name for s in sources]).items() if u not in links}
        targets, invalid = make_targets(wanted + list(retry), {**links, **retry})
        for url in invalid:
            summary.failed["invalid-url"] += 1
            _log(
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
            db["source_state"].upsert(state, pk="source")

    if fetcher is not None:
        await run(fetcher)
    else:
        async with Fetcher(config.fetch) as f:
            await run(f)
    summary.elapsed = time.monotonic() - started
    return summary


# ---------------------------------------------------------------------------
# Reading back


def list_documents(
    db: sqlite_utils.Database,
    *,
    member: str | None = None,
    source: str | None = None,
    since: dt.date | None = None,
    limit: int = 50,
) -> list[dict]:
    sql = """
        select d.id, d.canonical_url, d.kind, d.current_version, d.last_fetched_utc, d.last_outcome,
               v.title, v.published, v.date_source, v.date_conflict, v.language,
               (select group_concat(distinct l.member) from document_links l
                 where l.canonical_url = d.canonical_url) as members,
               (select group_concat(distinct l.source) from document_links l
                 where l.canonical_url = d.canonical_url) as sources
        from documents d
        left join document_versions v on v.document_id = d.id and v.version = d.current_version
        where d.current_version > 0 and d.kind != 'gold'
          and (:member is null or exists (select 1 from document_links l
               where l.canonical_url = d.canonical_url and l.member = :member))
          and (:source is null or exists (select 1 from document_links l
               where l.canonical_url = d.canonical_url and l.source = :source))
          and (:since is null or v.published >= :since)
        order by v.published desc, d.id desc
        limit :limit
    """
    params = {
        "member": member,
        "source": source,
        "since": since.isoformat() if since else None,
        "limit": limit,
    }
    return list(db.query(sql, params))


def find_document(db: sqlite_utils.Database, ref: str) -> dict | None:
    """A document by id or URL (any spelling that normalises to its canonical URL)."""
    if ref.isdigit():
        rows = list(db["documents"].rows_where("id = ?", [int(ref)]))
        return rows[0] if rows else None
    try:
        return _document(db, normalize_url(ref))
    except InvalidURL:
        return None


def fetch_log(
    db: sqlite_utils.Database,
    url: str | None = None,
    outcome: str | None = None,
    *,
    limit: int = 50,
    run_id: str | None = None,
) -> list[dict]:
    """Fetch attempts, newest first: all, or those at one URL, with one outcome, or of one run."""
    canonical = None
    if url:
        try:
            canonical = normalize_url(url)
        except InvalidURL:
            canonical = url
    sql = """
        select * from fetch_log
        where (:u is null or canonical_url = :u or url = :u) and (:o is null or outcome = :o)
          and (:r is null or run_id = :r)
        order by id desc limit :limit
    """
    return list(db.query(sql, {"u": canonical, "o": outcome, "r": run_id, "limit": limit}))
