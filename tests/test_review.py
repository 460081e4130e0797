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

from classifier import crawl, review, verdicts
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
        targets, _ = crawl.make_targets(urls)
        asyncio.run(crawl.fetch_targets(db, targets, Config(fetch=fetch_config())))
    classifier = Classifier(db, Config(), backend="baseline")
    asyncio.run(classifier.run(document_items(db, rubrics_for(18))))
    counts = review.fill(db)
    assert counts["added"] > 0
    db.conn.close()
    return path


@pytest.fixture
def db(prepared, isolated_db):
    shutil.copy(prepared, isolated_db)
    return open_db(isolated_db)


def first_item(db) -> int:
    return review.list_items(db, limit=1)[0]["id"]


def test_fill_is_idempotent_and_one_item_per_document_commitment_member(db):
    before = db["queue_items"].count
    assert review.fill(db) == {"added": 0, "updated": 0, "unchanged": before, "changed_after_decision": 0}
    keys = db.execute("select document_id, commitment, member from queue_items").fetchall()
    assert len(keys) == len(set(keys)) == before


def test_decisions_derive_the_state_and_are_append_only(db):
    item = first_item(db)
    v = review.state_of(db, item).version
    review.decide(db, item, "ana", "relabel", v, dimension="border_management", label="weak")
    review.decide(
        db, item, "ana", "edit", v + 1, summary="On 4 July 2024, the CBSA announced new regulations."
    )
    review.decide(db, item, "ana", "note", v + 2, note="check the date")
    review.decide(db, item, "ben", "accept", v + 3)
    state = review.state_of(db, item)
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
    v = review.state_of(db, item).version
    review.decide(db, item, "ana", "accept", v)
    with pytest.raises(review.StaleItem, match=r"changed since version \d+ .*ana accept"):
        review.decide(db, item, "ben", "reject", v, reason="not an action")
    assert review.state_of(db, item).state == "accepted"


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
    v = review.state_of(db, item).version
    with pytest.raises(review.QueueError, match=message):
        review.decide(db, item, analyst, action, v, **payload)
    assert db["decisions"].count == 0 and review.state_of(db, item).version == v


def test_reclassification_updates_pending_items_and_marks_decided_ones(db):
    decided, pending = [r["id"] for r in review.list_items(db, limit=2)]
    review.decide(db, decided, "ana", "accept", review.state_of(db, decided).version)
    for item_id in (decided, pending):
        cid = review.get_item(db, item_id)["classification_id"]
        row = db["classifications"].get(cid)
        db["classifications"].update(cid, {"summary": row["summary"] + " (re-run)"})
    counts = review.fill(db)
    assert counts["changed_after_decision"] >= 1 and counts["updated"] >= 1
    state = review.state_of(db, decided)
    assert state.state == "accepted" and state.suggestion_changed  # shown for the analyst to revisit
    assert not review.state_of(db, pending).suggestion_changed


def test_claims_expire(db):
    mine = review.claim(db, "ana", count=2, minutes=60)
    assert len(mine) == 2
    others = review.claim(db, "ben", count=50)
    assert not set(mine) & set(others)
    db.execute("update claims set expires_utc = '2000-01-01T00:00:00+00:00'")
    assert set(mine) <= set(review.claim(db, "ben", count=50))


def test_orderings(db):
    by_attention = review.list_items(db, order="attention")
    assert [r["attention"] for r in by_attention] == sorted(
        (r["attention"] for r in by_attention), reverse=True
    )
    by_member = review.list_items(db, order="member")
    assert [r["member"] for r in by_member] == sorted(r["member"] for r in by_member)
    with pytest.raises(review.QueueError, match="order must be one of"):
        review.list_items(db, order="random")


RACE = textwrap.dedent(
    """
    import sys, time
    from classifier import review
    from classifier.store import open_db
    db = open_db(sys.argv[1])
    item, version, analyst, start = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    while time.time() < start:
        pass
    try:
        review.decide(db, item, analyst, "accept", version)
        print("landed")
    except review.StaleItem as exc:
        print("refused:", exc)
    """
)


