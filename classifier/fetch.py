"""The only module that does HTTP for pages: a polite, careful async fetcher.

Politeness: an identifying User-Agent with a contact address, robots.txt obeyed
(including Crawl-delay), a per-host concurrency limit and a minimum delay between two
requests to one host, conditional requests (ETag / Last-Modified).

Care: only http and https; private, loopback and link-local addresses refused unless
the configuration allows them (checked at every redirect hop); timeouts per attempt;
retries with exponential backoff on 429, 5xx, timeouts and network errors, honouring
Retry-After; a redirect limit and loop detection; a maximum body size.

Every outcome is a value (:class:`FetchResult`), never an exception, so a caller can
log it and go on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from protego import Protego
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

from .config import FetchConfig
from .dates import retry_after

RETRY_STATUS = {429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|at_medium|at_campaign|xtor|_ga)$", re.I)


# ---------------------------------------------------------------------------
# URLs


class InvalidURL(ValueError):
    """A URL we will not fetch: not http(s), no host, or unparseable."""


def normalize_url(url: str, base: str | None = None) -> str:
    """One spelling per page: lower-case scheme and host, no default port, no fragment,
    no tracking parameters, sorted query, resolved dot segments, '/' for an empty path.
    """
    if base:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL(f"{url!r}: only http and https URLs are fetched")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise InvalidURL(f"{url!r}: no host")
    try:
        host = host.encode("idna").decode("ascii") if not _is_ip(host) else host
    except UnicodeError:
        raise InvalidURL(f"{url!r}: invalid host name") from None
    netloc = f"[{host}]" if ":" in host else host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc += f":{port}"
    path = _resolve_dots(parts.path or "/")
    query = urlencode(
        sorted(
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)
        )
    )
    return urlunsplit((scheme, netloc, path, query, ""))


def _resolve_dots(path: str) -> str:
    out: list[str] = []
    segments = path.split("/")
    for seg in segments[1:] if path.startswith("/") else segments:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    result = "/" + "/".join(out)
    if path.endswith(("/.", "/..")) and not result.endswith("/"):
        result += "/"
    return result


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


# ---------------------------------------------------------------------------
# Results


@dataclass
class FetchResult:
    url: str  # as requested (normalised)
    outcome: str  # fetched | not-modified | http-error | rate-limited | timeout | network-error |
    # robots-disallowed | blocked-address | invalid-url | too-large | redirect-loop | too-many-redirects
    final_url: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    attempts: int = 0
    elapsed: float = 0.0
    error: str | None = None
    redirects: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in ("fetched", "not-modified")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


class _Attempt(Exception):
    """One attempt's terminal outcome (no retry)."""

    def __init__(self, outcome: str, error: str, status: int | None = None):
        super().__init__(error)
        self.outcome, self.error, self.status = outcome, error, status


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes | None
    error: str | None = None  # timeout / network error message when status is 0
    outcome: str | None = None


# ---------------------------------------------------------------------------
# Politeness


class _HostGate:
    """At most N requests in flight to one host, and a minimum gap between their starts."""

    def __init__(self, concurrency: int, delay: float):
        self.semaphore = asyncio.Semaphore(concurrency)
        self.delay = delay
        self.lock = asyncio.Lock()
        self.next_start = 0.0

    async def __aenter__(self) -> None:
        await self.semaphore.acquire()
        async with self.lock:
            now = time.monotonic()
            wait = self.next_start - now
            self.next_start = max(now, self.next_start) + self.delay
        if wait > 0:
            await asyncio.sleep(wait)

    async def __aexit__(self, *exc) -> None:
        self.semaphore.release()


