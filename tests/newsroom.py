"""A fixture newsroom: a real HTTP server on 127.0.0.1 for testing the press-release fetcher.

It serves newsroom-like pages (releases, listing pages, feeds, sitemaps, robots.txt, a PDF) and
every bad case a polite fetcher must survive (404/410/500, flaky and rate-limited routes, a slow
route, a redirect loop, oversized bodies with and without Content-Length, a Windows-1252 page
without a charset, a feed that is not XML, an unsupported content type, an empty body).

    from tests.newsroom import Newsroom

    with Newsroom(slow_seconds=3.0, big_bytes=3_000_000) as site:
        site.url("/news/")        # "http://127.0.0.1:PORT/news/"
        site.hits["/news/"]       # requests received for that path (query string ignored)

The page texts live in tests/fixtures/newsroom/; ``{{BASE_URL}}`` in them is replaced by the
server's base URL at start-up. The PDF is generated with fpdf2 at start-up (no binary in git).
All people, quotes and figures in the fixture pages are fictional.

Standard library only, apart from fpdf2 for the PDF.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import hashlib
import http
import http.server
import io
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .localserver import LocalServer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "newsroom"

HTML = "text/html; charset=utf-8"

# -- Text that tests can assert on ------------------------------------------------------------------
# Shared page furniture (present on every release page; must NOT end up in an extracted body).
COOKIE_BANNER_TEXT = (
    "We use cookies to understand how visitors use Example Newsroom and to remember your preferences."
)
COOKIE_BUTTON_TEXT = "Accept all cookies"
FOOTER_TEXT = "© Example Newsroom – Privacy – Terms"
FOOTER_CONTACT_TEXT = "Media enquiries: press@newsroom.example"
NAV_TEXT = "Search the newsroom"
RELATED_NEWS_HEADING = "Related news"  # the French page says "Actualités liées"


@dataclass(frozen=True)
class Release:
    """One normal HTML release page."""

    path: str
    file: str  # under tests/fixtures/newsroom/
    title: str  # og:title (the <title> adds " | Example Newsroom")
    lang: str
    author: str
    published: str  # <meta property="article:published_time">
    text_date: str  # ISO date of the dateline in the body (and <time> in the byline)
    dateline: str  # how the first paragraph starts
    sentence: str  # a distinctive sentence of the article body


UK_PATH = "/news/2024/06/uk-france-small-boats-partnership.html"
CANADA_PATH = "/news/2024/07/canada-strengthens-border-integrity.html"
GERMANY_PATH = "/news/2024/09/germany-europol-trafficking-network-dismantled.html"
G7_PATH = "/news/2024/10/g7-interior-ministers-trafficking-in-persons.html"
JAPAN_PATH = "/news/2024/12/japan-action-plan-trafficking-in-persons.html"
FRANCE_PATH = "/news/2025/01/france-demantelement-filiere-passeurs.html"
ITALY_PATH = "/news/2025/03/italy-agreements-countries-of-origin-and-transit.html"

RELEASES: tuple[Release, ...] = (
    Release(
        UK_PATH,
        "uk-france-small-boats-partnership.html",
        "UK and France step up joint action against small boat crossings",
        "en-GB",
        "Home Office Press Office",
        "2024-06-21T09:30:00Z",
        "2024-06-21",
        "LONDON, 21 June 2024 —",
        "The new Joint Intelligence Cell in Coquelles will be staffed around the clock by British and "
        "French officers from 1 September 2024.",
    ),
    Release(
        CANADA_PATH,
        "canada-strengthens-border-integrity.html",
        "Government of Canada strengthens border integrity and cracks down on migrant smuggling",
        "en-CA",
        "Public Safety Canada",
        "2024-07-04T10:00:00Z",
        "2024-07-04",
        "OTTAWA, July 4, 2024 —",
        "The amended regulations give border services officers the authority to seize vessels used to "
        "smuggle migrants across the St. Lawrence River and the Great Lakes.",
    ),
    Release(
        GERMANY_PATH,
        "germany-europol-trafficking-network-dismantled.html",
        "Trafficking network dismantled in joint action with Europol: 23 arrests in six countries",
        "en",
        "Federal Ministry of the Interior Press Office",
        "2024-09-18T08:00:00Z",
        "2024-09-18",
        "BERLIN, 18 September 2024 —",
        "Investigators identified 61 potential victims of trafficking, 44 of them women recruited through "
        "fraudulent job advertisements for care work.",
    ),
    Release(
        G7_PATH,
        "g7-interior-ministers-trafficking-in-persons.html",
        "G7 Interior Ministers agree joint action on migrant smuggling and trafficking in persons",
        "en",
        "G7 Presidency Press Office",
        "2024-09-30T16:00:00Z",  # disagrees with the URL (/2024/10/) and the text (October 2, 2024)
        "2024-10-02",
        "MIRABELLA ECLANO, Italy, October 2, 2024 —",
        "Ministers agreed to establish a G7 working group on the financial flows of migrant smuggling and "
        "human trafficking networks, reporting back before the end of 2025.",
    ),
    Release(
        JAPAN_PATH,
        "japan-action-plan-trafficking-in-persons.html",
        "Japan adopts revised Action Plan to Combat Trafficking in Persons",
        "en",
        "Cabinet Secretariat, Government of Japan",
        "2024-12-10T01:00:00Z",
        "2024-12-10",
        "TOKYO, December 10, 2024 —",
        "Labour inspectors will carry out at least 1,500 unannounced visits to workplaces employing "
        "technical intern trainees during 2025.",
    ),
    Release(
        FRANCE_PATH,
        "france-demantelement-filiere-passeurs.html",
        "Démantèlement d’une filière de passeurs opérant sur le littoral de la Manche",
        "fr",
        "Ministère de l’Intérieur – Service de presse",
        "2025-01-15T14:00:00Z",
        "2025-01-15",
        "PARIS, le 15 janvier 2025 —",
        "Les enquêteurs ont saisi 14 embarcations pneumatiques et 62 moteurs hors-bord stockés dans des "
        "entrepôts près de Dunkerque, ainsi que 310 000 euros en numéraire.",
    ),
    Release(
        ITALY_PATH,
        "italy-agreements-countries-of-origin-and-transit.html",
        "Italy signs agreements with countries of origin and transit to prevent irregular departures",
        "en",
        "Ministry of the Interior of Italy – Press Office",
        "2025-03-06T11:00:00Z",
        "2025-03-06",
        "ROME, 6 March 2025 —",
        "Under the agreements, Italy will fund the training of 800 coast guard and border police officers "
        "in partner countries by the end of 2026.",
    ),
)
RELEASES_BY_PATH = {r.path: r for r in RELEASES}

# The page whose metadata date (2024-09-30) disagrees with its URL (/2024/10/) and text (October 2, 2024).
DATE_MISMATCH_PATH = G7_PATH
# The page reachable at several URLs; its canonical is the clean path. The sidebars of the UK page link
# the "?utm_source=feed" form, the RSS feed the "?utm_source=rss" form, everything else the clean path.
ALIAS_PATH = CANADA_PATH
ALIAS_URLS = (CANADA_PATH + "?utm_source=feed", CANADA_PATH + "?utm_source=rss")

PDF_PATH = "/releases/joint-statement.pdf"
PDF_TITLE = "Joint Statement against Migrant Smuggling"
PDF_DATE = "12 November 2024"
PDF_SENTENCE = (
    "The signatories commit to exchanging information on smuggling routes, vessels and payment "
    "channels within 48 hours of detection."
)

PRIVATE_PATH = "/private/internal-briefing.html"
PRIVATE_SENTENCE = "This internal briefing is not for publication."

CP1252_PATH = "/cp1252.html"
CP1252_SENTENCE = (
    "The “Safe Routes” programme, co-financed with €2.5 million from the European Union, "
    "will run from 2025–2027 in Québec’s shelters, said Minister Hélène Lefèvre."
)

# Served by /flaky, /ratelimited and /slow once they answer 200.
SMALL_RELEASE_SENTENCE = "This short statement confirms the renewal of the coastal surveillance agreement for a further twelve months."

LISTING_PATH = "/news/"
LISTING_PAGE2 = "/news/?page=2"
# What a.news-item selects on /news/ (page 1) and /news/?page=2, in order (newest first).
LISTING_ITEMS_PAGE1 = (ITALY_PATH, FRANCE_PATH, JAPAN_PATH, PDF_PATH, G7_PATH)
LISTING_ITEMS_PAGE2 = (GERMANY_PATH, CANADA_PATH, UK_PATH)

ATOM_PATH = "/news/feed.atom"
ATOM_ITEMS = (ITALY_PATH, FRANCE_PATH, CANADA_PATH)
RSS_PATH = "/news/feed.rss"
RSS_ITEMS = (JAPAN_PATH, GERMANY_PATH, CANADA_PATH + "?utm_source=rss")  # overlaps Atom on CANADA_PATH
SITEMAP_PATH = "/sitemap.xml"
SITEMAP_INDEX_PATH = "/sitemap_index.xml"
REDIRECT_PATH = "/redirect-to-release"
REDIRECT_TARGET = JAPAN_PATH

RELEASE_PATHS: tuple[str, ...] = (*(r.path for r in RELEASES), PDF_PATH)

# Last-Modified of every route that is not a release (feeds, listing, bad cases...).
DEFAULT_LAST_MODIFIED = dt.datetime(2025, 3, 6, 11, 0, tzinfo=dt.UTC)

_CHUNK = 64 * 1024


def _http_date(when: dt.datetime) -> str:
    return email.utils.format_datetime(when.astimezone(dt.UTC), usegmt=True)


def _iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def make_etag(body: bytes) -> str:
    """The ETag the newsroom sends for ``body``: a quoted sha256 prefix."""
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def _fixture_text(name: str, base_url: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8").replace("{{BASE_URL}}", base_url)


@functools.cache
def joint_statement_pdf() -> bytes:
    """The 2-page PDF served at PDF_PATH, rendered from fixtures/newsroom/joint-statement.txt."""
    from fpdf import FPDF

    heading: dict[str, str] = {}
    blocks: list[str] = []
    current: list[str] = []
    for line in [*(FIXTURES / "joint-statement.txt").read_text(encoding="utf-8").splitlines(), ""]:
        key, sep, value = line.partition(": ")
        if line.startswith("#"):
            continue
        if sep and key in ("TITLE", "SUBTITLE", "DATE"):
            heading[key] = value.strip()
        elif line.strip():
            current.append(line.strip())
        elif current:
            blocks.append(" ".join(current))
            current = []
    title, subtitle, date = heading["TITLE"], heading["SUBTITLE"], heading["DATE"]

    pdf = FPDF(format="A4")
    pdf.set_creation_date(dt.datetime(2024, 11, 12, 9, 0, tzinfo=dt.UTC))  # deterministic bytes and ETag
    pdf.set_title(title)
    pdf.set_author("Example Newsroom")
    pdf.set_subject(subtitle)
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 17)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(2)
    pdf.set_font("Helvetica", "I", 11)
    pdf.multi_cell(0, 6, subtitle, new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(2)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, date, new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(5)
    for block in blocks:
        if block == "PAGEBREAK":
            pdf.add_page()
            continue
        pdf.multi_cell(0, 6, block, new_x="LMARGIN", new_y="NEXT", align="J")
        pdf.ln(3)
    assert pdf.pages_count == 2, f"joint statement should fill 2 pages, got {pdf.pages_count}"
    return bytes(pdf.output())


@functools.cache
def big_body(size: int) -> bytes:
    """An HTML body of exactly ``size`` bytes."""
    head = (
        b'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        b"<title>Archive of all news releases | Example Newsroom</title>\n</head>\n<body>\n<main>\n"
        b"<h1>Archive of all news releases</h1>\n"
    )
    tail = b"\n</main>\n</body>\n</html>\n"
    if size < len(head) + len(tail):
        return (head + tail)[:size]
    line = (
        b"<p>Archived notice: this archive page repeats one paragraph to make the response very large.</p>\n"
    )
    filler = line * ((size - len(head) - len(tail)) // len(line) + 1)
    body = head + filler[: size - len(head) - len(tail)] + tail
    assert len(body) == size
    return body


@functools.cache
def press_kit_zip() -> bytes:
    """A small, deterministic zip archive for the unsupported-content-type case."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("press-kit/README.txt", date_time=(2024, 11, 12, 9, 0, 0))
        zf.writestr(info, "Press kit: joint statement against migrant smuggling, photos and fact sheets.\n")
    return buf.getvalue()


