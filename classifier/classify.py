"""Prompts + backend -> grounded classifications, with a cache and a log of every call.

For one document x one commitment a backend returns: relevance, acting members, action
date, a summary in the report's style, and per dimension a strong / weak / none label
with a rationale and verbatim quotes. Every quote is then located in the document
(:mod:`classifier.grounding`); a label whose quotes are not there is flagged
``ungrounded`` for review. The same (document content, commitment, rendered prompt,
model) is a cache hit: no second call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field, create_model

from . import instructions
from .calls import log_call
from .config import Config, ConfigError
from .dates import now_utc
from .documents import CURRENT_VERSIONS
from .flags import Flag, excluded
from .grounding import locate
from .llm import Backend, CallResult, make_backend, unexpected
from .models import ClassificationBase, DimensionLabel
from .prefilter import Prefilter, Verdict, ruled_out_output
from .prompts import PromptTemplate, RenderedPrompt, check_unchanged, load_prompt, render, sha256
from .redaction import redact
from .rubric import Rubric
from .store import new_id
from .summaries import RunSummary, counted

# An ok classification stands unless the prefilter ruled it out under another learned model or a
# threshold its probability no longer falls below (parameters: current learned model, threshold).
STANDS = "(prefilter_model is null or (prefilter_model = ? and prefilter_probability < ?))"

# Length limits applied after validation (see DimensionLabel for why not in the schema).
MAX_QUOTES = 6
MAX_RATIONALE = 1000
MAX_SUMMARY = 1500
MAX_REASON = 200  # characters of a failure's error in the summary lines


def output_model(rubric: Rubric) -> type[BaseModel]:
    """The strict output schema for one rubric: one field per dimension, nothing else."""
    fields: dict[str, Any] = {d.id: (DimensionLabel, ...) for d in rubric.dimensions}
    dimensions = create_model(f"Dimensions{rubric.number}", __config__=ConfigDict(extra="forbid"), **fields)
    ids = tuple(e.id for e in rubric.exclusions)
    # a Literal of the rubric's own exclusion ids, made at run time: no static type can name it
    exclusions: Any = (list[Literal[ids]], ...) if ids else (list[str], Field(max_length=0))  # type: ignore[valid-type]
    return create_model(
        f"Classification{rubric.number}",
        __base__=ClassificationBase,
        dimensions=(dimensions, ...),
        exclusions=exclusions,
    )


def ground(
    output: dict,
    document: str,
    rubric: Rubric,
    *,
    truncated: bool = False,
    planted: list[instructions.Span] | None = None,
) -> tuple[dict, list[str]]:
    """Locate every quote; return the dimensions with offsets and the item's flags.

    ``planted`` are the document's instruction-like sentences (:mod:`classifier.instructions`,
    found when not given): a quote that falls in one is marked and grounds nothing, and the
    item is flagged ``instruction-like-text``. The flags are :class:`classifier.flags.Flag`.
    """
    planted = instructions.find(document) if planted is None else planted
    dims: dict[str, dict[str, Any]] = {}
    flags: list[str] = []
    for dim_id, value in output["dimensions"].items():
        located = [locate(q, document) for q in value.get("quotes", [])[:MAX_QUOTES]]
        quotes = []
        for q in located:
            quote = q.as_dict()
            if instructions.inside(q.start, q.end, planted):
                quote["planted"] = True
            quotes.append(quote)
        grounded = value["label"] == "none" or (
            bool(quotes) and all(q["start"] is not None and not q.get("planted") for q in quotes)
        )
        dims[dim_id] = {
            "label": value["label"],
            "rationale": value.get("rationale", "")[:MAX_RATIONALE],
            "quotes": quotes,
            "grounded": grounded,
        }
    if any(not d["grounded"] for d in dims.values()):
        flags.append(Flag.UNGROUNDED)
    when = output.get("action_date")
    outside = output.get("outside_period", False)
    if when:
        outside = not (rubric.period_start <= dt.date.fromisoformat(when) <= rubric.period_end)
    if outside:
        flags.append(Flag.OUTSIDE_PERIOD)
    flags += [excluded(e) for e in output.get("exclusions", [])]
    if truncated:
        flags.append(Flag.TRUNCATED)
    if planted:
        flags.append(instructions.FLAG)
    return dims, flags


@dataclass
class ClassifySummary(RunSummary):
    """A classification run: items classified and cached, failures by outcome with their reasons,
    calls, tokens and cost."""

    backend: str
    model: str
    prompt: str
    classified: int = 0
    cached: int = 0
    prefiltered: int = 0  # ruled out by the learned model, never sent (no call, no cost)
    prefilter: str | None = None  # "P < 0.05", when a prefilter is in use
    reasons: dict[str, Counter] = field(default_factory=dict)  # outcome -> errors (redacted) -> count
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    stopped: str | None = None  # why the run stopped calling the backend (what to change)

    def fail(self, outcome: str, error: str | None) -> None:
        """Count one failed item under its outcome, and its error among that outcome's reasons."""
        self.failed[outcome] += 1
        self.reasons.setdefault(outcome, Counter())[redact(error) or "no error message"] += 1

    def reason(self, outcome: str) -> str:
        """The most frequent error of one kind of failure (cut short), and how many others there were."""
        reasons = self.reasons.get(outcome) or Counter({"no error message": 1})
        top = reasons.most_common(1)[0][0]
        if len(top) > MAX_REASON:
            top = top[: MAX_REASON - 1] + "…"
        others = len(reasons) - 1
        return top + (f" (and {others} other error{'s' if others > 1 else ''})" if others else "")

    def lines(self) -> list[str]:
        """The summary a person reads: one line of counts, then one line per kind of failure."""

        return [
            f"backend {self.backend}, model {self.model}, prompt {self.prompt}",
            f"classified {self.classified}, cached {self.cached}, {counted('failed', self.failed)}, "
            f"{counted('skipped', self.skipped)}"
            + (
                f", prefiltered {self.prefiltered} (learned model, {self.prefilter}; not sent)"
                if self.prefilter
                else ""
            ),
            *(f"  {outcome} {n}: {self.reason(outcome)}" for outcome, n in self.failed.most_common()),
            f"{self.calls} calls, tokens {self.tokens_in} in / {self.tokens_out} out"
            f" ({self.cached_tokens} cached), cost ${self.cost:.4f}, {self.elapsed:.1f} s",
            *([f"stopped: {self.stopped}"] if self.stopped else []),
        ]


