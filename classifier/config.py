"""Configuration: ``evidence.toml`` (or ``--config`` / ``EVIDENCE_CONFIG``), then environment.

Everything has a default except the contact address that goes into the User-Agent:
a crawler that cannot say who runs it does not crawl other people's servers.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, ValidationError

from . import __version__
from .files import first_problem, read_toml
from .models import Model
from .store import project_dir

CONFIG_ENV = "EVIDENCE_CONFIG"
CONTACT_ENV = "EVIDENCE_CONTACT"


class ConfigError(Exception):
    """A configuration file or value that cannot be used."""


class FetchConfig(Model):
    contact: str | None = None  # an e-mail address or URL where site owners can reach us
    user_agent: str = "g7-evidence/{version} (+{contact})"
    timeout: float = Field(20.0, gt=0)  # seconds for one attempt, connect to last byte
    retries: int = Field(3, ge=0)  # further attempts after a 429, 5xx, timeout or network error
    backoff: float = Field(1.0, ge=0)  # first wait; doubles each retry (with jitter)
    max_retry_after: float = Field(120.0, ge=0)  # a longer Retry-After ends the attempts
    max_redirects: int = Field(5, ge=0)
    max_bytes: int = Field(10_000_000, gt=0)
    concurrency: int = Field(8, ge=1)  # requests in flight overall
    per_host_concurrency: int = Field(2, ge=1)
    per_host_delay: float = Field(1.0, ge=0)  # seconds between two requests to one host
    allow_private: bool = False  # private, loopback and link-local addresses (tests only)

    def agent(self) -> str:
        if not self.contact:
            raise ConfigError(
                "no contact address for the User-Agent: set [fetch] contact in evidence.toml "
                f"or {CONTACT_ENV}=you@example.org"
            )
        return self.user_agent.format(version=__version__, contact=self.contact)


class Price(Model):
    input: float = 0.0  # USD per million prompt tokens
    output: float = 0.0  # USD per million completion tokens
    cached_input: float | None = None  # USD per million cached prompt tokens, if the provider discounts them
    batch: float = Field(0.5, ge=0)  # share of these prices charged through the Batch API


PRICES_FILE = Path(__file__).with_name("prices.toml")


def price_table() -> dict[str, Price]:
    """The bundled prices of common hosted models (classifier/prices.toml)."""
    data = read_toml(PRICES_FILE, ConfigError, "price table")
    try:
        return {name: Price.model_validate(p) for name, p in (data.get("prices") or {}).items()}
    except ValidationError as exc:
        raise ConfigError(f"{PRICES_FILE}: {first_problem(exc)}") from None


class LLMConfig(Model):
    backend: str = "learned"  # learned (embedded, the default) | baseline | openai
    base_url: str | None = None  # None: the OpenAI API
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key
    mode: str = "tools"  # instructor mode: tools | json | json_schema | md_json
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0)  # re-asks after output that fails validation
    rate_limit_retries: int = Field(4, ge=0)  # further attempts after 429 / 5xx / timeouts
    backoff: float = Field(2.0, ge=0)
    max_retry_after: float = Field(120.0, ge=0)
    concurrency: int = Field(4, ge=1)
    rpm: int | None = Field(None, ge=1)  # requests per minute, across concurrent calls; None: no limit
    tpm: int | None = Field(None, ge=1)  # tokens (prompt + output) per minute; None: no limit
    rate_window: float = Field(60.0, gt=0)  # the "minute" of rpm and tpm, in seconds
    max_doc_chars: int = Field(60_000, gt=0)  # the document's token budget, in characters (~4 per token)
    temperature: float = 0.0
    max_output_tokens: int = Field(1500, gt=0)  # bounds a runaway answer (and its cost)
    context_tokens: int | None = Field(None, gt=0)  # the model's context; re-asks are kept within it
    cost_cap: float | None = None  # USD for one run; None: no cap
    token_cap: int | None = Field(None, ge=1)  # prompt + output tokens for one run; None: no cap
    batch_poll: float = Field(30.0, gt=0)  # seconds before the first poll of a batch; grows by half each poll
    batch_poll_max: float = Field(600.0, gt=0)  # the longest wait between two polls
    batch_max_requests: int = Field(50_000, ge=1)  # requests per batch (the Batch API's limit)
    prices: dict[str, Price] = Field(default_factory=dict)  # over the bundled table (prices.toml)
    # an item whose calibrated relevance by the embedded learned model is below this is not sent to
    # a model endpoint (stored as not relevant, at no cost); 0: off, every item is sent
    prefilter: float | None = Field(0.05, ge=0, le=1)

    def price_of(self, model: str | None = None) -> tuple[Price | None, str]:
        """The price of ``model`` (default: the configured one) and where it comes from:
        ``[llm.prices]`` first, then the bundled table; (None, "unknown") when neither has it."""
        model = model or self.model
        if model in self.prices:
            return self.prices[model], "configuration"
        table = price_table()
        if model in table:
            return table[model], f"bundled table ({PRICES_FILE.name})"
        return None, "unknown"


class Config(Model):
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    path: Path | None = None  # where it was read from


def config_path(explicit: str | Path | None = None) -> Path | None:
    """``--config``, then ``EVIDENCE_CONFIG``, then ``<project>/evidence.toml`` if it exists."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    default = project_dir() / "evidence.toml"
    return default if default.exists() else None


def load_config(explicit: str | Path | None = None) -> Config:
    """Read the configuration; a named file that is missing or malformed is an error."""
    path = config_path(explicit)
    data: dict = {}
    if path is not None:
        data = read_toml(path, ConfigError, "configuration file")
    contact = os.environ.get(CONTACT_ENV)
    if contact:
        data.setdefault("fetch", {})["contact"] = contact
    for key in ("backend", "base_url", "model", "mode", "api_key_env"):
        value = os.environ.get(f"EVIDENCE_LLM_{key.upper()}")
        if value:
            data.setdefault("llm", {})[key] = value
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path or 'configuration'}: {first_problem(exc)}") from None
    config.path = path
    return config
