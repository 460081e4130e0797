"""The openai backend under a server that cannot keep up, against the local STUB server
(tests/llm_stub.py): timeouts cut the requests in flight and close the abandoned connections,
and requests- and tokens-per-minute limits hold across concurrent calls."""

from __future__ import annotations

import asyncio
import logging

import pytest

from classifier.endpoint import _Concurrency, _duration

from .llm_stub import OpenAIStub, prompt_tokens
from .test_llm_faults import VALID, call, classify_run, document


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        server.answer(VALID)
        yield server


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_timeouts_halve_the_requests_in_flight_and_close_their_connections(stub):
    stub.latency = 0.1
    stub.script([{"sleep": 5.0}] * 8)  # the first eight requests: longer than the timeout
    logger, lines = logging.getLogger("evidence.endpoint"), Lines()
    logger.addHandler(lines)
    level, logger.level = logger.level, logging.INFO
    try:
        classifier, _, _ = classify_run(
            stub, [document(n) for n in range(16)], concurrency=8, timeout=0.5, rate_limit_retries=2
        )
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert classifier.summary.classified == 16
    requests = stub.requests
    slow, rest = requests[:8], requests[8:]
    # the client hung up on every abandoned request, and the server noticed within moments
    assert all(r.get("hung_up") for r in slow)
    assert all(r["end"] - r["at"] < 1.5 for r in slow)
    # one cut for the eight timeouts of one moment, logged once
    cuts = [line for line in lines.lines if line.startswith("timeouts:")]
    assert cuts == ["timeouts: concurrency 8 → 4"]
    # after the cut, four requests at once: a fifth only once one of them is answered; then
    # one more after each four, five, six answers in time (never back to eight here)
    answered = sorted((r for r in rest if not r.get("hung_up")), key=lambda r: r["at"])
    assert len(answered) == 16 and answered[0]["at"] > min(r["at"] for r in slow) + 0.5
    assert answered[4]["at"] >= min(r["end"] for r in answered[:4])
    most = max(sum(1 for o in answered if o["at"] <= r["at"] < o["end"]) for r in answered)
    assert most < 8
    assert stub.open_connections <= 8  # the abandoned connections are gone, not kept alive


def test_concurrency_grows_back_by_one_after_answers():
    async def go():
        slots = _Concurrency(8)
        generation = await slots.acquire()
        await slots.release(generation, timed_out=True)
        assert slots.limit == 4
        generation = await slots.acquire()
        await slots.release(generation, timed_out=True)  # a later timeout: another cut
        assert slots.limit == 2
        for _ in range(2):
            generation = await slots.acquire()
            await slots.release(generation, answered=True)
        assert slots.limit == 3  # grown by one after as many answers as the limit
        for _ in range(3 + 4 + 5 + 6 + 7 + 10):
            generation = await slots.acquire()
            await slots.release(generation, answered=True)
        assert slots.limit == 8  # never past the configured concurrency
        stale = await slots.acquire()
        current = await slots.acquire()
        await slots.release(stale, timed_out=True)
        await slots.release(current, timed_out=True)  # sent before that cut: the same event
        assert slots.limit == 4

    asyncio.run(go())


def most_in_a_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))


def test_requests_per_minute_hold_across_concurrent_calls(stub):
    # rate_window shortens the "minute" to 1 s so that the test is quick; the stub sees a
    # request a moment after the client lets it go (longer on a loaded machine), so its
    # windows are checked at 0.8 s
    classifier, _, _ = classify_run(
        stub, [document(n) for n in range(7)], concurrency=4, rpm=3, rate_window=1.0
    )
    assert classifier.summary.classified == 7
    at = [r["at"] for r in stub.requests]
    assert len(at) == 7
    assert most_in_a_window(at, 0.8) <= 3
    assert max(at) - min(at) >= 1.6  # 7 requests at 3 a second: in three windows


def test_tokens_per_minute_hold_with_the_estimate_corrected_by_usage(stub):
    # each request: ~500 prompt tokens (characters // 4) + max_output_tokens 300 estimated;
    # the stub reports its own count, which replaces the estimate once the answer is in
    call(stub, document(0))
    tokens = prompt_tokens(stub.requests[0]["body"]["messages"]) + 300
    stub.reset()
    classifier, _, _ = classify_run(
        stub,
        [document(n) for n in range(5)],
        concurrency=4,
        max_output_tokens=300,
        tpm=int(tokens * 2.5),
        rate_window=1.0,
    )
    assert classifier.summary.classified == 5
    at = [r["at"] for r in stub.requests]
    assert most_in_a_window(at, 0.8) <= 2  # two requests' tokens fit in a window, never three


def test_the_providers_rate_limit_headers_are_honoured(stub):
    stub.script([{"headers": {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1s"}}])
    classifier, _, _ = classify_run(stub, [document(n) for n in range(2)], concurrency=1)
    assert classifier.summary.classified == 2
    first, second = stub.requests
    assert second["at"] - first["end"] >= 0.8  # held until the reset the provider named


def test_rate_limit_reset_durations_are_read():
    assert [_duration(v) for v in ("20ms", "1s", "6m0s", "1h2m3.5s", "2.5", "soon", None)] == [
        0.02, 1.0, 360.0, 3723.5, 2.5, None, None,
    ]  # fmt: skip
