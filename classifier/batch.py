"""The OpenAI Batch API, for backfills: `evidence classify --batch`.

The requests are the ones a live call sends (the same messages, parameters and instructor mode,
so the same prompt sha and cache identity), written as JSONL with the item's identity as
``custom_id``, uploaded (``POST /files``, purpose ``batch``) and submitted as one batch
(``POST /batches``, endpoint ``/v1/chat/completions``, window 24h). The batch is polled with a
growing wait, and its output and error files are read back; every line becomes a
:class:`~classifier.llm.CallResult` judged as a live call's is (validation, refusals, cut-off
answers, HTTP errors), then stored as a live call is (call log, grounding, classification). No
re-asks: an answer that fails validation is an ``invalid-output`` failure, which the next run
(live or batch) sends again.

A batch is a row of the ``batches`` table (migration m016) from before it is created: a run
killed at any point is picked up by the next ``classify --batch``, which polls the batch in
flight (or finds the one created just before the kill, by its input file) instead of
submitting the same requests again.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlite_utils
from pydantic import BaseModel, ValidationError

from . import instructions
from .classify import Classifier, Item, _detected_language
from .config import Config, ConfigError
from .dates import now_utc
from .endpoint import OpenAIBackend, _count, _dump, _not_a_completion, _refused
from .failpoints import failpoint
from .llm import CallResult, one_line, unexpected
from .prompts import RenderedPrompt, render
from .redaction import redact, redact_all
from .rubric import Rubric, rubrics_for
from .store import new_id

ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
WINDOW: Final[Literal["24h"]] = "24h"
# the provider's statuses after which a batch changes no more
FINAL = ("completed", "failed", "expired", "cancelled")
# OpenAI takes input files of up to 200 MB: a batch is cut before its file passes this
MAX_FILE_BYTES = 190_000_000


class BatchError(ValueError):
    """A batch that cannot be submitted, polled or read back (one line; what is stored stays)."""


def custom_id(item: Item) -> str:
    """A request's id in the batch: the item's identity (commitment and content hash); with the
    batch's model and prompt, the cache key of its classification."""
    return f"{item.rubric.number}:{item.content_sha}"


@dataclass
class _Request:
    custom_id: str
    item: Item
    prompt: RenderedPrompt
    planted: list[instructions.Span]


@dataclass
class BatchSummary:
    """What a `classify --batch` did: the batches it submitted and picked up, and their ends."""

    submitted: list[str]
    resumed: list[str]
    finished: dict[str, str]  # batch id -> final status

    def lines(self) -> list[str]:
        out = []
        if self.resumed:
            out.append(f"picked up {len(self.resumed)} batch(es) in flight: {', '.join(self.resumed)}")
        if self.submitted:
            out.append(f"submitted {len(self.submitted)} batch(es): {', '.join(self.submitted)}")
        out += [f"batch {b}: {status}" for b, status in self.finished.items()]
        return out


def check_backend(classifier: Classifier) -> OpenAIBackend:
    """The classifier's backend, if it is the openai one (the only one with a Batch API)."""
    backend = classifier.backend
    if not isinstance(backend, OpenAIBackend):
        raise ConfigError(
            f"--batch needs the openai backend, not {backend.name!r}: "
            'set [llm] backend = "openai" or pass --backend openai'
        )
    return backend


