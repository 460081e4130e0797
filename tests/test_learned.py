"""The learned model: features, training, calibration, versions, storage, member cues, threads.

Trained on real data only: the bundled rubrics, the reference-labelled cited actions
(eval/data/reference-labels, reference labels from a model, not human coding) and the shipped
off-topic paragraphs. Quality figures are measured in eval/bench/learned_study.py, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier import learned, learning
from classifier.learned import Example
from classifier.rubric import load_rubrics

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = ROOT / "eval" / "data" / "reference-labels" / "actions.jsonl"


@pytest.fixture(scope="module")
def rubrics():
    return load_rubrics(ROOT / "corpus" / "commitments")


@pytest.fixture(scope="module")
def actions():
    return learning.reference_actions(ACTIONS)


@pytest.fixture(scope="module")
def split(actions):
    """Commitment 18's actions, one near-duplicate group in five held out."""
    groups = learned.near_duplicate_groups([a["text"] for a in actions])
    held = {g for g in set(groups) if g % 5 == 0}
    train = [a for a, g in zip(actions, groups, strict=True) if g not in held]
    test = [a for a, g in zip(actions, groups, strict=True) if g in held and a["commitment"] == 18]
    return train, test


@pytest.fixture(scope="module")
def model(rubrics, split):
    train, _ = split
    examples = learned.cold_start_examples(rubrics, train)
    examples += [
        Example(
            a["text"], a["commitment"], True, member=a["member"], labels=a["dimensions"], source="decision"
        )
        for a in train[::3]
    ]
    with learned.limited_threads(1):
        return learned.train(examples, rubrics)


def test_near_duplicates_share_a_group_and_others_do_not():
    a = "On 4 July 2024, the Canada Border Services Agency announced amendments to the regulation on removals."
    b = "On 4 July 2024, the Canada Border Services Agency announced amendments to the regulation on removals at ports."
    c = "The museum opens a new exhibition of impressionist paintings next month in the old town hall."
    groups = learned.near_duplicate_groups([a, b, c])
    assert groups[0] == groups[1]
    assert groups[2] != groups[0]


def test_the_bundled_actions_repeat_as_the_readme_says(actions):
    groups = learned.near_duplicate_groups([a["text"] for a in actions])
    # about 258 distinct texts among 398 (reference-labels/README.md)
    assert 240 <= len(set(groups)) <= 300


def test_folds_never_split_a_group_or_a_site(actions):
    pages = [{"site": f"site{i % 7}.example", "text": "x"} for i in range(30)]
    split = learning.folds(actions, pages, 5)
    groups = learned.near_duplicate_groups([a["text"] for a in actions])
    fold_of_group: dict[int, int] = {}
    for n, fold in enumerate(split):
        for i in fold["actions"]:
            assert fold_of_group.setdefault(groups[i], n) == n
    sites = {}
    for n, fold in enumerate(split):
        for i in fold["pages"]:
            assert sites.setdefault(pages[i]["site"], n) == n
    assert sum(len(f["actions"]) for f in split) == len(actions)


def test_windows_keep_whole_lines_and_cover_the_text():
    lines = [f"Line {i} says something about the weather in the valley." for i in range(60)]
    text = "\n".join(lines)
    cut = learned.windows(text, size=300, limit=100)
    assert len(cut) > 5
    assert all(len(w) <= 300 for w in cut)
    assert " ".join(cut) == " ".join(lines)
    assert learned.windows("short", size=300) == ["short"]


def test_member_cues_read_the_members_own_languages():
    assert set(learned.member_cues("Die Bundesregierung hat heute beschlossen")) == {"Germany"}
    assert set(learned.member_cues("外務省は本日、発表した")) == {"Japan"}
    assert set(learned.member_cues("Il Governo ha approvato il decreto")) == {"Italy"}
    assert set(learned.member_cues("Le Gouvernement a présenté le plan")) == {"France"}
    assert set(learned.member_cues("Le gouvernement du Canada annonce")) == {"Canada"}
    assert set(learned.member_cues("La Commission européenne a adopté")) == {"European Union"}
    assert learned.member_cues("The weather was fine.") == {}


