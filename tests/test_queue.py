"""The review queue on real classifications (baseline backend on newsroom pages), real processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from classifier import corpus, queue
from classifier.classify import Classifier, document_items
from classifier.config import Config
from classifier.rubric import rubrics_for
from classifier.store import open_db

from . import newsroom
from .conftest import fetch_config
from .newsroom import Newsroom


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A database with three fetched releases, classified by the baseline, queue filled."""
    path = tmp_path_factory.mktemp("queue") / "prepared.db"
    db = open_db(path)
    with Newsroom() as site:
        urls = [site.url(p) for p in (newsroom.CANADA_PATH, newsroom.UK_PATH, newsroom.GERMANY_PATH)]
        targets, _ = corpus.make_targets(urls)
        asyncio.run(corpus.fetch_targets(db, targets, Config(fetch=fetch_config())))
    classifier = Classifier(db, Config(), backend="baseline")
    asyncio.run(classifier.run(document_items(db, rubrics_for(18))))
    counts = queue.fill(db)
    assert counts["added"] > 0
    db.conn.close()
    return path


@pytest.fixture
def db(prepared, isolated_db):
    shutil.copy(prepared, isolated_db)
    return open_db(isolated_db)


def first_item(db) -> int:
    return queue.list_items(db, limit=1)[0]["id"]


def test_fill_is_idempotent_and_one_item_per_document_commitment_member(db):
    before = db["queue_items"].count
    assert queue.fill(db) == {"added": 0, "updated": 0, "unchanged": before, "changed_after_decision": 0}
    keys = db.execute("select document_id, commitment, member from queue_items").fetchall()
    assert len(keys) == len(set(keys)) == before


def test_decisions_derive_the_state_and_are_append_only(db):
    item = first_item(db)
    v = queue.state_of(db, item).version
    queue.decide(db, item, "ana", "relabel", v, dimension="border_management", label="weak")
    queue.decide(
        db, item, "ana", "edit", v + 1, summary="On 4 July 2024, the CBSA announced new regulations."
    )
    queue.decide(db, item, "ana", "note", v + 2, note="check the date")
    queue.decide(db, item, "ben", "accept", v + 3)
    state = queue.state_of(db, item)
    assert state.state == "accepted" and state.labels["border_management"] == "weak"
    assert state.summary.startswith("On 4 July 2024, the CBSA")
    assert [d["analyst"] for d in state.history] == ["ana", "ana", "ana", "ben"]
    assert state.notes[0]["note"] == "check the date"
    with pytest.raises(Exception, match="append-only"):
        db.execute("update decisions set analyst = 'mallory'")
    with pytest.raises(Exception, match="append-only"):
        db.execute("delete from decisions")


def test_stale_decision_is_refused_with_what_changed(db):
    item = first_item(db)
    v = queue.state_of(db, item).version
    queue.decide(db, item, "ana", "accept", v)
    with pytest.raises(queue.StaleItem, match=r"changed since version \d+ .*ana accept"):
        queue.decide(db, item, "ben", "reject", v, reason="not an action")
    assert queue.state_of(db, item).state == "accepted"


@pytest.mark.parametrize(
    ("analyst", "action", "payload", "message"),
    [
        (None, "accept", {}, "needs an analyst"),
        ("ana", "reject", {}, "needs a reason"),
        ("ana", "relabel", {"dimension": "border_management", "label": "huge"}, "label must be one of"),
        ("ana", "relabel", {"dimension": "nope", "label": "weak"}, "unknown dimension"),
        ("ana", "edit", {"summary": "  "}, "needs the new summary"),
        ("ana", "fly", {}, "unknown action"),
    ],
)
def test_bad_decisions_are_refused_and_write_nothing(db, analyst, action, payload, message):
    item = first_item(db)
    v = queue.state_of(db, item).version
    with pytest.raises(queue.QueueError, match=message):
        queue.decide(db, item, analyst, action, v, **payload)
    assert db["decisions"].count == 0 and queue.state_of(db, item).version == v


def test_reclassification_updates_pending_items_and_marks_decided_ones(db):
    decided, pending = [r["id"] for r in queue.list_items(db, limit=2)]
    queue.decide(db, decided, "ana", "accept", queue.state_of(db, decided).version)
    for item_id in (decided, pending):
        cid = queue.get_item(db, item_id)["classification_id"]
        row = db["classifications"].get(cid)
        db["classifications"].update(cid, {"summary": row["summary"] + " (re-run)"})
    counts = queue.fill(db)
    assert counts["changed_after_decision"] >= 1 and counts["updated"] >= 1
    state = queue.state_of(db, decided)
    assert state.state == "accepted" and state.suggestion_changed  # shown for the analyst to revisit
    assert not queue.state_of(db, pending).suggestion_changed


