"""evidence classify / calls / docs show on documents fetched from the local newsroom, baseline backend."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from classifier.cli import app

from . import newsroom
from .newsroom import Newsroom

runner = CliRunner()


def test_classify_fetched_documents_with_the_default_learned_model(tmp_path, monkeypatch, isolated_db):
    config = tmp_path / "evidence.toml"
    config.write_text(
        '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\n', encoding="utf-8"
    )
    monkeypatch.setenv("EVIDENCE_CONFIG", str(config))
    with Newsroom() as site:
        pages = [site.url(newsroom.CANADA_PATH), site.url(newsroom.GERMANY_PATH)]
        assert runner.invoke(app, ["fetch", *pages]).exit_code == 0
    result = runner.invoke(app, ["classify", "--commitment", "19"])
    assert result.exit_code == 0, result.output
    assert "backend: learned" in result.output and "no model endpoint configured" in result.output
    assert "classified 2, cached 0, failed 0" in result.output
    again = runner.invoke(app, ["classify", "--commitment", "19"])
    assert "classified 0, cached 2" in again.output and "0 calls" in again.output
    db = sqlite3.connect(isolated_db)
    rows = db.execute("select relevant, dimensions, flags, prompt_sha, model from classifications").fetchall()
    assert len(rows) == 2 and all(
        r[3].startswith("sha256:") and r[4].startswith("learned-tfidf-lr@") for r in rows
    )
    assert all(
        json.loads(r[1]).keys() == {"prevent", "counter", "dismantle_networks", "disrupt_business_models"}
        for r in rows
    )
    calls = runner.invoke(app, ["calls", "list"]).output
    assert calls.count("learned/learned-tfidf-lr@") == 2
    call_id = calls.split()[0]
    shown = runner.invoke(app, ["calls", "show", call_id]).output
    assert "--- request ---" in shown and "--- parsed ---" in shown and '"dimensions"' in shown
    doc = runner.invoke(app, ["docs", "show", "1", "--no-text"]).output
    assert "commitment 19 (learned/" in doc
    # the baseline stays selectable, and says so
    baseline = runner.invoke(app, ["classify", "--commitment", "19", "--backend", "baseline"])
    assert baseline.exit_code == 0, baseline.output
    assert "backend: baseline" in baseline.output and "classified 2, cached 0" in baseline.output


def test_classify_with_nothing_to_classify_says_so():
    result = runner.invoke(app, ["classify"])
    assert result.exit_code == 1 and "no documents to classify" in result.output


def test_openai_backend_without_a_key_is_a_clear_error(tmp_path, monkeypatch):
    config = tmp_path / "evidence.toml"
    config.write_text(
        '[llm]\nbackend = "openai"\napi_key_env = "EVIDENCE_TEST_MISSING_KEY"\n', encoding="utf-8"
    )
    monkeypatch.setenv("EVIDENCE_CONFIG", str(config))
    monkeypatch.delenv("EVIDENCE_TEST_MISSING_KEY", raising=False)
    result = runner.invoke(app, ["classify"])
    assert result.exit_code == 1
    assert "needs an API key in $EVIDENCE_TEST_MISSING_KEY" in result.output


def test_environment_overrides_the_llm_configuration(tmp_path, monkeypatch):
    from classifier.config import load_config

    config = tmp_path / "evidence.toml"
    config.write_text('[llm]\nbackend = "baseline"\nmodel = "from-file"\n', encoding="utf-8")
    monkeypatch.setenv("EVIDENCE_LLM_BACKEND", "openai")
    monkeypatch.setenv("EVIDENCE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("EVIDENCE_LLM_MODEL", "from-env")
    llm = load_config(config).llm
    assert (llm.backend, llm.base_url, llm.model) == ("openai", "http://127.0.0.1:9/v1", "from-env")