def test_several_members_named_the_first_named_acts():
    """A release names the acting member before its partners; the model decides only where no cue
    fires (here there is no member model at all, so no member)."""
    m = learned.LearnedModel(learned.SETTINGS, "v", {})
    assert m._member("Canada and the United States signed a border pact.", None, 0)[0] == "Canada"
    assert m._member("Canadian ministers met US officials in Ottawa.", None, 0)[0] == "Canada"
    assert m._member("The US and Canada agreed to share data.", None, 0)[0] == "United States"
    assert m._member("Die Bundesregierung und die Europäische Kommission", None, 0)[0] == "Germany"
    assert m._member("The ministers met in the capital.", None, 0) == (None, 0.0, "none")


def test_a_dimension_is_learned_in_two_steps():
    """Mentioned at all (none against weak or strong), then strong against weak from the labelled
    weak and strong texts only; the three probabilities add up, and the label follows the steps."""
    import numpy as np

    texts = ["fund border radar", "fund border drones", "discuss border talks", "discuss border forum",
             "museum opening", "football results"] * 3  # fmt: skip
    labels = ["strong", "strong", "weak", "weak", "none", "none"] * 3
    features = learned.Features({**learned.SETTINGS, "min_df": 1}).fit(texts)
    model = learned._fit_dimension(features.transform(texts), labels, 1e-4, 0)
    assert isinstance(model, learned._TwoStep)
    assert list(model.strength.classes_) == [False, True]  # trained without the 'none' texts
    assert model.strength.coef_.shape[1] == features.transform(texts).shape[1]
    probs = model.predict_proba(
        features.transform(["fund border radar", "discuss border talks", "museum opening"])
    )
    assert np.allclose(probs.sum(axis=1), 1.0)
    got = [learned.label_of(dict(zip(learned.LABELS, row, strict=True))) for row in probs]
    assert got == ["strong", "weak", "none"]
    assert learned.label_of({"none": 0.5, "weak": 0.3, "strong": 0.2}) == "none"
    assert learned.label_of({"none": 0.4, "weak": 0.35, "strong": 0.25}) == "weak"
    assert learned.label_of({"none": 0.4, "weak": 0.2, "strong": 0.4}) == "strong"
    one = learned._fit_dimension(features.transform(texts[:2]), ["strong", "strong"], 1e-4, 0)
    assert isinstance(one, learned._Constant) and one.value == "strong"


def test_version_depends_on_examples_and_settings_not_their_order():
    a = [Example("one", 18, True), Example("two", 0, False)]
    v = learned.version_of(a, learned.SETTINGS)
    assert v.startswith("sha256:")
    assert learned.version_of(list(reversed(a)), learned.SETTINGS) == v
    assert learned.version_of(a, {**learned.SETTINGS, "alpha_relevance": 1e-3}) != v
    assert learned.version_of([*a, Example("three", 18, False)], learned.SETTINGS) != v


def test_threshold_for_precision_picks_the_lowest_threshold_that_reaches_it():
    probs = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5]
    truth = [1, 1, 0, 1, 0, 0]
    assert learned.threshold_for_precision(probs, truth, 1.0) == 0.9
    assert learned.threshold_for_precision(probs, truth, 0.75) == 0.7
    assert learned.threshold_for_precision(probs, [0] * 6, 0.5) is None


def test_model_judges_held_out_actions_relevant_and_off_topic_text_not(model, split):
    _, test = split
    judged = model.judge_many([a["text"] for a in test], 18)
    share = sum(j.relevant for j in judged) / len(judged)
    assert share >= 0.8, share
    off = model.judge_many(
        [
            "Der Deutsche Wetterdienst erwartet am Wochenende kräftige Gewitter mit Starkregen.",
            "Recipe: roast chicken with lemon and thyme, ready in ninety minutes.",
        ],
        18,
    )
    assert not any(j.relevant for j in off)
    assert all(0.0 <= j.relevance <= 1.0 for j in [*judged, *off])


