"""The endpoint backend: any OpenAI-compatible endpoint, through openai + instructor.

OpenAI, vLLM, Ollama, llama.cpp (not Azure, whose client differs): one request shape, instructor's validation re-asks,
our own retries (honouring Retry-After, counted), every reply's size bounded and its body
redacted before anything of it is kept, and a reply that is not a chat completion said so in
one line.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import random
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from .config import ConfigError, LLMConfig
from .dates import retry_after
from .llm import Backend, CallResult, Ordered, one_line, unexpected
from .prompts import RenderedPrompt
from .redaction import redact, redact_all, remember
from .rubric import Rubric

# instructor logs every API error at ERROR level before we retry it ourselves; our call log
# records the outcome, so only its critical messages are worth a reader's attention.
logging.getLogger("instructor").setLevel(logging.CRITICAL)

# A chat completion is a few kilobytes (max_output_tokens bounds it); a body past this bound is
# something else (a proxy's page, a runaway server), and is not read further.
MAX_RESPONSE_BYTES = 1_000_000
# What is kept of an endpoint's reply that is not a chat completion, for `evidence calls show`;
# a little more is read, so that a key across the cut is redacted whole before the cut.
EXCERPT_BYTES = 4096
_OVERLAP = 1024
# Characters per token, for bounding a re-ask to the model's context (an estimate, erring long).
CHARS_PER_TOKEN = 3


# ---------------------------------------------------------------------------
# What came back over HTTP: every reply's type and size, and the start of its body


class ResponseTooLarge(Exception):
    """A reply's body is over :data:`MAX_RESPONSE_BYTES`."""


class ResponseUndecodable(Exception):
    """A reply's body cannot be decompressed as its Content-Encoding says."""


@dataclass
class _Reply:
    status: int
    content_type: str
    declared: int | None  # Content-Length, if any
    ratelimit: dict[str, str] = field(default_factory=dict)  # the x-ratelimit-* headers
    size: int = 0  # body bytes seen so far (after decompression)
    head: bytearray = field(default_factory=bytearray)  # the start of the body

    def take(self, data: bytes) -> None:
        self.size += len(data)
        if len(self.head) < EXCERPT_BYTES + _OVERLAP:
            self.head += data[: EXCERPT_BYTES + _OVERLAP - len(self.head)]
        if self.size > MAX_RESPONSE_BYTES:
            raise ResponseTooLarge(f"its body is over the {_size(MAX_RESPONSE_BYTES)} bound")

    def excerpt(self) -> str:
        """The body's first EXCERPT_BYTES (as text), redacted."""
        text = redact(bytes(self.head).decode("utf-8", "replace")) or ""
        return text[:EXCERPT_BYTES] if len(self.head) > EXCERPT_BYTES else text

    def describe(self) -> str:
        kind = self.content_type or "no content type"
        status = f"HTTP {self.status}, " if self.status != 200 else ""
        if self.declared is not None and self.declared != self.size:
            size = f"{_size(self.declared)} announced"
        elif self.size > MAX_RESPONSE_BYTES:
            size = f"over {_size(MAX_RESPONSE_BYTES)}"
        else:
            size = _size(self.size)
        return f"{status}{kind}, {size}"


# The replies of the classification in progress (a list per call: concurrent calls share a client).
_replies: contextvars.ContextVar[list[_Reply] | None] = contextvars.ContextVar("llm_replies", default=None)
# The exchange of the classification in progress, for the hooks of the one instructor client a
# backend keeps (made once: making it, and instructor's wrapping of the output model, per call
# cost more than the rest of the client together).
_exchange: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar("llm_exchange", default=None)


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    if n < 1_000_000:
        return f"{n / 1000:.3g} KB"
    return f"{n / 1_000_000:.3g} MB"


