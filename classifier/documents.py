"""Versioned documents: each page stored once per canonical URL, a new version only when its
extracted text changes, the raw bytes compressed under their sha256, and every attempt in the
fetch log. A failed fetch never deletes what we had; each page is stored in its own
transaction, so a crash loses at most the pages in flight and a rerun continues.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field

import sqlite_utils

from .dates import now_utc
from .errors import NotFound
from .extract import Extracted, ExtractionFailed, ExtractionSkipped, extract
from .fetch import FetchResult, InvalidURL, host_of, normalize_url
from .store import new_id
from .summaries import RunSummary, counted

# Outcomes that are policy, not failure: they are skipped and do not fail a run.
SKIPPED_OUTCOMES = {"robots-disallowed"}


@dataclass
class Target:
    """A page to fetch and what we know about why (links to members, commitments, sources)."""

    url: str
    links: list[dict] = field(default_factory=list)


@dataclass(kw_only=True)
class Summary(RunSummary):
    """A crawl or fetch run: documents new, changed and unchanged, and what was skipped or failed."""

    counts: Counter = field(default_factory=Counter)  # new, changed, unchanged
    discovered: int = 0
    requests: int = 0

    def lines(self) -> list[str]:
        head = f"{self.requests} requests in {self.elapsed:.1f} s"
        if self.discovered:
            head = f"{self.discovered} items discovered, " + head
        return [
            head,
            f"new {self.counts['new']}, changed {self.counts['changed']}, "
            f"unchanged {self.counts['unchanged']}, "
            + (f"retried {self.counts['retried']}, " if self.counts["retried"] else "")
            + f"{counted('skipped', self.skipped)}, {counted('failed', self.failed)}",
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


def log_attempt(
    db: sqlite_utils.Database, summary: Summary, result: FetchResult, purpose: str, **extra
) -> None:
    db.table("fetch_log").insert(
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
    if not db.table("raw_responses").count_where("sha256 = ?", [sha]):
        db.table("raw_responses").insert(
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
    row = db.table("raw_responses").get(sha)
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
    existing = document_by_url(db, target.url)
    with db.atomic():
        _link(db, target)
        if result.outcome == "not-modified" and existing is not None:
            db.table("documents").update(
                existing["id"], {"last_fetched_utc": now_utc(), "last_outcome": "not-modified"}
            )
            summary.counts["unchanged"] += 1
            log_attempt(db, summary, result, "document", canonical_url=existing["canonical_url"],
                 outcome="not-modified", document_id=existing["id"], version=existing["current_version"])  # fmt: skip
            return
        if not result.ok or result.body is None:
            reason = result.outcome if result.outcome != "not-modified" else "not-modified-unknown"
            (summary.skipped if reason in SKIPPED_OUTCOMES else summary.failed)[reason] += 1
            if existing is not None:
                db.table("documents").update(existing["id"], {"last_outcome": reason})
            log_attempt(db, summary, result, "document", canonical_url=target.url,
                 document_id=existing["id"] if existing else None)  # fmt: skip
            return
        extracted = extraction if extraction is not None else run_extraction(result)
        if isinstance(extracted, ExtractionSkipped):
            summary.skipped[str(extracted)] += 1
            log_attempt(
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
            log_attempt(db, summary, result, "document", canonical_url=target.url, outcome="extraction-failed",
                 error=str(extracted))  # fmt: skip
            return
        canonical = _canonical(result, extracted.canonical_url)
        document = existing or document_by_url(db, canonical)
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
            document_id = new_id(
                db.table("documents").insert(
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
            )
            current = None
        else:
            document_id = document["id"]
            current = current_version(db, document)
        if canonical != target.url:
            db.table("document_aliases").upsert({"url": target.url, "document_id": document_id}, pk="url")
        if current is not None and current["content_sha256"] == content_sha:
            db.table("documents").update(document_id, validators)
            summary.counts["unchanged"] += 1
            log_attempt(db, summary, result, "document", canonical_url=canonical, outcome="unchanged",
                 document_id=document_id, version=current["version"])  # fmt: skip
            return
        version = (current["version"] if current else 0) + 1
        db.table("document_versions").insert(
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
        db.table("documents").update(
            document_id, {"current_version": version, "kind": extracted.kind, **validators}
        )
        summary.counts["new" if version == 1 else "changed"] += 1
        log_attempt(db, summary, result, "document", canonical_url=canonical, outcome="new" if version == 1 else "changed",
             document_id=document_id, version=version)  # fmt: skip


def document_by_url(db: sqlite_utils.Database, url: str) -> dict | None:
    """The document stored under this canonical URL, or under which this URL is an alias."""
    rows = list(db.table("documents").rows_where("canonical_url = ?", [url], limit=1))
    if rows:
        return rows[0]
    rows = list(
        db.query(
            "select d.* from document_aliases a join documents d on d.id = a.document_id where a.url = ?",
            [url],
        )
    )
    return rows[0] if rows else None


# The current version of each stored document, one row per document: the version's columns
# (``v.*``, ``document_id`` included) and the document's own. The one place that join is written;
# read it as ``from ({CURRENT_VERSIONS}) v``.
CURRENT_VERSIONS = """
select v.*, d.canonical_url, d.first_url, d.host, d.kind, d.current_version, d.first_seen_utc,
       d.last_fetched_utc, d.last_outcome, d.etag, d.last_modified
