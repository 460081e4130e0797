"""The nightly job as real processes: SIGKILL at every stage and resume, two runs at once, faults mid-run.

The sources are a real local HTTP newsroom (tests/newsroom.py) whose generated feed grows by a few
releases before each run. The model is the OpenAI-compatible STUB endpoint (tests/llm_stub.py):
a stub, not a model, answering every request with a fixed valid classification; the baseline
backend covers the same stages in test_nightly.py. Kills come from failpoints
(classifier/failpoints.py): the process sends itself SIGKILL at the named point.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from classifier.review import decide, state_of
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .llm_stub import OpenAIStub
from .newsroom import Newsroom

# Every test runs (and kills) whole nightly jobs: left out of `make test-fast`.
pytestmark = pytest.mark.slow

KEY = "sk-test-NOT-A-REAL-KEY-0000"
EXE = os.path.join(os.path.dirname(sys.executable), "evidence")
FEED = "/generated/feed.rss"


def release_html(n: int, extra: str = "") -> str:
    day = 1 + n % 27
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Release {n}: coastal task force dismantles smuggling ring {n}</title>
<meta property="article:published_time" content="2024-10-{day:02d}T09:00:00Z">
</head><body><main><article>
<h1>Coastal task force dismantles smuggling ring number {n}</h1>
<p>OTTAWA, October {day}, 2024 — Police officers of the coastal task force arrested {n + 3} members
of a migrant smuggling ring operating across the border, the Minister of Public Safety announced today.</p>
<p>The operation, file {n * 7919 % 10007}, followed eleven months of joint investigation with partner
agencies and seized boats, vehicles and forged travel documents worth {n + 2} hundred thousand dollars.</p>
<p>The minister said the government will keep working with international partners to protect
vulnerable migrants and bring smugglers to justice. {extra}</p>
</article></main></body></html>"""


def feed_xml(base: str, dates: dict[int, str]) -> str:
    items = "".join(
        f"<item><title>Release {n}</title><link>{base}/generated/{n}.html</link><pubDate>{when}</pubDate></item>"
        for n, when in dates.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Generated</title>'
        f"<link>{base}/</link><description>Releases</description>{items}</channel></rss>"
    )


def now_rfc822() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


def answer(rubric) -> dict:
    return {
        "relevant": True,
        "members": ["Canada"],
        "action_date": "2024-10-05",
        "summary": "On 5 October 2024, Canada's coastal task force arrested members of a smuggling ring.",
        "confidence": 0.8,
        "outside_period": False,
        "exclusions": [],
        "dimensions": {
            d.id: {"label": "weak", "rationale": "arrests by the task force", "quotes": ["arrested"]}
            for d in rubric.dimensions
        },
    }


