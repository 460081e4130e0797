"""The main job's steps: the classified gold paragraphs in the review queue (real SQLite, the
embedded baseline backend)."""

from __future__ import annotations

import pytest

from classifier import dataset, evaluate, gold, pipeline
from classifier.classify import Classifier
from classifier.config import Config
from classifier.rubric import rubrics_for
from classifier.score import member_scores
from classifier.store import open_db

from .conftest import FINAL_19

LIMIT = 8  # a sample of commitment 19's dataset (as --limit draws it): enough to queue several, quick


def queue_first_actions(db) -> dict[str, int]:
    """What `evidence run --limit` does for one commitment: classify, then queue the paragraphs."""
    rubrics = rubrics_for()
    classifier = Classifier(db, Config(), backend="baseline")
    evaluate.run_eval(
        db, Config(), rubrics, mode="paragraph", commitment=19, limit=LIMIT, classifier=classifier
    )
    items = dataset.build_dataset(db, rubrics, "paragraph", commitment=19)
    return pipeline.queue_gold(db, dataset.sample_items(items, LIMIT))


def queued(db) -> list[tuple[str, str]]:
    sql = (
        "select d.canonical_url, q.member from queue_items q join documents d on d.id = q.document_id "
        "where q.commitment = 19 order by 1, 2"
    )
    return [tuple(row) for row in db.execute(sql).fetchall()]


def pending(db) -> dict[str, int]:
    rubric = next(r for r in rubrics_for() if r.number == 19)
    return {row["member"]: row["pending"] for row in member_scores(db, rubric)}


@pytest.mark.slow  # classifies with the embedded model, like the evaluation tests
def test_a_new_version_of_a_chapter_replaces_its_queued_paragraphs(tmp_path):
    """A chapter imported again as a new version (another file, one paragraph reworded) queues its
    paragraphs in place of the old version's: the queue and the provisional scores are those of
    importing the new version alone, not the two versions added up."""
    text = FINAL_19.read_text(encoding="utf-8")
    assert text.count(" announced ") > 10
    edited = tmp_path / "final-19-reextracted.txt"
    edited.write_text(text.replace(" announced ", " made public ", 3), encoding="utf-8")

    db = open_db(tmp_path / "reimported.db")
    gold.import_report(db, FINAL_19)
    queue_first_actions(db)
    first = queued(db)
    assert first, "the baseline queues some of the first actions"
    assert (
        gold.import_report(db, edited).status,
        [c["version"] for c in gold.current_commitments(db, 19)],
    ) == (
        "new-version",
        [2],
    )
    queue_first_actions(db)

    alone = open_db(tmp_path / "alone.db")
    gold.import_report(alone, edited)
    queue_first_actions(alone)
    assert queued(alone), "the new version alone queues some of its first actions"
    assert queued(db) == queued(alone)
    assert pending(db) == pending(alone)
    # each pending item counted once: one per paragraph and member the new version names
    assert sum(pending(db).values()) == sum(1 for _, member in queued(alone) if member in pending(alone))