@dataclass(frozen=True)
class _Route:
    status: int = 200
    body: bytes = b""
    content_type: str | None = HTML
    headers: tuple[tuple[str, str], ...] = ()
    last_modified: dt.datetime = DEFAULT_LAST_MODIFIED
    # static | flaky | ratelimited | slow | big | big-no-length
    kind: str = "static"
    etag: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.etag is None and self.status == 200:
            object.__setattr__(self, "etag", make_etag(self.body))  # once, not per request

    def response_headers(self) -> list[tuple[str, str]]:
        """Content-Type, ETag and Last-Modified (the last two on 200 only), overridden by ``headers``."""
        out: dict[str, tuple[str, str]] = {}
        if self.content_type:
            out["content-type"] = ("Content-Type", self.content_type)
        if self.status == 200:
            out["etag"] = ("ETag", self.etag or make_etag(self.body))
            out["last-modified"] = ("Last-Modified", _http_date(self.last_modified))
        for name, value in self.headers:
            out[name.lower()] = (name, value)
        return list(out.values())


def _not_modified(request_headers: Any, etag: str | None, last_modified: str | None) -> bool:
    """True when a conditional GET/HEAD may be answered 304 (If-None-Match wins over If-Modified-Since)."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        if etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_modified_since and last_modified:
        try:
            return email.utils.parsedate_to_datetime(last_modified) <= email.utils.parsedate_to_datetime(
                if_modified_since
            )
        except (TypeError, ValueError):
            return False
    return False


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ExampleNewsroom/1.0"
    timeout = 15  # idle keep-alive connections give up after this
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_GET(self) -> None:
        self._guarded(head=False)

    def do_HEAD(self) -> None:
        self._guarded(head=True)

    def _guarded(self, head: bool) -> None:
        try:
            self._serve(head)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True  # the client went away

    def _serve(self, head: bool) -> None:
        site = self.server.site
        split = urlsplit(self.path)
        path = split.path or "/"
        target = path + ("?" + split.query if split.query else "")
        route, failure, attempt = site._on_request(self.command, path, target, split.query, self.headers)

        if failure is not None:
            try:
                phrase = http.HTTPStatus(failure).phrase
            except ValueError:
                phrase = "Error"
            body = f"<html><body><h1>{failure} {phrase}</h1></body></html>".encode()
            self._send(failure, [("Content-Type", HTML)], body, head)
            return
        if route is None:
            self._send(404, [("Content-Type", HTML)], site._not_found_body, head)
            return
        if route.kind == "flaky" and attempt <= 2:
            self._send(500, [("Content-Type", HTML)], site._server_error_body, head)
            return
        if route.kind == "ratelimited" and attempt <= 1:
            body = b"<html><body><h1>429 Too Many Requests</h1><p>Slow down.</p></body></html>"
            self._send(429, [("Content-Type", HTML), ("Retry-After", "1")], body, head)
            return
        if route.kind == "slow":
            site._stopping.wait(site.slow_seconds)

        headers = route.response_headers()
        if route.status == 200:
            values = {name.lower(): value for name, value in headers}
            if _not_modified(self.headers, values.get("etag"), values.get("last-modified")):
                kept = [(n, v) for n, v in headers if n.lower() in ("etag", "last-modified")]
                self._send(304, kept, b"", head=True, length=False)
                return
        if route.kind == "big-no-length":
            self.protocol_version = "HTTP/1.0"  # body ends when the connection closes
            self.close_connection = True
            self._send(route.status, [*headers, ("Connection", "close")], route.body, head, length=False)
            return
        self._send(route.status, headers, route.body, head)

    def _send(
        self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool, length: bool = True
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head or not body:
            return
        view = memoryview(body)
        for start in range(0, len(view), _CHUNK):
            self.wfile.write(view[start : start + _CHUNK])
        self.wfile.flush()


class _Server(LocalServer):
    def __init__(self, address: tuple[str, int], site: Newsroom) -> None:
        self.site = site
        super().__init__(address, _Handler)


class Newsroom:
    """A newsroom web site on 127.0.0.1 (free port). Use as a context manager or start()/stop()."""

    def __init__(self, slow_seconds: float = 3.0, big_bytes: int = 3_000_000) -> None:
        self.slow_seconds = slow_seconds
        self.big_bytes = big_bytes
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self._requests: list[dict[str, Any]] = []
        self._attempts: Counter[str] = Counter()
        self._routes: dict[str, _Route] = {}
        self._failures: dict[str, int] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._base_url: str | None = None
        self._not_found_body = (FIXTURES / "not-found.html").read_bytes()
        self._server_error_body = (FIXTURES / "server-error.html").read_bytes()

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> Newsroom:
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        server = _Server(("127.0.0.1", 0), self)
        self._base_url = f"http://127.0.0.1:{server.server_address[1]}"
        with self._lock:
            self._routes = self._build_routes(self._base_url)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="newsroom", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # wakes /slow
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Newsroom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public API -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the newsroom has not been started")
        return self._base_url

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def hits(self) -> Counter[str]:
        """Requests received per path (without the query string), 304s included. A snapshot."""
        with self._lock:
            return Counter(self._hits)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request in arrival order: method, path (no query), query, target (path?query), headers."""
        with self._lock:
            return [dict(r, headers=dict(r["headers"])) for r in self._requests]

    @property
    def release_paths(self) -> list[str]:
        return list(RELEASE_PATHS)

    def reset_counts(self) -> None:
        """Clear hits and requests, and restart /flaky and /ratelimited from their first failure."""
        with self._lock:
            self._hits.clear()
            self._requests.clear()
            self._attempts.clear()

    def set_page(
        self,
        path: str,
        body: bytes | str,
        content_type: str = HTML,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Add or replace a route (``path`` may carry a query, e.g. "/news/?page=3").

        A replaced route gets a new Last-Modified (now, and always later than the old one) and,
        its body having changed, a new ETag. ``headers`` may override ETag/Last-Modified.
        """
        if isinstance(body, str):
            body = body.encode("utf-8")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with self._lock:
            if self._server is None:
                raise RuntimeError("start the newsroom before calling set_page()")
            old = self._routes.get(path)
            if old is not None and now <= old.last_modified:
                now = old.last_modified + dt.timedelta(seconds=1)
            self._routes[path] = _Route(
                status=status,
                body=body,
                content_type=content_type,
                headers=tuple((headers or {}).items()),
                last_modified=now,
            )

    def fail(self, path: str, status: int) -> None:
        """Make an existing route answer ``status`` (bare, no ETag/Location) until restore()."""
        with self._lock:
            if path not in self._routes:
                raise KeyError(f"no route {path!r}")
            self._failures[path] = status

    def restore(self, path: str) -> None:
        with self._lock:
            self._failures.pop(path, None)

    # -- internals --------------------------------------------------------------------------------------
    def _on_request(
        self, method: str, path: str, target: str, query: str, headers: Any
    ) -> tuple[_Route | None, int | None, int]:
        with self._lock:
            self._hits[path] += 1
            self._requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "target": target,
                    "headers": {k.lower(): v for k, v in headers.items()},
                }
            )
            route = self._routes.get(target)
            if route is None and target != path:
                route = self._routes.get(path)  # unknown query strings are ignored, as most CMSs do
            failure = self._failures.get(target, self._failures.get(path))
            self._attempts[path] += 1
            return route, failure, self._attempts[path]

    def _build_routes(self, base: str) -> dict[str, _Route]:
        routes: dict[str, _Route] = {}

        def text(name: str) -> bytes:
            return _fixture_text(name, base).encode("utf-8")

        small = text("small-release.html")
        big = big_body(self.big_bytes)
        routes["/robots.txt"] = _Route(body=text("robots.txt"), content_type="text/plain; charset=utf-8")
        for release in RELEASES:
            routes[release.path] = _Route(body=text(release.file), last_modified=_iso(release.published))
        routes[PRIVATE_PATH] = _Route(
            body=text("private-internal-briefing.html"), last_modified=_iso("2024-06-20T17:00:00Z")
        )
        routes[PDF_PATH] = _Route(
            body=joint_statement_pdf(),
            content_type="application/pdf",
            last_modified=_iso("2024-11-12T09:00:00Z"),
        )
        routes[ATOM_PATH] = _Route(body=text("feed.atom"), content_type="application/atom+xml; charset=utf-8")
        routes[RSS_PATH] = _Route(body=text("feed.rss"), content_type="application/rss+xml; charset=utf-8")
        routes[SITEMAP_PATH] = _Route(body=text("sitemap.xml"), content_type="application/xml; charset=utf-8")
        routes[SITEMAP_INDEX_PATH] = _Route(
            body=text("sitemap_index.xml"), content_type="application/xml; charset=utf-8"
        )
        routes[LISTING_PATH] = _Route(body=text("news-index-1.html"))
        routes[LISTING_PAGE2] = _Route(body=text("news-index-2.html"))
        routes[REDIRECT_PATH] = _Route(
            status=301,
            body=b'<html><body><a href="%s">Moved permanently</a></body></html>' % REDIRECT_TARGET.encode(),
            headers=(("Location", base + REDIRECT_TARGET),),
        )
        # Bad cases.
        routes["/missing"] = _Route(status=404, body=self._not_found_body)
        routes["/gone"] = _Route(status=410, body=text("gone.html"))
        routes["/error"] = _Route(status=500, body=self._server_error_body)
        routes["/flaky"] = _Route(body=small, kind="flaky")
        routes["/ratelimited"] = _Route(body=small, kind="ratelimited")
        routes["/slow"] = _Route(body=small, kind="slow")
        routes["/loop/a"] = _Route(status=302, body=b"", headers=(("Location", "/loop/b"),))
        routes["/loop/b"] = _Route(status=302, body=b"", headers=(("Location", "/loop/a"),))
        routes["/big"] = _Route(body=big, kind="big")
        routes["/big-no-length"] = _Route(body=big, kind="big-no-length")
        routes[CP1252_PATH] = _Route(
            body=_fixture_text("cp1252.utf8.html", base).encode("cp1252"),
            content_type="text/html",
            last_modified=_iso("2024-11-20T15:00:00Z"),
        )
        routes["/bad-feed.xml"] = _Route(
            body=(FIXTURES / "bad-feed.xml").read_bytes(), content_type="application/rss+xml"
        )
        routes["/archive.zip"] = _Route(body=press_kit_zip(), content_type="application/zip")
        routes["/empty.html"] = _Route(body=b"")
        return routes
