"""The fetch, crawl and docs commands end to end against the local newsroom, in real processes."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from classifier.cli import app

from .conftest import INTERIM_18, REPORTS
from .newsroom import Newsroom

runner = CliRunner()
EXE = os.path.join(os.path.dirname(sys.executable), "evidence")


@pytest.fixture
def site():
    with Newsroom(slow_seconds=2.0, big_bytes=2_000_000) as newsroom:
        yield newsroom


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "evidence.toml"
    path.write_text(
        '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\n'
        "timeout = 1.0\nretries = 1\nbackoff = 0.05\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EVIDENCE_CONFIG", str(path))
    return path


def invoke(*args):
    return runner.invoke(app, list(args))


def test_fetch_without_a_contact_address_is_refused(site, tmp_path, monkeypatch):
    monkeypatch.setenv("EVIDENCE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("[fetch]\nallow_private = true\n", encoding="utf-8")
    result = invoke("fetch", site.url("/news/"))
    assert result.exit_code == 1 and "no contact address" in result.output
    assert sum(site.hits.values()) == 0


def test_fetch_summary_and_exit_codes(site, config_file):
    pages = [site.url(p) for p in site.release_paths[:3]]
    ok = invoke("fetch", *pages)
    assert ok.exit_code == 0, ok.output
    assert "new 3, changed 0, unchanged 0, skipped 0, failed 0" in ok.output
    mixed = invoke("fetch", *pages, site.url("/missing"), site.url("/archive.zip"), "ftp://example.org/x")
    assert mixed.exit_code == 1
    assert "new 0, changed 0, unchanged 3" in mixed.output
    assert "skipped 1 (unsupported content type application/zip 1)" in mixed.output
    assert (
        "failed 2 (http-error 1, invalid-url 1)" in mixed.output
        or "failed 2 (invalid-url 1, http-error 1)" in mixed.output
    )
    run = re.search(r"docs log --run (\w+)", mixed.output)[1]
    log = invoke("docs", "log", "--run", run)
    assert "http-error" in log.output and "404" in log.output and "not-modified" in log.output
    why = invoke("docs", "log", site.url("/missing"))
    assert why.output.count("http-error") == 1


def test_docs_list_and_show(site, config_file):
    invoke("fetch", *[site.url(p) for p in site.release_paths])
    listing = invoke("docs", "list")
    assert listing.exit_code == 0
    rows = listing.output.strip().splitlines()
    assert len(rows) >= 6 and all(re.match(r"^\s*\d+\s+\d{4}-\d{2}-\d{2}", r) for r in rows)
    doc_id = rows[0].split()[0]
    shown = invoke("docs", "show", doc_id)
    assert shown.exit_code == 0 and "published:" in shown.output and "v1" in shown.output
    missing = invoke("docs", "show", "https://nowhere.example/x")
    assert missing.exit_code == 1 and "docs log" in missing.output


def test_crawl_filters(site, config_file, tmp_path):
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[sources]]\nname = "a"\nmember = "CA"\npublisher = "T"\nkind = "feed"\nurl = "{site.url("/news/feed.atom")}"\n'
        f'[[sources]]\nname = "b"\nmember = "UK"\npublisher = "T"\nkind = "feed"\nurl = "{site.url("/news/feed.rss")}"\n',
        encoding="utf-8",
    )
    result = invoke("crawl", "--sources", str(sources), "--member", "UK")
    assert result.exit_code == 0, result.output
    assert site.hits["/news/feed.atom"] == 0 and site.hits["/news/feed.rss"] == 1
    assert invoke("crawl", "--sources", str(sources), "--source", "nope").output.startswith(
        "error: unknown source"
    )
    assert "YYYY-MM-DD" in invoke("crawl", "--sources", str(sources), "--since", "last week").output


def test_fetch_from_gold_links_documents_to_members_and_footnotes(site, config_file, tmp_path):
    """A real chapter whose footnote URLs are rewritten to the local newsroom."""
    text = INTERIM_18.read_text(encoding="utf-8")
    release = site.release_paths[0]
    target = "https://www.canada.ca/en/border-services-agency/news/2024/07/new-regulatory-amendments-will-improve-border-processing-efficiency-and-support-public-safety-priorities.html"
    assert target in text
    text = text.replace(target, site.url(release))
    text = re.sub(
        r"https?://[^/\s>)\]]+", site.base_url, text
    )  # every other cited URL: same host, mostly 404
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / INTERIM_18.name).write_text(text, encoding="utf-8")
    (folder / "manifest.toml").write_text(
        (REPORTS / "manifest.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert invoke("gold", "import", str(folder / INTERIM_18.name)).exit_code == 0
    result = invoke("fetch", "--from-gold", "--member", "CA")
    assert "requests" in result.output
    db = sqlite3.connect(os.environ["EVIDENCE_DB"])
    links = db.execute(
        "select member, commitment, footnote from document_links where source = 'gold' and canonical_url = ?",
        [site.url(release)],
    ).fetchall()
    assert links == [("Canada", 18, 2829)]
    assert (
        db.execute("select count(*) from documents where canonical_url = ?", [site.url(release)]).fetchone()[
            0
        ]
        == 1
    )
    cited = db.execute(
        "select count(distinct canonical_url) from document_links where source = 'gold'"
    ).fetchone()[0]
    logged = db.execute("select count(distinct canonical_url) from fetch_log").fetchone()[0]
    assert cited == logged  # every cited URL was attempted and logged, found or not


@pytest.mark.slow
def test_killed_mid_run_keeps_finished_pages_and_a_rerun_continues(site, tmp_path, isolated_db):
    config = tmp_path / "slow.toml"
    config.write_text(
        '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0.15\n'
        "per_host_concurrency = 1\nretries = 0\n",
        encoding="utf-8",
    )
    for n in range(30):
        site.set_page(
            f"/bulk/{n}.html",
            f"<html><body><main><article><h1>Release {n}</h1><p>{'Border officers seized smuggling boats. ' * 20} Item {n}.</p></article></main></body></html>",
        )
    urls = [site.url(f"/bulk/{n}.html") for n in range(30)]
    env = {**os.environ, "EVIDENCE_CONFIG": str(config), "EVIDENCE_DB": str(isolated_db)}
    proc = subprocess.Popen([EXE, "fetch", *urls], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if site.hits.total() >= 12:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    db = sqlite3.connect(isolated_db)
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    done = db.execute("select count(*) from documents").fetchone()[0]
    assert 0 < done < 30
    site.reset_counts()
    rerun = subprocess.run([EXE, "fetch", *urls], env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert f"new {30 - done}, changed 0, unchanged {done}" in rerun.stdout
    assert db.execute("select count(*) from documents").fetchone()[0] == 30
    assert db.execute("select count(*) from document_versions").fetchone()[0] == 30