@pytest.mark.slow
def test_two_processes_deciding_at_once_one_lands(db, isolated_db, tmp_path):
    import time

    item = first_item(db)
    version = review.state_of(db, item).version
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
    v = review.state_of(fresh, item).version
    review.decide(fresh, item, "ana", "accept", v)  # the database is usable and consistent
    assert json.loads(fresh["decisions"].get(1)["payload"]) == {}
    assert os.path.exists(isolated_db)


def test_scores_count_confirmed_evidence_only(db):
    from classifier.score import commitment_table, explain, member_scores

    rubric = rubrics_for(18)[0]
    items = {r["id"]: r for r in review.list_items(db, commitment=18, limit=500)}
    member = next(r["member"] for r in items.values() if r["member"] != review.UNKNOWN_MEMBER)
    mine = [i for i, r in items.items() if r["member"] == member]
    (before,) = member_scores(db, rubric, member=member)
    assert before["confirmed"] == 0 and before["pending"] == len(mine) and before["provisional"]
    assert set(before["labels"].values()) == {"none"} and before["score"] == -1  # nothing confirmed yet
    (pending_view,) = member_scores(db, rubric, member=member, include_pending=True)
    chosen = mine[0]
    state = review.state_of(db, chosen)
    review.decide(db, chosen, "ana", "relabel", state.version, dimension="border_management", label="strong")
    review.decide(db, chosen, "ana", "accept", state.version + 1)
    (after,) = member_scores(db, rubric, member=member)
    assert after["confirmed"] == 1 and after["pending"] == len(mine) - 1
    # one strong action is a proposal of weak (points-5: weak actions add up, one strong is not enough)
    assert after["labels"]["border_management"] == "weak" and after["provisional"]
    assert after["proposals"]["border_management"]["strong"] == 1
    for dim in rubric.dimension_ids:  # the analyst weighs the cell and decides: no proposal left
        verdicts.set_verdict(
            db, rubric, member, dim, "strong" if dim == "border_management" else "none", "ana", 0
        )
    (decided,) = member_scores(db, rubric, member=member)
    assert decided["labels"]["border_management"] == "strong" and not decided["provisional"]
    assert decided["pending"] == len(mine) - 1  # still counted beside the score
    table = commitment_table(db, rubric)
    assert len(table["members"]) == 8 and table["average"].endswith("%)")
    receipt = explain(db, rubric, member)
    reading = receipt["readings"]["border_management"]
    assert reading["source"] == "verdict" and reading["verdict"]["analyst"] == "ana"
    assert reading["proposal"]["label"] == "weak"
    (entry,) = receipt["dimensions"]["border_management"]
    assert entry["raw_sha256"].startswith("sha256:")
    assert entry["item"] == chosen and entry["url"].startswith("http://127.0.0.1")
    assert entry["content_sha256"].startswith("sha256:") and entry["prompt"] == "classify-v3"
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
    version = review.state_of(db, item).version
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
    rows = review.list_items(db, commitment=18, limit=500)
    item = next(r for r in rows if r["member"] != review.UNKNOWN_MEMBER)
    member = item["member"]
    v = review.state_of(db, item["id"]).version
    review.decide(
        db, item["id"], "ana", "edit", v, summary="On 4 July 2024, <script>alert(1)</script> officers acted."
    )
    review.decide(db, item["id"], "ana", "accept", v + 1)
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
    review.fill(db)
    flagged = [
        r
        for r in review.list_items(db, order="attention", limit=500)
        if "backends-disagree" in (r["flags"] or "")
    ]
    assert flagged
    top = review.list_items(db, order="attention", limit=1)[0]
    assert top["attention"] >= 3


def decision_rows(db) -> list[tuple]:
    return db.execute(
        "select item_id, analyst, action, based_on_version from decisions order by id"
    ).fetchall()


