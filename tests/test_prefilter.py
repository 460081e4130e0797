"""The prefilter in front of a model endpoint: what the learned model rules out is not sent.

Pages are fetched over real HTTP: two on-topic releases from the local newsroom, three real
off-topic pages (eval/data/realpages, see its README) from a local file server. The endpoint is
the STUB of tests/llm_stub.py: it answers what the test tells it to, and counts the requests."""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifier import prefilter
from classifier.cli import app

from . import newsroom
from .llm_stub import OpenAIStub
from .localserver import LocalServer
from .newsroom import Newsroom

runner = CliRunner()
REALPAGES = Path(__file__).resolve().parents[1] / "eval" / "data" / "realpages" / "html"
# real pages about a dispute-free topic each: a software library, consumer credit, a football school
OFF_TOPIC = ("github.com.yapapi.html", "smava.de.privatkredit.html", "tine.no.fotballskole.html")
ON_TOPIC = (newsroom.CANADA_PATH, newsroom.G7_PATH)
DIMENSIONS = {d: {"label": "none", "rationale": "no such measure", "quotes": []}
              for d in ("prevent", "counter", "dismantle_networks", "disrupt_business_models")}  # fmt: skip
ANSWER = {"relevant": True, "members": ["Canada"], "action_date": None, "summary": "A release.",
          "confidence": 0.9, "outside_period": False, "exclusions": [], "dimensions": DIMENSIONS}  # fmt: skip


class _Files(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(REALPAGES), **kwargs)

    def log_message(self, *args) -> None:  # quiet
        return None


