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

from .classify import Classifier, pending_items
from .config import Config
from .crawl import crawl
from .dates import new_run_id, now_utc
from .errors import EndpointUnusable, NotFound
from .failpoints import failpoint
from .redaction import redact, redact_all
from .review import fill
from .rubric import rubrics_for
from .sources import Source

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


class NoSuchRun(NotFound, ValueError):
    """No nightly run has that id."""


def list_runs(db: sqlite_utils.Database, limit: int = 20) -> list[dict]:
    """Nightly runs, newest first."""
    return list(db.query("select * from runs order by id desc limit ?", [limit]))


def get_run(db: sqlite_utils.Database, run_id: str) -> dict:
    """One nightly run, its ``summary`` decoded."""
    rows = list(db["runs"].rows_where("id = ?", [run_id]))
    if not rows:
        raise NoSuchRun(f"no nightly run {run_id!r}: see `evidence runs list`")
    return {**rows[0], "summary": json.loads(rows[0]["summary"] or "{}")}


def last_success(db: sqlite_utils.Database) -> str | None:
    row = db.execute("select max(started_utc) from runs where status in ('ok', 'failures')").fetchone()
    return row[0] if row else None


def _event(name: str, message: str, /, **data: object) -> None:
    # messages and data carry errors read from model endpoints and sites: never a key
    log.info("%s", redact(message), extra={"event": name, "data": redact_all(data)})


