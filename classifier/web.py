"""The analysts' web interface: a server-rendered Starlette application on the same database.

Pages: the queue, an item (the source text with each quote highlighted where it sits),
scores with receipts, evaluation runs with plots, the report draft. Decisions go through
:func:`classifier.review.decide`, with the same optimistic concurrency as the CLI.

Safety: every page is rendered by Jinja2 with autoescaping (press-release text is untrusted
and never rendered as HTML); links to sources only for http(s) URLs; a strict
Content-Security-Policy (scripts and styles only from /static, no inline code); sessions are
random tokens in HttpOnly, SameSite=Strict cookies; every POST carries the session's CSRF
token and must come from our own origin; readers cannot decide. Every number a request
carries (path, query or form) goes through :func:`parse_number`; every response, error pages
included, carries :data:`SECURITY_HEADERS`. Failed logins are throttled by
:class:`classifier.users.LoginThrottle`, keyed by the peer's address (a proxy's
``X-Forwarded-For`` only when ``forwarded_allow_ips`` names that proxy).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import sqlite_utils
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import draft as draft_lib
from . import review
from . import score as score_lib
from . import users as users_lib
from .dates import long_date
from .errors import NotFound
from .flags import Flag
from .flags import parse as parse_flag
from .rubric import Rubric, rubrics_for
from .store import open_db

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "evidence_session"
LOGIN_COOKIE = "evidence_login"
PAGE_SIZE = 50
SQLITE_MAX_INT = 2**63 - 1  # SQLite's INTEGER is 64-bit signed: a larger number cannot even be bound
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also accepts '²' and '٣'
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own forms
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ORDER_LABELS = {"attention": "needs attention first", "date": "newest first", "member": "by member",
                "commitment": "by commitment"}  # fmt: skip
FLAGS = tuple(f.value for f in Flag)  # the queue page's flag filter


def parse_number(
    raw: str | None, what: str, *, minimum: int = 0, maximum: int = SQLITE_MAX_INT, status: int = 400
) -> int:
    """``raw`` as an int if it is 1-19 ASCII digits within [minimum, maximum], else HTTP ``status``.

    The one parser for numbers in requests. ``str.isdigit()`` accepts '²', which int() then
    refuses; int() accepts ' 1', '+1', '1_000' and '٣', and thousands of digits, which SQLite
    cannot bind (64 bits). So only plain ASCII digits pass, and the value always fits a
    SQLite INTEGER. A path parameter (an id) that is not a number names nothing: pass
    ``status=404``.
    """
    if raw is not None and _DIGITS.fullmatch(raw) and minimum <= int(raw) <= maximum:
        return int(raw)
    if status == 404:
        raise HTTPException(404, f"no such {what}")
    upper = "" if maximum == SQLITE_MAX_INT else f" to {maximum}"
    raise HTTPException(status, f"{what} must be a whole number (digits only) from {minimum}{upper}")


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: a `javascript:` or `data:` link is never a link."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


class _Connections(threading.local):
    db: sqlite_utils.Database | None = None


@dataclass
class Site:
    """What every request needs, kept on ``app.state.site``: the database path (one connection
    per thread), the login throttle, the rubrics, the templates and the cookie policy."""

    path: Path | None
    throttle: users_lib.LoginThrottle
    rubrics: dict[int, Rubric]
    env: Environment
    secure_cookies: bool = False
    local: _Connections = field(default_factory=_Connections)


def site(request: Request) -> Site:
    return request.app.state.site


def db(request: Request) -> sqlite_utils.Database:
    """This thread's connection to the application's database (opened without migrating)."""
    local = site(request).local
    if local.db is None:
        local.db = open_db(site(request).path, migrate=False)
    return local.db


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    who = request.state.user if hasattr(request.state, "user") else None
    template = site(request).env.get_template(name)
    body = template.render(request=request, user=who, csrf=getattr(request.state, "csrf", ""), **context)
    return HTMLResponse(body, status_code=status)


def saved(request: Request) -> dict[str, Any] | None:
    """The "Saved" notice a decision's redirect asks for (``?done=ACTION&from=ID``), if any."""
    done = request.query_params.get("done")
    raw = request.query_params.get("from")
    came_from = parse_number(raw, "from") if raw is not None else None
    return {"action": done, "item": came_from} if done in review.ACTIONS else None


def cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict",
                        secure=site(request).secure_cookies, path="/")  # fmt: skip


# -- authentication and CSRF ---------------------------------------------------------------


def current(request: Request) -> None:
    found = users_lib.session_user(db(request), request.cookies.get(SESSION_COOKIE))
    if found is None:
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, headers={"Location": "/login?" + urlencode({"next": asked})})
    request.state.user, request.state.csrf = found


