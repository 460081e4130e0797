"""The fixture newsroom (tests/newsroom.py) itself behaves as documented."""

from __future__ import annotations

import email.utils
import http.client
import re
import socket
import time
import urllib.error
import urllib.request
import urllib.robotparser
import xml.etree.ElementTree as ET
from urllib.parse import urljoin, urlsplit

import pytest

from .newsroom import (
    ALIAS_URLS,
    ATOM_ITEMS,
    CANADA_PATH,
    COOKIE_BANNER_TEXT,
    COOKIE_BUTTON_TEXT,
    CP1252_PATH,
    CP1252_SENTENCE,
    DATE_MISMATCH_PATH,
    FOOTER_TEXT,
    LISTING_ITEMS_PAGE1,
    LISTING_ITEMS_PAGE2,
    PDF_PATH,
    PRIVATE_PATH,
    REDIRECT_TARGET,
    RELEASES,
    RSS_ITEMS,
    SMALL_RELEASE_SENTENCE,
    Newsroom,
)

ATOM = "{http://www.w3.org/2005/Atom}"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
BIG = 200_000


@pytest.fixture(scope="module")
def shared():
    with Newsroom(slow_seconds=0.5, big_bytes=BIG) as site:
        yield site


@pytest.fixture
def site(shared):
    shared.reset_counts()
    return shared


@pytest.fixture
def fresh():
    """A newsroom of its own, for tests that change routes."""
    with Newsroom(slow_seconds=0.5, big_bytes=BIG) as site:
        yield site