class BatchRunner:
    """Submits, polls and reads back batches for one database and configuration.

    ``classifier`` is the live path's: its template, cache, output models and storage are the
    batch's too. ``sleep`` and ``echo`` are what tests and the CLI inject.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        config: Config,
        classifier: Classifier,
        *,
        api_key: str | None = None,
        http_client: Any = None,
        echo: Callable[[str], None] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ):
        from openai import AsyncOpenAI

        self.db = db
        self.config = config
        self.classifier = classifier
        self.backend = check_backend(classifier)
        llm = self.backend.config
        key = api_key if api_key is not None else os.environ.get(llm.api_key_env)
        # Files and batches are not chat completions: openai's own retries (which honour
        # Retry-After) are enough, and an output file may be far over a chat reply's bound.
        self._client = AsyncOpenAI(
            api_key=key,
            base_url=llm.base_url,
            timeout=max(llm.timeout, 120.0),
            max_retries=3,
            http_client=http_client,
        )
        self.echo = echo or (lambda _line: None)
        self.sleep = sleep
        self._texts: dict[str, Item] = {}  # custom_id -> item, for the batches this process submitted

    @property
    def url(self) -> str:
        return self.backend.config.base_url or "https://api.openai.com/v1"

    async def close(self) -> None:
        await self._client.close()

    # -- what is in flight ----------------------------------------------------------------------------

    def in_flight(self) -> list[dict]:
        """Batches submitted to this endpoint whose results are not stored yet, oldest first."""
        return list(
            self.db.query(
                "select * from batches where state in ('submitting', 'submitted') and base_url = ? order by id",
                [self.url],
            )
        )

    async def run(self, items: list[Item]) -> BatchSummary:
        """Pick up the batches in flight, if any; else submit ``items`` (those not cached); then
        poll every batch to its end and store its results."""
        summary = BatchSummary([], [], {})
        # texts of a batch in flight are found among these first (then among stored documents)
        self._texts.update((custom_id(i), i) for i in items)
        if items and (problem := await self.backend.preflight()):
            self.classifier.summary.stopped = problem
            return summary
        # a run stopped before its upload was stored submitted nothing: its requests are
        # among the items still to classify, and go into this run's batch
        with self.db.atomic():
            self.db.execute("delete from batches where state = 'uploading' and base_url = ?", [self.url])
        rows = self.in_flight()
        if rows:
            summary.resumed = [r["batch_id"] or f"(row {r['id']}, not created yet)" for r in rows]
        else:
            rows = await self.submit(items)
            summary.submitted = [r["batch_id"] for r in rows]
        for row in rows:
            row = await self._created(row)
            failpoint("batch.submitted")
            batch = await self.poll(row)
            summary.finished[row["batch_id"]] = batch.status
            await self.collect(self._row(row["id"]), batch)
        return summary

    # -- submitting -------------------------------------------------------------------------------------

    def requests(self, items: list[Item]) -> list[_Request]:
        """The items still to classify (not cached), one request each (the same content under
        two documents is one request: its classification is keyed by content)."""
        out: dict[str, _Request] = {}
        for item in items:
            planted = instructions.find(item.text)
            prompt = render(
                self.classifier.template,
                item.rubric,
                item.text,
                max_chars=self.backend.config.max_doc_chars,
                instruction_like=len(planted),
                language=item.language or _detected_language(item.content_sha, item.text),
            )
            if self.classifier.cached(item, prompt) is None:
                out.setdefault(custom_id(item), _Request(custom_id(item), item, prompt, planted))
        return list(out.values())

    def line(self, request: _Request) -> dict[str, Any]:
        """One JSONL line: the body a live call would send for this item."""
        from instructor.processing.response import handle_response_model

        model = self.classifier._output_model(request.item.rubric)
        _, body = handle_response_model(
            model, mode=self.backend._mode, **self.backend.request_kwargs(list(request.prompt.messages()))
        )
        return {"custom_id": request.custom_id, "method": "POST", "url": ENDPOINT, "body": body}

    async def submit(self, items: list[Item]) -> list[dict]:
        """Write, upload and create the batches for ``items``; returns their rows."""
        requests = self.requests(items)
        self.classifier.summary.cached += len(items) - len(requests)
        requests = await self._prefiltered(requests)
        rows = []
        chunk: list[tuple[_Request, bytes]] = []
        size = 0
        for request in requests:
            data = json.dumps(self.line(request), ensure_ascii=False).encode("utf-8") + b"\n"
            if chunk and (
                len(chunk) >= self.backend.config.batch_max_requests or size + len(data) > MAX_FILE_BYTES
            ):
                rows.append(await self._submit(chunk))
                chunk, size = [], 0
            chunk.append((request, data))
            size += len(data)
        if chunk:
            rows.append(await self._submit(chunk))
        return rows

    async def _prefiltered(self, requests: list[_Request]) -> list[_Request]:
        """The requests the classifier's prefilter does not rule out; the others are stored as a
        live run stores them (not relevant, the learned model's verdict, no call) and never sent."""
        prefilter = self.classifier.prefilter
        if prefilter is None:
            return requests
        kept = []
        for request in requests:
            item = request.item
            verdict = await prefilter.judge(item.rubric, item.text[: request.prompt.chars])
            if verdict.ruled_out:
                self.classifier._store_ruled_out(item, request.prompt, verdict, request.planted)
            else:
                kept.append(request)
        return kept

    async def _submit(self, chunk: list[tuple[_Request, bytes]]) -> dict:
        llm = self.backend.config
        for request, _ in chunk:
            self._texts[request.custom_id] = request.item
        items = [
            {
                "custom_id": r.custom_id,
                "content_sha": r.item.content_sha,
                "commitment": r.item.rubric.number,
                "prompt_sha": r.prompt.sha,
                "document_id": r.item.document_id,
                "version": r.item.version,
                "published": r.item.published,
            }
            for r, _ in chunk
        ]
        settings = {
            "mode": llm.mode,
            "temperature": llm.temperature,
            "max_output_tokens": llm.max_output_tokens,
            "max_doc_chars": llm.max_doc_chars,
        }
        row_id = new_id(
            self.db.table("batches").insert(
                {
                    "state": "uploading",
                    "backend": self.backend.name,
                    "model": self.backend.model,
                    "prompt_name": self.classifier.template.name,
                    "base_url": self.url,
                    "settings": json.dumps(settings),
                    "items": json.dumps(items),
                    "requests": len(items),
                    "run_id": self.classifier.summary.run_id,
                    "created_utc": now_utc(),
                    "updated_utc": now_utc(),
                }
            )
        )
        failpoint("batch.uploading")
        data = b"".join(d for _, d in chunk)
        file = await self._call(
            "upload the batch's requests",
            self._client.files.create(file=(f"evidence-batch-{row_id}.jsonl", data), purpose="batch"),
        )
        self._update(row_id, state="submitting", input_file_id=file.id)
        return await self._created(self._row(row_id), fresh=True)

    async def _created(self, row: dict, *, fresh: bool = False) -> dict:
        """The row with its batch created at the provider (once: a batch already created for
        its input file, by a run killed before it stored the id, is adopted)."""
        if row["batch_id"]:
            return row
        adopted = None
        if not fresh:  # the newest batches, where one created just before a kill would be
            page = await self._call("list the batches", self._client.batches.list(limit=100))
            adopted = next((b for b in page.data if b.input_file_id == row["input_file_id"]), None)
        if adopted is None:
            adopted = await self._call(
                "create the batch",
                self._client.batches.create(
                    input_file_id=row["input_file_id"],
                    endpoint=ENDPOINT,
                    completion_window=WINDOW,
                    metadata={"evidence_run": row["run_id"] or "", "evidence_row": str(row["id"])},
                ),
            )
            failpoint("batch.created")
        self._update(row["id"], state="submitted", batch_id=adopted.id, status=adopted.status)
        self.echo(
            f"batch {adopted.id}: {row['requests']} requests submitted to {self.url} ({adopted.status})"
        )
        return self._row(row["id"])

    # -- polling ------------------------------------------------------------------------------------------

    async def poll(self, row: dict) -> Any:
        """The batch, polled until it ends (waits grow by half, up to [llm] batch_poll_max)."""
        wait = self.backend.config.batch_poll
        last = None
        while True:
            batch = await self._call(
                f"poll batch {row['batch_id']}", self._client.batches.retrieve(row["batch_id"])
            )
            counts = batch.request_counts.model_dump() if batch.request_counts else None
            errors = (
                [one_line(f"{e.code}: {e.message}", 200) for e in (batch.errors.data or [])]
                if batch.errors and batch.errors.data
                else []
            )
            self._update(
                row["id"],
                status=batch.status,
                output_file_id=batch.output_file_id,
                error_file_id=batch.error_file_id,
                request_counts=json.dumps(counts) if counts else None,
                error="; ".join(errors) or None,
            )
            if batch.status != last:
                done = f", {counts['completed']} of {counts['total']} done" if counts else ""
                self.echo(f"batch {batch.id}: {batch.status}{done}")
                last = batch.status
            if batch.status in FINAL:
                return batch
            await self.sleep(wait)
            wait = min(wait * 1.5, self.backend.config.batch_poll_max)

    # -- reading back -------------------------------------------------------------------------------------

    async def collect(self, row: dict, batch: Any) -> None:
        """Store the result of every request in the batch, as a live call's is stored."""
        lines: dict[str, dict] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._call(f"download file {file_id}", self._client.files.content(file_id))
                for text in content.text.splitlines():
                    try:
                        line = json.loads(text)
                    except ValueError:
                        continue  # a line we cannot attribute: its request gets the missing-line failure
                    if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
                        lines.setdefault(line["custom_id"], line)
        settings = json.loads(row["settings"])
        classifier = self._classifier_for(row, settings)
        backend = check_backend(classifier)
        price, _ = backend.config.price_of(row["model"])
        share = price.batch if price is not None else 1.0
        for entry in json.loads(row["items"]):
            rubric = _rubric(entry["commitment"])
            item = self._item(entry, rubric)
            if item is None or rubric is None:
                continue
            planted = instructions.find(item.text)
            prompt = render(
                classifier.template,
                rubric,
                item.text,
                max_chars=settings["max_doc_chars"],
                instruction_like=len(planted),
            )
            if self._stored(row, entry, prompt):
                continue
            record = {**backend.request_record(prompt, classifier._output_model(rubric)),
                      "batch": row["batch_id"], "custom_id": entry["custom_id"]}  # fmt: skip
            if prompt.sha != entry["prompt_sha"]:
                result = CallResult(
                    "client-error",
                    request=record,
                    error="the prompt renders differently from when the batch was submitted (prompt file or budget changed)",
                )
            else:
                result = judge(
                    lines.get(entry["custom_id"]),
                    batch,
                    classifier._output_model(rubric),
                    backend._mode,
                    request=record,
                )
            result.cost = backend.price(result.tokens_in, result.tokens_out, result.cached_tokens) * share
            summary = classifier.summary
            summary.calls += 1
            summary.tokens_in += result.tokens_in
            summary.tokens_out += result.tokens_out
            summary.cached_tokens += result.cached_tokens
            summary.cost += result.cost
            classifier._store(item, prompt, result, planted)
        self._update(row["id"], state="collected", collected_utc=now_utc())

    def _stored(self, row: dict, entry: dict, prompt: RenderedPrompt) -> bool:
        """Whether this request's result is already stored (ok by any run, or from this batch by a
        run killed while it read the batch back)."""
        found = self.db.execute(
            """select 1 from classifications c left join llm_calls l on l.id = c.call_id
               where c.content_sha = ? and c.commitment = ? and c.prompt_sha = ? and c.model = ?
                 and (c.status = 'ok' or json_extract(l.request, '$.batch') = ?) limit 1""",
            [entry["content_sha"], entry["commitment"], prompt.sha, row["model"], row["batch_id"]],
        ).fetchone()
        return found is not None

    def _classifier_for(self, row: dict, settings: dict) -> Classifier:
        """The classifier a batch's results are judged and stored with: this run's, unless the
        batch was submitted with another model, prompt or request settings."""
        c = self.classifier
        llm = self.backend.config
        wanted = {
            "model": row["model"],
            "mode": settings["mode"],
            "temperature": settings["temperature"],
            "max_output_tokens": settings["max_output_tokens"],
            "max_doc_chars": settings["max_doc_chars"],
        }
        if row["prompt_name"] == c.template.name and all(getattr(llm, k) == v for k, v in wanted.items()):
            return c
        config = self.config.model_copy(update={"llm": llm.model_copy(update=wanted)})
        other = Classifier(self.db, config, backend="openai", prompt=row["prompt_name"])
        other.summary = c.summary
        return other

    def _item(self, entry: dict, rubric: Rubric | None) -> Item | None:
        known = self._texts.get(entry["custom_id"])
        if known is not None:
            return known
        found = None
        if entry.get("document_id") is not None:
            found = self.db.execute(
                "select text from document_versions where document_id = ? and version = ?",
                [entry["document_id"], entry["version"]],
            ).fetchone()
        if found is None:
            found = self.db.execute(
                "select text from document_versions where content_sha256 = ? limit 1", [entry["content_sha"]]
            ).fetchone()
        if found is None or rubric is None:
            self.classifier.summary.skipped["text-gone"] += 1
            return None
        return Item(
            text=found[0],
            content_sha=entry["content_sha"],
            rubric=rubric,
            document_id=entry.get("document_id"),
            version=entry.get("version"),
            published=entry.get("published"),
        )

    # -- the database and the endpoint ------------------------------------------------------------------

    def _row(self, row_id: int) -> dict:
        return dict(self.db.table("batches").get(row_id))

    def _update(self, row_id: int, **values: Any) -> None:
        self.db.table("batches").update(row_id, {**values, "updated_utc": now_utc()})

    async def _call(self, what: str, call: Awaitable[Any]) -> Any:
        import openai

        try:
            return await call
        except openai.APIStatusError as exc:
            problem = f"HTTP {exc.status_code}: {one_line(exc.message, 200)}"
        except openai.APIError as exc:
            problem = one_line(str(exc), 200)
        raise BatchError(
            redact(
                f"{self.url}: could not {what} ({problem}); what was submitted is stored: "
                "rerun `evidence classify --batch` to pick it up"
            )
        )


def _rubric(number: int) -> Rubric | None:
    try:
        return rubrics_for(number)[0]
    except Exception:
        return None


def judge(
    line: dict | None, batch: Any, output_model: type[BaseModel], mode: Any, *, request: dict
) -> CallResult:
    """One request's result, from its line of the output or error file (None: no line), judged as
    a live call's reply is; no re-asks."""
    from instructor.core.exceptions import IncompleteOutputException
    from instructor.processing.response import process_response
    from openai.types.chat import ChatCompletion

    result = CallResult("invalid-response", request=request)
    if line is None:
        result.outcome, result.error = _missing(batch)
        return result
    response = line.get("response") if isinstance(line.get("response"), dict) else None
    error = line.get("error") if isinstance(line.get("error"), dict) else None
    if response is None:
        code = str((error or {}).get("code") or "")
        message = one_line(str((error or {}).get("message") or "no message"), 300)
        if code == "batch_expired":
            result.outcome = "expired"
        else:
            result.outcome = "batch-failed"
        result.error = f"{code or 'error'}: {message}"
        return result
    status = response.get("status_code")
    body = response.get("body")
    result.raw_response = redact(json.dumps(body, ensure_ascii=False)[:4096]) if body is not None else None
    if status != 200:
        detail = body.get("error") if isinstance(body, dict) else None
        said = detail.get("message") if isinstance(detail, dict) else body
        result.outcome = "rate-limited" if status == 429 else "http-error"
        result.error = one_line(f"HTTP {status}: {said}")
        return result
    try:
        completion = ChatCompletion.model_validate(body)
    except ValidationError as exc:
        result.error = (
            f"the batch's answer is not a chat completion: JSON of another shape ({exc.error_count()} errors)"
        )
        return result
    usage = completion.usage
    if usage is not None:
        result.tokens_in = _count(usage.prompt_tokens)
        result.tokens_out = _count(usage.completion_tokens)
        details = usage.prompt_tokens_details
        result.cached_tokens = _count(getattr(details, "cached_tokens", 0))
    result.raw_response = redact(_dump(completion))
    if (problem := _not_a_completion(completion)) is not None:
        result.error = f"the batch's answer is not a chat completion: {problem}"
        return result
    if _refused(completion):
        result.outcome, result.error = "refused", "the model refused to answer"
        return result
    truncated = (
        f"the answer was cut off at max_output_tokens ({request.get('max_tokens')}): "
        "raise [llm] max_output_tokens"
    )
    if completion.choices[0].finish_reason == "length":
        result.outcome, result.error = "output-truncated", truncated
        return result
    try:
        parsed = process_response(completion, response_model=output_model, stream=False, mode=mode)
    except IncompleteOutputException:
        result.outcome, result.error = "output-truncated", truncated
        return result
    except Exception as exc:  # the model's answer does not validate (or parse): no re-ask in a batch
        if isinstance(exc, (ValidationError, ValueError)):
            result.outcome = "invalid-output"
            result.error = one_line(f"output failed validation (a batch answer, not re-asked): {exc}")
        else:
            result.outcome, result.error = "client-error", unexpected(exc)
        return result
    result.outcome, result.output = "ok", redact_all(parsed.model_dump(mode="json"))
    return result


def _missing(batch: Any) -> tuple[str, str]:
    """The outcome and error of a request the batch's files have no line for."""
    status = getattr(batch, "status", None)
    if status == "expired":
        return "expired", "the batch expired (24 h window) before this request was done"
    if status == "cancelled":
        return "batch-failed", "the batch was cancelled before this request was done"
    if status == "failed":
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        reason = "; ".join(f"{e.code}: {e.message}" for e in errors[:3]) or "no reason given"
        return "batch-failed", one_line(f"the batch failed: {reason}")
    return "invalid-response", "the batch's output and error files have no line for this request"


def batch_rows(db: sqlite_utils.Database, limit: int = 20) -> list[dict]:
    """Stored batches, newest first (`evidence classify --batch --status`)."""
    return list(db.query("select * from batches order by id desc limit ?", [limit]))


def status_lines(db: sqlite_utils.Database, limit: int = 20) -> list[str]:
    """One line per stored batch: row, provider id, state and status, requests and counts, model."""
    rows = batch_rows(db, limit)
    if not rows:
        return ["no batches submitted"]
    out = []
    for r in rows:
        counts = json.loads(r["request_counts"]) if r["request_counts"] else None
        done = f", {counts['completed']} completed / {counts['failed']} failed" if counts else ""
        error = f", error: {r['error']}" if r["error"] else ""
        out.append(
            f"{r['id']}  {r['batch_id'] or '(not created)'}  {r['state']}/{r['status'] or '-'}  "
            f"{r['requests']} requests{done}  {r['model']} {r['prompt_name']}  {r['created_utc']}{error}"
        )
    return out


async def run_batch(
    db: sqlite_utils.Database,
    config: Config,
    classifier: Classifier,
    items: list[Item],
    *,
    echo: Callable[[str], None] | None = None,
    api_key: str | None = None,
    http_client: Any = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> BatchSummary:
    """``classify --batch``: pick up or submit, poll, store; the runner's connections closed."""
    import time

    started = time.monotonic()
    runner = BatchRunner(
        db, config, classifier, api_key=api_key, http_client=http_client, echo=echo, sleep=sleep
    )
    try:
        return await runner.run(items)
    finally:
        await runner.close()
        classifier.summary.elapsed += time.monotonic() - started
