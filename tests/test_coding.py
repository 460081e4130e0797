"""Double coding: blind codings, their agreement, reconciliation; real SQLite, real HTTP, the real CLI."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from classifier import coding, review
from classifier.store import open_db

from .test_web import WebServer, csrf_of, decide, login


def cli(*args):
    from typer.testing import CliRunner

    from classifier.cli import app

    return CliRunner().invoke(app, list(args))


def rows(db_path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


# ---------------------------------------------------------------------------
# The figures, against answers worked out by hand


def test_alpha_and_kappa_known_answers():
    # Two coders, four items: (a,a) (a,b) (b,b) (b,b). Coincidences o_aa=2, o_ab=o_ba=1, o_bb=4;
    # n_a=3, n_b=5, n=8. D_o = 2/8, D_e = 2*3*5/(8*7) = 30/56, alpha = 1 - (2/8)/(30/56) = 8/15.
    # Cohen: p_o = 3/4, p_e = .5*.25 + .5*.75 = .5, kappa = (.75-.5)/.5 = .5.
    data = [[0, 0, 1, 1], [0, 1, 1, 1]]
    assert coding.alpha(data, "nominal", [0, 1]) == pytest.approx(8 / 15)
    assert coding.kappa(data) == pytest.approx(0.5)
    # Ordinal, three items (0,0) (0,1) (2,2): n_0=3, n_1=1, n_2=2, n=6; delta^2(c,k) =
    # (sum_{g=c..k} n_g - (n_c+n_k)/2)^2: d01=4, d02=12.25, d12=2.25. D_o = 2*4/6 = 4/3,
    # D_e = 2*(3*1*4 + 3*2*12.25 + 1*2*2.25)/30 = 6, alpha = 1 - (4/3)/6 = 7/9.
    # Nominal on the same: D_o = 2/6, D_e = 2*(3+6+2)/30 = 22/30, alpha = 1 - 10/22 = 6/11.
    ordinal = [[0, 0, 2], [0, 1, 2]]
    assert coding.alpha(ordinal, "ordinal", [0, 1, 2]) == pytest.approx(7 / 9)
    assert coding.alpha(ordinal, "nominal", [0, 1, 2]) == pytest.approx(6 / 11)
    # one value only: no disagreement to expect, so no figure (not a division by zero)
    assert coding.alpha([[1, 1], [1, 1]], "nominal", [0, 1]) is None
    assert coding.kappa([[1, 1], [1, 1]]) is None


# ---------------------------------------------------------------------------
# Assigning


def test_assign_picks_pending_undecided_items_repeatably(review_db, tmp_path):
    import shutil

    twin = tmp_path / "twin.db"
    shutil.copy(review_db, twin)
    db = open_db(review_db)
    decided = review.list_items(db, order="date", limit=1)[0]["id"]
    review.decide(db, decided, "carl", "note", review.state_of(db, decided).version, note="seen")
    seed, ids = coding.assign(db, ["ana", "ben"], 3, seed=7)
    assert seed == 7 and len(ids) == 3 and decided not in ids
    assert rows(review_db, "select count(*) from coding_assignments")[0][0] == 6
    twin_db = open_db(twin)
    review.decide(twin_db, decided, "carl", "note", review.state_of(twin_db, decided).version, note="seen")
    assert coding.assign(twin_db, ["ana", "ben"], 3, seed=7) == (7, ids)  # the same seed, the same pick
    _, more = coding.assign(db, ["ana", "ben"], 100)
    assert not set(more) & set(ids)  # assigned once only
    assert coding.assign(db, ["ana", "ben"], 5)[1] == []  # nothing free is left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--analysts", "ana", "--count", "2"], "two or more different names"),
        (["--analysts", "ana,ana", "--count", "2"], "two or more different names"),
        (["--analysts", "ana,ben", "--count", "0"], "--count must be at least 1"),
    ],
)
def test_bad_assignments_are_one_line_errors_and_write_nothing(review_db, args, message):
    result = cli("queue", "assign", *args)
    assert result.exit_code == 1 and message in result.output and len(result.output.splitlines()) == 1
    assert rows(review_db, "select count(*) from coding_assignments")[0][0] == 0


# ---------------------------------------------------------------------------
# Coding blind in the terminal


def test_blind_coding_agreement_and_reconciliation_in_the_cli(review_db, monkeypatch):
    assigned = cli(
        "queue", "assign", "--analysts", "ana,ben", "--count", "4", "--commitment", "18", "--seed", "3"
    )
    assert assigned.exit_code == 0 and "seed 3" in assigned.output, assigned.output
    ids = [int(x) for x in assigned.output.split(":")[-1].split()]
    assert len(ids) == 4
    assert cli("queue", "assigned", "--analyst", "ben").output.startswith("4 items to code")
    db = open_db(review_db)
    first = ids[0]
    dims = list(review.state_of(db, first).labels)
    version = review.state_of(db, first).version

    relabel = cli("queue", "relabel", str(first), dims[1], "weak", "--analyst", "ana")
    assert "coded blind (0 of 2 coded" in relabel.output, relabel.output
    accepted = cli("queue", "accept", str(first), "--analyst", "ana")
    assert "coded blind (1 of 2 coded" in accepted.output, accepted.output
    # a coding is not a decision: the version, state and history stay as they were
    st = review.state_of(db, first)
    assert (st.version, st.state, st.history) == (version, "pending", [])
    # ana sees her coding; ben sees that one coder has coded, not what
    as_ana = cli("queue", "show", str(first), "--analyst", "ana").output
    assert (
        "1 of 2 coded" in as_ana
        and f"ana: accept; labels {dims[0]}" in as_ana
        and f"{dims[1]} weak" in as_ana
    )
    as_ben = cli("queue", "show", str(first), "--analyst", "ben").output
    assert "1 of 2 coded" in as_ben and "ana:" not in as_ben and f"{dims[1]} weak" not in as_ben
    assert "ana:" not in cli("queue", "show", str(first)).output  # nobody named: nothing shown
    assert '"ana"' not in json.dumps(review.export_records(db))
    # someone else cannot pre-empt the coders; a note is taken
    carl = cli("queue", "accept", str(first), "--analyst", "carl")
    assert carl.exit_code == 1 and "being coded blind by ana, ben" in carl.output
    assert "decision" in cli("queue", "note", str(first), "look at the date", "--analyst", "carl").output
    assert cli("queue", "edit", str(first), "New summary.", "--analyst", "ben").exit_code == 1
    # claims skip items coded blind by others
    claimed = cli("queue", "claim", "--count", "100", "--analyst", "carl").output
    assert not set(ids) & {int(x) for x in claimed.split(":")[-1].split()}

    # ben codes it the same way: the agreement settles it, attributed to both
    cli(
        "queue", "relabel", str(first), dims[1], "weak", "--analyst", "ben", "--force"
    )  # carl's note came since
    settled = cli("queue", "accept", str(first), "--analyst", "ben", "--force")
    assert "all coded and agreed" in settled.output, settled.output
    st = review.state_of(db, first)
    assert st.state == "accepted" and st.labels[dims[1]] == "weak"
    assert [(d["analyst"], d["action"]) for d in st.history][-2:] == [
        ("ana+ben", "relabel"),
        ("ana+ben", "accept"),
    ]
    both = cli("queue", "show", str(first), "--analyst", "ben").output
    assert "ana: accept" in both and "ben: accept" in both

    # second item: ana accepts, ben rejects: pending until a reconciling decision
    second = ids[1]
    cli("queue", "accept", str(second), "--analyst", "ana")
    cli("queue", "reject", str(second), "--reason", "not an action", "--analyst", "ben")
    assert review.state_of(db, second).state == "pending"
    shown = cli("queue", "show", str(second), "--analyst", "carl").output
    assert "disagreeing on relevance" in shown and "ben: reject: not an action" in shown
    reconciled = cli(
        "queue", "reject", str(second), "--reason", "announcement only", "--analyst", "carl", "--force"
    )
    assert "now rejected" in reconciled.output, reconciled.output
    # third and fourth: both reject them (agreement settles a rejection too)
    for item in ids[2:]:
        for who in ("ana", "ben"):
            cli("queue", "reject", str(item), "--reason", f"{who} says no", "--analyst", who)
        assert review.state_of(db, item).state == "rejected"
    assert "ben says no" in review.state_of(db, ids[2]).history[-1]["payload"]

    # relevance: ana 1,1,0,0 and ben 1,0,0,0: the hand-worked example, kappa .5, alpha 8/15
    report = cli("queue", "agreement")
    assert report.exit_code == 0, report.output
    assert (
        "4 items assigned for double coding, 4 coded by all their coders, 3 agreed, 0 to reconcile"
        in report.output
    )
    relevance = next(line for line in report.output.splitlines() if line.startswith("relevance"))
    assert relevance.split()[1:5] == ["4", "75%", "0.500", "0.533"], relevance
    assert "reject 5, accept 3" in relevance
    # the dimensions, a rejection counting as none: ana 2,2,0,0 and ben 2,0,0,0 on the first (strong
    # suggested), the same example again; both weak on item 1 only on the second: all the same
    first_dim = next(line for line in report.output.splitlines() if line.startswith(dims[0]))
    assert first_dim.split()[1:6] == ["4", "75%", "0.500", "0.533", "0.533"], first_dim
    assert "none 5, weak 0, strong 3" in first_dim
    second_dim = next(line for line in report.output.splitlines() if line.startswith(dims[1]))
    assert second_dim.split()[1:3] == ["4", "100%"] and "none 6, weak 2, strong 0" in second_dim
    with pytest.raises(Exception, match="append-only"):
        db.execute("update codings set analyst = 'mallory'")
    with pytest.raises(Exception, match="append-only"):
        db.execute("delete from codings")


def test_agreement_with_nothing_coded_says_so(review_db):
    out = cli("queue", "agreement").output
    assert "0 items assigned" in out and "no item coded by all its coders yet" in out


# ---------------------------------------------------------------------------
# On the web


def codings_table(html: str) -> list[str]:
    """The analysts whose codings the page shows."""
    return re.findall(r'class="coding-row" data-analyst="([^"]+)"', html)


def dimension_row(html: str, dimension: str) -> str:
    return re.search(rf'id="dim-{dimension}".*?</tr>', html, re.S)[0]


def test_web_item_page_hides_the_other_coders_coding_until_all_have_coded(review_db):
    db = open_db(review_db)
    _, ids = coding.assign(db, ["ana", "ben"], 1, seed=1)
    item = ids[0]
    dims = list(review.state_of(db, item).labels)
    with WebServer(review_db) as server:
        ana, ben = login(server, "ana"), login(server, "ben")
        assert decide(ana, item, action="relabel", dimension=dims[0], label="none").status_code == 303
        moved = decide(ana, item, action="accept")
        assert moved.status_code == 303 and not moved.headers["location"].startswith(f"/items/{item}?")
        page = ana.get(f"/items/{item}").text
        assert codings_table(page) == ["ana"] and "1 of 2 coded" in page
        assert "label-none" in dimension_row(page, dims[0])  # her own label in the table
        page = ben.get(f"/items/{item}").text
        assert codings_table(page) == ["ben"] and "1 of 2 coded" in page  # his own only, not yet coded
        assert "not coded yet" in page
        assert "label-strong" in dimension_row(page, dims[0])  # the suggestion's, not ana's
        # ben disagrees on the dimension; both codings show, and the item waits for reconciling
        assert decide(ben, item, action="accept").status_code == 303
        for c in (ana, ben):
            page = c.get(f"/items/{item}").text
            assert codings_table(page) == ["ana", "ben"] and f"disagree on {dims[0]}" in page
        assert review.state_of(db, item).state == "pending"
        assert decide(ben, item, action="relabel", dimension=dims[0], label="none").status_code == 303
        assert decide(ben, item, action="accept").status_code == 303
        st = review.state_of(db, item)
        assert st.state == "accepted" and [d["analyst"] for d in st.history] == ["ben", "ben"]
        # the evaluation page shows the agreement
        page = ana.get("/eval").text
        assert 'id="agreement-table"' in page and "1 coded by all their coders" in page
        row = re.search(rf'<tr data-name="{dims[0]}">(.*?)</tr>', page, re.S)[1]
        assert "<td>1</td>" in row and "<td>0%</td>" in row


def test_web_non_coder_cannot_decide_an_item_coded_blind(review_db):
    db = open_db(review_db)
    _, ids = coding.assign(db, ["ben", "carl"], 1, seed=2)
    with WebServer(review_db) as server:
        ana = login(server, "ana")
        refused = decide(ana, ids[0], action="accept")
        assert refused.status_code == 400 and "being coded blind by ben, carl" in refused.text
        assert "You can decide on it once they have all coded it" in refused.text
        assert csrf_of(refused.text)
    assert review.state_of(db, ids[0]).history == []


def test_queue_next_codes_assigned_items_once_and_moves_on(review_db):
    from typer.testing import CliRunner

    from classifier.cli import app

    _, ids = coding.assign(open_db(review_db), ["ana", "ben"], 100, seed=4)
    result = CliRunner().invoke(app, ["queue", "next", "--analyst", "ana"], input="a\n" * len(ids))
    assert result.exit_code == 0 and result.output.rstrip().endswith("nothing left to triage"), result.output
    assert rows(review_db, "select count(*), count(distinct item_id) from codings") == [(len(ids), len(ids))]
    assert rows(review_db, "select count(*) from decisions") == [(0,)]
    # carl has nothing to triage until both have coded; ben has all of them
    assert (
        "nothing left to triage"
        in CliRunner().invoke(app, ["queue", "next", "--analyst", "carl"], input="q\n").output
    )
    shown = CliRunner().invoke(app, ["queue", "next", "--analyst", "ben"], input="q\n").output
    assert "double coding by ana, ben: 1 of 2 coded" in shown and "ana:" not in shown


def test_a_coding_keeps_the_labels_its_coder_saw_when_the_suggestion_changes(review_db):
    db = open_db(review_db)
    _, (item,) = coding.assign(db, ["ana", "ben"], 1, commitment=18, seed=6)
    st = review.state_of(db, item)
    dim = next(iter(st.labels))
    assert st.labels[dim] == "strong"
    review.decide(db, item, "ana", "accept", st.version)
    # a new suggestion comes in (as a re-fill writes it): the dimension is now suggested weak
    suggestion = {**st.suggestion, "labels": {**st.suggestion["labels"], dim: "weak"}}
    db.execute(
        "update queue_items set suggestion = ?, version = version + 1 where id = ?",
        [json.dumps(suggestion), item],
    )
    db.conn.commit()
    review.decide(db, item, "ben", "accept", st.version + 1)
    seen = coding.view(db, item, "ben")
    assert {c.analyst: c.labels[dim] for c in seen.codings} == {"ana": "strong", "ben": "weak"}
    assert seen.disagreements() == [dim] and review.state_of(db, item).state == "pending"
