"""Dates and times as the project writes them: UTC timestamps, run ids, the reports' long dates, Retry-After."""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time

_last_run = dt.datetime.min.replace(tzinfo=dt.UTC)
_run_lock = threading.Lock()


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string, to the second (the `*_utc` columns)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id(*parts: str) -> str:
    """A run's id: the UTC time it started, to the microsecond, then ``parts`` joined by '-'.

    The one maker of run ids (crawls, classification runs, nightly runs, evaluation runs), so
    they all sort by start time and read the same. Within a process each id is later than the
    one before, even when two runs start within the same microsecond.
    """
    global _last_run
    with _run_lock:
        now = max(dt.datetime.now(dt.UTC), _last_run + dt.timedelta(microseconds=1))
        _last_run = now
    return "-".join([now.strftime("%Y%m%dT%H%M%S%f"), *parts])


def long_date(iso: str | None, missing: str = "n.d.") -> str:
    """'2024-07-04' -> '4 July 2024', as the compliance reports print dates."""
    if not iso:
        return missing
    d = dt.date.fromisoformat(iso[:10])
    return f"{d.day} {d.strftime('%B')} {d.year}"


def retry_after(value: str | None) -> float | None:
    """A Retry-After header as seconds to wait: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
