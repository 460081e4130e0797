"""What every run summary shares: a run id made one way, failures and skips counted by reason,
elapsed time, and the "label total (reason n, ...)" form the summaries print."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .dates import new_run_id


def counted(label: str, counter: Counter) -> str:
    """`failed 3 (timeout 2, http-500 1)`: a total and its reasons, most frequent first."""
    detail = ", ".join(f"{k} {v}" for k, v in counter.most_common())
    return f"{label} {sum(counter.values())}" + (f" ({detail})" if detail else "")


@dataclass(kw_only=True)
class RunSummary:
    """The base of the crawl and classification summaries (`documents.Summary`,
    `classify.ClassifySummary`)."""

    skipped: Counter = field(default_factory=Counter)  # reason -> n
    failed: Counter = field(default_factory=Counter)  # reason -> n
    elapsed: float = 0.0
    run_id: str = field(default_factory=new_run_id)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())