def test_deciding_without_a_version_is_refused_once_another_analyst_decided(db):
    item = first_item(db)
    v = review.state_of(db, item).version
    # nobody decided yet: without --version the decision is on the suggestion, as shown
    first = cli("queue", "reject", str(item), "--reason", "already counted", "--analyst", "ana")
    assert first.exit_code == 0 and "now rejected" in first.output
    before = (decision_rows(db), review.state_of(db, item).version)
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
    dim = next(iter(review.state_of(db, item).labels))
    for args in (("relabel", str(item), dim, "weak"), ("edit", str(item), "On 4 July 2024, a new summary.")):
        assert cli("queue", *args, "--analyst", "ben").exit_code == 1
    assert (decision_rows(db), review.state_of(db, item).version) == before  # nothing changed
    assert review.state_of(db, item).state == "rejected"
    # a note overrides nothing: taken without --version
    assert cli("queue", "note", str(item), "asked ana why", "--analyst", "ben").exit_code == 0
    # with the version he has now looked at, or --force, ben decides
    forced = cli("queue", "accept", str(item), "--analyst", "ben", "--force")
    assert forced.exit_code == 0 and "now accepted" in forced.output
    assert [r[1:3] for r in decision_rows(db)] == [("ana", "reject"), ("ben", "note"), ("ben", "accept")]
    current = review.state_of(db, item).version
    assert (
        cli("queue", "reject", str(item), "-r", "dup", "-a", "ana", "--version", str(current)).exit_code == 0
    )


def test_a_new_suggestion_after_the_decisions_can_be_decided_without_a_version(db):
    item = first_item(db)
    review.decide(db, item, "ana", "accept", review.state_of(db, item).version)
    assert [d["analyst"] for d in review.decisions_since_suggestion(review.state_of(db, item))] == ["ana"]
    cid = review.get_item(db, item)["classification_id"]
    db["classifications"].update(cid, {"summary": db["classifications"].get(cid)["summary"] + " (re-run)"})
    assert review.fill(db)["changed_after_decision"] >= 1
    state = review.state_of(db, item)
    assert review.decisions_since_suggestion(state) == []  # ana decided on the old suggestion
    review.decide_current(db, item, "ben", "reject", reason="the new text is not an action")
    assert review.state_of(db, item).state == "rejected"
    with pytest.raises(review.UnseenDecisions, match="ben reject"):
        review.decide_current(db, item, "ana", "accept")


def test_decide_current_checks_the_input_before_the_history(db):
    item = first_item(db)
    review.decide(db, item, "ana", "accept", review.state_of(db, item).version)
    with pytest.raises(review.QueueError, match="needs a reason"):
        review.decide_current(db, item, "ben", "reject")


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


# -- flags: one spelling, and databases from before it -------------------------------------------------


def _old_database():
    """A database at m010, holding what the code of then stored: a document classified by two
    models that disagree, the newest flagging ``outside_period`` (snake_case, as then), the queue
    filled from it, the item accepted, and an evaluation prediction with the same flags."""
    from classifier.migrations import migrations

    db = open_db(migrate=False)
    migrations.apply(db, stop_before="m011_kebab_case_flags")
    text = "On 3 March 2026 the agency opened a border post."
    doc = db["documents"].insert({"canonical_url": "https://example.org/a", "current_version": 1}).last_pk
    db["document_versions"].insert(
        {
            "document_id": doc,
            "version": 1,
            "content_sha256": "sha256:t",
            "text": text,
            "published": "2026-03-03",
        }
    )
    old_flags = ["ungrounded", "outside_period", "excluded:border_enforcement"]
    for model, label, flags in (("m-old", "none", []), ("m-new", "strong", old_flags)):
        db["classifications"].insert(
            {
                "document_id": doc, "version": 1, "content_sha": "sha256:t", "commitment": 18,
                "backend": "baseline", "model": model, "prompt_name": "classify-v2", "prompt_sha": model,
                "status": "ok", "relevant": 1, "members": '["Canada"]', "action_date": "2026-03-03",
                "summary": "A border post opened.", "confidence": 0.9, "flags": json.dumps(flags),
                "dimensions": json.dumps({"border_management": {"label": label, "quotes": []}}),
            }
        )  # fmt: skip
    assert review.fill(db)["added"] == 1
    item = review.list_items(db)[0]
    review.decide(db, item["id"], "ana", "accept", item["version"])
    db["eval_runs"].insert({"id": "r1", "mode": "title", "metrics": "{}"})
    prediction = {"relevant": True, "flags": old_flags, "summary": "outside_period stays in a summary"}
    db["eval_predictions"].insert({"run_id": "r1", "item_id": "g1", "prediction": json.dumps(prediction)})
    db["eval_predictions"].insert({"run_id": "r1", "item_id": "g2", "prediction": json.dumps(None)})
    db.conn.close()
    return item


