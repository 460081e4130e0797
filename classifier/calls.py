"""The model call log: reading the calls ``classify`` recorded (request, response, accounting)."""

from __future__ import annotations

import sqlite_utils

from .errors import NotFound


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
