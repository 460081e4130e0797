"""The fetcher against a real HTTP server on 127.0.0.1 (tests/newsroom.py): politeness and bad cases."""

from __future__ import annotations

import asyncio
import time

import pytest

from classifier.config import ConfigError, FetchConfig
from classifier.fetch import Fetcher, InvalidURL, normalize_url

from .conftest import fetch_config
from .newsroom import Newsroom


@pytest.fixture(scope="module")
def site():
    with Newsroom(slow_seconds=3.0, big_bytes=3_000_000) as newsroom:
        yield newsroom


@pytest.fixture(autouse=True)
def fresh_counts(site):
    site.reset_counts()


def config(**changes) -> FetchConfig:
    return fetch_config(**changes)


def fetch(url, cfg=None, **kwargs):
    async def go():
        async with Fetcher(cfg or config()) as f:
            return await f.fetch(url, **kwargs)

    return asyncio.run(go())


def release(site):
    return next(p for p in site.release_paths if p.endswith(".html"))


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("HTTPS://Example.ORG:443/a/./b/../c?utm_source=x&b=2&a=1#top", "https://example.org/a/c?a=1&b=2"),
        ("http://example.org", "http://example.org/"),
        ("http://example.org:8080/x", "http://example.org:8080/x"),
        ("/news/x.html?fbclid=1", "https://gov.example/news/x.html"),
    ],
)
def test_normalize_url(raw, normal):
    assert normalize_url(raw, base="https://gov.example/index.html") == normal


@pytest.mark.parametrize(
    "bad", ["ftp://example.org/x", "javascript:alert(1)", "file:///etc/passwd", "http:///x"]
)
def test_only_http_and_https(bad):
    with pytest.raises(InvalidURL):
        normalize_url(bad)
    assert fetch(bad).outcome == "invalid-url"


def test_fetches_with_an_identifying_user_agent(site):
    result = fetch(site.url(release(site)))
    assert result.outcome == "fetched" and result.status == 200 and result.body
    agents = {r["headers"].get("user-agent") for r in site.requests}
    assert agents == {"g7-evidence/0.1.0 (+tests@example.org)"}


def test_no_contact_no_fetching():
    with pytest.raises(ConfigError, match="contact"):
        FetchConfig().agent()


def test_robots_txt_is_obeyed(site):
    result = fetch(site.url("/private/internal-briefing.html"))
    assert result.outcome == "robots-disallowed"
    assert site.hits["/private/internal-briefing.html"] == 0
    assert site.hits["/robots.txt"] == 1


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/gone", 410)])
def test_client_errors_are_not_retried(site, path, status):
    result = fetch(site.url(path))
    assert (result.outcome, result.status, result.attempts) == ("http-error", status, 1)


def test_server_errors_are_retried_then_reported(site):
    result = fetch(site.url("/error"), config(retries=2))
    assert (result.outcome, result.status, result.attempts) == ("http-error", 500, 3)
    assert site.hits["/error"] == 3


def test_flaky_page_succeeds_after_retries(site):
    result = fetch(site.url("/flaky"), config(retries=3))
    assert (result.outcome, result.attempts) == ("fetched", 3)


def test_retry_after_is_honoured(site):
    started = time.monotonic()
    result = fetch(site.url("/ratelimited"), config(backoff=0.01))
    assert (result.outcome, result.attempts) == ("fetched", 2)
    assert time.monotonic() - started >= 0.95  # Retry-After: 1, not the 0.01 s backoff


def test_retry_after_beyond_the_cap_ends_the_attempts(site):
    result = fetch(site.url("/ratelimited"), config(max_retry_after=0.5))
    assert (result.outcome, result.status, result.attempts) == ("rate-limited", 429, 1)


def test_slow_response_times_out(site):
    started = time.monotonic()
    result = fetch(site.url("/slow"), config(timeout=0.5, retries=1))
    assert (result.outcome, result.attempts) == ("timeout", 2)
    assert time.monotonic() - started < 2.5
    assert "0.5 s" in result.error


def test_redirect_loop_is_detected(site):
    result = fetch(site.url("/loop/a"))
    assert result.outcome == "redirect-loop"
    assert site.hits["/loop/a"] == 1 and site.hits["/loop/b"] == 1


def test_redirect_limit(site):
    result = fetch(site.url("/redirect-to-release"), config(max_redirects=0))
    assert result.outcome == "too-many-redirects"


def test_redirect_is_followed(site):
    result = fetch(site.url("/redirect-to-release"))
    assert result.outcome == "fetched"
    assert result.redirects == [result.final_url] and result.final_url != result.url


@pytest.mark.parametrize("path", ["/big", "/big-no-length"])
def test_body_size_cap(site, path):
    result = fetch(site.url(path), config(max_bytes=1_000_000))
    assert result.outcome == "too-large" and "1000000-byte limit" in result.error
    assert result.attempts == 1


def test_private_addresses_are_refused_by_default(site):
    result = fetch(site.url(release(site)), config(allow_private=False))
    assert result.outcome == "blocked-address"
    assert sum(site.hits.values()) == 0  # not even robots.txt was requested


def test_conditional_request(site):
    first = fetch(site.url(release(site)))
    again = fetch(site.url(release(site)), etag=first.headers["etag"])
    assert (again.outcome, again.status) == ("not-modified", 304)
    assert site.requests[-1]["headers"]["if-none-match"] == first.headers["etag"]


def test_per_host_delay_spaces_requests(site):
    pages = [site.url(p) for p in site.release_paths[:4]]

    async def go():
        async with Fetcher(config(per_host_delay=0.2, per_host_concurrency=1)) as f:
            return await asyncio.gather(*(f.fetch(u) for u in pages))

    started = time.monotonic()
    results = asyncio.run(go())
    assert all(r.outcome == "fetched" for r in results)
    assert time.monotonic() - started >= 0.6  # four requests, 0.2 s apart at least
