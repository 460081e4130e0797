"""A review database and a running web server, for the web interface's tests.

``build_review_db(path)`` fills a real database the way production does: release pages
(some carrying script tags, event handlers and ``javascript:`` links as text) are served by
the local newsroom and fetched, classified through the openai backend against the
OpenAI-compatible STUB endpoint (tests/llm_stub.py: a stub, not a model, whose answers quote
the pages so the quotes are grounded), and put in the queue. Two accounts: ``ana`` (analyst)
and ``rita`` (reader), password ``PASSWORD``.

``WebServer(db_path)`` runs ``evidence serve``'s application with uvicorn on a free port of
127.0.0.1 in a thread: real HTTP.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import httpx

from classifier import crawl, review, users
from classifier.classify import Classifier, document_items
from classifier.config import Config, LLMConfig
from classifier.rubric import rubrics_for
from classifier.store import open_db

from .conftest import fetch_config
from .llm_stub import OpenAIStub
from .newsroom import Newsroom

PASSWORD = "correct horse battery"
KEY = "sk-test-NOT-A-REAL-KEY-0000"

SCRIPT = "<script>document.title='PWNED';window.__pwned=1</script>"
HANDLER = '<img src=x onerror="window.__pwned=2">'
JS_LINK = "javascript:window.__pwned=3"
HOSTILE_SENTENCE = f"The ministry quoted {SCRIPT} and {HANDLER} and a link {JS_LINK} in its statement."

ARREST = "Police officers of the coastal task force arrested members of a migrant smuggling ring."


def release(n: int, hostile: bool = False) -> str:
    """A release page; ``hostile`` puts markup in the text (escaped in the HTML, so it is text)."""
    import html

    extra = f"<p>{html.escape(HOSTILE_SENTENCE)}</p>" if hostile else ""
    title = html.escape(f"Release {n} {SCRIPT}") if hostile else f"Release {n}: task force arrests"
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta property="article:published_time" content="2024-10-{n:02d}T09:00:00Z"></head>
<body><main><article><h1>{title}</h1>
<p>OTTAWA, October {n}, 2024 — {ARREST} The operation, file {n * 7919 % 10007}, followed eleven months
of joint investigation with partner agencies across the region.</p>
<p>Officers seized boats, vehicles and forged travel documents worth {n + 2} hundred thousand dollars,
and prosecutors have charged the suspects with aggravated migrant smuggling.</p>{extra}
<p>The minister said the government will keep working with international partners to protect
vulnerable migrants and bring smugglers to justice.</p>
</article></main></body></html>"""


def answer(rubric, hostile: bool) -> dict:
    summary = "On 5 October 2024, Canada's coastal task force arrested members of a smuggling ring."
    quotes = [ARREST]
    if hostile:
        summary += " " + SCRIPT
        quotes = [ARREST, HOSTILE_SENTENCE]
    return {
        "relevant": True,
        "members": ["Canada"],
        "action_date": "2024-10-05",
        "summary": summary,
        "confidence": 0.7,
        "outside_period": False,
        "exclusions": [],
        "dimensions": {
            d.id: (
                {
                    "label": "strong",
                    "rationale": "arrests by the task force" + (f" {HANDLER}" if hostile else ""),
                    "quotes": quotes,
                }
                if k == 0
                else {"label": "none", "rationale": "not addressed", "quotes": []}
            )
            for k, d in enumerate(rubric.dimensions)
        },
    }


def build_review_db(path: Path, documents: int = 4) -> None:
    """Fetch ``documents`` releases (the last one hostile), classify them, fill the queue, add users."""
    os.environ["EVIDENCE_WEB_TEST_KEY"] = KEY
    db = open_db(path)
    with Newsroom() as site, OpenAIStub() as stub:
        urls = []
        for n in range(1, documents + 1):
            site.set_page(f"/web/{n}.html", release(n, hostile=n == documents))
            urls.append(site.url(f"/web/{n}.html"))
        targets, _ = crawl.make_targets(urls)
        asyncio.run(crawl.fetch_targets(db, targets, Config(fetch=fetch_config())))
        config = Config(
            llm=LLMConfig(
                backend="openai",
                base_url=stub.base_url,
                model="stub-model",
                api_key_env="EVIDENCE_WEB_TEST_KEY",
                timeout=5,
                prefilter=0,
            )
        )
        for hostile in (False, True):
            for rubric in rubrics_for():
                stub.answer_for(f"Classification{rubric.number}", answer(rubric, hostile))
            items = [i for i in document_items(db, rubrics_for()) if (HOSTILE_SENTENCE in i.text) == hostile]
            asyncio.run(Classifier(db, config).run(items))
    review.fill(db)
    users.add_user(db, "ana", PASSWORD, "analyst")
    users.add_user(db, "ben", PASSWORD, "analyst")
    users.add_user(db, "rita", PASSWORD, "reader")
    db.conn.close()


def client_from(server: WebServer, address: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client of ``server`` whose connections leave from ``address`` (a loopback address)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=10, transport=transport)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """The web application served by uvicorn in a thread of this process, configured as `evidence serve` is.

    Clients can connect from any loopback address (127.0.0.2, ...: see :func:`client_from`),
    which the server sees as the peer; ``forwarded_allow_ips`` as `--forwarded-allow-ips`.
    """

    def __init__(self, db_path: Path, *, forwarded_allow_ips: str | None = None, **app_options):
        import uvicorn

        from classifier.web import create_app, server_config

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(db_path, **app_options)
        config = server_config(app, "127.0.0.1", self.port, forwarded_allow_ips=forwarded_allow_ips)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
