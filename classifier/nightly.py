"""The nightly job: crawl -> classify -> queue, unattended, one at a time, resumable.

Each stage stores its work as it goes (documents and classifications in their own
transactions, the cache makes finished classifications free), so a run killed at any
point is continued by the next one without duplicates. A lock file keeps two runs from
overlapping; a lock whose holder is dead is taken over, and the takeover is logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from .classify import Classifier, document_items, rubrics_for
from .config import Config
from .corpus import Source, crawl
from .dates import now_utc
from .queue import fill

log = logging.getLogger("evidence.nightly")

EXIT_OK, EXIT_FAILURES, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


class LockHeld(Exception):
    """Another run holds the lock."""


@dataclass
class Lock:
    path: Path
    took_over: str | None = None  # what the stale lock said, when we took it over

    def release(self) -> None:
        try:
            if json.loads(self.path.read_text())["pid"] == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, KeyError):
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(path: Path) -> Lock:
    """Take the lock file, or raise :class:`LockHeld`; a dead holder's lock is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = json.dumps({"pid": os.getpid(), "started_utc": now_utc()})
    took_over = None
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            pid = holder.get("pid")
            if isinstance(pid, int) and _alive(pid):
                raise LockHeld(
                    f"another nightly run (pid {pid}, since {holder.get('started_utc')}) holds {path}"
                ) from None
            # a dead holder: take over, and say so
            path.unlink(missing_ok=True)
            stale = json.dumps(holder) if holder else "(unreadable)"
            log.warning("taking over a stale lock %s left by %s", path, stale)
            took_over = stale
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(mine)
        return Lock(path, took_over)
    raise LockHeld(f"could not take {path}")


def last_success(db: sqlite_utils.Database) -> str | None:
    row = db.execute("select max(started_utc) from runs where status in ('ok', 'failures')").fetchone()
    return row[0] if row else None


def run_nightly(
    db: sqlite_utils.Database,
    config: Config,
    sources: list[Source],
    *,
    max_documents: int | None = None,
    cost_cap: float | None = None,
    results_dir: Path | None = None,
) -> dict:
    """One nightly run; returns its summary (also stored in ``runs`` and, if asked, as JSON)."""
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    # We hold the lock, so a run still marked running died (killed, crashed): say so.
    db.execute("update runs set status = 'crashed' where status = 'running'")
    previous = last_success(db)
    since = dt.date.fromisoformat(previous[:10]) if previous else None
    db["runs"].insert({"id": run_id, "started_utc": now_utc(), "status": "running",
                       "since": since.isoformat() if since else None})  # fmt: skip
    summary: dict = {"run": run_id, "since": since.isoformat() if since else None, "stages": {}}
    started = time.monotonic()

    t = time.monotonic()
    crawled = asyncio.run(crawl(db, sources, config, since=since))
    summary["stages"]["crawl"] = {**crawled.as_dict(), "seconds": round(time.monotonic() - t, 2)}
    log.info("crawl: %s", "; ".join(crawled.lines()))

    t = time.monotonic()
    classifier = Classifier(db, config, cost_cap=cost_cap)
    items = document_items(db, rubrics_for(), since=since)
    budget_stop = False
    if max_documents is not None and len(items) > max_documents * len(rubrics_for()):
        items = items[: max_documents * len(rubrics_for())]
        budget_stop = True
    classified = asyncio.run(classifier.run(items))
    summary["stages"]["classify"] = {
        "classified": classified.classified,
        "cached": classified.cached,
        "failed": dict(classified.failed),
        "skipped": dict(classified.skipped),
        "tokens_in": classified.tokens_in,
        "tokens_out": classified.tokens_out,
        "cost": round(classified.cost, 6),
        "seconds": round(time.monotonic() - t, 2),
    }
    log.info("classify: %s", "; ".join(classified.lines()))

    t = time.monotonic()
    summary["stages"]["queue"] = {**fill(db), "seconds": round(time.monotonic() - t, 2)}
    log.info("queue: %s", summary["stages"]["queue"])

    failures = crawled.failures + classified.failures
    budget_stop = budget_stop or bool(classified.skipped.get("cost-cap"))
    status = "stopped-by-budget" if budget_stop else ("failures" if failures else "ok")
    summary.update({"status": status, "failures": failures, "seconds": round(time.monotonic() - started, 2)})
    code = EXIT_FAILURES if failures or budget_stop else EXIT_OK
    db["runs"].update(run_id, {"finished_utc": now_utc(), "status": status, "summary": json.dumps(summary),
                               "exit_code": code})  # fmt: skip
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / f"nightly-{run_id}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    summary["exit_code"] = code
    return summary
