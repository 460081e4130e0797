"""The learned backend end to end: pages fetched from the local newsroom (a real HTTP server),
classified with `--backend learned`, decided in the queue, `evidence learn`, and the classification
identity: a retrain of one commitment re-classifies that commitment's documents and nothing else.
Real SQLite throughout; the models are trained from the bundled reports and rubrics."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifier import learned, learner
from classifier.cli import app
from classifier.rubric import rubrics_for
from classifier.store import open_db
from tests import newsroom
from tests.newsroom import Newsroom

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def fetched(tmp_path, monkeypatch, isolated_db):
    config = tmp_path / "evidence.toml"
    config.write_text(
        '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\n', encoding="utf-8"
    )
    monkeypatch.setenv("EVIDENCE_CONFIG", str(config))
    assert runner.invoke(app, ["gold", "import", str(ROOT / "corpus" / "reports")]).exit_code == 0
    with Newsroom() as site:
        pages = [site.url(p) for p in (newsroom.CANADA_PATH, newsroom.GERMANY_PATH, newsroom.JAPAN_PATH)]
        assert runner.invoke(app, ["fetch", *pages]).exit_code == 0
    return isolated_db


@pytest.mark.slow
def test_learn_then_a_decision_retrains_one_commitment_and_reclassifies_only_it(fetched):
    learnt = runner.invoke(app, ["learn"])
    assert learnt.exit_code == 0, learnt.output
    assert learnt.output.count("trained version") == 2
    assert runner.invoke(app, ["learn"]).output.count("unchanged") == 2

    first = runner.invoke(app, ["classify", "--backend", "learned"])
    assert first.exit_code == 0, first.output
    assert "classified 6, cached 0, failed 0" in first.output
    db = sqlite3.connect(fetched)
    models = dict(db.execute("select commitment, model from learned_models").fetchall())
    stored = db.execute("select commitment, model, backend from classifications").fetchall()
    assert {(c, m) for c, m, _ in stored} == set(models.items())
    assert {b for *_, b in stored} == {"learned"}

    item = db.execute("select id from queue_items where commitment = 18 order by id limit 1").fetchone()
    assert item, "the learned model found nothing for commitment 18 in three action press releases"
    rejected = runner.invoke(app, ["queue", "reject", str(item[0]), "--reason", "not evidence", "-a", "ana"])
    assert rejected.exit_code == 0, rejected.output
    assert learner.pending_decisions(open_db(fetched), rubrics_for()) == 1

    again = runner.invoke(app, ["learn"])
    assert "commitment 18: trained version" in again.output and "commitment 19: unchanged" in again.output
    assert learner.pending_decisions(open_db(fetched), rubrics_for()) == 0
    versions = db.execute("select commitment, count(*) from learned_models group by commitment").fetchall()
    assert dict(versions) == {18: 2, 19: 1}

    second = runner.invoke(app, ["classify", "--backend", "learned"])
    assert second.exit_code == 0, second.output
    # commitment 18's three documents again; commitment 19's three are cache hits
    assert "classified 3, cached 3, failed 0" in second.output, second.output
    figures = json.loads(
        db.execute("select figures from learned_models order by id desc limit 1").fetchone()[0]
    )
    assert "relevance_threshold" in figures["18"] and "strong_threshold" in figures["18"]


def test_decisions_become_training_examples(fetched):
    """accept: a positive with its labels after relabels; reject: a negative."""
    db = open_db(fetched)
    rubric = rubrics_for(19)[0]
    learner.learn(db, [rubric])
    from classifier.classify import Classifier
    from classifier.config import Config

    classifier = Classifier(db, Config(), backend="learned")
    import asyncio

    from classifier.classify import document_items

    asyncio.run(classifier.run(document_items(db, [rubric])))
    from classifier import review as queue

    queue.fill(db)
    ids = [
        r[0] for r in db.execute("select id from queue_items where commitment = 19 order by id").fetchall()
    ]
    assert len(ids) >= 2, "the learned model found fewer than two of three action press releases relevant"

    def version(item_id):
        return queue.get_item(db, item_id)["version"]

    queue.decide(db, ids[0], "ana", "relabel", version(ids[0]), dimension="counter", label="weak")
    queue.decide(db, ids[0], "ana", "accept", version(ids[0]))
    queue.decide(db, ids[1], "ana", "reject", version(ids[1]), reason="not evidence")
    examples, used, last = learner.training_examples(db, rubric)
    decided = [e for e in examples if e.source == "decision"]
    assert used == 2 and last > 0
    positive = next(e for e in decided if e.relevant)
    assert positive.labels["counter"] == "weak"
    assert any(not e.relevant for e in decided)
    assert sum(e.source == "gold" for e in examples) == 200


def test_learned_output_is_grounded_whole_sentences(fetched):
    db = open_db(fetched)
    rubric = rubrics_for(18)[0]
    learner.learn(db, [rubric])
    model = learner.current_model(db, 18)
    text = (
        "OTTAWA, July 4, 2024 — The Canada Border Services Agency announced new investments.\n"
        "On 4 July 2024, the Canada Border Services Agency deployed new surveillance technology at ports of "
        "entry and trained specialised officers to detect migrant smuggling. The Minister said the measures "
        "would strengthen border integrity."
    )
    out = learner.judgement_output(model, rubric, text, None)
    assert out["relevant"] and out["members"] == ["Canada"]
    assert out["action_date"] == "2024-07-04"
    for d in out["dimensions"].values():
        for quote in d["quotes"]:
            assert quote in text
    assert out["summary"].rstrip().endswith((".", "!", "?"))
    off = learner.judgement_output(model, rubric, "Der Wetterdienst erwartet am Wochenende Gewitter.", None)
    assert not off["relevant"] and off["summary"] == ""


def test_a_stored_model_that_does_not_match_its_sha_is_refused(fetched):
    db = open_db(fetched)
    learner.learn(db, rubrics_for(18))
    learner._loaded.clear()
    row = db.execute("select id, blob from learned_models").fetchone()
    db.execute(
        "update learned_models set blob = ? where id = ?", [row[1][:-1] + bytes([row[1][-1] ^ 0xFF]), row[0]]
    )
    with pytest.raises(ValueError, match="sha256"):
        learner.current_model(db, 18)
    assert learned.blob_sha(row[1]).startswith("sha256:")


def _classify_and_fill(db, backend: str) -> None:
    import asyncio

    from classifier import review
    from classifier.classify import Classifier, document_items
    from classifier.config import Config

    classifier = Classifier(db, Config(), backend=backend)
    asyncio.run(classifier.run(document_items(db, rubrics_for())))
    review.fill(db)


@pytest.mark.slow
def test_provisional_strong_only_from_a_calibrated_model(fetched):
    """Pending baseline suggestions of strong show as unknown; the learned model's count, being
    above a threshold chosen on held-out folds; confirmed evidence counts whatever produced it."""
    from classifier import review, score

    db = open_db(fetched)
    _classify_and_fill(db, "baseline")
    rubric = rubrics_for(19)[0]
    suggested = [
        json.loads(s)
        for (s,) in db.execute(
            "select json_extract(suggestion, '$.labels') from queue_items where commitment = 19"
        )
    ]
    assert any("strong" in labels.values() for labels in suggested), "the baseline suggested no strong label"
    rows = score.member_scores(db, rubric, include_pending=True)
    assert not any("strong" in r["labels"].values() for r in rows)
    assert any(r["unknown"] for r in rows)

    item = db.execute(
        "select id, member from queue_items where commitment = 19 and json_extract(suggestion, '$.labels') "
        "like '%strong%' order by id limit 1"
    ).fetchone()
    review.decide(db, item[0], "ana", "accept", review.get_item(db, item[0])["version"])
    confirmed = {r["member"]: r for r in score.member_scores(db, rubric, include_pending=True)}
    # the confirmed strong counts as strong in the proposal (how much it takes is the proposal rule's)
    assert any(p["strong"] for p in confirmed[item[1]]["proposals"].values())
    strongest = {
        r["member"]: r for r in score.member_scores(db, rubric, include_pending=True, rule="strongest")
    }
    assert "strong" in strongest[item[1]]["labels"].values()


@pytest.mark.slow
def test_the_nightly_job_retrains_first_when_decisions_are_new(fetched):
    from classifier import review
    from classifier.config import Config
    from classifier.nightly import run_nightly

    db = open_db(fetched)
    learner.learn(db, rubrics_for())
    summary = run_nightly(db, Config(), [])
    assert summary["stages"]["learn"]["new_decisions"] == 0
    assert list(summary["stages"]) == ["learn", "crawl", "classify", "queue"]
    item = db.execute("select id from queue_items order by id limit 1").fetchone()
    assert item, "the nightly job queued nothing from three action press releases"
    review.decide(db, item[0], "ana", "reject", review.get_item(db, item[0])["version"], reason="no")
    again = run_nightly(db, Config(), [])
    assert again["stages"]["learn"]["new_decisions"] == 1
    assert len(again["stages"]["learn"]["retrained"]) == 1
    third = run_nightly(db, Config(), [])
    assert third["stages"]["learn"]["new_decisions"] == 0
