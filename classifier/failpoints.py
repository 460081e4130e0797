"""Named failpoints, for testing that a job killed at a given point resumes cleanly.

Off unless ``EVIDENCE_FAILPOINTS`` is set, as ``name=action`` pairs separated by commas:

    EVIDENCE_FAILPOINTS="classify.stored=kill@3"   # SIGKILL this process at the 3rd hit
    EVIDENCE_FAILPOINTS="crawl.document=sleep:0.5"  # pause at every hit
    EVIDENCE_FAILPOINTS="queue.item=error"          # raise FailpointError at the first hit

``kill`` is a real SIGKILL sent by the process to itself: nothing gets a chance to clean up,
exactly as when the machine's OOM killer or an operator's ``kill -9`` stops a nightly run.
The points the nightly job passes are listed in :data:`POINTS`.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

POINTS = {
    "nightly.started": "the run is recorded as running, nothing crawled yet",
    "crawl.document": "after each fetched document is stored (or its failure logged)",
    "crawl.done": "everything crawled, nothing classified yet",
    "classify.stored": "after each classification is stored",
    "classify.done": "everything classified, the queue not filled yet",
    "queue.item": "after each queue item is added or updated",
    "queue.done": "the queue filled, the run's summary not recorded yet",
    "batch.uploading": "a batch's row stored, its requests not uploaded yet",
    "batch.created": "a batch created at the provider, its id not stored yet",
    "batch.submitted": "a batch's id stored, not polled yet",
}


class FailpointError(RuntimeError):
    """Raised by a failpoint whose action is ``error``."""


_hits: Counter[str] = Counter()


def _actions() -> dict[str, str]:
    spec = os.environ.get("EVIDENCE_FAILPOINTS", "")
    actions = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, action = part.partition("=")
        actions[name.strip()] = action.strip() or "error"
    return actions


def failpoint(name: str) -> None:
    """Pass the failpoint ``name``: do nothing unless EVIDENCE_FAILPOINTS names it."""
    if "EVIDENCE_FAILPOINTS" not in os.environ:
        return
    action = _actions().get(name)
    if action is None:
        return
    _hits[name] += 1
    verb, _, argument = action.partition("@") if "@" in action else action.partition(":")
    if verb in ("kill", "error") and argument and _hits[name] != int(argument):
        return
    if verb == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif verb == "sleep":
        time.sleep(float(argument or 1))
    elif verb == "error":
        raise FailpointError(f"failpoint {name}")
    else:
        raise ValueError(f"EVIDENCE_FAILPOINTS: unknown action {action!r} for {name}")
