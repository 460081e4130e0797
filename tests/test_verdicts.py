"""Member x dimension verdicts on the review database (real SQLite, real classifications through the
OpenAI-compatible STUB of tests/llm_stub.py, see tests/webapp.py), and the proposal rules."""

from __future__ import annotations

import json
import sqlite3

import pytest

from classifier import review, verdicts
from classifier.rubric import rubrics_for
from classifier.store import open_db


@pytest.fixture
def db(review_db):
    return open_db(review_db)


def accept_all(db, commitment: int) -> list[int]:
    ids = [r["id"] for r in review.list_items(db, commitment=commitment, member="Canada", limit=100)]
    for item in ids:
        review.decide(db, item, "ana", "accept", review.get_item(db, item)["version"])
    return ids


def test_proposals_count_how_many_and_how_strong():
    assert verdicts.propose(["strong", "none", "weak"], "strongest").label == "strong"
    assert verdicts.propose(["strong", "none", "weak"]).label == "weak"  # the default: points-5
    assert verdicts.propose(["strong", "strong", "weak"]).label == "strong"
    assert verdicts.propose(["none", "none"]).label == "none"
    assert verdicts.propose([]).reason == "no confirmed action"
    assert verdicts.propose(["strong", "weak", "weak"], "at-least-2").label == "weak"
    assert verdicts.propose(["strong", "strong", "weak"], "at-least-2").label == "strong"
    assert verdicts.propose(["strong", "weak", "weak"], "majority").label == "weak"
    assert verdicts.propose(["weak", "weak", "weak", "weak"], "points-4").label == "strong"
    assert verdicts.propose(["strong", "weak", "weak"], "share-0.5").label == "weak"
    assert verdicts.propose(["weak", "unknown"], "strongest").label == "unknown"  # a strong nobody confirmed
    p = verdicts.propose(["strong", "none", "weak"], "at-least-1")
    assert p.reason == "1 strong, 1 weak of 3 confirmed actions (at-least-1)"
    for bad in ("at-least", "strongest-2", "best", ""):
        with pytest.raises(verdicts.VerdictError, match="unknown proposal rule"):
            verdicts.propose([], bad)


def test_a_cell_proposes_until_an_analyst_decides_and_keeps_its_history(db):
    rubric = rubrics_for(18)[0]
    first = rubric.dimension_ids[0]
    cells = verdicts.cells(db, rubric)
    cell = cells[("Canada", first)]
    assert cell.actions == [] and cell.pending and cell.proposal.label == "none"
    assert cell.gap == f"no confirmed action — {len(cell.pending)} pending candidates"
    items = accept_all(db, 18)
    cell = verdicts.cells(db, rubric)[("Canada", first)]
    assert [a["id"] for a in cell.actions] == sorted(items) and cell.pending == []
    assert cell.label == "strong" and not cell.confirmed and cell.gap is None
    readings = verdicts.member_readings(db, 18)
    assert readings["Canada"][first] == ("strong", False, sorted(items))
    assert readings["France"][first] == ("none", False, [])

    row = verdicts.set_verdict(db, rubric, "Canada", first, "weak", "ana", 0, note="arrests only")
    assert row["version"] == 1 and row["proposal"]["label"] == "strong"
    assert [a["item"] for a in row["actions"]] == sorted(items)
    assert verdicts.member_readings(db, 18)["Canada"][first] == ("weak", True, sorted(items))
    with pytest.raises(verdicts.StaleVerdict, match=r"now version 1.*ana weak"):
        verdicts.set_verdict(db, rubric, "Canada", first, "strong", "ben", 0)
    verdicts.set_verdict(db, rubric, "Canada", first, "unassessed", "ben", 1)
    cell = verdicts.cells(db, rubric)[("Canada", first)]
    assert not cell.confirmed and cell.label == "strong" and cell.version == 2  # back to the proposal
    assert [r["label"] for r in verdicts.history(db, 18, "Canada", first)] == ["weak", "unassessed"]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("update verdicts set label = 'strong'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("delete from verdicts")
    # a writer that skipped the version check still cannot make a second version 2
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        db.execute(
            "insert into verdicts (commitment, member, dimension, label, analyst, version, based_on_version) "
            "values (18, 'Canada', ?, 'none', 'eve', 2, 1)",
            [first],
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"member": "Narnia"}, "not a member of commitment 18"),
        ({"dimension": "bogus"}, "unknown dimension 'bogus'"),
        ({"label": "great"}, "label must be one of"),
        ({"analyst": None}, "needs an analyst"),
    ],
)
def test_bad_verdicts_are_refused_and_write_nothing(db, change, message):
    rubric = rubrics_for(18)[0]
    args = {"member": "Canada", "dimension": rubric.dimension_ids[0], "label": "strong", "analyst": "ana"}
    args.update(change)
    with pytest.raises(verdicts.VerdictError, match=message):
        verdicts.set_verdict(db, rubric, based_on_version=0, **args)
    assert db["verdicts"].count == 0