class _Inflater:
    """Measures a gzip or deflate body as it arrives, a bounded piece at a time."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.started = False
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)

    def feed(self, data: bytes, reply: _Reply) -> None:
        try:
            while data:
                out = self._z.decompress(data, 65536)
                reply.take(out)
                data = self._z.unconsumed_tail
                self.started = True
        except zlib.error as exc:
            if self.encoding == "deflate" and not self.started:
                # "deflate" is sent both zlib-wrapped and raw: try raw once, as clients do
                self.started, self._z = True, zlib.decompressobj(-zlib.MAX_WBITS)
                self.feed(data, reply)
                return
            raise ResponseUndecodable(f"its body is not valid {self.encoding} ({exc})") from None


@cache
def _bounded_body_type() -> type:
    import httpx2

    class BoundedBody(httpx2.AsyncByteStream):
        """A response body that records what arrives and stops past MAX_RESPONSE_BYTES."""

        def __init__(self, inner: Any, reply: _Reply, inflater: _Inflater | None):
            self._inner, self._reply, self._inflater = inner, reply, inflater

        async def __aiter__(self):
            async for chunk in self._inner:
                if self._inflater is not None:
                    self._inflater.feed(chunk, self._reply)
                else:
                    self._reply.take(chunk)
                if self._reply.declared is not None and self._reply.declared > MAX_RESPONSE_BYTES:
                    # announced too large: the first chunk is enough for an excerpt
                    raise ResponseTooLarge(f"its body is over the {_size(MAX_RESPONSE_BYTES)} bound")
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    return BoundedBody


async def _on_request(request: Any) -> None:
    # only what _Inflater can measure; a decompressor we cannot bound is never asked for
    request.headers["Accept-Encoding"] = "gzip, deflate"
    sending = _sending.get()
    if sending is not None:
        sending.at = time.monotonic()  # a rate limit counts from when the request goes out


async def _on_response(response: Any) -> None:
    headers = response.headers
    declared = headers.get("content-length")
    reply = _Reply(
        status=response.status_code,
        content_type=(headers.get("content-type") or "").split(";")[0].strip().lower(),
        declared=int(declared) if declared and declared.strip().isdigit() else None,
        ratelimit={k.lower(): v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")},
    )
    replies = _replies.get()
    if replies is not None:
        replies.append(reply)
    encodings = [e.strip().lower() for e in headers.get_list("content-encoding", split_commas=True)]
    encodings = [e for e in encodings if e and e != "identity"]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "deflate")):
        raise ResponseUndecodable(
            f"its body is compressed with {', '.join(encodings)}, which was not asked for"
        )
    response.stream = _bounded_body_type()(
        response.stream, reply, _Inflater(encodings[0]) if encodings else None
    )


def _http_client(http_client: Any = None) -> Any:
    """The HTTP client for the endpoint (openai's default unless given), recording every reply."""
    import openai

    client = http_client if http_client is not None else openai.DefaultAsyncHttpxClient()
    hooks = client.event_hooks
    if _on_response in hooks.get("response", []):
        return client  # one client shared by several backends: its replies are bounded once
    client.event_hooks = {
        "request": [*hooks.get("request", []), _on_request],
        "response": [*hooks.get("response", []), _on_response],
    }
    return client


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """The exception and its causes and contexts, each once."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _not_a_completion(completion: Any) -> str | None:
    """Why ``completion`` (as openai handed it over) is not a usable chat completion, or None."""
    from openai.types.chat import ChatCompletion

    if isinstance(completion, str):
        return "its body is empty" if not completion.strip() else "its body is not a JSON object"
    if isinstance(completion, list):
        return "JSON of another shape (a list)"
    if not isinstance(completion, ChatCompletion):
        return f"JSON of another shape ({type(completion).__name__})"
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list):
        return "JSON of another shape (no choices)"
    if not choices:
        return "no choices"
    message = getattr(choices[0], "message", None)
    if message is None or isinstance(message, (str, int, float, list, dict)):
        return "JSON of another shape (its first choice has no message)"
    calls = getattr(message, "tool_calls", None)
    if calls is not None and (
        not isinstance(calls, list)
        or any(not isinstance(getattr(c, "function", None), BaseModel) for c in calls)
    ):
        return "JSON of another shape (its tool calls are not a list of function calls)"
    return None


def _count(value: Any) -> int:
    """A token count as the endpoint reported it, or 0 when it is not a count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _dump(completion: Any) -> str | None:
    if isinstance(completion, BaseModel):
        try:
            # warnings=False: pydantic's serializer warnings quote field values on stderr
            return completion.model_dump_json(warnings=False)
        except Exception:  # a constructed (unvalidated) object may not serialise: use the excerpt
            return None
    return None


@dataclass
class _Exchange:
    """What one classification sent and received, across attempts and instructor's re-asks."""

    completions: list[Any] = field(default_factory=list)
    usages: list[Any] = field(default_factory=list)  # copied on arrival: instructor overwrites .usage
    sent: int = 0  # HTTP requests, instructor's own re-sends included
    replies: list[_Reply] = field(default_factory=list)

    def received(self, completion: Any) -> None:
        # runs inside instructor, which turns a handler's exception into a warning on stderr
        # quoting the traceback: nothing here may raise
        self.completions.append(completion)
        usage = getattr(completion, "usage", None) if isinstance(completion, BaseModel) else None
        try:
            self.usages.append(usage.model_copy(deep=True) if isinstance(usage, BaseModel) else None)
        except Exception:
            self.usages.append(None)

    def count_sent(self, *_a: Any, **_k: Any) -> None:
        self.sent += 1

    def excerpt(self) -> str | None:
        return self.replies[-1].excerpt() if self.replies else None


@cache
def _check_models_once() -> None:
    """Make instructor's check that a response model has no async validators run once per
    model rather than seven times per call: it walks every field of every nested model, and
    was the largest part of what the client itself spent per call (instructor 1.17). Only a
    model that passed is remembered (a class's validators do not change); one that fails
    raises every time, as before. Another instructor, without this function, is left alone."""
    try:
        from instructor.v2.core import patch
        from instructor.v2.validation import async_validators
    except ImportError:
        return
    check = getattr(async_validators, "reject_async_validators", None)
    if not callable(check) or getattr(patch, "reject_async_validators", None) is not check:
        return
    original: Callable[[Any], None] = cast(Callable[[Any], None], check)
    passed: set[Any] = set()

    def reject_async_validators(response_model: Any) -> None:
        try:
            if response_model in passed:
                return
        except TypeError:  # unhashable: checked every time
            original(response_model)
            return
        original(response_model)
        passed.add(response_model)

    async_validators.reject_async_validators = reject_async_validators
    patch.reject_async_validators = reject_async_validators


def _on_completion(completion: Any) -> None:
    exchange = _exchange.get()
    if exchange is not None:
        exchange.received(completion)


def _on_kwargs(*_a: Any, **_k: Any) -> None:
    exchange = _exchange.get()
    if exchange is not None:
        exchange.count_sent()


# ---------------------------------------------------------------------------
# How many requests are in flight: fewer after timeouts, more again after answers

log = logging.getLogger("evidence.endpoint")  # with the nightly job's log lines when it runs


class _Concurrency:
    """The requests in flight, at most ``limit``: halved when a request times out (a server
    that cannot keep up answers none of them in time), grown back by one after ``limit``
    answers in a row (additive increase, multiplicative decrease), never above ``ceiling``.
    Each change is logged once, e.g. "timeouts: concurrency 8 → 4"."""

    def __init__(self, ceiling: int):
        self.ceiling = self.limit = ceiling
        self.in_flight = 0
        self._answers = 0
        self._generation = 0  # bumped on every cut: timeouts of requests sent before it are one event
        self._changed = asyncio.Condition()

    async def acquire(self) -> int:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            return self._generation

    async def release(self, generation: int, *, timed_out: bool = False, answered: bool = False) -> None:
        async with self._changed:
            self.in_flight -= 1
            if timed_out:
                self._answers = 0
                if generation == self._generation and self.limit > 1:
                    before, self.limit = self.limit, max(1, self.limit // 2)
                    self._generation += 1
                    log.warning("timeouts: concurrency %d → %d", before, self.limit)
            elif answered and self.limit < self.ceiling:
                self._answers += 1
                if self._answers >= self.limit:
                    self._answers = 0
                    self.limit += 1
                    log.info("answers in time: concurrency %d → %d", self.limit - 1, self.limit)
            self._changed.notify_all()


# ---------------------------------------------------------------------------
# Requests and tokens per minute, shared by the calls in flight


def _duration(value: str | None) -> float | None:
    """A rate-limit reset as seconds: "20ms", "1s", "6m0s", "1h2m3.5s" or a plain number."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    match = re.fullmatch(
        r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?", value
    )
    if not match or not any(match.groups()):
        return None
    h, m, sec, ms = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + sec + ms / 1000


@dataclass
class _Sent:
    at: float
    tokens: int


# the request being sent, whose time _on_request sets when it goes out (after any wait for a
# connection), so that the rate limit's window is the provider's
_sending: contextvars.ContextVar[_Sent | None] = contextvars.ContextVar("llm_sending", default=None)


class _RateLimit:
    """At most ``rpm`` requests and ``tpm`` tokens in any ``window`` seconds (a sliding window
    over the requests sent), for every call of one backend. A request's tokens are estimated
    before it is sent (its prompt at ~4 characters a token, plus max_output_tokens) and
    corrected by the usage the endpoint reports. A provider's own count wins when it says it
    is spent: x-ratelimit-remaining-requests or -tokens of 0 holds every request until its
    x-ratelimit-reset-* time."""

    def __init__(self, rpm: int | None, tpm: int | None, window: float):
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self._sent: deque[_Sent] = deque()
        self._until = 0.0  # the provider said to wait until then
        self._lock = asyncio.Lock()  # first come, first sent

    def _wait(self, now: float, tokens: int) -> float:
        while self._sent and self._sent[0].at <= now - self.window:
            self._sent.popleft()
        waits = [self._until - now]
        if self.rpm is not None and len(self._sent) >= self.rpm:
            waits.append(self._sent[len(self._sent) - self.rpm].at + self.window - now)
        if self.tpm is not None and self._sent:
            # the oldest requests leave the window until this one fits (alone, it is always let go)
            used = sum(s.tokens for s in self._sent)
            for s in self._sent:
                if used + tokens <= self.tpm:
                    break
                used -= s.tokens
                waits.append(s.at + self.window - now)
        return max(waits)

    async def acquire(self, tokens: int) -> _Sent:
        async with self._lock:
            while (wait := self._wait(time.monotonic(), tokens)) > 0:
                await asyncio.sleep(wait)
            sent = _Sent(time.monotonic(), tokens)
            self._sent.append(sent)
            return sent

    def observe(self, sent: _Sent, tokens: int | None, headers: dict[str, str]) -> None:
        """After the reply: the request's actual tokens, and what the provider says is left."""
        if tokens is not None:
            sent.tokens = tokens
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}", "").strip()
            reset = _duration(headers.get(f"x-ratelimit-reset-{kind}"))
            if remaining.isdigit() and int(remaining) == 0 and reset is not None:
                until = time.monotonic() + min(reset, self.window)
                if until > self._until:
                    self._until = until
                    log.info(
                        "the endpoint's %s limit is reached: waiting %.1f s", kind, until - time.monotonic()
                    )


# ---------------------------------------------------------------------------
# The backend


class OpenAIBackend(Backend):
    """openai + instructor against an OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp)."""

    name = "openai"
    prefiltered = True

    @classmethod
    def from_config(cls, config: LLMConfig, **kwargs: Any) -> OpenAIBackend:
        """``kwargs``: ``api_key`` and ``http_client``, as :meth:`__init__` takes them."""
        return cls(config, **kwargs)

    def __init__(self, config: LLMConfig, *, api_key: str | None = None, http_client: Any = None):
        import instructor
        from openai import AsyncOpenAI

        key = api_key if api_key is not None else os.environ.get(config.api_key_env)
        if not key:
            raise ConfigError(
                f"the openai backend needs an API key in ${config.api_key_env} "
                "(set [llm] api_key_env to name another variable)"
            )
        modes = {
            "tools": instructor.Mode.TOOLS,
            "json": instructor.Mode.JSON,
            "json_schema": instructor.Mode.JSON_SCHEMA,
            "md_json": instructor.Mode.MD_JSON,
        }
        if config.mode not in modes:
            raise ConfigError(f"[llm] mode must be one of {', '.join(modes)}, not {config.mode!r}")
        self.config = config
        self.model = config.model
        self._mode = modes[config.mode]
        # An endpoint or proxy that echoes the key (some 401 bodies do) must not get it into our
        # records, logs or terminal: every string read from the endpoint goes through redact().
        remember(key)
        # max_retries=0: retries are ours (they honour Retry-After and are counted).
        self._openai = AsyncOpenAI(
            api_key=key,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout,
            http_client=_http_client(http_client),
        )
        self._concurrency: _Concurrency | None = None  # made in the event loop that uses it
        self._rate = _RateLimit(config.rpm, config.tpm, config.rate_window)
        self._worked = False  # whether any request got an answer: until then, faults are suspect
        self._price, self.price_source = config.price_of(self.model)
        self._preflight: str | bool | None = False  # not yet checked
        _check_models_once()
        self._client = instructor.from_openai(self._openai, mode=self._mode)
        self._client.on("completion:response", _on_completion)
        self._client.on("completion:kwargs", _on_kwargs)
        self._schemas: dict[type[BaseModel], type[BaseModel]] = {}

    def _schema(self, output_model: type[BaseModel]) -> type[BaseModel]:
        """``output_model`` as instructor wraps it, wrapped once: instructor wraps a plain model
        anew on every call, a new class each time, so its schema cache never hits."""
        if output_model not in self._schemas:
            from instructor.v2.core.function_calls import response_schema

            self._schemas[output_model] = response_schema(output_model)
        return self._schemas[output_model]

    def price(self, tokens_in: int, tokens_out: int, cached: int) -> float:
        price = self._price
        if price is None:
            return 0.0
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        return ((tokens_in - cached) * price.input + cached * cached_rate + tokens_out * price.output) / 1e6

    def priced(self) -> bool:
        return self._price is not None

    async def preflight(self) -> str | None:
        """Before a run spends anything: the endpoint answers ``GET /models`` and lists the
        configured model (when it lists any). Checked once per backend."""
        if self._preflight is False:
            report = await check(self, structured=False)
            self._preflight = report.problem
            if report.problem:
                self.unusable = report.problem
        return self._preflight if isinstance(self._preflight, str) else None

    def check_now(self) -> str | None:
        if self._preflight is False:
            import openai

            async def go() -> CheckReport:
                http = openai.DefaultAsyncHttpxClient()
                try:
                    probe = OpenAIBackend(self.config, api_key=self._openai.api_key, http_client=http)
                    return await check(probe, structured=False)
                finally:
                    await http.aclose()

            problem = asyncio.run(go()).problem
            self._preflight = problem
            if problem:
                self.unusable = problem
        return self._preflight if isinstance(self._preflight, str) else None

    def order(self, items: Sequence[Ordered]) -> list[Ordered]:
        # Items of one rubric share the static prompt prefix: together, the provider caches it.
        return sorted(items, key=lambda i: i.rubric.number)

    async def classify(
        self,
        prompt: RenderedPrompt,
        output_model: type[BaseModel],
        rubric: Rubric,
        document: str,
        *,
        published: str | None = None,
    ) -> CallResult:
        result = CallResult(outcome="network-error", request=self.request_record(prompt, output_model))
        exchange = _Exchange()
        token = _replies.set(exchange.replies)
        current = _exchange.set(exchange)
        started = time.monotonic()
        try:
            await self._attempts(prompt, output_model, result, exchange)
        except Exception as exc:  # the last resort: one item's failure, never the whole run's
            result.outcome, result.output, result.error = "client-error", None, unexpected(exc)
            result.raw_response = _dump(exchange.completions[-1]) if exchange.completions else None
        finally:
            _replies.reset(token)
            _exchange.reset(current)
        result.latency = time.monotonic() - started
        for usage in exchange.usages:
            if usage is None:
                continue
            result.tokens_in += _count(getattr(usage, "prompt_tokens", 0))
            result.tokens_out += _count(getattr(usage, "completion_tokens", 0))
            details = getattr(usage, "prompt_tokens_details", None)
            result.cached_tokens += _count(getattr(details, "cached_tokens", 0))
        result.retries = max(0, exchange.sent - 1)
        result.cost = self.price(result.tokens_in, result.tokens_out, result.cached_tokens)
        result.error = redact(result.error)
        result.raw_response = redact(result.raw_response)
        result.output = redact_all(result.output)
        return result

    def request_record(self, prompt: RenderedPrompt, output_model: type[BaseModel]) -> dict[str, Any]:
        """The request as the call log keeps it: messages and parameters, never the key."""
        return {
            "model": self.model,
            "messages": prompt.messages(),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_output_tokens,
            "mode": self.config.mode,
            "response_model": output_model.__name__,
        }

    def request_kwargs(self, messages: list[Any]) -> dict[str, Any]:
        """The chat-completion parameters of one request, before instructor adds its mode's
        (tools, response format): shared by live calls and batch requests."""
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_output_tokens,
        }

    async def _attempts(
        self, prompt: RenderedPrompt, output_model: type[BaseModel], result: CallResult, exchange: _Exchange
    ) -> None:
        import openai
        from instructor.core.exceptions import InstructorRetryException

        client = self._client
        response_model = self._schema(output_model)
        messages: list[Any] = list(prompt.messages())
        attempt = 1  # attempts after transient faults (429, 5xx, timeouts); re-asks are counted apart
        reasks = 0
        while True:
            try:
                # max_retries=0: the re-asks are ours, so that each sends the prompt and the last
                # error only (instructor's resend every earlier answer, past the model's context)
                parsed, completion = await self._request(
                    client, response_model=response_model, max_retries=0, **self.request_kwargs(messages)
                )
                result.outcome, result.output = "ok", parsed.model_dump(mode="json")
                result.raw_response = _dump(completion) or exchange.excerpt()
                self._worked = True
                return
            except Exception as exc:
                failure = exc
                if isinstance(exc, InstructorRetryException) and isinstance(
                    exc.__cause__, (openai.APIStatusError, openai.APIConnectionError)
                ):
                    # instructor wraps the API's own errors (429, 5xx, timeouts, no connection)
                    # and does not retry them: judge the API's error (with its own causes)
                    failure = exc.__cause__
                if self._truncated(failure, exchange):
                    self._worked = True  # the endpoint answered in this mode: it is usable
                    result.outcome = "output-truncated"
                    result.error = (
                        f"the answer was cut off at max_output_tokens ({self.config.max_output_tokens}): "
                        "raise [llm] max_output_tokens"
                    )
                    result.raw_response = _dump(exchange.completions[-1]) or exchange.excerpt()
                    return
                if reasks < self.config.max_retries:
                    if self._invalid_output(failure, output_model, exchange):
                        reask = self._reask(prompt, exchange.completions[-1], failure)
                        if reask is not None:
                            reasks += 1
                            messages = reask
                            continue
                    elif _resendable(failure) and self._invalid_response(failure, output_model, exchange):
                        reasks += 1  # a reply that did not parse: the same request again
                        continue
                wait = self._failed(failure, attempt, output_model, result, exchange, reasks)
                if wait is None:
                    return
                attempt += 1
                await asyncio.sleep(wait)

    @property
    def concurrency(self) -> _Concurrency:
        if self._concurrency is None:
            self._concurrency = _Concurrency(self.config.concurrency)
        return self._concurrency

    async def _request(self, client: Any, **kwargs: Any) -> Any:
        """One request, in one of the slots of :attr:`concurrency` (waits between attempts
        hold none). A request that times out is abandoned with its connection closed (httpx
        closes a connection whose response did not complete), so the server sees the client
        hang up and can stop generating."""
        import openai

        slots = self.concurrency
        generation = await slots.acquire()
        timed_out = answered = False
        exchange = _exchange.get()
        usages = len(exchange.usages) if exchange else 0
        replies = len(exchange.replies) if exchange else 0
        text = sum(len(str(m.get("content") or "")) for m in kwargs.get("messages") or [])
        sent = await self._rate.acquire(text // 4 + self.config.max_output_tokens)
        sending = _sending.set(sent)
        try:
            answer = await client.chat.completions.create_with_completion(**kwargs)
            answered = True
            return answer
        except Exception as exc:
            timed_out = any(isinstance(c, openai.APITimeoutError) for c in _chain(exc))
            answered = not timed_out and any(isinstance(c, ValidationError) for c in _chain(exc))
            raise
        finally:
            _sending.reset(sending)
            await slots.release(generation, timed_out=timed_out, answered=answered)
            if exchange is not None:
                used = None
                for usage in exchange.usages[usages:]:
                    if usage is not None:
                        total = _count(getattr(usage, "prompt_tokens", 0))
                        used = (used or 0) + total + _count(getattr(usage, "completion_tokens", 0))
                headers: dict[str, str] = {}
                for reply in exchange.replies[replies:]:
                    headers.update(reply.ratelimit)
                self._rate.observe(sent, used, headers)

    def _truncated(self, exc: Exception, exchange: _Exchange) -> bool:
        """Whether the answer was cut off at max_tokens: the endpoint says so (finish_reason
        "length", which instructor raises in JSON modes), or an answer that does not parse used
        every token it was allowed (llama.cpp's server reports "tool_calls" for a cut tool call)."""
        from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException

        if isinstance(exc, IncompleteOutputException):
            return True
        if not isinstance(exc, InstructorRetryException) or not exchange.completions:
            return False
        completion = exchange.completions[-1]
        try:
            if completion.choices[0].finish_reason == "length":
                return True
        except (AttributeError, IndexError, KeyError, TypeError):
            return False
        usage = exchange.usages[-1] if exchange.usages else None
        used = _count(getattr(usage, "completion_tokens", 0))
        return used >= self.config.max_output_tokens and "json_invalid" in str(exc)

    def _invalid_output(self, exc: Exception, output_model: type[BaseModel], exchange: _Exchange) -> bool:
        """Whether ``exc`` is the model's answer failing validation (worth a re-ask)."""
        from instructor.core.exceptions import InstructorRetryException

        if not isinstance(exc, InstructorRetryException) or not exchange.completions:
            return False
        if self._invalid_response(exc, output_model, exchange) is not None:
            return False
        return not _refused(exchange.completions[-1])

    def _reask(self, prompt: RenderedPrompt, completion: Any, exc: Exception) -> list[Any] | None:
        """The prompt, the model's last answer and what was wrong with it: the re-ask, bounded to
        the model's context ([llm] context_tokens); None when even the prompt leaves no room."""
        errors = str(exc)
        last = getattr(exc, "failed_attempts", None)
        if last:
            errors = str(last[-1].exception)
        answer = _answer_text(completion)
        base: list[dict[str, Any]] = [dict(m) for m in prompt.messages()]
        room = None
        if self.config.context_tokens is not None:
            used = sum(len(str(m.get("content") or "")) for m in base) // CHARS_PER_TOKEN
            room = (self.config.context_tokens - self.config.max_output_tokens - used - 50) * CHARS_PER_TOKEN
            if room <= 200:
                return None
            errors = errors[: room // 2]
            answer = answer[: max(0, room - len(errors) - 120)]
        return [
            *base,
            {"role": "assistant", "content": answer},
            {
                "role": "user",
                "content": f"That answer failed validation:\n{errors}\n"
                "Answer again with the whole corrected answer, in the format asked for.",
            },
        ]

    def _failed(
        self,
        exc: Exception,
        attempt: int,
        output_model: type[BaseModel],
        result: CallResult,
        exchange: _Exchange,
        reasks: int = 0,
    ) -> float | None:
        """The one place a failed attempt is judged: record the outcome in ``result`` and return
        None, or return how long to wait before another attempt."""
        import openai
        from instructor.core.exceptions import InstructorRetryException

        invalid = self._invalid_response(exc, output_model, exchange)
        if invalid is not None:
            result.outcome, result.error = "invalid-response", invalid
            result.raw_response = exchange.excerpt()
            return None
        if isinstance(exc, InstructorRetryException):
            # a refusal fails instructor's parsing without a last_completion: use the hook's
            last = getattr(exc, "last_completion", None) or (
                exchange.completions[-1] if exchange.completions else None
            )
            result.outcome = "invalid-output"
            result.error = one_line(f"output failed validation after {reasks + 1} attempts: {exc}")
            result.raw_response = _dump(last) or exchange.excerpt()
            if last is not None and _refused(last):
                result.outcome, result.error = "refused", "the model refused to answer"
            return None
        if isinstance(exc, openai.RateLimitError):
            self._worked = True  # the endpoint knows the request: it only asks us to wait
            wait = self._wait(exc, attempt)
            if wait is None:
                result.outcome, result.error = "rate-limited", one_line(f"HTTP 429: {exc.message}")
            return wait
        if isinstance(exc, openai.APITimeoutError):
            if attempt > self.config.rate_limit_retries:
                result.outcome = "timeout"
                result.error = f"no answer within {self.config.timeout:g} s ({attempt} attempts)"
                return None
            return self._backoff(attempt)
        if isinstance(exc, openai.APIStatusError):
            # Before anything has worked, a 5xx repeated is the endpoint refusing this request
            # (llama.cpp's server answers json_schema mode with 500, every time), not a passing fault.
            last = attempt > self.config.rate_limit_retries
            first = not self._worked and (exc.status_code < 500 or attempt >= 2 or last)
            if exc.status_code >= 500 and not first and attempt <= self.config.rate_limit_retries:
                return self._wait(exc, attempt) or self._backoff(attempt)
            result.outcome, result.error = "http-error", one_line(f"HTTP {exc.status_code}: {exc.message}")
            if first:
                self.unusable = self._unusable(f"HTTP {exc.status_code}", exc.status_code)
            return None
        if isinstance(exc, openai.APIConnectionError):
            last = attempt > self.config.rate_limit_retries
            first = not self._worked and (attempt >= 2 or last)
            if first or last:
                result.outcome, result.error = "network-error", one_line(str(exc))
                if first:
                    self.unusable = self._unusable(one_line(str(exc), 120).rstrip("."), None)
                return None
            return self._backoff(attempt)
        result.outcome, result.error = "client-error", unexpected(exc)
        result.raw_response = exchange.excerpt()
        return None

    def _unusable(self, problem: str, status: int | None) -> str:
        """One line for a run that cannot go on: the URL, the problem, what to change."""
        url = self.config.base_url or "https://api.openai.com/v1"
        if status in (401, 403):
            hint = f"check the key in ${self.config.api_key_env}"
        elif status == 404:
            hint = "check [llm] base_url (it usually ends in /v1) and [llm] model"
        elif status is None:
            hint = "check [llm] base_url (scheme, host, port, /v1) and that the server is running"
        else:
            hint = (
                f'the model or [llm] mode = "{self.config.mode}" is not supported there: try mode = "tools"'
            )
        return one_line(
            f"{url}: {problem} on the first request ({self.model}, mode {self.config.mode}): {hint}"
            " (`evidence llm check` tests the endpoint)"
        )

    def _invalid_response(
        self, exc: Exception, output_model: type[BaseModel], exchange: _Exchange
    ) -> str | None:
        """Why the endpoint's reply is not a usable chat completion, if that is what ``exc`` says."""
        import httpx2
        import openai

        problem = None
        for cause in _chain(exc):
            if isinstance(cause, (ResponseTooLarge, ResponseUndecodable)):
                problem = str(cause)
            elif isinstance(cause, httpx2.DecodingError):
                problem = f"its body cannot be decoded ({cause})"
            elif isinstance(cause, (json.JSONDecodeError, UnicodeDecodeError)):
                empty = exchange.replies and exchange.replies[-1].size == 0
                problem = "its body is empty" if empty else f"its body is not JSON ({cause})"
            elif isinstance(cause, openai.APIResponseValidationError):
                problem = cause.message
            elif isinstance(cause, ValidationError) and cause.title != output_model.__name__:
                # pydantic on the completion object, not on the model's output
                problem = f"JSON of another shape ({cause.error_count()} errors in {cause.title})"
            if problem is not None:
                break
        if problem is None and exchange.completions and not isinstance(exc, openai.APIError):
            problem = _not_a_completion(exchange.completions[-1])
        if problem is None:
            return None
        reply = exchange.replies[-1] if exchange.replies else None
        text = (
            f"the endpoint's reply is not a chat completion ({reply.describe()})"
            if reply
            else ("the endpoint's reply is not a chat completion")
        )
        text += f": {problem}"
        excerpt = one_line(reply.excerpt(), 80) if reply and reply.size else ""
        if excerpt:
            text += f"; it begins {json.dumps(excerpt, ensure_ascii=False)}"
        return one_line(text)

    def _backoff(self, attempt: int) -> float:
        return self.config.backoff * 2 ** (attempt - 1) * (1 + random.random() * 0.25)

    def _wait(self, exc: Any, attempt: int) -> float | None:
        """Seconds to wait before another attempt, or None when attempts or patience ran out."""
        if attempt > self.config.rate_limit_retries:
            return None
        headers = getattr(getattr(exc, "response", None), "headers", {}) or {}
        wait_for = retry_after(headers.get("retry-after"))
        if wait_for is not None and wait_for > self.config.max_retry_after:
            return None
        return max(wait_for or 0.0, self._backoff(attempt))


# ---------------------------------------------------------------------------
# Checking an endpoint before spending anything on it


class _Ping(BaseModel):
    """The tiny structured answer `evidence llm check` asks for."""

    ok: bool


# where servers say a model's context size in /models: vLLM, llama.cpp's meta, others
_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "n_ctx", "n_ctx_train")


@dataclass
class CheckReport:
    """What `evidence llm check` found: each line for the reader, and the first problem, if any."""

    url: str
    model: str
    mode: str
    lines: list[str] = field(default_factory=list)
    problem: str | None = None
    models: list[str] = field(default_factory=list)
    context_tokens: int | None = None


def _context_size(entry: Any) -> int | None:
    data = entry.model_dump() if isinstance(entry, BaseModel) else dict(entry or {})
    for place in (data, data.get("meta") or {}):
        for key in _CONTEXT_KEYS:
            value = place.get(key) if isinstance(place, dict) else None
            if isinstance(value, int) and value > 0:
                return value
    return None


async def check(backend: OpenAIBackend, *, structured: bool = True) -> CheckReport:
    """Reach the endpoint, list its models, confirm the configured one, and (``structured``)
    send one tiny structured request in the configured mode; report latency, context size and
    the price in use. Never raises for what the endpoint does."""
    import openai

    config = backend.config
    url = config.base_url or "https://api.openai.com/v1"
    report = CheckReport(url=url, model=backend.model, mode=config.mode)

    def fail(problem: str) -> CheckReport:
        report.problem = one_line(f"{url}: {problem}")
        report.lines.append(f"problem: {report.problem}")
        return report

    started = time.monotonic()
    try:
        page = await backend._openai.models.list()
        entries = list(page.data)
    except openai.APIStatusError as exc:
        hint = " (does base_url end in /v1?)" if exc.status_code == 404 else ""
        return fail(f"GET /models answered HTTP {exc.status_code}{hint}: {one_line(exc.message, 160)}")
    except openai.APIConnectionError as exc:
        return fail(
            f"cannot connect ({one_line(str(exc), 120).rstrip('.')}): check [llm] base_url and the server"
        )
    except Exception as exc:  # a reply that is not a model list
        return fail(f"GET /models did not answer a model list ({unexpected(exc)})")
    report.lines.append(f"endpoint {url}: reached in {(time.monotonic() - started) * 1000:.0f} ms")
    report.models = [str(getattr(e, "id", "")) for e in entries]
    report.lines.append(f"models: {', '.join(report.models) or 'none listed'}")
    if report.models and backend.model not in report.models:
        return fail(
            f"model {backend.model!r} is not among the endpoint's models ({', '.join(report.models[:10])})"
        )
    entry = next((e for e in entries if getattr(e, "id", None) == backend.model), None)
    report.context_tokens = _context_size(entry) if entry is not None else None
    report.lines.append(
        f"model {backend.model}: "
        + (f"context {report.context_tokens} tokens" if report.context_tokens else "context size not given")
    )
    price, source = config.price_of(backend.model)
    report.lines.append(
        f"price: ${price.input:g} in / ${price.output:g} out per million tokens ({source})"
        if price
        else "price: unknown (cost is counted as $0; a cost cap refuses to start: set [llm.prices])"
    )
    if not structured:
        return report
    import instructor

    client = instructor.from_openai(backend._openai, mode=backend._mode)
    started = time.monotonic()
    try:
        await client.chat.completions.create(
            model=backend.model,
            response_model=_Ping,
            messages=[{"role": "user", "content": 'Answer with {"ok": true}.'}],
            max_tokens=50,
            temperature=0,
            max_retries=0,
        )
        verdict = "supported (a valid answer)"
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, openai.APIError) else exc
        if isinstance(cause, openai.APIStatusError):
            return fail(
                f"mode {config.mode}: HTTP {cause.status_code} to a structured request "
                f'({one_line(cause.message, 160)}): try mode = "tools"'
            )
        if isinstance(cause, openai.APIError):
            return fail(f"mode {config.mode}: {one_line(str(cause), 160)}")
        verdict = "answered, but the answer did not validate (the wire works; the model may be weak)"
    report.lines.append(f"mode {config.mode}: {verdict}, {(time.monotonic() - started) * 1000:.0f} ms")
    return report