from documents d join document_versions v on v.document_id = d.id and v.version = d.current_version
"""


def current_version(db: sqlite_utils.Database, document: dict) -> dict | None:
    """The stored version a document's ``current_version`` points at, or None."""
    rows = list(
        db.table("document_versions").rows_where(
            "document_id = ? and version = ?", [document["id"], document["current_version"]], limit=1
        )
    )
    return rows[0] if rows else None


def _link(db: sqlite_utils.Database, target: Target) -> None:
    if not target.links:
        return
    db.table("document_links").insert_all(
        ({"canonical_url": target.url, "discovered_utc": now_utc(), **link} for link in target.links),
        ignore=True,
    )


def known_urls(db: sqlite_utils.Database, urls: list[str]) -> dict[str, str]:
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
    sql = f"""
        select v.document_id as id, v.canonical_url, v.kind, v.current_version, v.last_fetched_utc,
               v.last_outcome, v.title, v.published, v.date_source, v.date_conflict, v.language,
               (select group_concat(distinct l.member) from document_links l
                 where l.canonical_url = v.canonical_url) as members,
               (select group_concat(distinct l.source) from document_links l
                 where l.canonical_url = v.canonical_url) as sources
        from ({CURRENT_VERSIONS}) v
        where v.kind != 'gold'
          and (:member is null or exists (select 1 from document_links l
               where l.canonical_url = v.canonical_url and l.member = :member))
          and (:source is null or exists (select 1 from document_links l
               where l.canonical_url = v.canonical_url and l.source = :source))
          and (:since is null or v.published >= :since)
        order by v.published desc, v.document_id desc
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
        rows = list(db.table("documents").rows_where("id = ?", [int(ref)]))
        return rows[0] if rows else None
    try:
        return document_by_url(db, normalize_url(ref))
    except InvalidURL:
        return None


class NoSuchDocument(NotFound, ValueError):
    """No document has that id or URL."""


def document_detail(db: sqlite_utils.Database, ref: str) -> dict:
    """One document by id or URL: the row, plus ``versions`` (oldest first), ``links`` (to members
    and gold) and ``classifications`` (by commitment)."""
    doc = find_document(db, ref)
    if doc is None:
        raise NoSuchDocument(f"no document {ref!r}: `evidence docs log {ref}` says what happened to it")
    return {
        **doc,
        "versions": list(
            db["document_versions"].rows_where("document_id = ?", [doc["id"]], order_by="version")
        ),
        "links": list(db["document_links"].rows_where("canonical_url = ?", [doc["canonical_url"]])),
        "classifications": list(
            db["classifications"].rows_where("document_id = ?", [doc["id"]], order_by="commitment, id")
        ),
    }


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