def test_rule_measurement_on_a_small_case():
    """Two members of commitment 18 with hand-set actions: the figures count what they should."""
    from classifier import verdict_rules

    rubric = rubrics_for(18)[0].model_copy(deep=True)
    rubric.gold = [g for g in rubric.gold if g.member in ("Canada", "France")]
    dims = rubric.dimension_ids
    strong_everywhere = dict.fromkeys(dims, "strong")
    actions = [
        {"commitment": 18, "member": "Canada", "dimensions": strong_everywhere},
        {"commitment": 18, "member": "Canada", "dimensions": strong_everywhere},
        {
            "commitment": 18,
            "member": "France",
            "dimensions": {**dict.fromkeys(dims, "none"), dims[0]: "weak"},
        },
    ]
    predicted = verdict_rules.proposals(actions, [rubric], "strongest")
    assert predicted[18]["Canada"] == strong_everywhere
    assert predicted[18]["Japan"] == dict.fromkeys(dims, "none")  # no action: none everywhere
    fig = verdict_rules.figures(predicted, [rubric])
    clear = [(g, d, v.label) for g in rubric.gold for d, v in g.labels.items() if v.label != "unclear"]
    expected = sum(label == predicted[18][g.member][d] for g, d, label in clear)
    assert fig["readings"] == len(clear) and fig["readings_agreed"] == expected
    printed = {g.member: g.printed_score for g in rubric.gold}
    assert fig["scores"] == 2
    assert fig["scores_reproduced"] == (printed["Canada"] == 1) + (printed["France"] == -1)
    # at-least-k: with 2 strong actions Canada is strong for k <= 2 only
    assert verdict_rules.proposals(actions, [rubric], "at-least-3")[18]["Canada"] == dict.fromkeys(
        dims, "weak"
    )
    rows = verdict_rules.measure(actions, [rubric])
    loo = next(r for r in rows if r["rule"] == "at-least-*")
    assert set(loo["chosen"]) == {"Canada", "France"} and "leave one member out" in loo["protocol"]
    assert "rule" in verdict_rules.render(rows)


def cli(*args, input=None):
    from typer.testing import CliRunner

    from classifier.cli import app

    return CliRunner().invoke(app, list(args), input=input)