def run_nightly(
    db: sqlite_utils.Database,
    config: Config,
    sources: list[Source],
    *,
    max_documents: int | None = None,
    cost_cap: float | None = None,
    token_cap: int | None = None,
    results_dir: Path | None = None,
    classifier: Classifier | None = None,
) -> dict:
    """One nightly run; returns its summary (also stored in ``runs``, logged and, if asked, as JSON).

    Stages: retrain the learned model when analysts decided since it was trained; crawl each source for items since its last full crawl; classify every stored
    document whose current text has no classification yet by this model and prompt (new and
    changed documents, earlier failures, and whatever a killed run left); fill the queue. A stage
    that breaks is recorded with its error and the next stage still runs.
    """
    run_id = new_run_id()
    # We hold the lock, so a run still marked running died (killed, crashed): say so.
    for (dead,) in db.execute("select id from runs where status = 'running'").fetchall():
        log.warning("run %s did not finish (killed or crashed): marked crashed", dead,
                    extra={"event": "crashed-run", "data": {"run": dead}})  # fmt: skip
    db.execute("update runs set status = 'crashed' where status = 'running'")
    previous = last_success(db)
    since = dt.date.fromisoformat(previous[:10]) if previous else None
    db.table("runs").insert({"id": run_id, "started_utc": now_utc(), "status": "running",
                       "since": since.isoformat() if since else None})  # fmt: skip
    summary: dict = {"run": run_id, "since": since.isoformat() if since else None, "stages": {}}
    _event("run-started", f"run {run_id} started; last successful run {since or 'never'}; each source crawled since its last full crawl", run=run_id,
           since=summary["since"])  # fmt: skip
    failpoint("nightly.started")
    started = time.monotonic()
    failures: dict[str, dict[str, int]] = {}
    stops: list[str] = []
    rubrics = rubrics_for()

    def learn_stage() -> tuple[dict, dict, str]:
        # first, so that tonight's classifications already use what the analysts decided today
        from . import learner

        new = learner.pending_decisions(db, rubrics)
        if not new:
            return {"new_decisions": 0, "retrained": []}, {}, "no new decisions: models unchanged"
        rows = learner.learn(db, rubrics)
        retrained = [r["commitment"] for r in rows if r["new"]]
        return ({"new_decisions": new, "retrained": retrained}, {},
                f"{new} new decisions; retrained commitments {retrained or 'none (same training data)'}")  # fmt: skip

    def crawl_stage() -> tuple[dict, dict, str]:
        done = asyncio.run(
            crawl(
                db,
                sources,
                config,
                since_last_crawl=True,
                on_done=lambda target, outcome: failpoint("crawl.document"),
            )
        )
        return done.as_dict(), dict(done.failed), "; ".join(done.lines())

    def classify_stage() -> tuple[dict, dict, str]:
        nonlocal classifier
        classifier = classifier or Classifier(db, config, cost_cap=cost_cap, token_cap=token_cap)
        items, pending = pending_items(db, rubrics, classifier, limit=max_documents)
        chosen = len({i.document_id for i in items})
        if pending > chosen:
            stops.append(
                f"max-documents: {pending - chosen} of {pending} pending documents left for the next run"
            )
        _event("stage-started", f"classify: {chosen} documents x {len(rubrics)} commitments to classify",
               stage="classify", documents=chosen, pending=pending, items=len(items))  # fmt: skip
        done = asyncio.run(classifier.run(items, on_done=lambda: failpoint("classify.stored")))
        for cap in ("cost-cap", "token-cap"):
            if done.skipped.get(cap):
                stops.append(f"{cap}: {done.skipped[cap]} classifications left for the next run")
        stage = {"backend": done.backend, "model": done.model, "prompt": done.prompt, "documents": chosen,
                 "classified": done.classified, "cached": done.cached, "prefiltered": done.prefiltered,
                 "failed": dict(done.failed),
                 "failure_reasons": {k: done.reason(k) for k in done.failed}, "skipped": dict(done.skipped),
                 "calls": done.calls, "tokens_in": done.tokens_in, "tokens_out": done.tokens_out,
                 "cost": round(done.cost, 6)}  # fmt: skip
        return stage, dict(done.failed), "; ".join(line.strip() for line in done.lines())

    def queue_stage() -> tuple[dict, dict, str]:
        counts = fill(db, on_item=lambda: failpoint("queue.item"))
        return counts, {}, ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())

    error = None
    try:
        # a model endpoint that cannot answer stops the run before it crawls or learns anything
        if problem := (classifier.backend.check_now() if classifier else None):
            raise EndpointUnusable(problem)
        stages = (
            ("learn", learn_stage),
            ("crawl", crawl_stage),
            ("classify", classify_stage),
            ("queue", queue_stage),
        )
        for name, run_stage in stages:
            t = time.monotonic()
            try:
                stage, failures[name], message = run_stage()
            except Exception as exc:  # recorded; the next stages still run on what is stored
                stage = {"error": one_line(exc)}
                failures[name] = {"stage-error": 1}
                message = f"stage failed: {stage['error']}"
            stage["seconds"] = round(time.monotonic() - t, 2)
            summary["stages"][name] = stage
            _event("stage-done", f"{name}: {message}", **{"stage": name, **stage})
            failpoint(f"{name}.done")
    except Exception as exc:  # between stages: stop here, but record the run and what it did
        error = one_line(exc)
        failures["run"] = {"error": 1}
        summary["error"] = error
        log.error("run stopped: %s", error, extra={"event": "run-error", "data": {"error": error}})

    failures = {k: v for k, v in failures.items() if v}
    failed = sum(sum(v.values()) for v in failures.values())
    status = "error" if error else "stopped-by-budget" if stops else "failures" if failed else "ok"
    code = EXIT_FAILURES if failed or stops else EXIT_OK
    summary.update({"status": status, "failures": failures, "stopped": stops,
                    "seconds": round(time.monotonic() - started, 2), "exit_code": code})  # fmt: skip
    summary = redact_all(summary)  # stored, written and printed: errors in it came from outside
    db.table("runs").update(run_id, {"finished_utc": now_utc(), "status": status, "summary": json.dumps(summary),
                               "exit_code": code})  # fmt: skip
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / f"nightly-{run_id}.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    detail = "; ".join(
        f"{stage}: " + ", ".join(f"{k} {v}" for k, v in c.items()) for stage, c in failures.items()
    )
    _event("run-finished", f"run {run_id} {status} (exit {code}) in {summary['seconds']} s"
           + (f"; failures: {detail}" if detail else "") + (f"; stopped: {'; '.join(stops)}" if stops else ""),
           run=run_id, status=status, exit_code=code, failures=failures, stopped=stops,
           seconds=summary["seconds"])  # fmt: skip
    return summary


def one_line(exc: BaseException) -> str:
    """An exception as one redacted line: its type and message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {text}")[:300]