class World:
    """The newsroom, the stub and the environment a nightly process runs in."""

    def __init__(self, site: Newsroom, stub: OpenAIStub, tmp_path, db_path):
        self.site, self.stub, self.db_path = site, stub, db_path
        self.dates: dict[int, str] = {}  # release number -> its date in the feed
        config = tmp_path / "evidence.toml"
        config.write_text(
            '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\nretries = 0\n'
            "concurrency = 1\nper_host_concurrency = 1\n"
            f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\n'
            'api_key_env = "EVIDENCE_TEST_KEY"\ntimeout = 5\nbackoff = 0\nrate_limit_retries = 1\n'
            "max_retry_after = 0\nprefilter = 0\n",
            encoding="utf-8",
        )
        self.sources = tmp_path / "sources.toml"
        self.sources.write_text(
            f'[[sources]]\nname = "generated"\nmember = "CA"\npublisher = "T"\nkind = "feed"\n'
            f'url = "{site.url(FEED)}"\ncommitments = [18, 19]\n',
            encoding="utf-8",
        )
        self.env = {**os.environ, "EVIDENCE_CONFIG": str(config), "EVIDENCE_DB": str(db_path),
                    "EVIDENCE_TEST_KEY": KEY, "EVIDENCE_EVAL_RESULTS": str(tmp_path / "results")}  # fmt: skip
        self.env.pop("EVIDENCE_FAILPOINTS", None)
        for rubric in rubrics_for():
            stub.answer_for(f"Classification{rubric.number}", answer(rubric))

    def publish(self, count: int) -> list[int]:
        """Put ``count`` new releases, dated now, on the site and in its feed."""
        start = max(self.dates, default=0) + 1
        new = list(range(start, start + count))
        for n in new:
            self.site.set_page(f"/generated/{n}.html", release_html(n))
            self.dates[n] = now_rfc822()
        self._feed()
        return new

    def update(self, n: int, extra: str) -> None:
        """Change release ``n``; the feed dates it now."""
        self.site.set_page(f"/generated/{n}.html", release_html(n, extra))
        self.dates[n] = now_rfc822()
        self._feed()

    def _feed(self) -> None:
        self.site.set_page(FEED, feed_xml(self.site.base_url, self.dates), "application/rss+xml")

    def start(self, *args: str, failpoints: str | None = None, log_format: str = "json") -> subprocess.Popen:
        env = dict(self.env, EVIDENCE_LOG_FORMAT=log_format)
        if failpoints:
            env["EVIDENCE_FAILPOINTS"] = failpoints
        return subprocess.Popen([EXE, "nightly", "--sources", str(self.sources), *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    def run(self, *args: str, **kwargs) -> tuple[int, dict | None, list[dict]]:
        """Run to the end: (exit code, summary printed on stdout, JSON log lines from stderr)."""
        proc = self.start(*args, **kwargs)
        out, err = proc.communicate(timeout=300)
        summary = json.loads(out) if out.strip() else None
        return (
            proc.returncode,
            summary,
            [json.loads(line) for line in err.splitlines() if line.startswith("{")],
        )


@pytest.fixture
def world(tmp_path, isolated_db):
    with Newsroom() as site, OpenAIStub() as stub:
        yield World(site, stub, tmp_path, isolated_db)


def duplicates(db: sqlite3.Connection) -> dict[str, int]:
    found = {}
    for table, key in (
        ("documents", "canonical_url"),
        ("document_versions", "document_id, version"),
        ("classifications", "content_sha, commitment, prompt_sha, model"),
        ("queue_items", "document_id, commitment, member"),
    ):
        total = db.execute(f"select count(*) from {table}").fetchone()[0]
        distinct = db.execute(f"select count(*) from (select distinct {key} from {table})").fetchone()[0]
        if total != distinct:
            found[table] = total - distinct
    return found


def snapshot_decisions(db: sqlite3.Connection) -> list[tuple]:
    return db.execute("select * from decisions order by id").fetchall()


KILL_POINTS = (
    "nightly.started=kill",
    "crawl.document=kill@2",
    "crawl.done=kill",
    "classify.stored=kill@3",
    "classify.done=kill",
    "queue.item=kill@2",
    "queue.done=kill",
)


def test_killed_at_every_stage_the_next_run_continues_and_keeps_every_decision(world):
    # A first complete run, then an analyst decides three items.
    world.publish(3)
    code, summary, _ = world.run()
    assert code == 0 and summary["stages"]["classify"]["classified"] == 6, summary
    db = open_db(world.db_path)
    items = [r["id"] for r in db.query("select id from queue_items order by id")]
    assert len(items) == 6  # 3 documents x 2 commitments, all Canada
    decide(db, items[0], "ana", "accept", 1)
    decide(db, items[1], "ana", "reject", 1, reason="not a new action")
    dim = rubrics_for(19)[0].dimensions[0].id
    third = next(i for i in items[2:] if state_of(db, i).item["commitment"] == 19)
    decide(db, third, "ben", "relabel", 1, dimension=dim, label="strong")
    decided = {i: state_of(db, i) for i in (items[0], items[1], third)}
    raw = sqlite3.connect(world.db_path)
    before = snapshot_decisions(raw)
    assert len(before) == 3

    # The release behind the accepted item changes: its next classification updates the item.
    accepted_url = db.execute(
        "select d.canonical_url from queue_items q join documents d on d.id = q.document_id where q.id = ?",
        [items[0]],
    ).fetchone()[0]
    accepted_n = int(accepted_url.rsplit("/", 1)[1].split(".")[0])

    for k, point in enumerate(KILL_POINTS):
        world.publish(2)
        if k == 3:  # the release behind the accepted item changes, and the feed dates it today
            world.update(accepted_n, "Update: two more arrests were made on Friday.")
        proc = world.start(failpoints=point)
        proc.communicate(timeout=300)
        assert proc.returncode == -9, (point, proc.returncode)  # killed at the point, not before or after
        assert raw.execute("pragma integrity_check").fetchone()[0] == "ok", point
        assert duplicates(raw) == {}, point
        assert snapshot_decisions(raw) == before, point
        assert raw.execute("select count(*) from runs where status = 'running'").fetchone()[0] == 1, point

    # The last run, undisturbed, finishes everything the killed ones left.
    code, summary, log = world.run()
    assert code == 0, summary
    assert duplicates(raw) == {}
    assert snapshot_decisions(raw) == before  # no decision lost or changed
    documents = raw.execute("select count(*) from documents").fetchone()[0]
    assert documents == len(world.dates) == 3 + 2 * len(KILL_POINTS)
    assert raw.execute("select count(*) from document_versions").fetchone()[0] == documents + 1  # the change
    current = raw.execute(
        "select count(*) from documents d join document_versions v on v.document_id = d.id"
        " and v.version = d.current_version join classifications c on c.content_sha = v.content_sha256"
        " where c.status = 'ok'"
    ).fetchone()[0]
    assert current == 2 * documents
    assert raw.execute("select count(*) from queue_items").fetchone()[0] == 2 * documents
    # Every answer that reached the database is stored once. Calls in flight (4 at most) when the
    # job was killed mid-classification were answered but never stored: those were asked again.
    stored = raw.execute("select count(*) from classifications").fetchone()[0]
    assert stored == 2 * documents + 2  # + the two classifications of the release before it changed
    assert 0 <= len(world.stub.requests) - stored <= 4
    statuses = [r[0] for r in raw.execute("select status from runs order by id")]
    assert statuses == ["ok"] + ["crashed"] * len(KILL_POINTS) + ["ok"]
    assert sum(1 for e in log if e.get("event") == "crashed-run") == 1
    # The decided items keep their decisions; the accepted one says its suggestion changed since.
    for item_id, old in decided.items():
        now = state_of(db, item_id)
        assert (now.state, now.history, now.decided_version) == (old.state, old.history, old.decided_version)
    assert state_of(db, third).labels[dim] == "strong"
    assert state_of(db, items[0]).suggestion_changed
    assert state_of(db, items[0]).version == decided[items[0]].version + 1  # one update, not one per run


def test_two_runs_started_at_once_exactly_one_runs(world):
    world.publish(3)
    world.stub.latency = 0.3  # long enough that the two certainly overlap
    first, second = world.start(), world.start()
    outs = [p.communicate(timeout=300) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 3], outs
    loser = outs[[first.returncode, second.returncode].index(3)]
    assert "another nightly run" in loser[1] and loser[0] == ""
    raw = sqlite3.connect(world.db_path)
    assert raw.execute("select count(*) from runs").fetchone()[0] == 1
    assert raw.execute("select count(*) from classifications").fetchone()[0] == 6 == len(world.stub.requests)


def test_source_failing_and_model_rate_limiting_mid_run_end_in_exit_1_and_a_precise_summary(world):
    world.publish(5)
    paths = [f"/generated/{n}.html" for n in world.dates]

    def fail_after_three_releases() -> None:
        """The site starts failing mid-crawl: after three releases, the others answer 503."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(world.site.hits[p] for p in paths) < 3:
            time.sleep(0.002)
        for path in paths:
            if not world.site.hits[path]:
                world.site.fail(path, 503)

    watcher = threading.Thread(target=fail_after_three_releases)
    watcher.start()
    # The model endpoint: two answers, then only 429s (each call retries once, as configured).
    world.stub.script([{}, {}] + [{"status": 429, "headers": {"Retry-After": "0"}}] * 40)
    code, summary, log = world.run(failpoints="crawl.document=sleep:0.3")  # fetches one by one, slowly
    watcher.join()
    assert code == 1, summary
    crawl, classify, queue = (summary["stages"][s] for s in ("crawl", "classify", "queue"))
    assert (crawl["new"], crawl["failed"]) == (3, {"http-error": 2})
    assert (classify["classified"], classify["failed"]) == (2, {"rate-limited": 4})
    assert queue["added"] == 2  # what was classified is queued all the same
    assert summary["status"] == "failures"
    assert summary["failures"] == {"crawl": {"http-error": 2}, "classify": {"rate-limited": 4}}
    finished = [e for e in log if e.get("event") == "run-finished"]
    assert len(finished) == 1 and finished[0]["exit_code"] == 1
    assert "crawl: http-error 2; classify: rate-limited 4" in finished[0]["message"]
    raw = sqlite3.connect(world.db_path)
    assert raw.execute("select count(*) from classifications where status = 'failed'").fetchone()[0] == 4

    # Both recover: the next run fetches the releases that failed and classifies what was rate-limited.
    for path in paths:
        world.site.restore(path)
    world.stub.reset()
    code, again, _ = world.run()
    assert code == 0, again
    assert (again["stages"]["crawl"]["new"], again["stages"]["crawl"]["retried"]) == (2, 2)
    assert again["stages"]["classify"]["classified"] == 4 + 4
    assert raw.execute("select count(*) from documents").fetchone()[0] == 5
    assert raw.execute("select count(*) from classifications where status = 'ok'").fetchone()[0] == 10
    assert raw.execute("select count(*) from classifications where status = 'failed'").fetchone()[0] == 0


def test_log_lines_are_json_a_machine_can_read(world):
    world.publish(2)
    code, summary, log = world.run(log_format="json")
    assert code == 0
    events = [e["event"] for e in log if "event" in e]
    stages = [(e["event"], e.get("stage")) for e in log if "event" in e]
    assert stages == [
        ("run-started", None),
        ("stage-done", "learn"),  # first: retrain the learned model when analysts decided
        ("stage-done", "crawl"),
        ("stage-started", "classify"),
        ("stage-done", "classify"),
        ("stage-done", "queue"),
        ("run-finished", None),
    ]
    assert events == [event for event, _ in stages]
    crawl = next(e for e in log if e.get("stage") == "crawl")
    assert crawl["new"] == 2 and crawl["level"] == "INFO" and crawl["time"].endswith("Z")
    assert log[-1]["status"] == "ok" and log[-1]["run"] == summary["run"]
    text = world.start(log_format="text")
    _, err = text.communicate(timeout=300)
    lines = err.splitlines()
    assert lines and all(" INFO evidence.nightly " in line for line in lines)
    assert KEY not in err and all(KEY not in json.dumps(e) for e in log)


def test_budgets_stop_the_run_gracefully_and_the_next_run_goes_on(world):
    world.publish(3)
    code, summary, log = world.run("--max-documents", "1")
    assert code == 1 and summary["status"] == "stopped-by-budget"
    assert summary["stopped"] == ["max-documents: 2 of 3 pending documents left for the next run"]
    assert summary["stages"]["classify"]["classified"] == 2 and summary["failures"] == {}
    assert "stopped: max-documents" in log[-1]["message"]

    code, summary, _ = world.run("--token-cap", "1")
    assert code == 1 and summary["status"] == "stopped-by-budget"
    classify = summary["stages"]["classify"]
    assert classify["calls"] == 1 and classify["skipped"] == {"token-cap": 3}
    assert summary["stopped"] == ["token-cap: 3 classifications left for the next run"]
    assert classify["tokens_in"] > 1  # the one call went over the cap; none was started after

    code, summary, _ = world.run()
    assert code == 0 and summary["stages"]["classify"]["classified"] == 3
    raw = sqlite3.connect(world.db_path)
    assert raw.execute("select count(*) from classifications where status = 'ok'").fetchone()[0] == 6
    assert len(world.stub.requests) == 6


def test_a_stage_that_breaks_is_recorded_and_the_run_still_finishes(world):
    world.publish(2)
    code, summary, log = world.run(failpoints="queue.item=error")
    assert code == 1 and summary["status"] == "failures"
    assert summary["failures"] == {"queue": {"stage-error": 1}}
    assert summary["stages"]["queue"]["error"] == "FailpointError: failpoint queue.item"
    assert summary["stages"]["classify"]["classified"] == 4  # the stages before it are done
    assert any(e.get("stage") == "queue" and "stage failed" in e["message"] for e in log)
    # Broken between stages: the run stops there, is recorded as an error, and the next run goes on.
    world.publish(1)
    code, summary, log = world.run(failpoints="crawl.done=error")
    assert code == 1 and summary["status"] == "error" and set(summary["stages"]) == {"learn", "crawl"}
    assert summary["error"] == "FailpointError: failpoint crawl.done"
    assert any(e.get("event") == "run-error" and e["level"] == "ERROR" for e in log)
    code, summary, _ = world.run()
    assert code == 0 and summary["stages"]["classify"]["classified"] == 2
    assert summary["stages"]["queue"]["added"] == 2 + 3  # the first run's queue stage broke after one item