def test_model_attributes_members_of_held_out_actions(model, split):
    _, test = split
    judged = model.judge_many([a["text"] for a in test], 18)
    right = sum(j.members == [a["member"]] for a, j in zip(test, judged, strict=True))
    assert right / len(test) >= 0.7, right / len(test)
    assert all(len(j.members) == 1 for j in judged)


def test_dimension_probabilities_and_thresholds_are_well_formed(model, rubrics):
    for rubric in rubrics:
        part = model.commitments[rubric.number]
        assert set(part.dimensions) == set(rubric.dimension_ids)
        for d, t in part.strong_threshold.items():
            assert t is None or 0.0 <= t <= 1.0, (d, t)
    j = model.judge("On 4 July 2024, the Home Office funded new surveillance technology at the border.", 18)
    for probs in j.dimensions.values():
        assert abs(sum(probs.values()) - 1.0) < 1e-6
    assert set(j.strong_probability) == set(rubrics[0].dimension_ids)


def test_a_stored_model_loads_and_judges_the_same(model):
    blob = model.to_bytes()
    sha = learned.blob_sha(blob)
    loaded = learned.LearnedModel.from_bytes(blob, sha)
    text = "On 12 July 2024, Canadian ministers met US officials to discuss trafficking."
    assert loaded.version == model.version
    assert loaded.judge(text, 18).relevance == pytest.approx(model.judge(text, 18).relevance)
    with pytest.raises(ValueError, match="sha256"):
        learned.LearnedModel.from_bytes(blob + b"x", sha)


def test_training_is_deterministic(rubrics, split):
    train, _ = split
    examples = learned.cold_start_examples(rubrics[:1], train[:60])
    a = learned.train(examples, rubrics[:1], calibrate=False)
    b = learned.train(list(reversed(examples)), rubrics[:1], calibrate=False)
    assert a.version == b.version
    text = "The Coast Guard rescued migrants and arrested two smugglers."
    assert a.judge(text, 18).relevance == pytest.approx(b.judge(text, 18).relevance, abs=1e-6)


def test_fast_features_and_predictions_equal_scikit_learns(model, split):
    """The re-written transform and predict_proba give scikit-learn's matrix and judgements."""
    import numpy as np

    _, test = split
    texts = [a["text"] for a in test[:20]]
    texts += [
        "Kurz  gesagt: a  b\tc\n\nDie Bundesregierung  hat X-1 beschlossen. 外務省は発表した。",
        "",
        "a",
    ]
    assert model.features is not None
    fast = model.features.transform(texts)
    fast_judged = model.judge_many(texts, 18)
    with learned.reference_implementation():
        slow = model.features.transform(texts)
        slow_judged = model.judge_many(texts, 18)
    assert fast.shape == slow.shape and fast.nnz == slow.nnz
    assert abs(fast - slow).max() < 1e-6
    for f, s in zip(fast_judged, slow_judged, strict=True):
        assert (f.window, f.members, f.relevant) == (s.window, s.members, s.relevant)
        assert abs(f.relevance - s.relevance) < 1e-6
        for d in f.dimensions:
            assert np.allclose(list(f.dimensions[d].values()), list(s.dimensions[d].values()), atol=1e-6)


def test_thread_limits_nest_and_are_restored(monkeypatch):
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((2, 2)) @ np.ones((2, 2))  # loads BLAS
    before = [p["num_threads"] for p in threadpool_info()]
    with learned.limited_threads(1):
        with learned.limited_threads(1):
            assert all(p["num_threads"] == 1 for p in threadpool_info())
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert [p["num_threads"] for p in threadpool_info()] == before


def test_threads_are_limited_inside_the_context(monkeypatch):
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((2, 2)) @ np.ones((2, 2))  # loads BLAS
    monkeypatch.setenv(learned.THREADS_ENV, "1")
    with learned.limited_threads():
        pools = threadpool_info()
        assert pools and all(p["num_threads"] == 1 for p in pools)
    monkeypatch.setenv(learned.THREADS_ENV, "not a number")
    assert learned.thread_count() == 1