@pytest.fixture
def world(tmp_path, monkeypatch, isolated_db):
    files = LocalServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    with Newsroom() as site, OpenAIStub() as stub:
        stub.answer(ANSWER)
        config = tmp_path / "evidence.toml"
        config.write_text(
            '[fetch]\ncontact = "tests@example.org"\nallow_private = true\nper_host_delay = 0\n'
            f'[llm]\nbackend = "openai"\nbase_url = "{stub.base_url}"\nmodel = "stub-model"\n'
            "max_retries = 0\nrate_limit_retries = 0\nbackoff = 0.01\n"
            '[llm.prices."stub-model"]\ninput = 1.0\noutput = 2.0\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("EVIDENCE_CONFIG", str(config))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-stub-0000")
        port = files.server_address[1]
        urls = [site.url(p) for p in ON_TOPIC] + [f"http://127.0.0.1:{port}/{name}" for name in OFF_TOPIC]
        fetched = runner.invoke(app, ["fetch", *urls])
        assert fetched.exit_code == 0, fetched.output
        yield stub, sqlite3.connect(isolated_db)
    files.shutdown()
    files.server_close()


def chat_requests(stub: OpenAIStub) -> list[str]:
    """The text of each chat request's user message (GET /models is not one)."""
    out = []
    for r in stub.requests:
        body = r["body"] if isinstance(r["body"], dict) else json.loads(r["body"] or "{}")
        if "messages" in body:
            out.append(" ".join(str(m.get("content")) for m in body["messages"] if m.get("role") == "user"))
    return out


def test_off_topic_pages_are_not_sent_and_on_topic_ones_are(world):
    stub, db = world
    result = runner.invoke(app, ["classify", "--commitment", "19"])
    assert result.exit_code == 0, result.output
    assert (
        "classified 2, cached 0, failed 0, skipped 0, prefiltered 3 (learned model, P < 0.05; not sent)"
        in (result.output)
    )
    assert "2 calls" in result.output
    sent = chat_requests(stub)
    assert len(sent) == 2
    assert all("Canada" in text or "G7" in text for text in sent)
    rows = db.execute(
        "select relevant, call_id, prefilter_model, prefilter_probability, confidence, dimensions "
        "from classifications where prefilter_model is not null"
    ).fetchall()
    assert len(rows) == 3
    for relevant, call_id, model, probability, confidence, dims in rows:
        assert relevant == 0 and call_id is None and model.startswith("learned-tfidf-lr@")
        assert 0 <= probability < 0.05 and confidence == round(1 - probability, 3)
        assert all("ruled out before any model call" in d["rationale"] for d in json.loads(dims).values())
    # not a model call: the call log has the two that were sent, and the queue none of the three
    assert db.execute("select count(*) from llm_calls").fetchone()[0] == 2
    assert db.execute("select count(*) from queue_items").fetchone()[0] == 2

    again = runner.invoke(app, ["classify", "--commitment", "19"])
    assert "classified 0, cached 5" in again.output and "prefiltered 0" in again.output
    assert len(chat_requests(stub)) == 2


def test_a_retrain_or_another_threshold_decides_ruled_out_items_again(world):
    stub, db = world
    assert runner.invoke(app, ["classify", "--commitment", "19"]).exit_code == 0
    # a new version of the learned model (what `evidence learn` stores after new decisions; the same
    # model under a new version here, so its verdicts are the same): the three are judged again
    row = db.execute("select * from learned_models where commitment = 19 order by id desc limit 1").fetchone()
    columns = [c[1] for c in db.execute("pragma table_info(learned_models)")]
    new = dict(zip(columns, row, strict=True)) | {
        "id": None,
        "version": "sha256:" + "0" * 64,
        "model": "learned-tfidf-lr@" + "0" * 16,
    }
    db.execute(
        f"insert into learned_models ({', '.join(new)}) values ({', '.join('?' * len(new))})",
        list(new.values()),
    )
    db.commit()
    retrained = runner.invoke(app, ["classify", "--commitment", "19"])
    assert "classified 0, cached 2, failed 0, skipped 0, prefiltered 3" in retrained.output, retrained.output
    models = {
        r[0]
        for r in db.execute("select prefilter_model from classifications where prefilter_model is not null")
    }
    assert models == {"learned-tfidf-lr@" + "0" * 16}
    assert len(chat_requests(stub)) == 2
    # a threshold of 0 (off): the three are sent now, and replace their ruled-out rows
    lowered = runner.invoke(app, ["classify", "--commitment", "19", "--prefilter", "0"])
    assert "classified 3, cached 2, failed 0, skipped 0\n" in lowered.output, lowered.output
    assert len(chat_requests(stub)) == 5
    assert db.execute("select count(*) from classifications").fetchone()[0] == 5
    assert (
        db.execute("select count(*) from classifications where prefilter_model is not null").fetchone()[0]
        == 0
    )


def test_no_prefilter_sends_everything(world):
    stub, _ = world
    result = runner.invoke(app, ["classify", "--commitment", "19", "--no-prefilter"])
    assert result.exit_code == 0, result.output
    assert "classified 5, cached 0" in result.output and "prefiltered" not in result.output
    assert len(chat_requests(stub)) == 5


def test_a_threshold_outside_0_to_1_is_refused(world):
    del world  # a configured endpoint and stored documents
    result = runner.invoke(app, ["classify", "--prefilter", "1.5"])
    assert result.exit_code == 2 and "--prefilter" in result.output


def test_figures_count_positives_ruled_out_and_calls_saved():
    probabilities = [0.01, 0.2, 0.9, 0.03, 0.001, 0.5]
    truth = [True, True, True, False, False, False]
    f = prefilter.figures(probabilities, truth, 0.05)
    assert f["ruled_out"] == 3 and f["calls_saved_share"] == 0.5
    assert f["positives"] == 3 and f["positives_ruled_out"] == 1 and f["recall_lost"] == round(1 / 3, 4)
    assert prefilter.figures(probabilities, truth, 0.0)["ruled_out"] == 0
    assert prefilter.figures([], [], 0.05)["recall_lost"] is None


def test_cost_per_accepted_action_in_queue_stats(world, monkeypatch):
    _, db = world
    assert runner.invoke(app, ["classify", "--commitment", "19"]).exit_code == 0
    before = runner.invoke(app, ["queue", "stats"]).output
    assert "2 model calls, 0 accepted: n/a (nothing accepted yet) per accepted action" in before
    item = db.execute("select id from queue_items order by id limit 1").fetchone()[0]
    monkeypatch.setenv("EVIDENCE_ANALYST", "ana")
    assert runner.invoke(app, ["queue", "accept", str(item), "--force"]).exit_code == 0
    cost = db.execute("select sum(cost) from llm_calls").fetchone()[0]
    assert cost > 0  # the stub's usage at the configured price
    after = runner.invoke(app, ["queue", "stats"]).output
    assert f"cost: ${cost:.4f} for 2 model calls, 1 accepted: ${cost:.4f} per accepted action" in after


def test_eval_run_on_the_stream_reports_recall_lost_and_calls_saved(tmp_path):
    """`eval run --input stream` with the openai backend (the STUB, saying every item is relevant):
    the prefilter's items are not sent, and the figures add up to what was sent and predicted."""
    from classifier import evaluate, gold
    from classifier.classify import Classifier
    from classifier.config import Config, LLMConfig, Price
    from classifier.endpoint import OpenAIBackend
    from classifier.evaluation_report import side_by_side
    from classifier.rubric import rubrics_for
    from classifier.store import open_db

    from .conftest import REPORTS

    db = open_db(tmp_path / "eval.db")
    gold.import_paths(db, [REPORTS])
    with OpenAIStub() as stub:
        stub.answer(ANSWER)
        llm = LLMConfig(backend="openai", base_url=stub.base_url, model="stub-model", max_retries=0,
                        rate_limit_retries=0, backoff=0.01, prices={"stub-model": Price(input=1.0, output=2.0)})  # fmt: skip
        cfg = Config(llm=llm)
        classifier = Classifier(db, cfg, backend_object=OpenAIBackend(cfg.llm, api_key="sk-stub-0000"))
        record = evaluate.run_eval(
            db, cfg, rubrics_for(), mode="stream", commitment=19, limit=20, classifier=classifier
        )
        sent = len(chat_requests(stub))
    m = record["metrics"]
    pf = m["prefilter"]
    assert pf["items"] == 20 and pf["ruled_out"] > 0 and sent == 20 - pf["ruled_out"] == m["run"]["calls"]
    assert pf["calls_saved_share"] == round(pf["ruled_out"] / 20, 4)
    predictions = evaluate.run_predictions(db, record["id"])
    kinds = {r["item_id"]: r["kind"] for r in db["eval_predictions"].rows_where("run_id = ?", [record["id"]])}
    positives = [i for i, k in kinds.items() if k == "positive"]
    missed = [i for i in positives if not predictions[i]["relevant"]]  # the stub says relevant to all it sees
    assert pf["positives"] == len(positives) and pf["positives_ruled_out"] == len(missed)
    assert pf["recall_lost"] == (round(len(missed) / len(positives), 4) if positives else None)
    relevant = sum(1 for p in predictions.values() if p["relevant"])
    assert relevant == sent and m["run"]["relevant_predictions"] == relevant
    assert m["run"]["cost_per_relevant_prediction"] == round(m["run"]["cost"] / relevant, 6)
    table = side_by_side([record])
    assert f"ruled out {pf['ruled_out']} of 20 items" in table and "per relevant prediction" in table
    assert "in-sample" in table
