"""The evidence matrix page and its verdict form, on :mod:`classifier.web`'s helpers.

``/matrix?commitment=N``: members x dimensions, each cell the verdict (confirmed) or the proposal,
the confirmed actions strongest first, the pending candidates and the gap, and a link to the
queue filtered to the cell. ``POST /matrix/verdict`` sets a cell's verdict through
:func:`classifier.verdicts.set_verdict`, with the cell version the form was based on: a verdict
someone else set in between is refused (409) and the page shows the cell as it now is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from . import verdicts, web


def _rubric(request: Request, raw: str | None):
    if raw is None:
        first = next(iter(web.site(request).rubrics), None)
        if first is None:
            raise HTTPException(404, "no commitment has a rubric")
        return web.site(request).rubrics[first]
    rubric = web.site(request).rubrics.get(web.parse_number(raw, "commitment"))
    if rubric is None:
        raise HTTPException(404, "no such commitment")
    return rubric


def _render(request: Request, rubric, status: int = 200, **context: Any) -> Response:
    table = verdicts.matrix(web.db(request), rubric)
    queue = {
        (row["member"], cell["dimension"]): "/queue?"
        + urlencode({"member": row["member"], "commitment": rubric.number, "dimension": cell["dimension"]})
        for row in table["members"]
        for cell in row["cells"]
    }
    return web.render(request, "matrix.html", status, table=table, rubric=rubric, queue=queue,
                      labels=verdicts.VERDICT_LABELS, **context)  # fmt: skip


def _focus(request: Request, rubric) -> tuple[int, int]:
    """The cell to focus: ``?cell=MEMBER|DIMENSION`` (after a verdict), else the first."""
    member, _, dimension = (request.query_params.get("cell") or "").partition("|")
    if member in rubric.members and dimension in rubric.dimension_ids:
        return rubric.members.index(member), rubric.dimension_ids.index(dimension)
    return 0, 0


async def matrix_page(request: Request) -> Response:
    web.current(request)
    rubric = _rubric(request, request.query_params.get("commitment"))
    done = request.query_params.get("done")
    notice = {"action": "verdict", "item": None} if done == "verdict" else None
    return _render(request, rubric, saved=notice, focus=_focus(request, rubric))


async def set_verdict(request: Request) -> Response:
    web.current(request)
    form = await web.check_post(request, request.state.csrf)
    if not request.state.user.can_decide:
        raise HTTPException(403, "your account can read but not decide")
    raw = form.get("commitment")
    rubric = _rubric(request, raw if isinstance(raw, str) else "")
    member, dimension = str(form.get("member", "")), str(form.get("dimension", ""))
    raw = form.get("version")
    version = web.parse_number(
        raw if isinstance(raw, str) else None, "the cell version the form was based on"
    )
    focus = (
        (rubric.members.index(member), rubric.dimension_ids.index(dimension))
        if member in rubric.members and dimension in rubric.dimension_ids
        else (0, 0)
    )
    try:
        verdicts.set_verdict(web.db(request), rubric, member, dimension, str(form.get("label", "")),
                             request.state.user.name, version, note=str(form.get("note", "")))  # fmt: skip
    except verdicts.StaleVerdict as exc:
        return _render(request, rubric, 409, conflict=str(exc), focus=focus)
    except verdicts.VerdictError as exc:
        return _render(request, rubric, 400, problem=str(exc), focus=focus)
    target = "/matrix?" + urlencode(
        {"commitment": rubric.number, "cell": f"{member}|{dimension}", "done": "verdict"}
    )
    return RedirectResponse(target, status_code=303)


def routes() -> list[Route]:
    return [
        Route("/matrix", matrix_page),
        Route("/matrix/verdict", set_verdict, methods=["POST"]),
    ]