def run_check(config: LLMConfig, *, model: str | None = None, api_key: str | None = None) -> CheckReport:
    """:func:`check` for the configured endpoint (``evidence llm check``), its connections closed."""
    import openai

    if model:
        config = config.model_copy(update={"model": model})

    async def go() -> CheckReport:
        http = openai.DefaultAsyncHttpxClient()
        try:
            return await check(OpenAIBackend(config, api_key=api_key, http_client=http))
        finally:
            await http.aclose()

    return asyncio.run(go())


def _resendable(exc: BaseException) -> bool:
    """A reply that did not parse as JSON (worth sending the request again), not one that was
    refused for its size or encoding (which another try would only repeat)."""
    chain = list(_chain(exc))
    if any(isinstance(c, (ResponseTooLarge, ResponseUndecodable)) for c in chain):
        return False
    return any(isinstance(c, (json.JSONDecodeError, ValidationError)) for c in chain)


def _answer_text(completion: Any) -> str:
    """The model's answer as text: its tool call's arguments, else its message's content."""
    try:
        message = completion.choices[0].message
    except (AttributeError, IndexError, KeyError, TypeError):
        return ""
    calls = getattr(message, "tool_calls", None) or []
    parts = [getattr(getattr(c, "function", None), "arguments", None) or "" for c in calls]
    text = "\n".join(p for p in parts if isinstance(p, str)) or getattr(message, "content", None) or ""
    return text if isinstance(text, str) else ""


def _refused(completion: Any) -> bool:
    try:
        choice = completion.choices[0]
        return bool(getattr(choice.message, "refusal", None)) or choice.finish_reason == "content_filter"
    except (AttributeError, IndexError, KeyError, TypeError):
        return False