def test_verdict_and_matrix_commands(db, monkeypatch):
    rubric = rubrics_for(18)[0]
    first, second = rubric.dimension_ids[:2]
    matrix = cli("matrix", "--commitment", "18", "--member", "CA")
    assert matrix.exit_code == 0, matrix.output
    assert f"{first}: none? (proposed: no confirmed action)" in matrix.output
    assert "gap: no confirmed action — 4 pending candidates" in matrix.output
    accepted = accept_all(db, 18)
    matrix = cli("matrix", "--commitment", "18", "--member", "Canada").output
    assert f"{first}: strong? (proposed: 4 strong, 0 weak of 4 confirmed actions (points-5))" in matrix
    assert f"[strong] item {accepted[0]}" in matrix
    assert f"{second}: none? (proposed: 0 strong, 0 weak of 4 confirmed actions (points-5))" in matrix
    assert "gap: no confirmed action — no pending candidates" in matrix
    strongest = cli("matrix", "--commitment", "18", "--rule", "at-least-5", "--format", "json")
    canada = next(m for m in json.loads(strongest.output)["members"] if m["member"] == "Canada")
    assert canada["cells"][0]["label"] == "weak" and canada["cells"][0]["gap"] is None

    assert "needs an analyst" in cli("verdict", "set", "weak", "-c", "18", "-m", "CA", "-d", first).output
    monkeypatch.setenv("EVIDENCE_ANALYST", "ana")
    done = cli("verdict", "set", "weak", "-c", "18", "-m", "CA", "-d", first, "--note", "arrests only")
    assert done.exit_code == 0 and "Canada, " + first + ": weak (version 1, by ana" in done.output
    again = cli("verdict", "set", "strong", "-c", "18", "-m", "CA", "-d", first, "--analyst", "ben")
    assert again.exit_code == 1 and "has a verdict already (ana weak" in again.output
    assert "pass --version 1" in again.output
    stale = cli("verdict", "set", "strong", "-c", "18", "-m", "CA", "-d", first, "--version", "0")
    assert stale.exit_code == 1 and "changed since version 0 (now version 1)" in stale.output
    assert (
        cli("verdict", "set", "strong", "-c", "18", "-m", "CA", "-d", first, "--version", "1").exit_code == 0
    )
    bad = cli("verdict", "set", "great", "-c", "18", "-m", "CA", "-d", first, "--force")
    assert bad.exit_code == 1 and bad.output.startswith("error: label must be one of")
    assert (
        "unknown dimension 'nope'"
        in cli("verdict", "set", "weak", "-c", "18", "-m", "CA", "-d", "nope").output
    )
    shown = cli("verdict", "show", "-c", "18", "-m", "Canada").output
    assert f"Canada           {first:<26} v2  strong     verdict by ana" in shown
    history = cli("verdict", "history", "-c", "18", "-m", "Canada").output.splitlines()
    assert (
        len(history) == 2 and "v1 ana weak (proposed strong, 4 confirmed actions): arrests only" in history[0]
    )
    explain = cli("score", "explain", "--commitment", "18", "--member", "Canada").output
    assert f"{first}: strong <- verdict by ana" in explain and "bytes sha256:" in explain
    assert f"{second}: none <- proposed: 0 strong, 0 weak of 4 confirmed actions" in explain


def test_the_queue_filters_to_one_cell(db):
    rubric = rubrics_for(18)[0]
    first, second = rubric.dimension_ids[:2]
    listing = cli("queue", "list", "-c", "18", "-m", "Canada", "--dimension", first).output.splitlines()
    assert len(listing) == 4
    assert (
        cli("queue", "list", "-c", "18", "-m", "Canada", "-d", second).output.strip()
        == "no queue items match"
    )
    item = int(listing[0].split()[0])
    review.decide(
        db, item, "ana", "relabel", review.get_item(db, item)["version"], dimension=first, label="none"
    )
    review.decide(
        db, item, "ana", "relabel", review.get_item(db, item)["version"], dimension=second, label="weak"
    )
    assert review.count_items(db, commitment=18, member="Canada", dimension=first)["total"] == 3
    assert [r["id"] for r in review.list_items(db, commitment=18, member="Canada", dimension=second)] == [
        item
    ]


def test_an_older_database_gets_the_verdicts_table_with_its_decisions_intact(review_db):
    """The review database with m017 undone (as a database from before it would be) upgrades on open."""
    from classifier.migrations import migrations

    conn = sqlite3.connect(review_db)
    conn.execute("drop table verdicts")
    conn.execute("delete from _sqlite_migrations where name = 'm017_verdicts'")
    items = conn.execute("select count(*) from queue_items").fetchone()[0]
    conn.commit()
    conn.close()
    db = open_db(review_db)
    assert "m017_verdicts" in [m.name for m in migrations.applied(db)]
    assert db["verdicts"].count == 0 and db["queue_items"].count == items
    rubric = rubrics_for(19)[0]
    row = verdicts.set_verdict(db, rubric, "Japan", rubric.dimension_ids[0], "none", "ana", 0)
    assert row["version"] == 1
