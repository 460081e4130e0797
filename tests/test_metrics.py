"""Metrics on hand-made predictions: failures as misses, member attribution, the stream, the reference
labels, coverage and exit codes. Each figure here is worked out by hand from the items below."""

from __future__ import annotations

import pytest

from classifier import evaluate, metrics
from classifier.dataset import EvalItem, sample_items


def _item(n: int, kind: str, member: str | None = "Canada", commitment: int = 18) -> EvalItem:
    return EvalItem(f"i{n}@{commitment}", commitment, kind, member, "2024-07-04", f"text {n}", None)


def _p(relevant: bool, members=(), confidence=0.9, labels=None) -> dict:
    return {"relevant": relevant, "members": list(members), "action_date": "2024-07-04" if relevant else None,
            "labels": labels or {}, "flags": [], "confidence": confidence}  # fmt: skip


def test_a_failed_item_is_a_miss_and_the_predicted_only_figure_stands_beside_it():
    items = [_item(1, "positive"), _item(2, "positive"), _item(3, "positive"), _item(4, "background")]
    predictions = {"i1@18": _p(True, ["Canada"])}  # i2, i3 failed; i4 failed
    m = metrics.action_metrics(items, predictions)
    assert m["relevance_recall"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["relevance_recall_predicted_only"] == 1.0
    assert m["relevance_precision"] == 1.0 and m["base_rate"] == 0.75


def test_member_attribution_exact_top1_and_in_set():
    items = [_item(n, "positive") for n in range(1, 5)]
    predictions = {
        "i1@18": _p(True, ["Canada"]),
        "i2@18": _p(True, ["Canada", "France"]),
        "i3@18": _p(True, ["France", "Canada"]),
        "i4@18": _p(True, ["France"]),
    }
    m = metrics.action_metrics(items, predictions)
    assert (m["member_exact"], m["member_top1"], m["member_in_set"]) == (0.25, 0.5, 0.75)
    every = {i.id: _p(True, ["Canada", "France", "Germany", "Italy", "Japan"]) for i in items}
    m = metrics.action_metrics(items, every)
    assert m["member_in_set"] == 1.0 and m["member_exact"] == 0.0  # naming everyone no longer scores


def test_member_exact_on_attributable_actions_leaves_out_texts_cited_under_several_members():
    joint = (
        "On 26 November 2024, G7 Foreign Ministers reaffirmed the commitment made at the Apulia Summit to "
        "address irregular migration and its causes, including poverty, instability and climate change, "
        "through cooperation with countries of origin and transit."
    )
    items = [
        EvalItem("j1@18", 18, "positive", "Canada", None, joint, None),
        EvalItem("j2@18", 18, "positive", "France", None, joint.replace("the commitment", "their commitment"), None),
        EvalItem("a1@18", 18, "positive", "Canada", None, "On 4 July 2024, the CBSA announced new rules.", None),
        EvalItem("a2@18", 18, "positive", "Japan", None, "On 9 July 2024, Japan funded border posts in Chad.", None),
    ]  # fmt: skip
    predictions = {
        "j1@18": _p(True, ["Canada"]), "j2@18": _p(True, ["Canada"]),
        "a1@18": _p(True, ["Canada"]), "a2@18": _p(True, ["France"]),
    }  # fmt: skip
    assert metrics.shared_positives(items) == {"j1@18", "j2@18"}  # near-duplicates, two members
    m = metrics.action_metrics(items, predictions)
    assert m["member_exact"] == 0.5 and m["member_shared_actions"] == 2
    assert m["member_exact_attributable"] == 0.5  # a1 right, a2 wrong; the joint statement left out
    predictions["a2@18"] = _p(True, ["Japan"])
    assert metrics.action_metrics(items, predictions)["member_exact_attributable"] == 1.0


def test_stream_precision_at_k_pr_auc_and_the_pages_let_through():
    items = [_item(n, "positive") for n in range(3)] + [_item(10, "page", None), _item(11, "hard_page", None),
             _item(12, "hard_page", None), _item(13, "page", None)]  # fmt: skip
    predictions = {
        "i0@18": _p(True, confidence=0.95),
        "i1@18": _p(True, confidence=0.6),
        # i2 failed: a miss, ranked last
        "i10@18": _p(False, confidence=0.9),  # relevance score 0.1
        "i11@18": _p(True, confidence=0.8),  # a hard page in the queue, between the two positives
        "i12@18": _p(False, confidence=0.7),
        "i13@18": _p(False, confidence=0.99),
    }
    m = metrics.stream_metrics(items, predictions, at=(1, 2, 3))
    assert m["queue"] == 3 and m["precision_at_1"] == 1.0 and m["precision_at_2"] == 0.5
    assert m["precision_at_3"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["relevance_recall"] == pytest.approx(2 / 3, abs=1e-4) and m[
        "relevance_precision"
    ] == pytest.approx(2 / 3, abs=1e-4)
    assert (m["pages"], m["pages_relevant"], m["hard_pages"], m["hard_pages_relevant"]) == (4, 1, 2, 1)
    assert m["pages_through"] == ["i11@18"]
    # ranking 0.95 (+), 0.8 (-), 0.6 (+), 0.3 (-), 0.1 (-), 0.01 (-), 0.0 (+ failed): AP = (1 + 2/3 + 3/7) / 3
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 7) / 3, abs=1e-4)


