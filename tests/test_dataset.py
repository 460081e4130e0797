"""The dataset module's near-duplicate groups and the splits that keep them whole."""

from __future__ import annotations

import json

from classifier import dataset

from .conftest import ROOT

ACTIONS = [
    json.loads(line)
    for line in (ROOT / "eval" / "data" / "reference-labels" / "actions.jsonl")
    .read_text("utf-8")
    .splitlines()
]


def test_near_duplicates_are_grouped_and_distinct_texts_are_not():
    texts = [
        "On 4 July 2024, the agency announced amendments to the regulation on border processing.",
        "On 9 May 2025, the Agency announced amendments to the regulation on border  processing.",
        "On 1 June 2024, ministers met partners in Rome to discuss climate finance for islands.",
        "the agency announced amendments to the regulations on border processing, it said.",
    ]
    assert dataset.near_duplicate_groups(texts) == [0, 0, 1, 0]
    assert dataset.near_duplicate_groups(texts, threshold=100) == [0, 0, 1, 2]


def test_the_cited_actions_form_fewer_groups_than_texts():
    """Commitment 19 repeats many of commitment 18's paragraphs: the groups say so."""
    groups = dataset.near_duplicate_groups([a["text"] for a in ACTIONS])
    assert len(groups) == 398
    assert len(set(groups)) == 279
    assert len({a["text"] for a in ACTIONS}) == 324
    commitments: dict[int, set[int]] = {}
    for action, group in zip(ACTIONS, groups, strict=True):
        commitments.setdefault(group, set()).add(action["commitment"])
    across = [g for g, seen in commitments.items() if seen == {18, 19}]
    assert len(across) > 50  # groups that hold the same action cited under both commitments


def test_no_group_is_split_by_any_fold():
    texts = [a["text"] for a in ACTIONS]
    groups = dataset.near_duplicate_groups(texts)
    labels = [a["dimensions"].get("border_management", "none") for a in ACTIONS]
    for kwargs in ({}, {"labels": labels}):
        folds = list(dataset.grouped_folds(texts, n_splits=5, seed=3, **kwargs))
        assert len(folds) == 5
        seen = sorted(i for _, test in folds for i in test)
        assert seen == list(range(len(texts)))  # every item is tested exactly once
        for train, test in folds:
            assert not {groups[i] for i in train} & {groups[i] for i in test}
    again = list(dataset.grouped_folds(texts, n_splits=5, seed=3))
    assert again == list(dataset.grouped_folds(texts, n_splits=5, seed=3))  # seeded: reproducible
