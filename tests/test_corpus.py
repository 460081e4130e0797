"""Fetching into the database and crawling sources, against the local newsroom (tests/newsroom.py)."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest

from classifier.config import Config
from classifier.crawl import crawl, fetch_targets, gold_targets, log_invalid, make_targets
from classifier.documents import Summary, fetch_log, find_document
from classifier.sources import SourcesError, load_sources
from classifier.store import open_db

from . import newsroom
from .conftest import fetch_config
from .newsroom import Newsroom


@pytest.fixture
def site():
    with Newsroom(slow_seconds=2.0, big_bytes=2_000_000) as newsroom:
        yield newsroom


def make_config(**changes) -> Config:
    return Config(fetch=fetch_config(**{"retries": 1, **changes}))


def fetch_urls(db, urls, cfg=None):
    targets, invalid = make_targets(urls)
    summary = Summary()
    log_invalid(db, invalid, summary)
    return asyncio.run(fetch_targets(db, targets, cfg or make_config(), summary=summary))


def current_text(db, url):
    doc = find_document(db, url)
    return db.execute(
        "select text from document_versions where document_id = ? and version = ?",
        [doc["id"], doc["current_version"]],
    ).fetchone()[0]


def test_fetch_extract_store_and_rerun_without_new_versions(site):
    db = open_db()
    urls = [site.url(p) for p in site.release_paths]
    first = fetch_urls(db, urls)
    assert first.failures == 0
    stored = db["documents"].count
    assert first.counts["new"] == stored >= 6
    assert db["document_versions"].count == stored
    # raw bytes kept compressed under their sha256
    for row in db["document_versions"].rows:
        raw = db["raw_responses"].get(row["raw_sha256"])
        import hashlib

        assert "sha256:" + hashlib.sha256(zlib.decompress(raw["body"])).hexdigest() == row["raw_sha256"]
    site.reset_counts()
    second = fetch_urls(db, urls)
    assert second.counts["new"] == second.counts["changed"] == 0
    assert second.counts["unchanged"] == len(urls)
    assert db["document_versions"].count == stored
    conditional = [r for r in site.requests if r["path"] != "/robots.txt"]
    assert conditional and all("if-none-match" in r["headers"] for r in conditional)
    outcomes = {
        r["outcome"] for r in db.query("select outcome from fetch_log where run_id = ?", [second.run_id])
    }
    assert outcomes == {"not-modified"}


def test_changed_page_becomes_a_new_version_and_failure_keeps_it(site):
    db = open_db()
    path = next(p for p in site.release_paths if p.endswith(".html"))
    url = site.url(path)
    fetch_urls(db, [url])
    old = current_text(db, url)
    html = f"<html><head><title>Updated</title></head><body><main><article><h1>Updated release</h1><p>{'The ministry corrected the figures in this release. ' * 8}</p></article></main></body></html>"
    site.set_page(path, html)
    changed = fetch_urls(db, [url])
    assert changed.counts["changed"] == 1
    doc = find_document(db, url)
    assert doc["current_version"] == 2
    assert "corrected the figures" in current_text(db, url)
    assert (
        db.execute(
            "select text from document_versions where document_id = ? and version = 1", [doc["id"]]
        ).fetchone()[0]
        == old
    )
    site.fail(path, 500)
    failed = fetch_urls(db, [url])
    assert failed.failed == {"http-error": 1}
    assert find_document(db, url)["current_version"] == 2
    assert "corrected the figures" in current_text(db, url)


@pytest.mark.parametrize(
    ("path", "outcome"),
    [
        ("/missing", "http-error"),
        ("/gone", "http-error"),
        ("/error", "http-error"),
        ("/slow", "timeout"),
        ("/loop/a", "redirect-loop"),
        ("/big", "too-large"),
        ("/private/internal-briefing.html", "robots-disallowed"),
        ("/archive.zip", "skipped"),
        ("/empty.html", "skipped"),
    ],
)
def test_every_bad_case_has_a_logged_outcome_and_loses_nothing(site, path, outcome):
    db = open_db()
    good = site.url(site.release_paths[0])
    fetch_urls(db, [good])
    before = db["document_versions"].count
    fetch_urls(db, [site.url(path)], make_config(timeout=0.5, retries=0))
    (row,) = fetch_log(db, site.url(path), limit=1)
    assert row["outcome"] == outcome
    assert row["error"]
    assert db["document_versions"].count == before


def test_rate_limited_then_fetched(site):
    db = open_db()
    summary = fetch_urls(db, [site.url("/ratelimited")], make_config(retries=1))
    assert summary.counts["new"] == 1
    (row,) = fetch_log(db, site.url("/ratelimited"))
    assert row["attempts"] == 2 and row["status"] == 200


def test_windows_1252_page_without_charset(site):
    db = open_db()
    fetch_urls(db, [site.url("/cp1252.html")])
    doc = find_document(db, site.url("/cp1252.html"))
    version = db.execute(
        "select text, encoding, encoding_source from document_versions where document_id = ?", [doc["id"]]
    ).fetchone()
    text, encoding, source = version
    assert (
        "co-financed with €2.5 million from the European Union, will run from 2025–2027 in Québec’s" in text
    )
    assert "Ã" not in text  # no mojibake
    assert (encoding, source) == ("cp1252", "detected")


def test_pdf_release(site):
    db = open_db()
    fetch_urls(db, [site.url(newsroom.PDF_PATH)])
    doc = find_document(db, site.url(newsroom.PDF_PATH))
    assert doc["kind"] == "pdf"
    text = " ".join(current_text(db, site.url(newsroom.PDF_PATH)).split())
    assert "within 48 hours of detection" in text and "12 November 2024" in text


def test_release_text_without_boilerplate(site):
    db = open_db()
    fetch_urls(db, [site.url(r.path) for r in newsroom.RELEASES])
    for release in newsroom.RELEASES:
        text = current_text(db, site.url(release.path))
        assert release.sentence in text, release.path
        for noise in (
            newsroom.COOKIE_BANNER_TEXT,
            newsroom.COOKIE_BUTTON_TEXT,
            newsroom.FOOTER_TEXT,
            newsroom.FOOTER_CONTACT_TEXT,
            newsroom.NAV_TEXT,
        ):
            assert noise not in text, (release.path, noise)
    french = db.execute(
        "select language from document_versions v join documents d on d.id = v.document_id where d.canonical_url = ?",
        [site.url(newsroom.FRANCE_PATH)],
    ).fetchone()[0]
    assert french == "fr"


def test_dates_reconciled_and_disagreement_flagged(site):
    db = open_db()
    fetch_urls(db, [site.url(r.path) for r in newsroom.RELEASES])
    rows = {
        r["canonical_url"]: r
        for r in db.query(
            "select d.canonical_url, v.published, v.date_source, v.date_conflict, v.date_candidates "
            "from documents d join document_versions v on v.document_id = d.id"
        )
    }
    odd = rows[site.url(newsroom.DATE_MISMATCH_PATH)]
    assert odd["date_conflict"] == 1
    assert json.loads(odd["date_candidates"]) == {
        "metadata": "2024-09-30",
        "url": "2024-10",
        "text": "2024-10-02",
    }
    assert (odd["published"], odd["date_source"]) == ("2024-09-30", "metadata")
    others = [r for url, r in rows.items() if url != site.url(newsroom.DATE_MISMATCH_PATH)]
    assert others and all(r["date_conflict"] == 0 and r["published"] for r in others)


def test_one_document_per_canonical_url(site):
    db = open_db()
    urls = [site.url(newsroom.ALIAS_PATH)] + [site.url(u) for u in newsroom.ALIAS_URLS]
    summary = fetch_urls(db, urls)
    assert summary.counts["new"] == 1  # the utm_ spellings normalise to the same URL
    assert db["documents"].count == 1
    page = site.url("/news/2024/07/canada-strengthens-border-integrity.html?lang=en")
    site.set_page(
        "/news/2024/07/canada-strengthens-border-integrity.html?lang=en", site_body(site, newsroom.ALIAS_PATH)
    )
    again = fetch_urls(db, [page])
    assert (
        again.counts["unchanged"] == 1 and db["documents"].count == 1
    )  # canonical link says it is the same page
    assert find_document(db, page)["canonical_url"] == site.url(newsroom.ALIAS_PATH)


def site_body(site, path):
    import urllib.request

    with urllib.request.urlopen(site.url(path)) as response:
        return response.read()


def test_crawl_feeds_sitemap_and_listing(site, tmp_path):
    db = open_db()
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f"""
[[sources]]
name = "t-atom"
member = "CA"
publisher = "Test"
kind = "feed"
url = "{site.url("/news/feed.atom")}"
commitments = [18]