def test_claims_expire(db):
    mine = queue.claim(db, "ana", count=2, minutes=60)
    assert len(mine) == 2
    others = queue.claim(db, "ben", count=50)
    assert not set(mine) & set(others)
    db.execute("update claims set expires_utc = '2000-01-01T00:00:00+00:00'")
    assert set(mine) <= set(queue.claim(db, "ben", count=50))


def test_orderings(db):
    by_attention = queue.list_items(db, order="attention")
    assert [r["attention"] for r in by_attention] == sorted(
        (r["attention"] for r in by_attention), reverse=True
    )
    by_member = queue.list_items(db, order="member")
    assert [r["member"] for r in by_member] == sorted(r["member"] for r in by_member)
    with pytest.raises(queue.QueueError, match="order must be one of"):
        queue.list_items(db, order="random")


RACE = textwrap.dedent(
    """
    import sys, time
    from classifier import queue
    from classifier.store import open_db
    db = open_db(sys.argv[1])
    item, version, analyst, start = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    while time.time() < start:
        pass
    try:
        queue.decide(db, item, analyst, "accept", version)
        print("landed")
    except queue.StaleItem as exc:
        print("refused:", exc)
    """
)


@pytest.mark.slow
def test_two_processes_deciding_at_once_one_lands(db, isolated_db, tmp_path):
    import time

    item = first_item(db)
    version = queue.state_of(db, item).version
    script = tmp_path / "race.py"
    script.write_text(RACE, encoding="utf-8")
    for _ in range(3):
        start = time.time() + 1.0
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(isolated_db), str(item), str(version), who, str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for who in ("ana", "ben")
        ]
        outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
        assert sorted(o.split(":")[0] for o in outputs) == ["landed", "refused"], outputs
        version += 1
    assert db["decisions"].count == 3


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from classifier.store import open_db
    db = open_db(sys.argv[1])
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("insert into decisions (item_id, analyst, action, payload, based_on_version, created_utc) "
                 "values (?, 'ana', 'accept', '{}', 1, 'now')", [int(sys.argv[2])])
    os.kill(os.getpid(), signal.SIGKILL)  # dies before the version bump and the commit
    """
)


@pytest.mark.slow
def test_killed_mid_decision_leaves_nothing(db, isolated_db, tmp_path):
    item = first_item(db)
    script = tmp_path / "kill.py"
    script.write_text(KILLER, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(isolated_db), str(item)], capture_output=True)
    assert done.returncode == -9
    fresh = open_db(isolated_db)
    assert fresh["decisions"].count == 0
    assert fresh.execute("pragma integrity_check").fetchone()[0] == "ok"
    v = queue.state_of(fresh, item).version
    queue.decide(fresh, item, "ana", "accept", v)  # the database is usable and consistent
    assert json.loads(fresh["decisions"].get(1)["payload"]) == {}
    assert os.path.exists(isolated_db)


def test_scores_count_confirmed_evidence_only(db):
    from classifier.score import commitment_table, explain, member_scores

    rubric = rubrics_for(18)[0]
    items = {r["id"]: r for r in queue.list_items(db, commitment=18, limit=500)}
    member = next(r["member"] for r in items.values() if r["member"] != queue.UNKNOWN_MEMBER)
    mine = [i for i, r in items.items() if r["member"] == member]
    (before,) = member_scores(db, rubric, member=member)
    assert before["confirmed"] == 0 and before["pending"] == len(mine) and before["provisional"]
    assert set(before["labels"].values()) == {"none"} and before["score"] == -1  # nothing confirmed yet
    (pending_view,) = member_scores(db, rubric, member=member, include_pending=True)
    chosen = mine[0]
    state = queue.state_of(db, chosen)
    queue.decide(db, chosen, "ana", "relabel", state.version, dimension="border_management", label="strong")
    queue.decide(db, chosen, "ana", "accept", state.version + 1)
    (after,) = member_scores(db, rubric, member=member)
    assert after["confirmed"] == 1 and after["pending"] == len(mine) - 1
    assert after["labels"]["border_management"] == "strong"
    assert after["provisional"] == (len(mine) > 1)
    table = commitment_table(db, rubric)
    assert len(table["members"]) == 8 and table["average"].endswith("%)")
    receipt = explain(db, rubric, member)
    (entry,) = receipt["dimensions"]["border_management"]
    assert entry["item"] == chosen and entry["url"].startswith("http://127.0.0.1")
    assert entry["content_sha256"].startswith("sha256:") and entry["prompt"] == "classify-v2"
    assert [d["action"] for d in entry["decisions"]] == ["relabel", "accept"]
    assert pending_view["provisional"]


def cli(*args, input=None):
    from typer.testing import CliRunner

    from classifier.cli import app

    return CliRunner().invoke(app, list(args), input=input)


def test_queue_commands(db, monkeypatch):
    listing = cli("queue", "list", "--order", "member")
    assert listing.exit_code == 0 and "pending" in listing.output
    item = int(listing.output.split()[0])
    shown = cli("queue", "show", str(item))
    assert "source: http://127.0.0.1" in shown.output and "[[" in shown.output and "]]" in shown.output
    assert cli("queue", "accept", str(item)).output.startswith("error: a decision needs an analyst")
    monkeypatch.setenv("EVIDENCE_ANALYST", "ana")
    assert "needs a reason" in cli("queue", "reject", str(item)).output
    version = queue.state_of(db, item).version
    assert "now accepted" in cli("queue", "accept", str(item), "--version", str(version)).output
    stale = cli("queue", "note", str(item), "late note", "--version", str(version), "--analyst", "ben")
    assert (
        stale.exit_code == 1
        and f"changed since version {version}" in stale.output
        and "ana accept" in stale.output
    )
    stats = cli("queue", "stats").output
    assert "accepted" in stats and " 1 " in stats
    exported = [json.loads(line) for line in cli("queue", "export", "--format", "jsonl").output.splitlines()]
    assert {r["state"] for r in exported} == {"pending", "accepted"}
    assert cli("queue", "export", "--format", "csv").output.startswith("id,commitment,member,state")
    claimed = cli("queue", "claim", "--count", "2", "--minutes", "5")
    assert claimed.output.startswith("claimed 2 items")


def test_queue_next_is_keyboard_driven(db):
    before = db["decisions"].count
    result = cli("queue", "next", "--analyst", "ana", input="a\ns\nq\n")
    assert result.exit_code == 0, result.output
    assert db["decisions"].count == before + 1
    assert json.loads(json.dumps(db["decisions"].get(before + 1)))["action"] == "accept"


def test_score_explain_and_report_draft(db, monkeypatch):
    monkeypatch.setenv("EVIDENCE_ANALYST", "ana")
    rows = queue.list_items(db, commitment=18, limit=500)
    item = next(r for r in rows if r["member"] != queue.UNKNOWN_MEMBER)
    member = item["member"]
    v = queue.state_of(db, item["id"]).version
    queue.decide(
        db, item["id"], "ana", "edit", v, summary="On 4 July 2024, <script>alert(1)</script> officers acted."
    )
    queue.decide(db, item["id"], "ana", "accept", v + 1)
    table = cli("score", "--commitment", "18")
    assert table.exit_code == 0 and "18. Migration and Refugees: Border Management" in table.output
    assert "Average" in table.output
    full = cli("score").output
    assert "Scores by member" in full and "Scores by commitment" in full and "Overall" in full
    overview = json.loads(cli("score", "--format", "json").output)
    assert set(overview["by_commitment"]) == {"18", "19"} and overview["overall"].endswith("%)")
    provisional = cli("score", "--commitment", "18", "--include-pending").output
    assert provisional.startswith("PROVISIONAL VIEW")
    receipt = cli("score", "explain", "--commitment", "18", "--member", member).output
    assert "source http://127.0.0.1" in receipt and "sha256:" in receipt and "ana accept" in receipt
    md = cli("report", "draft", "--commitment", "18", "--member", member).output
    assert f"### {member}:" in md and "On 4 July 2024, <script>" in md and "[^1]: " in md
    assert "Access Date:" in md and "receives a score of" in md
    html = cli("report", "draft", "--commitment", "18", "--member", member, "--format", "html").output
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_backends_that_disagree_need_attention_first(db):
    """A second backend's classification of the same text (a copy of a real row, relabelled)."""
    row = db.execute("select * from classifications where relevant = 1 limit 1").fetchone()
    columns = [d[0] for d in db.execute("select * from classifications limit 0").description]
    other = dict(zip(columns, row, strict=True))
    dims = json.loads(other["dimensions"])
    first = next(iter(dims))
    dims[first]["label"] = "none" if dims[first]["label"] != "none" else "strong"
    other.update({"id": None, "model": "another-model", "backend": "openai", "dimensions": json.dumps(dims)})
    db["classifications"].insert(other)
    queue.fill(db)
    flagged = [
        r
        for r in queue.list_items(db, order="attention", limit=500)
        if "backends-disagree" in (r["flags"] or "")
    ]
    assert flagged
    top = queue.list_items(db, order="attention", limit=1)[0]
    assert top["attention"] >= 3