class Fetcher:
    """An async HTTP client with the politeness and limits above. Use as ``async with``."""

    def __init__(
        self,
        config: FetchConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Callable[[str, int], Awaitable[list[str]]] | None = None,
        on_request: Callable[[str], None] | None = None,
    ):
        self.config = config
        self.agent = config.agent()
        self._transport = transport
        self._resolver = resolver or _resolve
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, Protego | None] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._overall = asyncio.Semaphore(config.concurrency)
        self._client: httpx.AsyncClient | None = None
        self.requests_made = 0
        self._on_request = on_request

    async def __aenter__(self) -> Fetcher:
        self._client = httpx.AsyncClient(
            transport=self._transport,
            follow_redirects=False,
            timeout=httpx.Timeout(self.config.timeout),
            headers={"User-Agent": self.agent, "Accept-Encoding": "gzip, deflate"},
            trust_env=False,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- public ------------------------------------------------------------

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch one URL, following redirects; conditional when ``etag``/``last_modified`` are given."""
        started = time.monotonic()
        try:
            current = normalize_url(url)
        except InvalidURL as exc:
            return FetchResult(url=url, outcome="invalid-url", error=str(exc))
        result = FetchResult(url=current, outcome="network-error")
        seen = {current}
        conditional = {"etag": etag, "last_modified": last_modified}
        try:
            while True:
                await self._check_address(current)
                if not await self.allowed(current):
                    raise _Attempt(
                        "robots-disallowed", f"robots.txt of {origin_of(current)} disallows {current}"
                    )
                response, attempts = await self._with_retries(current, conditional)
                result.attempts += attempts
                if response.status in REDIRECT_STATUS and "location" in response.headers:
                    target = normalize_url(response.headers["location"], base=current)
                    result.redirects.append(target)
                    if target in seen:
                        raise _Attempt("redirect-loop", f"redirect loop: {' -> '.join([current, target])}")
                    if len(result.redirects) > self.config.max_redirects:
                        raise _Attempt(
                            "too-many-redirects", f"more than {self.config.max_redirects} redirects"
                        )
                    seen.add(target)
                    current = target
                    conditional = {"etag": None, "last_modified": None}
                    continue
                result.final_url = current
                result.status = response.status or None
                result.headers = response.headers
                if response.outcome:  # timeout, network error, too large
                    result.outcome, result.error = response.outcome, response.error
                elif response.status == 304:
                    result.outcome = "not-modified"
                elif 200 <= response.status < 300:
                    result.outcome, result.body = "fetched", response.body
                elif response.status == 429:
                    result.outcome = "rate-limited"
                    result.error = f"HTTP 429 after {result.attempts} attempts"
                else:
                    result.outcome = "http-error"
                    result.error = f"HTTP {response.status}"
                break
        except _Attempt as stop:
            result.outcome, result.error, result.status = stop.outcome, stop.error, stop.status
        except InvalidURL as exc:
            result.outcome, result.error = "invalid-url", str(exc)
        result.elapsed = time.monotonic() - started
        return result

    async def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our User-Agent fetch ``url`` (fetched once per origin)."""
        rules = await self._robots_for(origin_of(url))
        return True if rules is None else rules.can_fetch(url, self.agent)

    # -- internals ---------------------------------------------------------

    async def _check_address(self, url: str) -> None:
        if self.config.allow_private:
            return
        parts = urlsplit(url)
        host = (parts.hostname or "").strip("[]")
        if host in ("localhost",) or host.endswith(".localhost"):
            raise _Attempt("blocked-address", f"{host} is a local address (allow_private is off)")
        try:
            addresses = [host] if _is_ip(host) else await self._resolver(host, parts.port or 443)
        except OSError as exc:
            raise _Attempt("network-error", f"cannot resolve {host}: {exc}") from None
        bad = [a for a in addresses if _forbidden(a)]
        if bad:
            raise _Attempt(
                "blocked-address",
                f"{host} resolves to a private, loopback or link-local address ({bad[0]}); allow_private is off",
            )

    def _gate(self, url: str) -> _HostGate:
        host = host_of(url)
        if host not in self._gates:
            delay = self.config.per_host_delay
            rules = self._robots.get(origin_of(url))
            if rules is not None:
                crawl_delay = rules.crawl_delay(self.agent)
                if crawl_delay:
                    delay = max(delay, float(crawl_delay))
            self._gates[host] = _HostGate(self.config.per_host_concurrency, delay)
        return self._gates[host]

    async def _robots_for(self, origin: str) -> Protego | None:
        if origin in self._robots:
            return self._robots[origin]
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            if origin in self._robots:
                return self._robots[origin]
            url = origin + "/robots.txt"
            response, _ = await self._with_retries(url, {"etag": None, "last_modified": None}, robots=True)
            if response.status == 200 and response.body is not None:
                text = response.body.decode("utf-8", "replace")
                rules: Protego | None = Protego.parse(text)
            elif 400 <= response.status < 500:
                rules = None  # no robots.txt: everything allowed
            else:
                # 5xx or unreachable: assume the whole site is off limits for now (RFC 9309)
                rules = Protego.parse("User-agent: *\nDisallow: /")
            self._robots[origin] = rules
            return rules

    async def _with_retries(self, url: str, conditional: dict, robots: bool = False) -> tuple[_Response, int]:
        config = self.config

        def wait(state: RetryCallState) -> float:
            # tenacity types outcome as optional; it is set before wait and retry_error_callback run
            response: _Response = state.outcome.result()  # type: ignore[union-attr]
            wait_for = retry_after(response.headers.get("retry-after")) if response.headers else None
            backoff = config.backoff * (2 ** (state.attempt_number - 1))
            backoff *= 1 + random.random() * 0.25
            return max(wait_for or 0.0, backoff)

        def should_retry(response: _Response) -> bool:
            if response.status not in RETRY_STATUS and response.status != 0:
                return False
            if response.outcome in ("too-large",):
                return False
            wait_for = retry_after(response.headers.get("retry-after")) if response.headers else None
            return not (wait_for is not None and wait_for > config.max_retry_after)

        counter = {"n": 0}

        async def once() -> _Response:
            counter["n"] += 1
            return await self._once(url, conditional, robots=robots)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.retries + 1),
            wait=wait,
            retry=retry_if_result(should_retry),
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        response: _Response = await retrying(once)
        attempts = counter["n"]
        return response, attempts

    async def _once(self, url: str, conditional: dict, robots: bool = False) -> _Response:
        assert self._client is not None, "use Fetcher inside 'async with'"
        headers = {}
        if conditional.get("etag"):
            headers["If-None-Match"] = conditional["etag"]
        if conditional.get("last_modified"):
            headers["If-Modified-Since"] = conditional["last_modified"]
        gate = self._gate(url) if not robots else _HostGate(1, 0)
        async with self._overall, gate:
            self.requests_made += 1
            if self._on_request:
                self._on_request(url)
            try:
                async with asyncio.timeout(self.config.timeout):
                    async with self._client.stream("GET", url, headers=headers) as response:
                        info = {k.lower(): v for k, v in response.headers.items()}
                        if response.status_code in REDIRECT_STATUS or response.status_code == 304:
                            return _Response(response.status_code, info, None)
                        if response.status_code >= 400:
                            return _Response(response.status_code, info, None)
                        declared = info.get("content-length")
                        if declared and declared.isdigit() and int(declared) > self.config.max_bytes:
                            return _Response(
                                response.status_code,
                                info,
                                None,
                                f"Content-Length {declared} exceeds the {self.config.max_bytes}-byte limit",
                                "too-large",
                            )
                        chunks, size = [], 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > self.config.max_bytes:
                                return _Response(
                                    response.status_code,
                                    info,
                                    None,
                                    f"body exceeds the {self.config.max_bytes}-byte limit",
                                    "too-large",
                                )
                            chunks.append(chunk)
                        return _Response(response.status_code, info, b"".join(chunks))
            except TimeoutError:
                return _Response(
                    0, {}, None, f"no complete answer within {self.config.timeout:g} s", "timeout"
                )
            except httpx.TimeoutException:
                return _Response(
                    0, {}, None, f"no complete answer within {self.config.timeout:g} s", "timeout"
                )
            except httpx.HTTPError as exc:
                return _Response(0, {}, None, f"{type(exc).__name__}: {exc}", "network-error")


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})  # (an address, never the int of a raw socket)
