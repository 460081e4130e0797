"""The newsrooms we crawl: ``corpus/sources.toml`` names each one's feed, sitemap or listing page,
its member and the commitments it speaks to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from .fetch import InvalidURL, normalize_url
from .files import first_problem, read_toml
from .models import MEMBERS, Model


class SourcesError(Exception):
    """A sources.toml that cannot be used."""


class Source(Model):
    name: str
    member: str
    publisher: str
    kind: Literal["feed", "sitemap", "listing"]
    url: str
    selector: str | None = None
    language: str | None = None
    commitments: list[int] = Field(default_factory=list)
    cited: int = 0
    topics: list[str] = Field(default_factory=list)

    @field_validator("member")
    @classmethod
    def _member(cls, value: str) -> str:
        if value not in MEMBERS:
            raise ValueError(f"must be one of {', '.join(MEMBERS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Source:
        if self.kind == "listing" and not self.selector:
            raise ValueError("a listing source needs a CSS selector for its item links")
        try:
            normalize_url(self.url)
        except InvalidURL as exc:
            raise ValueError(str(exc)) from None
        return self


def load_sources(path: Path) -> list[Source]:
    data = read_toml(path, SourcesError, "sources file")
    sources = []
    for k, entry in enumerate(data.get("sources", []), start=1):
        try:
            sources.append(Source.model_validate(entry))
        except ValidationError as exc:
            name = entry.get("name", f"#{k}")
            raise SourcesError(f"{path}: source {name}: {first_problem(exc)}") from None
    names = [s.name for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourcesError(f"{path}: source names repeat: {', '.join(duplicates)}")
    return sources