def decision_rows(db) -> list[tuple]:
    return db.execute(
        "select item_id, analyst, action, based_on_version from decisions order by id"
    ).fetchall()


def test_deciding_without_a_version_is_refused_once_another_analyst_decided(db):
    item = first_item(db)
    v = queue.state_of(db, item).version
    # nobody decided yet: without --version the decision is on the suggestion, as shown
    first = cli("queue", "reject", str(item), "--reason", "already counted", "--analyst", "ana")
    assert first.exit_code == 0 and "now rejected" in first.output
    before = (decision_rows(db), queue.state_of(db, item).version)
    # ben never saw ana's reject: his accept without --version must not silently replace it
    refused = cli("queue", "accept", str(item), "--analyst", "ben")
    assert refused.exit_code == 1, refused.output
    assert re.search(
        r"\S+T\S+  ana reject: already counted \(on version \d+\)", refused.output
    )  # when, who, what
    assert f"--version {v + 1}" in refused.output and "--force" in refused.output
    assert (
        refused.output.strip().splitlines()[-1].startswith("error: item ")
    )  # one error line, after the history
    assert "Traceback" not in refused.output
    dim = next(iter(queue.state_of(db, item).labels))
    for args in (("relabel", str(item), dim, "weak"), ("edit", str(item), "On 4 July 2024, a new summary.")):
        assert cli("queue", *args, "--analyst", "ben").exit_code == 1
    assert (decision_rows(db), queue.state_of(db, item).version) == before  # nothing changed
    assert queue.state_of(db, item).state == "rejected"
    # a note overrides nothing: taken without --version
    assert cli("queue", "note", str(item), "asked ana why", "--analyst", "ben").exit_code == 0
    # with the version he has now looked at, or --force, ben decides
    forced = cli("queue", "accept", str(item), "--analyst", "ben", "--force")
    assert forced.exit_code == 0 and "now accepted" in forced.output
    assert [r[1:3] for r in decision_rows(db)] == [("ana", "reject"), ("ben", "note"), ("ben", "accept")]
    current = queue.state_of(db, item).version
    assert (
        cli("queue", "reject", str(item), "-r", "dup", "-a", "ana", "--version", str(current)).exit_code == 0
    )


