"""A model drafts a member's concluding paragraph; every action it mentions must be confirmed.

With an OpenAI-compatible endpoint configured, the model gets the member's dimension readings
and its confirmed actions (prompt ``prompts/conclusion-v1.md``) and writes the paragraph. The
answer is checked: every footnote mark ``[^N]`` it cites and every date it names must belong to
one of the member's confirmed actions in the draft. An answer that fails the check, or a call
that fails, leaves the template's paragraph in place with the reason shown
(:func:`classifier.draft.draft`'s ``writer``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import weakref
from typing import Any

import sqlite_utils
from pydantic import Field

from .draft import FOOTNOTE_MARK, Reading
from .models import Model
from .report_text import MONTH_RE, MONTHS
from .rubric import Rubric

PROMPT_ID = "conclusion"
MAX_CHARS = 3000  # a concluding paragraph is a few sentences
# "4 July 2024", "17 December" (the reports drop the year now and then)
DATE_MENTION = re.compile(rf"\b(\d{{1,2}})\s+({MONTH_RE})(?:,?\s+(\d{{4}}))?\b")
# a bare "[3]" or a superscript-like "^3" is a citation too
OTHER_MARK = re.compile(r"\[(\d{1,4})\]|(?<!\[)\^(\d{1,4})\b")


class ConclusionText(Model):
    """The model's answer: the paragraph, in the report's form."""

    # (no max_length: llama.cpp turns a bounded string into a grammar it cannot parse; the
    # answer is bounded by max_output_tokens, and MAX_CHARS is checked after)
    paragraph: str = Field(min_length=1)


def document_for(member: str, rubric: Rubric, readings: dict[str, Reading], paragraphs: list[dict]) -> str:
    """What the model reads: the member, its readings with the footnotes they rest on, its actions."""
    notes = {p["item"]: p["footnote"] for p in paragraphs}
    lines = [f"Member: {member}", "", "Readings:"]
    for d in rubric.dimensions:
        label, _confirmed, items = readings.get(d.id, ("unassessed", False, []))
        cited = " ".join(f"[^{notes[i]}]" for i in items if i in notes)
        lines.append(f"- {d.id} ({d.name}): {label}" + (f", resting on {cited}" if cited else ""))
    lines += ["", "Confirmed actions:"]
    lines += [f"[^{p['footnote']}] {p['text']}" for p in paragraphs]
    return "\n".join(lines)


def unconfirmed_mentions(
    paragraph: str, paragraphs: list[dict], period_end: dt.date | None = None
) -> list[str]:
    """What ``paragraph`` cites or dates that is not among the confirmed ``paragraphs``."""
    notes = {p["footnote"] for p in paragraphs}
    dates = {p["date"][:10] for p in paragraphs if p.get("date")}
    days = {(int(d[8:10]), int(d[5:7])) for d in dates}
    wrong = [f"footnote [^{m[1]}]" for m in FOOTNOTE_MARK.finditer(paragraph) if int(m[1]) not in notes]
    wrong += [f"footnote {m[0]}" for m in OTHER_MARK.finditer(paragraph) if int(m[1] or m[2]) not in notes]
    for m in DATE_MENTION.finditer(paragraph):
        day, month = int(m[1]), MONTHS[m[2]]
        if m[3]:
            try:
                iso = dt.date(int(m[3]), month, day).isoformat()
            except ValueError:
                wrong.append(f"the date {m[0]!r}")
                continue
            if iso not in dates:
                wrong.append(f"the date {m[0]!r}")
        elif (day, month) not in days:
            wrong.append(f"the date {m[0]!r}")
    return wrong


def model_writer(
    rubric: Rubric,
    config: Any = None,
    *,
    backend: Any = None,
    db: sqlite_utils.Database | None = None,
):
    """A ``writer`` for :func:`classifier.draft.draft`: the configured endpoint's model drafts
    each member's conclusion; the call goes to the model call log when ``db`` is given."""
    from .llm import make_backend
    from .prompts import check_unchanged, load_prompt, render

    template = load_prompt(prompt_id=PROMPT_ID)
    if db is not None:
        check_unchanged(db, template)
    backend = backend or make_backend(config, "openai")
    # one event loop for every call: the backend's HTTP client keeps its connections on the
    # loop that opened them (a new loop per call finds them dead: "Connection error.")
    loop = asyncio.new_event_loop()
    weakref.finalize(backend, loop.close)

    def write(
        member: str, readings: dict[str, Reading], paragraphs: list[dict]
    ) -> tuple[str | None, str | None]:
        document = document_for(member, rubric, readings, paragraphs)
        prompt = render(template, rubric, document)
        result = loop.run_until_complete(backend.classify(prompt, ConclusionText, rubric, document))
        if db is not None:
            from .calls import log_call

            log_call(
                db,
                result,
                backend=backend.name,
                model=backend.model,
                prompt_name=template.name,
                prompt_sha=prompt.sha,
                input_sha="sha256:" + hashlib.sha256(document.encode("utf-8")).hexdigest(),
                commitment=rubric.number,
            )
        if result.outcome != "ok" or result.output is None:
            error = " ".join((result.error or "").split())[:200]
            return None, f"{backend.model} gave no usable answer ({result.outcome}: {error})"
        text = " ".join(str(result.output["paragraph"]).split())
        if len(text) > MAX_CHARS:
            return None, f"{backend.model}'s paragraph is {len(text)} characters, over {MAX_CHARS}"
        wrong = unconfirmed_mentions(text, paragraphs)
        if wrong:
            return (
                None,
                f"{backend.model}'s paragraph mentions {', '.join(wrong[:5])}, not among the confirmed actions",
            )
        return text, None

    return write