def test_upgrade_rewrites_snake_case_flags_and_keeps_items_unchanged(isolated_db):
    item = _old_database()
    before = open_db(migrate=False)
    assert "outside_period" in json.loads(before["queue_items"].get(item["id"])["suggestion"])["flags"]
    old_item = before["queue_items"].get(item["id"])
    decisions = list(before["decisions"].rows)
    before.conn.close()

    db = open_db()
    new = ["ungrounded", "outside-period", "excluded:border_enforcement"]
    by_model = {r["model"]: json.loads(r["flags"]) for r in db["classifications"].rows}
    assert by_model == {"m-old": [], "m-new": new}
    upgraded = db["queue_items"].get(item["id"])
    assert json.loads(upgraded["suggestion"])["flags"] == [*new, "backends-disagree"]
    assert upgraded["suggestion_sha"] != old_item["suggestion_sha"]
    assert {k: upgraded[k] for k in ("version", "state", "attention")} == {
        k: old_item[k] for k in ("version", "state", "attention")
    }
    assert list(db["decisions"].rows) == decisions
    # the stored hash is the one filling computes: the next fill finds the item unchanged
    assert review.fill(db) == {"added": 0, "updated": 0, "unchanged": 1, "changed_after_decision": 0}
    assert [r["id"] for r in review.list_items(db, flag="outside-period")] == [item["id"]]
    assert [r["id"] for r in review.list_items(db, flag="outside_period")] == [item["id"]]  # the old word
    predictions = [json.loads(r["prediction"]) for r in db["eval_predictions"].rows]
    assert predictions[0]["flags"] == new and predictions[0]["summary"] == "outside_period stays in a summary"
    assert predictions[1] is None


def test_blank_database_gets_kebab_case_flags_only(isolated_db):
    from classifier.flags import Flag
    from classifier.migrations import migrations

    db = open_db()
    assert "m011_kebab_case_flags" in {m.name for m in migrations.applied(db)}
    assert db["classifications"].count == 0 and db["queue_items"].count == 0
    assert all(f.value == f.value.lower() and "_" not in f.value for f in Flag)


def test_states_and_the_state_rule_are_one(db):
    """The state a decision sets is the same read item by item, in bulk, for scoring and in the column."""
    ids = [r["id"] for r in review.list_items(db, limit=3)]
    assert len(ids) == 3
    for item, action, extra in zip(
        ids, ("accept", "reject", "note"), ({}, {"reason": "no"}, {"note": "n"}), strict=True
    ):
        review.decide(db, item, "ana", action, review.state_of(db, item).version, **extra)
    expected = {ids[0]: "accepted", ids[1]: "rejected", ids[2]: "pending"}
    assert {i: review.state_of(db, i).state for i in ids} == expected
    assert {s.item["id"]: s.state for s in review.states(db) if s.item["id"] in ids} == expected
    assert {i: st for i, _, st, _ in review.label_states(db) if i in ids} == expected
    assert {r["id"]: r["state"] for r in review.list_items(db, limit=500) if r["id"] in ids} == expected
    with pytest.raises(review.QueueError, match="state must be pending, accepted or rejected"):
        review.check_state("done")


def test_cli_and_web_mark_the_same_quote_text(db):
    """`queue show` brackets exactly the stretches the web marks: one highlighting rule."""
    item = next(
        s
        for s in review.states(db)
        if any(q.get("start") is not None for d in s.suggestion["dimensions"].values() for q in d["quotes"])
    )
    text = review.source_of(db, item.item)["text"]
    marked = {g.text for g in review.quote_segments(text, item.suggestion["dimensions"]) if g.dims}
    shown = cli("queue", "show", str(item.item["id"])).output
    bracketed = set(re.findall(r"\[\[(.*?)\]\]", shown, flags=re.S))
    assert marked and bracketed
    # each bracketed quote is one quote; the web's marks are those quotes cut where they overlap
    assert all(any(m in b for b in bracketed) for m in marked)