def test_a_new_suggestion_after_the_decisions_can_be_decided_without_a_version(db):
    item = first_item(db)
    queue.decide(db, item, "ana", "accept", queue.state_of(db, item).version)
    assert [d["analyst"] for d in queue.decisions_since_suggestion(queue.state_of(db, item))] == ["ana"]
    cid = queue.get_item(db, item)["classification_id"]
    db["classifications"].update(cid, {"summary": db["classifications"].get(cid)["summary"] + " (re-run)"})
    assert queue.fill(db)["changed_after_decision"] >= 1
    state = queue.state_of(db, item)
    assert queue.decisions_since_suggestion(state) == []  # ana decided on the old suggestion
    queue.decide_current(db, item, "ben", "reject", reason="the new text is not an action")
    assert queue.state_of(db, item).state == "rejected"
    with pytest.raises(queue.UnseenDecisions, match="ben reject"):
        queue.decide_current(db, item, "ana", "accept")


def test_decide_current_checks_the_input_before_the_history(db):
    item = first_item(db)
    queue.decide(db, item, "ana", "accept", queue.state_of(db, item).version)
    with pytest.raises(queue.QueueError, match="needs a reason"):
        queue.decide_current(db, item, "ben", "reject")


@pytest.mark.parametrize("number", ["99999999999999999999", str(2**63)])
def test_ids_and_versions_beyond_sqlite_are_one_line_errors(db, number):
    item = str(first_item(db))
    for args in (
        ("queue", "show", number),
        ("queue", "accept", number, "--analyst", "ana"),
        ("queue", "accept", item, "--analyst", "ana", "--version", number),
        ("queue", "note", number, "x", "--analyst", "ana", "--version", "1"),
    ):
        result = cli(*args)
        assert result.exit_code == 1 and result.output.startswith("error: no "), (args, result.output)
        assert "Traceback" not in result.output
    assert db["decisions"].count == 0