def test_reference_labels_kappa_per_dimension_and_confusion():
    items = [_item(n, "positive") for n in range(4)]
    reference = {
        f"i{n}@18": {"a": g, "b": "none"} for n, g in enumerate(["strong", "weak", "none", "strong"])
    }
    predictions = {
        "i0@18": _p(True, labels={"a": "strong", "b": "none"}),
        "i1@18": _p(True, labels={"a": "weak", "b": "weak"}),
        "i2@18": _p(False, labels={"a": "strong"}),  # not relevant: every label none
        # i3 failed: every label none
    }
    m = metrics.reference_dimension_metrics(items, predictions, reference)
    assert m["actions"] == 4 and m["pairs"] == 8 and "not human coding" in m["about"]
    a = m["dimensions"]["a"]
    assert a["accuracy"] == 0.75
    assert a["confusion"] == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]  # rows gold strong/weak/none
    assert m["dimensions"]["b"]["confusion"] == [[0, 0, 0], [0, 0, 0], [0, 1, 3]]


def test_coverage_by_reason_and_the_exit_codes():
    items = [_item(n, "positive") for n in range(4)]
    rows = [{"status": "ok", "error": None}, {"status": "failed", "error": "invalid-output: no JSON"},
            {"status": "failed", "error": "invalid-output: bad"}, None]  # fmt: skip
    c = evaluate.coverage(items, rows)
    assert (c["predicted"], c["failed"], c["by_reason"]) == (1, 3, {"invalid-output": 2, "skipped": 1})
    run = {"metrics": {"coverage": c}}
    assert evaluate.exit_code([run], max_failed=0.8) == 0
    assert evaluate.exit_code([run], max_failed=0.5) == evaluate.EXIT_FAILURES
    nothing = {"metrics": {"coverage": evaluate.coverage(items, [None] * 4)}}
    assert evaluate.exit_code([run, nothing], max_failed=1.0) == evaluate.EXIT_NOTHING


def test_limit_samples_every_stratum_seeded():
    items = [_item(n, "positive", commitment=18) for n in range(60)]
    items += [_item(n, "page", None, commitment=18) for n in range(60, 160)]
    items += [_item(n, "positive", commitment=19) for n in range(160, 200)]
    items += [_item(n, "background", None, commitment=19) for n in range(200, 203)]
    sample = sample_items(items, 20, seed=1)
    assert len(sample) == 20 and sample == sample_items(items, 20, seed=1)
    strata = {(i.commitment, i.kind == "positive") for i in sample}
    assert strata == {(18, True), (18, False), (19, True), (19, False)}  # not the first 20 rows
    assert sum(i.kind == "page" for i in sample) in (9, 10)  # in proportion (100 of 203)
    assert sample != sample_items(items, 20, seed=2)
    assert sample_items(items, 500) == items