async def check_post(request: Request, expected: str) -> dict:
    """The form, if it comes from our origin with the right CSRF token; else 403."""
    origin = request.headers.get("origin")
    if origin == "null":  # an opaque origin: only a browser's word that it is our own page will do
        if request.headers.get("sec-fetch-site") != "same-origin":
            raise HTTPException(403, "cross-origin request refused")
    # the host only: behind an HTTPS proxy the scheme we see is http
    elif origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-origin request refused")
    form = dict(await request.form())
    if not expected or not secrets.compare_digest(str(form.get("csrf", "")), expected):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    return form


async def login_page(request: Request) -> Response:
    if request.method == "GET":
        token = secrets.token_urlsafe(24)
        request.state.csrf = token
        response: Response = render(request, "login.html", next=request.query_params.get("next", "/queue"))
        cookie(request, response, LOGIN_COOKIE, token, 3600)
        return response
    form = await check_post(request, request.cookies.get(LOGIN_COOKIE, ""))
    name = str(form.get("name", ""))
    target = str(form.get("next") or "/queue")
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        target = "/queue"
    # the peer uvicorn reports: a proxy's X-Forwarded-For only behind --forwarded-allow-ips
    address = request.client.host if request.client else None
    wait = site(request).throttle.retry_after(name, address)
    if wait is not None:
        minutes = -(-wait // 60)
        request.state.csrf = str(form.get("csrf", ""))
        message = f"Too many failed logins from your address: try again in {minutes} minutes."
        response = render(request, "login.html", 429, next=target, error=message)
        response.headers["Retry-After"] = str(wait)
        return response
    user = users_lib.authenticate(db(request), name, str(form.get("password", "")))
    if user is None:
        site(request).throttle.failed(name, address)
        token = secrets.token_urlsafe(24)
        request.state.csrf = token
        response = render(request, "login.html", 401, next=target, error="Wrong name or password.")
        cookie(request, response, LOGIN_COOKIE, token, 3600)
        return response
    site(request).throttle.succeeded(name, address)
    token, _ = users_lib.start_session(db(request), user)
    response = RedirectResponse(target, status_code=303)
    cookie(request, response, SESSION_COOKIE, token, users_lib.SESSION_HOURS * 3600)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    current(request)
    await check_post(request, request.state.csrf)
    users_lib.end_session(db(request), request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- pages -----------------------------------------------------------------------------------


def filters_of(request: Request) -> dict[str, Any]:
    q = request.query_params
    commitment = q.get("commitment") or None  # empty: the form's "all"
    state = q.get("state") or None
    order = q.get("order") or "attention"
    try:
        review.check_state(state)
    except review.QueueError as exc:
        raise HTTPException(400, str(exc)) from None
    if order not in review.ORDERS:
        raise HTTPException(400, f"order must be one of {', '.join(review.ORDERS)}")
    return {"member": q.get("member") or None,
            "commitment": parse_number(commitment, "commitment") if commitment else None,
            "state": state, "flag": parse_flag(q["flag"]) if q.get("flag") else None,
            "order": order, "dimension": q.get("dimension") or None}  # fmt: skip


async def home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


async def queue_page(request: Request) -> Response:
    current(request)
    f = filters_of(request)
    raw = request.query_params.get("page") or "1"
    # bounded so that the row offset, (page - 1) * PAGE_SIZE, still fits SQLite's integer
    page = parse_number(raw, "page", minimum=1, maximum=SQLITE_MAX_INT // PAGE_SIZE)
    notice = saved(request)
    rows = review.list_items(db(request), **f, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    counts = review.count_items(db(request), member=f["member"], commitment=f["commitment"], flag=f["flag"],
                                dimension=f["dimension"])  # fmt: skip
    shown = counts[f["state"]] if f["state"] else counts["total"]
    members = review.queue_members(db(request))
    commitments = list(site(request).rubrics)
    base = {k: v for k, v in f.items() if v is not None}
    return render(request, "queue.html", rows=rows, counts=counts, filters=f, page=page, saved=notice,
                  pages=max(1, -(-shown // PAGE_SIZE)), members=members, commitments=commitments,
                  query=lambda **change: urlencode({**base, **change}))  # fmt: skip


def item_context(request: Request, item_id: int) -> dict[str, Any]:
    state = review.state_of(db(request), item_id)  # NotFound: the 404 page
    source = review.source_of(db(request), state.item) or {}
    rubric = site(request).rubrics.get(state.item["commitment"])
    dims = state.suggestion.get("dimensions", {})
    names = {d.id: d.name for d in rubric.dimensions} if rubric else {}
    neighbours = [r["id"] for r in review.list_items(db(request), state=review.PENDING, limit=2)
                  if r["id"] != item_id]  # fmt: skip
    return {
        "s": state,
        "source": source,
        "segments": review.quote_segments(source.get("text") or "", dims),
        "dimensions": [
            {
                "id": d,
                "name": names.get(d, d),
                "label": state.labels.get(d, "none"),
                "suggested": v.get("label"),
                "rationale": v.get("rationale", ""),
                "quotes": v.get("quotes", []),
                "grounded": v.get("grounded", True),
                "key": k + 1,
            }
            for k, (d, v) in enumerate(dims.items())
        ],
        "history": [{**h, "payload": json.loads(h["payload"] or "{}")} for h in state.history],
        "next_id": neighbours[0] if neighbours else None,
        "rubric": rubric,
    }


def item_id_of(request: Request) -> int:
    return parse_number(request.path_params["item_id"], "queue item", status=404)


async def item_page(request: Request) -> Response:
    current(request)
    item_id = item_id_of(request)
    notice = saved(request)
    context = coding_context(request, item_context(request, item_id))
    return render(request, "item.html", saved=notice, **context)


def coding_context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    """The item page's context with its double coding as the logged-in analyst may see it:
    a coder sees their own labels in the dimensions table, nobody sees another's coding
    until every coder has coded the item."""
    from . import coding

    seen = coding.view(db(request), context["s"].item["id"], request.state.user.name)
    if seen.blind and seen.mine is not None:
        context["dimensions"] = [{**d, "label": seen.mine.labels.get(d["id"], d["label"])}
                                 for d in context["dimensions"]]  # fmt: skip
    return {**context, "coding": seen}


async def decide(request: Request) -> Response:
    current(request)
    form = await check_post(request, request.state.csrf)
    item_id = item_id_of(request)
    if not request.state.user.can_decide:
        raise HTTPException(403, "your account can read but not decide")
    action = str(form.get("action", ""))
    raw = form.get("version")
    version = parse_number(raw if isinstance(raw, str) else None, "the item version the form was based on")
    payload = {k: str(form[k]) for k in ("reason", "dimension", "label", "summary", "note") if form.get(k)}
    try:
        review.decide(db(request), item_id, request.state.user.name, action, version, **payload)
    except review.StaleItem as exc:
        context = coding_context(request, item_context(request, item_id))
        return render(request, "item.html", 409, conflict=str(exc), **context)
    except NotFound:
        raise
    except review.QueueError as exc:
        context = coding_context(request, item_context(request, item_id))
        return render(request, "item.html", 400, problem=str(exc), **context)
    if action in review.STATE_AFTER:  # a decision that settles the item: on to the next
        following = [
            r["id"]
            for r in review.list_items(db(request), state=review.PENDING, limit=2)
            if r["id"] != item_id
        ][:1]  # an item coded blind stays pending: not it again
        target = f"/items/{following[0]}" if following else "/queue"
        return RedirectResponse(f"{target}?done={action}&from={item_id}", status_code=303)
    return RedirectResponse(f"/items/{item_id}?done={action}", status_code=303)


async def scores_page(request: Request) -> Response:
    current(request)
    tables = [score_lib.commitment_table(db(request), r) for r in site(request).rubrics.values()]
    return render(request, "scores.html", tables=tables, overview=score_lib.overview(tables),
                  rubrics=site(request).rubrics)  # fmt: skip


async def receipt_page(request: Request) -> Response:
    current(request)
    rubric = site(request).rubrics.get(
        parse_number(request.path_params["commitment"], "commitment", status=404)
    )
    member = request.path_params["member"]
    if rubric is None or member not in rubric.members:
        raise HTTPException(404, "no such commitment or member")
    receipt = score_lib.explain(db(request), rubric, member)
    return render(request, "receipt.html", r=receipt, rubric=rubric)


async def report_page(request: Request) -> Response:
    current(request)
    rubric = site(request).rubrics.get(
        parse_number(request.path_params["commitment"], "commitment", status=404)
    )
    if rubric is None:
        raise HTTPException(404, "no such commitment")
    return render(request, "report.html", sections=draft_lib.draft(db(request), rubric), rubric=rubric)


async def eval_page(request: Request) -> Response:
    current(request)
    from .evaluate import headline, list_runs

    runs = list_runs(db(request), 100)
    for run in runs:
        run["headline"] = headline(run)
    return render(request, "eval.html", runs=runs, agreement=coding_agreement(request))


def coding_agreement(request: Request) -> Any:
    """The analysts' agreement on the items they coded blind, for the evaluation page."""
    from . import coding

    return coding.agreement(db(request))


def plots_dir(request: Request) -> Path:
    from .store import resolve_db_path

    return resolve_db_path(site(request).path).parent / "web-plots"


async def eval_run_page(request: Request) -> Response:
    current(request)
    from .evaluate import load_run
    from .evaluation_report import side_by_side, write_report

    run = load_run(db(request), request.path_params["run_id"])  # NotFound: the 404 page
    plots = sorted(p.name for p in plots_dir(request).glob(f"{run['id']}-*.png"))
    if not plots:  # a run's figures do not change: drawn on the first view only
        write_report(run, plots_dir(request), "md")
        plots = sorted(p.name for p in plots_dir(request).glob(f"{run['id']}-*.png"))
    return render(request, "eval_run.html", run=run, table=side_by_side([run]), plots=plots)


async def plot(request: Request) -> Response:
    current(request)
    name = request.path_params["name"]
    file = plots_dir(request) / name
    if "/" in name or not name.endswith(".png") or not file.is_file():
        raise HTTPException(404, "no such plot")
    return FileResponse(file, media_type="image/png")


# -- errors and headers ----------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (301, 302, 303, 307) and exc.headers:
        return RedirectResponse(exc.headers["Location"], status_code=exc.status_code)
    response = render(request, "error.html", exc.status_code, code=exc.status_code, message=exc.detail)
    response.headers.update(exc.headers or {})  # e.g. a 405's Allow
    return response


async def not_found(request: Request, exc: Exception) -> Response:
    """What the library could not find (a queue item, an evaluation run): the 404 page."""
    return render(request, "error.html", 404, code=404, message=str(exc))


async def server_error(request: Request, exc: Exception) -> Response:
    """Any unexpected error: the usual error page without detail (uvicorn logs the traceback)."""
    message = "Something went wrong on our side and the error has been logged: reload the page to see where things stand."
    try:
        response: Response = render(request, "error.html", 500, code=500, message=message)
    except Exception:  # the template itself failing must still give a page
        response = HTMLResponse("<!doctype html><title>500</title><h1>500</h1>", status_code=500)
    # Starlette sends this from outside every middleware: the headers go on here
    response.headers.update(SECURITY_HEADERS)
    return response


class SecurityHeaders:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    db_path: str | Path | None = None,
    *,
    secure_cookies: bool = False,
    throttle: users_lib.LoginThrottle | None = None,
) -> Starlette:
    """The application on the database at ``db_path`` (migrated once, here)."""
    from . import web_matrix  # its handlers use this module's helpers

    path = Path(db_path) if db_path else None
    open_db(path).conn.close()  # create and migrate once; requests open without migrating
    throttle = throttle or users_lib.LoginThrottle()  # failed logins: this process's memory only
    # The rubrics are read once: a changed rubric file takes effect when the server restarts.
    rubrics = {r.number: r for r in rubrics_for()}

    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.globals.update(safe_url=safe_url, long_date=long_date, order_labels=ORDER_LABELS, flags=FLAGS,
                       report_commitments=list(rubrics))  # fmt: skip
    env.filters["fromjson"] = lambda value: json.loads(value) if value else []
    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/queue", queue_page),
        # numbers in paths are taken as text and parsed by parse_number: the :int converter
        # takes any length, which SQLite cannot bind
        Route("/items/{item_id}", item_page),
        Route("/items/{item_id}/decide", decide, methods=["POST"]),
        Route("/scores", scores_page),
        Route("/scores/{commitment}/{member}", receipt_page),
        Route("/report/{commitment}", report_page),
        *web_matrix.routes(),
        Route("/eval", eval_page),
        Route("/eval/{run_id}", eval_run_page),
        Route("/plots/{name}", plot),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error, NotFound: not_found, Exception: server_error},
    )
    app.state.site = Site(path, throttle, rubrics, env, secure_cookies)
    return app


def server_config(app: Any, host: str, port: int, *, forwarded_allow_ips: str | None = None) -> Any:
    """uvicorn's configuration for ``app``: the peer's address is the client's, unless a proxy is named.

    ``X-Forwarded-For`` is honoured only from the addresses in ``forwarded_allow_ips``
    (comma-separated, as uvicorn takes them); by default never, so a header an attacker
    sets cannot choose the address the login throttle counts.
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
        proxy_headers=forwarded_allow_ips is not None,
        # never None: uvicorn would then read $FORWARDED_ALLOW_IPS (default 127.0.0.1)
        forwarded_allow_ips=forwarded_allow_ips or "",
    )


def serve(
    host: str,
    port: int,
    db_path: str | Path | None = None,
    *,
    secure_cookies: bool = False,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Run the web interface with uvicorn until interrupted."""
    import uvicorn

    app = create_app(db_path, secure_cookies=secure_cookies)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(f"evidence serve: http://{host}:{port}/ (started {started}; Ctrl-C to stop)", flush=True)
    config = server_config(app, host, port, forwarded_allow_ips=forwarded_allow_ips)
    uvicorn.Server(config).run()
