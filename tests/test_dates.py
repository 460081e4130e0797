"""Run ids: one maker for every kind of run."""

from __future__ import annotations

import re

from classifier.classify import ClassifySummary
from classifier.dates import new_run_id
from classifier.documents import Summary

RUN_ID = re.compile(r"\d{8}T\d{12}")


def test_run_ids_are_start_times_that_only_grow():
    ids = [new_run_id() for _ in range(10_000)]  # many within one microsecond
    assert all(RUN_ID.fullmatch(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert re.fullmatch(r"\d{8}T\d{12}-title-baseline", new_run_id("title", "baseline"))


def test_crawl_and_classification_summaries_make_run_ids_alike():
    crawl, classification = Summary(), ClassifySummary("baseline", "m", "classify-v2")
    assert RUN_ID.fullmatch(crawl.run_id) and RUN_ID.fullmatch(classification.run_id)
    assert crawl.run_id < classification.run_id < Summary().run_id


def test_both_summaries_share_one_base():
    from classifier.summaries import RunSummary, counted

    assert issubclass(Summary, RunSummary) and issubclass(ClassifySummary, RunSummary)
    crawl = Summary()
    crawl.failed["timeout"] += 2
    crawl.failed["http-500"] += 1
    assert crawl.failures == 3
    assert counted("failed", crawl.failed) == "failed 3 (timeout 2, http-500 1)"
    assert "failed 3 (timeout 2, http-500 1)" in crawl.lines()[1]