@dataclass
class Item:
    """One document version x one rubric."""

    text: str
    content_sha: str
    rubric: Rubric
    document_id: int | None = None
    version: int | None = None
    published: str | None = None
    language: str | None = None  # the page's language as stored; None: detected from the text


class Classifier:
    """Classifies items with one backend and one prompt version, caching and logging."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        config: Config,
        *,
        backend: str | None = None,
        model: str | None = None,
        prompt: str | int | None = None,
        cost_cap: float | None = None,
        token_cap: int | None = None,
        backend_object: Backend | None = None,
        prefilter: float | None = None,
        no_prefilter: bool = False,
    ):
        self.db = db
        self.config = config
        self.template: PromptTemplate = load_prompt(prompt)
        check_unchanged(db, self.template)
        self.backend: Backend = backend_object or make_backend(config.llm, backend, model)
        self.backend.bind(db)
        self.cost_cap = cost_cap if cost_cap is not None else config.llm.cost_cap
        self.token_cap = token_cap if token_cap is not None else config.llm.token_cap
        self.summary = ClassifySummary(self.backend.name, self.backend.model, self.template.name)
        threshold = prefilter if prefilter is not None else config.llm.prefilter
        # only a backend whose calls cost is prefiltered: the embedded ones are the judgement itself
        self.prefilter: Prefilter | None = None
        if self.backend.prefiltered and threshold and not no_prefilter:  # 0: off
            self.prefilter = Prefilter(db, threshold)
            self.summary.prefilter = f"P < {threshold:g}"
        if self.cost_cap is not None and not self.backend.priced():
            raise ConfigError(
                f"a cost cap of ${self.cost_cap:g} is set but model {self.backend.model!r} has no price: "
                f'set [llm.prices."{self.backend.model}"] (USD per million tokens) or use --token-cap'
            )
        self._models: dict[int, type[BaseModel]] = {}
        self._reserved = 0.0
        self._reserved_tokens = 0

    def _estimate_tokens(self, prompt: RenderedPrompt) -> tuple[int, int]:
        """A call's likely tokens: prompt at ~4 characters each, output as seen so far (else 1,000)."""
        tokens_out = self.summary.tokens_out // self.summary.calls if self.summary.calls else 1000
        return (len(prompt.system) + len(prompt.user)) // 4, tokens_out

    def _estimate(self, prompt: RenderedPrompt) -> float:
        """A call's likely cost, from its likely tokens."""
        return self.backend.price(*self._estimate_tokens(prompt), 0)

    def _output_model(self, rubric: Rubric) -> type[BaseModel]:
        if rubric.number not in self._models:
            self._models[rubric.number] = output_model(rubric)
        return self._models[rubric.number]

    def prefilter_key(self, rubric: Rubric) -> tuple[str | None, float | None]:
        """(current learned model, threshold) under which a ruled-out item still stands; (None,
        None) without a prefilter, when no ruled-out item does."""
        if self.prefilter is None:
            return None, None
        return self.prefilter.version(rubric), self.prefilter.threshold

    def cached(self, item: Item, prompt: RenderedPrompt) -> dict | None:
        version, threshold = self.prefilter_key(item.rubric)
        rows = list(
            self.db.table("classifications").rows_where(
                "content_sha = ? and commitment = ? and prompt_sha = ? and model = ? and status = 'ok' and "
                f"{STANDS}",
                [
                    item.content_sha,
                    item.rubric.number,
                    prompt.sha,
                    self.backend.model_for(item.rubric),
                    version,
                    threshold,
                ],
                limit=1,
            )
        )
        return rows[0] if rows else None

    async def classify(self, item: Item) -> dict | None:
        """Classify one item (or return the cached result); store the call and the classification."""
        planted = instructions.find(item.text)
        prompt = render(
            self.template,
            item.rubric,
            item.text,
            max_chars=self.config.llm.max_doc_chars,
            instruction_like=len(planted),
            language=item.language or _detected_language(item.content_sha, item.text),
        )
        hit = self.cached(item, prompt)
        if hit is not None:
            # Keyed by content, not by document: the same text under another URL shares the result.
            self.summary.cached += 1
            return hit
        if self.prefilter is not None:
            verdict = await self.prefilter.judge(item.rubric, item.text[: prompt.chars])
            if verdict.ruled_out:  # before caps and an unusable endpoint: it needs no call
                return self._store_ruled_out(item, prompt, verdict, planted)
        if self.backend.unusable:  # no call could succeed: the rest are skipped, not each failed
            self.summary.skipped["endpoint-unusable"] += 1
            self.summary.stopped = self.backend.unusable
            return None
        estimate, tokens = 0.0, 0
        # Calls in flight have not reported their cost yet: reserve an estimate for each, and
        # dispatch no new call once what was spent plus what is reserved reaches a cap.
        if self.cost_cap is not None:
            if self.summary.cost + self._reserved >= self.cost_cap:
                self.summary.skipped["cost-cap"] += 1
                return None
            estimate = self._estimate(prompt)
        if self.token_cap is not None:
            used = self.summary.tokens_in + self.summary.tokens_out
            if used + self._reserved_tokens >= self.token_cap:
                self.summary.skipped["token-cap"] += 1
                return None
            tokens = sum(self._estimate_tokens(prompt))
        self._reserved += estimate
        self._reserved_tokens += tokens
        try:
            result: CallResult = await self.backend.classify(
                prompt, self._output_model(item.rubric), item.rubric, item.text, published=item.published
            )
        except Exception as exc:  # the last resort: this item fails with the reason, the run goes on
            request = {"model": self.backend.model_for(item.rubric), "commitment": item.rubric.number}
            result = CallResult("client-error", request=request, error=unexpected(exc))
        finally:
            self._reserved -= estimate
            self._reserved_tokens -= tokens
        self.summary.calls += 1
        self.summary.tokens_in += result.tokens_in
        self.summary.tokens_out += result.tokens_out
        self.summary.cached_tokens += result.cached_tokens
        self.summary.cost += result.cost
        return self._store(item, prompt, result, planted)

    def _store_ruled_out(
        self, item: Item, prompt: RenderedPrompt, verdict: Verdict, planted: list[instructions.Span]
    ) -> dict:
        """Store an item the prefilter ruled out: not relevant, no call, the verdict recorded."""
        assert self.prefilter is not None
        output = ruled_out_output(item.rubric, verdict, self.prefilter.threshold)
        dims, flags = ground(output, item.text, item.rubric, truncated=prompt.truncated, planted=planted)
        with self.db.atomic():
            row = self._row(item, prompt, None) | {
                "status": "ok",
                "error": None,
                "relevant": 0,
                "members": "[]",
                "action_date": None,
                "summary": "",
                "dimensions": json.dumps(dims),
                "confidence": output["confidence"],
                "flags": json.dumps(flags),
                "prefilter_model": verdict.model,
                "prefilter_probability": verdict.probability,
            }
            self.summary.prefiltered += 1
            return self._insert(item, prompt, row)

    def _row(self, item: Item, prompt: RenderedPrompt, call_id: int | None) -> dict[str, Any]:
        return {
            "document_id": item.document_id,
            "version": item.version,
            "content_sha": item.content_sha,
            "commitment": item.rubric.number,
            "backend": self.backend.name,
            "model": self.backend.model_for(item.rubric),
            "prompt_name": self.template.name,
            "prompt_sha": prompt.sha,
            "system_sha": prompt.system_sha,
            "call_id": call_id,
            "truncated": int(prompt.truncated),
            "created_utc": now_utc(),
        }

    def _insert(self, item: Item, prompt: RenderedPrompt, row: dict[str, Any]) -> dict:
        # a failed earlier attempt with the same key is replaced, and so is a ruled-out item that no
        # longer stands (another learned model, another threshold); other ok results never are
        self.db.execute(
            "delete from classifications where content_sha = ? and commitment = ? and prompt_sha = ? "
            "and model = ? and (status = 'failed' or prefilter_model is not null)",
            [item.content_sha, item.rubric.number, prompt.sha, self.backend.model_for(item.rubric)],
        )
        return self.db.table("classifications").get(new_id(self.db.table("classifications").insert(row)))

    def _store(
        self, item: Item, prompt: RenderedPrompt, result: CallResult, planted: list[instructions.Span]
    ) -> dict:
        with self.db.atomic():
            call_id = self._log_call(item, prompt, result)
            row = self._row(item, prompt, call_id)
            if result.outcome == "ok" and result.output is not None:
                dims, flags = ground(
                    result.output, item.text, item.rubric, truncated=prompt.truncated, planted=planted
                )
                row.update(
                    {
                        "status": "ok",
                        "error": None,
                        "relevant": int(result.output["relevant"]),
                        "members": json.dumps(list(dict.fromkeys(result.output["members"]))),
                        "action_date": result.output.get("action_date"),
                        "summary": result.output.get("summary", "")[:MAX_SUMMARY],
                        "dimensions": json.dumps(dims),
                        "confidence": result.output.get("confidence"),
                        "flags": json.dumps(flags),
                    }
                )
                self.summary.classified += 1
            else:
                error = redact(f"{result.outcome}: {result.error or ''}".strip())
                row.update({"status": "failed", "error": error})
                self.summary.fail(result.outcome, result.error)
            return self._insert(item, prompt, row)

    def _log_call(self, item: Item, prompt: RenderedPrompt, result: CallResult) -> int:
        return log_call(
            self.db,
            result,
            backend=self.backend.name,
            model=self.backend.model_for(item.rubric),
            prompt_name=self.template.name,
            prompt_sha=prompt.sha,
            input_sha=item.content_sha,
            commitment=item.rubric.number,
            run_id=self.summary.run_id,
        )

    async def run(self, items: list[Item], on_done=None) -> ClassifySummary:
        started = time.monotonic()
        if items and (problem := await self.backend.preflight()):
            self.summary.stopped = problem
        items = self.backend.order(items)
        semaphore = asyncio.Semaphore(max(1, self.config.llm.concurrency) if self.backend.concurrent else 1)

        async def one(item: Item) -> None:
            async with semaphore:
                await self.classify(item)
            if on_done:
                on_done()

        await asyncio.gather(*(one(i) for i in items))
        self.summary.elapsed += time.monotonic() - started
        return self.summary