def fetch(site, path, method="GET", headers=None, timeout=5.0):
    """One request with http.client (redirects not followed): status, lower-case headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(site.base_url).port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


A_TAG = re.compile(r"<a\b([^>]*)>", re.IGNORECASE)


def news_items(html: str) -> list[str]:
    """The hrefs that the CSS selector a.news-item would pick."""
    hrefs = []
    for attrs in A_TAG.findall(html):
        cls = re.search(r'\bclass="([^"]*)"', attrs)
        if cls and "news-item" in cls[1].split():
            hrefs.append(re.search(r'\bhref="([^"]*)"', attrs)[1])
    return hrefs


def test_base_url_and_start_stop_without_context_manager():
    site = Newsroom()
    site.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", site.base_url)
        assert site.url("/news/") == site.base_url + "/news/"
        assert fetch(site, "/robots.txt")[0] == 200
    finally:
        site.stop()
    with pytest.raises(OSError):
        fetch(site, "/robots.txt", timeout=1)


def test_robots_txt(site):
    status, headers, body = fetch(site, "/robots.txt")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert "User-agent: *" in text and "Disallow: /private/" in text and "Crawl-delay: 0" in text
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(text.splitlines())
    assert not robots.can_fetch("evidence-bot", site.url(PRIVATE_PATH))
    assert all(robots.can_fetch("evidence-bot", site.url(p)) for p in site.release_paths)
    assert fetch(site, PRIVATE_PATH)[0] == 200  # disallowed, but served


def test_release_pages(site):
    assert len(site.release_paths) == 8 and PDF_PATH in site.release_paths
    for release in RELEASES:
        status, headers, body = fetch(site, release.path)
        html = body.decode("utf-8")
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        assert f'<html lang="{release.lang}">' in html
        assert f'<link rel="canonical" href="{site.url(release.path)}">' in html
        assert f'<meta property="article:published_time" content="{release.published}">' in html
        assert release.sentence in html and release.dateline in html
        assert COOKIE_BANNER_TEXT in html and COOKIE_BUTTON_TEXT in html and FOOTER_TEXT in html
        words = len(re.sub(r"<[^>]+>", " ", html.split("<article", 1)[1].split("</article>")[0]).split())
        assert 250 <= words <= 600
    mismatch = fetch(site, DATE_MISMATCH_PATH)[2].decode()
    assert (
        "2024-09-30T16:00:00Z" in mismatch
        and "October 2, 2024" in mismatch
        and "/2024/10/" in DATE_MISMATCH_PATH
    )


def test_alias_urls_serve_the_same_page_with_a_clean_canonical(site):
    clean = fetch(site, CANADA_PATH)
    for alias in ALIAS_URLS:
        status, headers, body = fetch(site, alias)
        assert status == 200 and body == clean[2] and headers["etag"] == clean[1]["etag"]
    assert f'<link rel="canonical" href="{site.url(CANADA_PATH)}">' in clean[2].decode()
    assert site.hits[CANADA_PATH] == 3
    assert [r["target"] for r in site.requests] == [CANADA_PATH, *ALIAS_URLS]


def test_etag_and_last_modified_give_304(site):
    status, headers, body = fetch(site, CANADA_PATH, headers={"User-Agent": "evidence-test/1.0"})
    etag, last_modified = headers["etag"], headers["last-modified"]
    assert status == 200 and re.fullmatch(r'"[0-9a-f]{16}"', etag)
    assert email.utils.parsedate_to_datetime(last_modified).isoformat() == "2024-07-04T10:00:00+00:00"

    status, headers, body = fetch(site, CANADA_PATH, headers={"If-None-Match": etag})
    assert (status, body, headers["etag"]) == (304, b"", etag)
    assert fetch(site, CANADA_PATH, headers={"If-Modified-Since": last_modified})[0] == 304
    assert fetch(site, CANADA_PATH, headers={"If-None-Match": '"0000"'})[0] == 200
    # If-None-Match wins over If-Modified-Since.
    both = {"If-None-Match": '"0000"', "If-Modified-Since": last_modified}
    assert fetch(site, CANADA_PATH, headers=both)[0] == 200

    status, headers, body = fetch(site, CANADA_PATH, method="HEAD")
    assert (status, body, headers["etag"]) == (200, b"", etag) and int(headers["content-length"]) > 1000
    assert site.hits[CANADA_PATH] == 6
    first = site.requests[0]
    assert first["method"] == "GET" and first["path"] == CANADA_PATH
    assert first["headers"]["user-agent"] == "evidence-test/1.0"


def test_error_statuses(site):
    for path, expected in [("/missing", 404), ("/gone", 410), ("/error", 500), ("/no/such/page", 404)]:
        status, headers, _ = fetch(site, path)
        assert status == expected and "etag" not in headers
    assert fetch(site, "/error")[0] == 500  # always


def test_flaky_then_ok_and_reset(site):
    statuses = [fetch(site, "/flaky")[0] for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    assert SMALL_RELEASE_SENTENCE in fetch(site, "/flaky")[2].decode()
    site.reset_counts()
    assert site.hits["/flaky"] == 0 and site.requests == []
    assert fetch(site, "/flaky")[0] == 500


def test_ratelimited_then_ok(site):
    status, headers, _ = fetch(site, "/ratelimited")
    assert status == 429 and headers["retry-after"] == "1"
    status, _, body = fetch(site, "/ratelimited")
    assert status == 200 and SMALL_RELEASE_SENTENCE in body.decode()


def test_redirects(site):
    status, headers, _ = fetch(site, "/redirect-to-release")
    assert status == 301 and headers["location"] == site.url(REDIRECT_TARGET)
    status, headers, _ = fetch(site, "/loop/a")
    assert status == 302 and urljoin(site.url("/loop/a"), headers["location"]) == site.url("/loop/b")
    status, headers, _ = fetch(site, "/loop/b")
    assert status == 302 and urljoin(site.url("/loop/b"), headers["location"]) == site.url("/loop/a")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(site.url("/loop/a"), timeout=5)
    assert caught.value.code == 302  # urllib gives up on the loop


def test_slow_route_and_client_timeout(site):
    with pytest.raises((TimeoutError, socket.timeout)):
        fetch(site, "/slow", timeout=0.1)  # the client goes away; the server must not care
    start = time.monotonic()
    assert fetch(site, "/slow")[0] == 200
    assert time.monotonic() - start >= 0.45
    assert fetch(site, "/robots.txt")[0] == 200


def test_big_bodies(site):
    status, headers, body = fetch(site, "/big")
    assert status == 200 and int(headers["content-length"]) == BIG == len(body)
    status, headers, body = fetch(site, "/big-no-length")
    assert status == 200 and "content-length" not in headers and len(body) == BIG
    status, headers, body = fetch(site, "/big", method="HEAD")
    assert int(headers["content-length"]) == BIG and body == b""


def test_cp1252_page(site):
    status, headers, body = fetch(site, CP1252_PATH)
    assert status == 200 and headers["content-type"] == "text/html"
    assert b"charset" not in body.lower()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("cp1252")
    assert "€" in text and CP1252_SENTENCE in text
    assert all(ch in text for ch in "éè’“”–")


def test_pdf(site):
    status, headers, body = fetch(site, PDF_PATH)
    assert status == 200 and headers["content-type"] == "application/pdf"
    assert body.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", body)) == 2


def test_feeds_and_sitemaps_parse(site):
    atom = ET.fromstring(fetch(site, "/news/feed.atom")[2])
    entries = atom.findall(f"{ATOM}entry")
    links = [e.find(f"{ATOM}link").get("href") for e in entries]
    assert links == [site.url(p) for p in ATOM_ITEMS]
    assert all(e.find(f"{ATOM}published").text and e.find(f"{ATOM}updated").text for e in entries)

    rss = ET.fromstring(fetch(site, "/news/feed.rss")[2])
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    items = rss.findall("channel/item")
    assert [i.findtext("link") for i in items] == [site.url(p) for p in RSS_ITEMS]
    assert all(email.utils.parsedate_to_datetime(i.findtext("pubDate")) for i in items)
    rss_clean = {urlsplit(i.findtext("link")).path for i in items}
    assert rss_clean & {urlsplit(link).path for link in links} == {CANADA_PATH}

    urlset = ET.fromstring(fetch(site, "/sitemap.xml")[2])
    locs = [u.findtext(f"{SITEMAP}loc") for u in urlset.findall(f"{SITEMAP}url")]
    assert sorted(locs) == sorted(site.url(p) for p in site.release_paths)
    assert all(u.findtext(f"{SITEMAP}lastmod") for u in urlset.findall(f"{SITEMAP}url"))
    index = ET.fromstring(fetch(site, "/sitemap_index.xml")[2])
    assert index.tag == f"{SITEMAP}sitemapindex"
    assert [s.findtext(f"{SITEMAP}loc") for s in index] == [site.url("/sitemap.xml")]


def test_bad_feed_zip_and_empty(site):
    status, headers, body = fetch(site, "/bad-feed.xml")
    assert status == 200 and headers["content-type"] == "application/rss+xml"
    with pytest.raises(ET.ParseError):
        ET.fromstring(body)
    status, headers, body = fetch(site, "/archive.zip")
    assert headers["content-type"] == "application/zip" and body.startswith(b"PK")
    status, headers, body = fetch(site, "/empty.html")
    assert (status, body, headers["content-length"]) == (200, b"", "0")


def test_listing_pages(site):
    page1 = fetch(site, "/news/")[2].decode()
    next_href = re.search(r'<a\b[^>]*\brel="next"[^>]*\bhref="([^"]+)"', page1)[1]
    page2 = fetch(site, next_href)[2].decode()
    assert (tuple(news_items(page1)), tuple(news_items(page2))) == (LISTING_ITEMS_PAGE1, LISTING_ITEMS_PAGE2)
    assert 'class="news-item-archive"' in page1 and 'class="news-item-featured"' in page1  # not picked
    assert not re.search(r'rel="next"', page2)
    assert site.hits["/news/"] == 2
    for href in news_items(page1) + news_items(page2):
        assert fetch(site, urljoin(site.url("/news/"), href))[0] == 200
    assert sorted(news_items(page1) + news_items(page2)) == sorted(site.release_paths)


def test_set_page_changes_what_is_served(fresh):
    status, headers, _ = fetch(fresh, CANADA_PATH)
    old_etag, old_modified = headers["etag"], headers["last-modified"]
    fresh.set_page(
        CANADA_PATH, "<html><body><main><article><p>Amended text.</p></article></main></body></html>"
    )
    status, headers, body = fetch(fresh, CANADA_PATH, headers={"If-None-Match": old_etag})
    assert status == 200 and b"Amended text." in body
    assert headers["etag"] != old_etag
    new_modified = email.utils.parsedate_to_datetime(headers["last-modified"])
    assert new_modified > email.utils.parsedate_to_datetime(old_modified)
    assert fetch(fresh, CANADA_PATH, headers={"If-Modified-Since": old_modified})[0] == 200
    assert fetch(fresh, CANADA_PATH, headers={"If-None-Match": headers["etag"]})[0] == 304

    fresh.set_page("/new.txt", b"plain", content_type="text/plain", status=202, headers={"X-Test": "1"})
    status, headers, body = fetch(fresh, "/new.txt")
    assert (status, body, headers["content-type"], headers["x-test"]) == (202, b"plain", "text/plain", "1")


def test_fail_and_restore(fresh):
    fresh.fail(CANADA_PATH, 500)
    status, headers, _ = fetch(fresh, CANADA_PATH)
    assert status == 500 and "etag" not in headers
    assert fetch(fresh, ALIAS_URLS[0])[0] == 500
    fresh.fail("/redirect-to-release", 503)
    status, headers, _ = fetch(fresh, "/redirect-to-release")
    assert status == 503 and "location" not in headers
    fresh.restore(CANADA_PATH)
    assert fetch(fresh, CANADA_PATH)[0] == 200
    with pytest.raises(KeyError):
        fresh.fail("/not-a-route", 500)


def test_stop_does_not_wait_for_slow_requests():
    site = Newsroom(slow_seconds=30).start()
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(site.base_url).port, timeout=5)
    conn.request("GET", "/slow")
    time.sleep(0.1)
    start = time.monotonic()
    site.stop()
    assert time.monotonic() - start < 2
    conn.close()
