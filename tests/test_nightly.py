"""The nightly job against the local newsroom with the baseline backend: exit codes, lock, reruns."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from classifier.cli import app

from .newsroom import Newsroom

runner = CliRunner()


@pytest.fixture
def site():
    with Newsroom() as newsroom:
        yield newsroom


@pytest.fixture
def setup(site, tmp_path, monkeypatch, isolated_db):
    config = tmp_path / "evidence.toml"
    config.write_text(
        '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\nretries = 0\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("EVIDENCE_CONFIG", str(config))
    monkeypatch.setenv("EVIDENCE_EVAL_RESULTS", str(tmp_path / "results"))
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[sources]]\nname = "atom"\nmember = "CA"\npublisher = "T"\nkind = "feed"\nurl = "{site.url("/news/feed.atom")}"\n'
        "commitments = [18, 19]\n",
        encoding="utf-8",
    )
    return sources, isolated_db


def nightly(sources, *extra):
    return runner.invoke(app, ["nightly", "--sources", str(sources), *extra])


def summary_of(result):
    return json.loads(result.stdout)


@pytest.mark.slow
def test_nightly_runs_every_stage_then_continues_incrementally(setup):
    sources, _ = setup
    first = nightly(sources)
    assert first.exit_code == 0, first.output
    s = summary_of(first)
    assert s["status"] == "ok" and s["stages"]["crawl"]["new"] == 3
    assert s["stages"]["classify"]["classified"] == 6  # 3 documents x 2 commitments
    assert s["stages"]["queue"]["added"] >= 1
    again = summary_of(nightly(sources))
    assert again["stages"]["crawl"]["new"] == 0 and again["stages"]["classify"]["classified"] == 0
    listing = runner.invoke(app, ["runs", "list"]).output.splitlines()
    assert len(listing) == 2 and all(" ok " in line for line in listing)
    shown = runner.invoke(app, ["runs", "show", listing[-1].split()[0]]).output
    assert '"crawl"' in shown and '"classify"' in shown


def test_another_live_run_holds_the_lock(setup):
    sources, db = setup
    lock = db.parent / "nightly.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.write_text(json.dumps({"pid": holder.pid, "started_utc": "now"}), encoding="utf-8")
        result = nightly(sources)
        assert result.exit_code == 3 and "holds" in result.output
    finally:
        holder.kill()


def test_a_dead_holders_lock_is_taken_over(setup):
    sources, db = setup
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (db.parent / "nightly.lock").write_text(
        json.dumps({"pid": int(dead.stdout), "started_utc": "then"}), encoding="utf-8"
    )
    result = nightly(sources)
    assert result.exit_code == 0 and "took over a stale lock" in result.output
    assert not (db.parent / "nightly.lock").exists()


def test_configuration_error_exits_2(setup, tmp_path, monkeypatch):
    sources, _ = setup
    broken = tmp_path / "broken.toml"
    broken.write_text("[fetch]\nallow_private = true\n", encoding="utf-8")  # no contact address
    monkeypatch.setenv("EVIDENCE_CONFIG", str(broken))
    result = nightly(sources)
    assert result.exit_code == 2 and "contact" in result.output


def test_failing_source_ends_with_exit_1_and_everything_else_done(setup, site):
    sources, _ = setup
    sources.write_text(
        sources.read_text(encoding="utf-8")
        + f'[[sources]]\nname = "broken"\nmember = "IT"\npublisher = "T"\nkind = "feed"\nurl = "{site.url("/bad-feed.xml")}"\n',
        encoding="utf-8",
    )
    result = nightly(sources)
    assert result.exit_code == 1
    s = summary_of(result)
    assert s["status"] == "failures" and s["stages"]["crawl"]["failed"] == {"feed:feed-unreadable": 1}
    assert s["stages"]["classify"]["classified"] == 6


@pytest.mark.slow
def test_killed_at_many_points_the_next_run_continues_without_duplicates(setup, site):
    """SIGKILL the job at different moments (crawling, loading the model, classifying), rerun."""
    import os
    import signal
    import sqlite3
    import time

    sources, db_path = setup
    exe = os.path.join(os.path.dirname(sys.executable), "evidence")
    env = dict(os.environ)
    for delay in (0.5, 1.5, 3.0, 6.0):
        proc = subprocess.Popen([exe, "nightly", "--sources", str(sources)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        db = sqlite3.connect(db_path)
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        for table, key in (
            ("documents", "canonical_url"),
            ("classifications", "content_sha, commitment, prompt_sha, model"),
            ("queue_items", "document_id, commitment, member"),
        ):
            if table in {r[0] for r in db.execute("select name from sqlite_master")}:
                total = db.execute(f"select count(*) from {table}").fetchone()[0]
                distinct = db.execute(
                    f"select count(*) from (select distinct {key} from {table})"
                ).fetchone()[0]
                assert total == distinct, (delay, table)
        db.close()
    final = subprocess.run(
        [exe, "nightly", "--sources", str(sources)], env=env, capture_output=True, text=True, timeout=300
    )
    assert final.returncode == 0, final.stderr
    db = sqlite3.connect(db_path)
    assert db.execute("select count(*) from documents").fetchone()[0] == 3
    assert db.execute("select count(*) from classifications where status = 'ok'").fetchone()[0] == 6
    statuses = [r[0] for r in db.execute("select status from runs order by id")]
    assert statuses[-1] == "ok" and "running" not in statuses


def test_failpoints_fire_on_the_named_hit_only(monkeypatch):
    from classifier import failpoints

    monkeypatch.setenv("EVIDENCE_FAILPOINTS", "a.point=error@2, other=sleep:0")
    monkeypatch.setattr(failpoints, "_hits", failpoints.Counter())
    failpoints.failpoint("a.point")  # the first hit passes
    with pytest.raises(failpoints.FailpointError, match=r"a\.point"):
        failpoints.failpoint("a.point")
    failpoints.failpoint("a.point")  # and the third
    failpoints.failpoint("not.named")
    monkeypatch.setenv("EVIDENCE_FAILPOINTS", "a.point=explode")
    with pytest.raises(ValueError, match="unknown action 'explode'"):
        failpoints.failpoint("a.point")


def test_an_endpoint_that_cannot_answer_stops_the_run_before_it_crawls(setup, site, monkeypatch):
    """A closed port as the model endpoint: one line naming the URL, no request to the newsroom,
    the run recorded as an error with exit 1."""
    sources, _ = setup
    monkeypatch.setenv("EVIDENCE_LLM_BACKEND", "openai")
    monkeypatch.setenv("EVIDENCE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("EVIDENCE_LLM_MODEL", "some-model")
    monkeypatch.setenv("EVIDENCE_LLM_API_KEY_ENV", "NIGHTLY_TEST_KEY")
    monkeypatch.setenv("NIGHTLY_TEST_KEY", "sk-never-printed-0000")
    result = nightly(sources)
    assert result.exit_code == 1
    s = summary_of(result)
    assert s["status"] == "error" and "http://127.0.0.1:9/v1: cannot connect" in s["error"]
    assert "crawl" not in s["stages"] and site.requests == []
    assert "sk-never-printed" not in result.output