def document_items(
    db: sqlite_utils.Database,
    rubrics: list[Rubric],
    *,
    since: dt.date | None = None,
    limit: int | None = None,
) -> list[Item]:
    """The current version of every stored document (published since ``since``) x every rubric."""
    sql = f"""
        select v.document_id as id, v.version, v.content_sha256, v.text, v.published, v.language
        from ({CURRENT_VERSIONS}) v
        where (:since is null or v.published >= :since) and v.kind != 'gold'
        order by v.published desc, v.document_id desc
    """
    rows = list(db.query(sql, {"since": since.isoformat() if since else None}))
    if limit is not None:
        rows = rows[:limit]
    return [
        Item(
            text=row["text"],
            content_sha=row["content_sha256"],
            rubric=rubric,
            document_id=row["id"],
            version=row["version"],
            published=row["published"],
            language=row["language"],
        )
        for row in rows
        for rubric in rubrics
    ]


def pending_items(
    db: sqlite_utils.Database,
    rubrics: list[Rubric],
    classifier: Classifier,
    *,
    limit: int | None = None,
) -> tuple[list[Item], int]:
    """What is still to classify: the current version of each stored document (newest first) x
    each rubric with no successful classification by this model and prompt. Returns the items of
    at most ``limit`` documents and the number of documents pending in all.

    New and changed documents, and those whose last attempt failed, are all pending; work done
    by an earlier (even killed) run is not, so a rerun picks up where the last one stopped.
    """
    keys = {r.number: render(classifier.template, r, "").system_sha for r in rubrics}
    sql = f"""
        select v.document_id as id, v.version, v.content_sha256, v.published, v.language
        from ({CURRENT_VERSIONS}) v
        where v.kind != 'gold' and not exists (
            select 1 from classifications c
            where c.content_sha = v.content_sha256 and c.commitment = :commitment and c.model = :model
              and c.system_sha = :system_sha and c.status = 'ok' and (c.prefilter_model is null
                or (c.prefilter_model = :prefilter_model and c.prefilter_probability < :prefilter_threshold)))
        order by v.published desc, v.document_id desc
    """
    pending: dict[int, tuple[dict, list[Rubric]]] = {}
    for rubric in rubrics:
        params = {
            "commitment": rubric.number,
            "model": classifier.backend.model_for(rubric),
            "system_sha": keys[rubric.number],
        }
        params["prefilter_model"], params["prefilter_threshold"] = classifier.prefilter_key(rubric)
        for row in db.query(sql, params):
            pending.setdefault(row["id"], (row, []))[1].append(rubric)
    order = sorted(pending.values(), key=lambda p: (p[0]["published"] or "", p[0]["id"]), reverse=True)
    chosen = order[:limit] if limit is not None else order
    texts: dict[tuple[int, int], str] = {}
    ids = [row["id"] for row, _ in chosen]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = (
            f"select v.document_id, v.version, v.text from ({CURRENT_VERSIONS}) v"
            f" where v.document_id in ({','.join('?' * len(chunk))})"
        )
        texts |= {(r[0], r[1]): r[2] for r in db.execute(sql, chunk).fetchall()}
    items = [
        Item(
            text=texts[(row["id"], row["version"])],
            content_sha=row["content_sha256"],
            rubric=rubric,
            document_id=row["id"],
            version=row["version"],
            published=row["published"],
            language=row["language"],
        )
        for row, rubrics_left in chosen
        for rubric in rubrics_left
    ]
    return items, len(order)


_DETECTED: dict[str, str | None] = {}


def _detected_language(content_sha: str, text: str) -> str | None:
    """The language of a text with none stored (an evaluation item): detected once per text."""
    if content_sha not in _DETECTED:
        from .languages import page_language

        if len(_DETECTED) > 20_000:
            _DETECTED.clear()
        _DETECTED[content_sha] = page_language(text, None)[0]
    return _DETECTED[content_sha]


def text_item(text: str, rubric: Rubric, **kwargs: Any) -> Item:
    return Item(text=text, content_sha=sha256(text), rubric=rubric, **kwargs)
