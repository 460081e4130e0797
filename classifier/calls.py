"""The model call log: every model call recorded one way (request, response, accounting), and
read back for `evidence calls`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlite_utils

from .dates import now_utc
from .errors import NotFound
from .redaction import redact
from .store import new_id

if TYPE_CHECKING:
    from .llm import CallResult


def log_call(
    db: sqlite_utils.Database,
    result: CallResult,
    *,
    backend: str,
    model: str,
    prompt_name: str,
    prompt_sha: str,
    input_sha: str,
    commitment: int,
    run_id: str | None = None,
) -> int:
    """Record one model call and return its id. Whatever a backend read from an endpoint is
    redacted again here, whichever backend it was."""
    return new_id(
        db.table("llm_calls").insert(
            {
                "backend": backend,
                "model": model,
                "prompt_name": prompt_name,
                "prompt_sha": prompt_sha,
                "input_sha": input_sha,
                "commitment": commitment,
                "request": json.dumps(result.request, ensure_ascii=False),
                "raw_response": redact(result.raw_response),
                "parsed": redact(json.dumps(result.output)) if result.output is not None else None,
                "outcome": result.outcome,
                "error": redact(result.error),
                "tokens_in": result.tokens_in,
                "tokens_out": result.tokens_out,
                "cached_tokens": result.cached_tokens,
                "cost": result.cost,
                "latency_ms": int(result.latency * 1000),
                "retries": result.retries,
                "run_id": run_id,
                "created_utc": now_utc(),
            }
        )
    )


class NoSuchCall(NotFound, ValueError):
    """No model call has that id."""


def list_calls(db: sqlite_utils.Database, outcome: str | None = None, limit: int = 50) -> list[dict]:
    """Model calls, newest first, only those with ``outcome`` if given."""
    return list(
        db.query(
            "select * from llm_calls where (:o is null or outcome = :o) order by id desc limit :n",
            {"o": outcome, "n": limit},
        )
    )


def get_call(db: sqlite_utils.Database, call_id: int) -> dict:
    """One model call by id."""
    rows = list(db["llm_calls"].rows_where("id = ?", [call_id]))
    if not rows:
        raise NoSuchCall(f"no model call {call_id}")
    return rows[0]
