"""Benchmark: classification throughput against the local OpenAI-compatible STUB server.

The stub (tests/llm_stub.py) is not a model: it answers every request with the same valid
tool call after a fixed latency, so what is measured is the classifier's own machinery
(rendering, openai + instructor, validation, grounding, the cache, the database) and how
well it keeps ``concurrency`` requests in flight. Then:
  1. N generated documents (each unique) x commitment 19 through the openai backend:
     wall time and its ratio to the ideal N x latency / concurrency (aim: <= 1.1), and the
     client's own CPU time per document (the part of the ratio that is the client's);
  2. a second run over the same documents: calls made (must be 0: all cached) and time;
  3. prompt tokens per document, from the stub's usage;
  4. the embedded baseline backend on 50 of the documents: documents per second, after a
     separately reported warm-up (loading the embedding model and embedding the rubric).

The stub runs in its own process (as the page server of fetch_extract.py does), so it does
not compete with the classifier for this interpreter's lock; ``--in-process`` runs it in a
thread of this process instead, to see what that costs.

    python -m bench.classify_stub [--docs 500] [--latency 0.2] [--concurrency 8] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path

import openai

from classifier.classify import Classifier, text_item
from classifier.config import Config, LLMConfig, Price
from classifier.endpoint import OpenAIBackend
from classifier.rubric import rubrics_for
from classifier.store import open_db
from tests.llm_stub import OpenAIStub

ROOT = Path(__file__).resolve().parents[1]

KEY = "sk-bench-NOT-A-REAL-KEY-0000"
CLOSING = "The ministry said that further operations against smuggling networks are planned."

AGENCIES = [
    ("the Canada Border Services Agency", "Canada"),
    ("the Royal Canadian Mounted Police", "Canada"),
    ("the French border police", "France"),
    ("the Gendarmerie nationale", "France"),
    ("the German Federal Police", "Germany"),
    ("the Italian Guardia di Finanza", "Italy"),
    ("the Polizia di Stato", "Italy"),
    ("the Japanese Immigration Services Agency", "Japan"),
    ("the UK National Crime Agency", "United Kingdom"),
    ("the Home Office", "United Kingdom"),
    ("U.S. Customs and Border Protection", "United States"),
    ("Homeland Security Investigations", "United States"),
    ("Europol", "European Union"),
    ("Frontex", "European Union"),
]
ACTIONS = [
    "arrested {n} suspected members of a migrant smuggling network",
    "dismantled a smuggling ring that moved {n} people across the border in lorries",
    "seized {n} small boats and engines stored for channel crossings",
    "froze {n} bank accounts used to launder the proceeds of people smuggling",
    "charged {n} people with facilitating irregular migration",
    "intercepted {n} forged passports at the border crossing",
    "trained {n} officers to detect trafficking victims at ports of entry",
    "signed a cooperation agreement with {n} countries of transit",
    "rescued {n} migrants abandoned by smugglers at sea",
    "took down {n} social media accounts advertising illegal crossings",
]
PLACES = ["Calais", "Lampedusa", "Dover", "Rotterdam", "Marseille", "Bari", "Hamburg", "Windsor",
          "El Paso", "Narita airport", "the Brenner Pass", "the Western Balkans route"]  # fmt: skip
EXTRAS = [
    "The investigation lasted {m} months and involved officers from {k} countries.",
    "Prosecutors say the network charged each migrant up to {p} euros.",
    "The suspects face up to {m} years in prison if convicted.",
    "Officers also recovered {p} euros in cash and {k} vehicles.",
    "The operation was coordinated with partners in {k} other countries.",
    "A spokesperson said {k} further suspects are being sought.",
]
MONTHS = ["July", "August", "September", "October", "November", "December", "January", "February"]


def documents(count: int, seed: int = 19) -> list[str]:
    """``count`` short press releases about border and smuggling actions, each unique."""
    rng = random.Random(seed)
    docs = []
    for i in range(count):
        agency, _ = rng.choice(AGENCIES)
        year = 2024 if rng.random() < 0.6 else 2025
        month = rng.choice(MONTHS[:6] if year == 2024 else MONTHS[6:])
        lead = f"{rng.choice(PLACES).upper()}, {rng.randint(1, 28)} {month} {year} — {agency[0].upper()}{agency[1:]} "
        lead += rng.choice(ACTIONS).format(n=rng.randint(2, 400)) + f" near {rng.choice(PLACES)}."
        extras = rng.sample(EXTRAS, k=rng.randint(1, 3))
        body = " ".join(
            e.format(m=rng.randint(2, 24), k=rng.randint(2, 12), p=rng.randint(2, 90) * 500) for e in extras
        )
        docs.append(f"{lead}\n{body}\nCase reference {i:05d}.\n{CLOSING}\n")
    assert len(set(docs)) == count
    return docs


ANSWER = {
    "relevant": True,
    "members": ["France"],
    "action_date": "2024-10-08",
    "summary": "On 8 October 2024, the police arrested members of a migrant smuggling network.",
    "confidence": 0.8,
    "outside_period": False,
    "exclusions": [],
    "dimensions": {
        "prevent": {"label": "none", "rationale": "no prevention measure", "quotes": []},
        "counter": {"label": "weak", "rationale": "operations announced", "quotes": [CLOSING]},
        "dismantle_networks": {"label": "weak", "rationale": "operations announced", "quotes": [CLOSING]},
        "disrupt_business_models": {"label": "none", "rationale": "nothing on proceeds", "quotes": []},
    },
}


def _serve(latency: float, conn) -> None:
    """The stub in a child process: sends its URL, then answers "stats" until "stop"."""
    with OpenAIStub(latency=latency) as stub:
        stub.answer(ANSWER)
        conn.send(stub.base_url)
        while (command := conn.recv()) != "stop":
            assert command == "stats"
            conn.send((len(stub.requests), stub.max_in_flight))


class StubProcess:
    """The same stub, run in a child process; ``stats()`` -> (requests, max in flight)."""

    def __init__(self, latency: float):
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(latency, child), daemon=True
        )
        self._process.start()
        self.base_url = self._conn.recv()

    def stats(self) -> tuple[int, int]:
        self._conn.send("stats")
        return self._conn.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(timeout=5)


class StubThread:
    """The stub in a thread of this process."""

    def __init__(self, latency: float):
        self._stub = OpenAIStub(latency=latency).start()
        self._stub.answer(ANSWER)
        self.base_url = self._stub.base_url

    def stats(self) -> tuple[int, int]:
        return len(self._stub.requests), self._stub.max_in_flight

    def close(self) -> None:
        self._stub.stop()


def llm_config(base_url: str, concurrency: int) -> LLMConfig:
    return LLMConfig(
        backend="openai",
        base_url=base_url,
        model="stub-model",
        timeout=30.0,
        concurrency=concurrency,
        prices={"stub-model": Price(input=0.15, output=0.60)},
        prefilter=0,  # the client's overhead per call: every document is sent
    )


async def openai_run(db, texts: list[str], config: Config) -> Classifier:
    rubric = rubrics_for(19)[0]
    http = openai.DefaultAsyncHttpxClient()
    try:
        backend = OpenAIBackend(config.llm, api_key=KEY, http_client=http)
        classifier = Classifier(db, config, backend_object=backend)
        await classifier.run([text_item(t, rubric) for t in texts])
        return classifier
    finally:
        await http.aclose()


async def baseline_run(db, texts: list[str]) -> Classifier:
    rubric = rubrics_for(19)[0]
    classifier = Classifier(db, Config(), backend="baseline")
    await classifier.run([text_item(t, rubric) for t in texts])
    return classifier


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the stub waits per answer")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--baseline-docs", type=int, default=50)
    parser.add_argument("--in-process", action="store_true", help="run the stub in a thread of this process")
    args = parser.parse_args(argv)

    texts = documents(args.docs + 1)
    warm_up_text, texts = texts[-1], texts[:-1]
    print(f"{args.docs} documents, {sum(map(len, texts)) / len(texts):.0f} characters on average; "
          f"stub latency {args.latency:g} s, concurrency {args.concurrency}, {os.cpu_count()} CPUs")  # fmt: skip

    stub = (StubThread if args.in_process else StubProcess)(args.latency)
    with contextlib.closing(stub), tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(tmp) / "bench.db")
        config = Config(llm=llm_config(stub.base_url, args.concurrency))

        started, cpu = time.monotonic(), time.process_time()
        first = asyncio.run(openai_run(db, texts, config))
        wall, cpu = time.monotonic() - started, time.process_time() - cpu
        requests, in_flight = stub.stats()
        ideal = args.docs * args.latency / args.concurrency
        s = first.summary
        where = "a thread of this process" if args.in_process else "its own process"
        print(f"\n1. openai backend against the stub (in {where})")
        print(f"   classified {s.classified}, failed {s.failures}, calls {s.calls}, requests {requests}")
        print(f"   wall {wall:.2f} s, ideal {ideal:.2f} s ({args.docs} x {args.latency:g} s / {args.concurrency}),"
              f" ratio {wall / ideal if ideal else float('inf'):.2f}; {args.docs / wall:.1f} documents/s;"
              f" max in flight {in_flight}")  # fmt: skip
        # the client's own time (this process; the stub's is its own): what the ratio is made of
        print(f"   client CPU {cpu * 1000 / args.docs:.1f} ms per document "
              f"({cpu:.2f} s in all: a {args.concurrency / args.latency * cpu / args.docs:.0%} share of one core at the ideal pace)")  # fmt: skip
        flags = [r["flags"] for r in db["classifications"].rows]
        print(f"   ungrounded rows: {sum('ungrounded' in f for f in flags)}")

        started = time.monotonic()
        second = asyncio.run(openai_run(db, texts, config))
        again = time.monotonic() - started
        print("\n2. second run over the same documents")
        print(f"   calls {second.summary.calls}, requests {stub.stats()[0] - requests}, "
              f"cached {second.summary.cached}, wall {again:.2f} s")  # fmt: skip

        print("\n3. tokens (from the stub's usage: characters // 4)")
        print(f"   prompt tokens per document {s.tokens_in / max(1, s.calls):.0f}, "
              f"completion tokens per document {s.tokens_out / max(1, s.calls):.0f}, "
              f"cost at $0.15 / $0.60 per million: ${s.cost:.4f} for {s.calls} documents")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        sample = texts[: args.baseline_docs]
        started = time.monotonic()
        asyncio.run(baseline_run(open_db(Path(tmp) / "warm-up.db"), [warm_up_text]))
        db = open_db(Path(tmp) / "bench.db")
        warm = time.monotonic() - started
        started = time.monotonic()
        base = asyncio.run(baseline_run(db, sample))
        wall = time.monotonic() - started
        print("\n4. baseline backend (embedded, this CPU)")
        print(f"   warm-up (load the embedding model, embed the rubric, classify one document): {warm:.2f} s")
        print(f"   {base.summary.classified} documents in {wall:.2f} s: {len(sample) / wall:.1f} documents/s, "
              f"{wall / len(sample) * 1000:.0f} ms each; relevant "
              f"{sum(r['relevant'] for r in db['classifications'].rows if r['status'] == 'ok')}")  # fmt: skip


if __name__ == "__main__":
    main()