[[sources]]
name = "t-rss"
member = "UK"
publisher = "Test"
kind = "feed"
url = "{site.url("/news/feed.rss")}"
commitments = [19]

[[sources]]
name = "t-sitemap"
member = "EU"
publisher = "Test"
kind = "sitemap"
url = "{site.url("/sitemap_index.xml")}"

[[sources]]
name = "t-listing"
member = "FR"
publisher = "Test"
kind = "listing"
url = "{site.url("/news/")}"
selector = "a.news-item"

[[sources]]
name = "t-broken"
member = "IT"
publisher = "Test"
kind = "feed"
url = "{site.url("/bad-feed.xml")}"
""",
        encoding="utf-8",
    )
    loaded = load_sources(sources)
    summary = asyncio.run(crawl(db, loaded, make_config()))
    assert summary.failed == {"feed:feed-unreadable": 1}
    assert summary.counts["new"] >= 6
    assert "/private/internal-briefing.html" not in {r["path"] for r in site.requests}
    members = {r["member"] for r in db["document_links"].rows}
    assert {"Canada", "United Kingdom", "European Union", "France"} <= members
    # a second crawl finds nothing new and refetches no page
    site.reset_counts()
    again = asyncio.run(crawl(db, loaded, make_config()))
    assert again.counts["new"] == again.counts["changed"] == 0 and again.discovered == 0
    pages = [r for r in site.requests if r["path"] in set(site.release_paths)]
    assert pages == []
    log = {
        r["source"]: r["outcome"]
        for r in db.query(
            "select source, outcome from fetch_log where run_id = ? and purpose != 'document'", [again.run_id]
        )
    }
    assert log["t-atom"] == "not-modified"


def test_crawl_since_filters_old_items(site, tmp_path):
    db = open_db()
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[sources]]\nname = "t-map"\nmember = "EU"\npublisher = "T"\nkind = "sitemap"\nurl = "{site.url("/sitemap.xml")}"\n',
        encoding="utf-8",
    )
    import datetime as dt

    summary = asyncio.run(crawl(db, load_sources(sources), make_config(), since=dt.date(2030, 1, 1)))
    assert summary.discovered == 0 and db["documents"].count == 0


def test_sources_file_errors(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text(
        '[[sources]]\nname = "x"\nmember = "XX"\npublisher = "p"\nkind = "feed"\nurl = "https://e.org/f"\n',
        encoding="utf-8",
    )
    with pytest.raises(SourcesError, match="source x: member"):
        load_sources(bad)
    bad.write_text(
        '[[sources]]\nname = "x"\nmember = "CA"\npublisher = "p"\nkind = "listing"\nurl = "https://e.org/f"\n',
        encoding="utf-8",
    )
    with pytest.raises(SourcesError, match="CSS selector"):
        load_sources(bad)


def test_bundled_sources_file_is_valid():
    from .conftest import ROOT

    sources = load_sources(ROOT / "corpus" / "sources.toml")
    by_member = {s.member for s in sources}
    assert by_member == {"CA", "FR", "DE", "IT", "JP", "UK", "US", "EU"}
    eu_hosts = " ".join(s.url for s in sources if s.member == "EU")
    for host in (
        "europol.europa.eu",
        "eurojust.europa.eu",
        "frontex.europa.eu",
        "consilium.europa.eu",
        "ec.europa.eu",
    ):
        assert host in eu_hosts, host
    assert all(s.cited >= 0 and s.commitments for s in sources)
    assert json.dumps([s.model_dump() for s in sources])


def test_gold_targets_restore_hyphens_the_pdf_lost():
    from classifier import gold

    from .conftest import REPORTS

    db = open_db()
    gold.import_paths(db, [REPORTS])
    targets = {t.url: t for t in gold_targets(db)}
    right = "https://www.canada.ca/en/public-safety-canada/news/2024/07/the-2024-uscanada-cross-border-crime-forum-cbcf.html"
    assert right in targets
    assert right.replace("crime-forum", "crimeforum") not in targets
    cited_by = {(link["commitment"], link["member"]) for link in targets[right].links}
    assert {(18, "Canada"), (19, "Canada")} <= cited_by
    printed = {
        fn["url"] for row in gold.evidence_items(db, 19, "CA") for fn in row["footnote_details"]
    }  # the gold itself keeps the URL as printed
    assert right.replace("crime-forum", "crimeforum") in printed