def test_offtopic_paragraphs_are_varied_and_never_the_real_pages():
    rows = learned.offtopic_paragraphs()
    assert len(rows) >= 100
    assert {lang for lang, _ in rows} >= {"en", "de", "fr", "it", "ja"}
    manifest = json.loads((ROOT / "eval" / "data" / "realpages" / "manifest.json").read_text())
    truths = [w for row in manifest for w in row.get("with") or [] if len(w) > 25]
    shipped = " ".join(t for _, t in rows)
    assert not [w for w in truths if w in shipped]


def test_stream_figures_count_what_came_through():
    scores = [0.9, 0.8, 0.7, 0.2, 0.6, 0.1]
    truth = [1, 1, 0, 1, 0, 0]
    pred = [True, True, True, False, False, False]
    hard = [False, False, True, False, False, False]
    fig = learning.stream_figures(scores, truth, pred, hard)
    assert fig["precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert fig["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert fig["negatives_judged_relevant"] == 1
    assert fig["hard_negatives_judged_relevant"] == 1
    assert fig["base_rate"] == 0.5


@pytest.mark.slow
def test_learning_curve_improves_with_decisions_and_plots(rubrics, actions, tmp_path):
    """Mechanics on a subset (commitment 18's first 120 actions; the shipped off-topic paragraphs
    stand in for the real pages, which need a minute of extraction): the full curve is
    bench/learned_study.py's."""
    rubric = rubrics[0]
    subset = [a for a in actions if a["commitment"] == 18][:120]
    pages = [{"site": f"site{i % 6}", "text": t, "file": str(i), "hard": False}
             for i, (_, t) in enumerate(learned.offtopic_paragraphs())]  # fmt: skip
    curve = learning.learning_curve([rubric], subset, pages, steps=(0, 60), seeds=(0,), n_folds=2)
    per = curve["commitments"]["18"]
    assert set(per) == {"uncertainty", "random:0", "random"}
    assert per["random"]["60"]["mean_kappa"] > per["random"]["0"]["mean_kappa"]
    assert "commitment 18" in curve["verdict"] and "reference labels from a model" in curve["protocol"]
    assert "review queue" in curve["protocol"]
    png = learning.plot_learning_curve(curve, tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_simulated_analyst_decides_what_the_queue_holds_first(model, rubrics, split):
    """With the queue, items the current model judges relevant are decided before any other, in
    the given order (random) or least sure first; without it, the order alone decides."""
    train, _ = split
    actions = [a for a in train if a["commitment"] == 18][:6]
    pages = [{"site": "s", "text": t, "file": str(i), "hard": False}
             for i, (_, t) in enumerate(learned.offtopic_paragraphs()[:6])]  # fmt: skip
    order = [x for pair in zip([("page", i) for i in range(6)], [("action", i) for i in range(6)], strict=True)
             for x in pair]  # fmt: skip
    rubric = rubrics[0]
    relevant = {
        item for item, j in zip(order, model.judge_many(
            [actions[i]["text"] if k == "action" else pages[i]["text"] for k, i in order], 18), strict=True)
        if j.relevant
    }  # fmt: skip
    assert relevant and len(relevant) < len(order)
    queued = learning._next_decisions(model, rubric, order, [], len(relevant), actions, pages,
                                      uncertainty=False, queue=True)  # fmt: skip
    assert set(queued) == relevant and queued == [it for it in order if it in relevant]
    unsure = learning._next_decisions(model, rubric, order, [], len(relevant), actions, pages,
                                      uncertainty=True, queue=True)  # fmt: skip
    assert set(unsure) == relevant
    assert learning._next_decisions(model, rubric, order, [], 3, actions, pages,
                                    uncertainty=False, queue=False) == order[:3]  # fmt: skip
    later = learning._next_decisions(model, rubric, order, queued, 2, actions, pages,
                                     uncertainty=False, queue=True)  # fmt: skip
    assert not set(later) & set(queued) and len(later) == 2  # the queue empty: the rest, in order
