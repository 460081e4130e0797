"""Numbered schema migrations. Never edit one that has shipped: add the next."""

from __future__ import annotations

import hashlib
import json

from sqlite_utils import Database, Migrations

migrations = Migrations("g7-evidence")


@migrations()
def m001_gold(db: Database) -> None:
    """Compliance reports as data: reports, chapters, member sections, evidence, footnotes."""
    db.table("reports").create(
        {
            "id": str,  # sha256:<hex> of the file's text
            "file_name": str,
            "version": int,
            "kind": str,
            "summit": str,
            "period_start": str,
            "period_end": str,
            "source_format": str,
            "chars": int,
            "imported_utc": str,
        },
        pk="id",
    )
    db.table("reports").create_index(["file_name", "version"], unique=True)
    db.table("commitments").create(
        {
            "id": int,
            "report_id": str,
            "number": int,
            "title": str,
            "commitment": str,
            "commitment_source": str,
            "features": str,
            "definitions": str,  # JSON list of {term, definition}
            "dimensions": str,  # JSON list of {number, name, description} as the report writes them
            "guidelines": str,  # JSON {full, partial, non, strong_examples, weak_examples}
            "scoring_guidelines": str,  # JSON {"-1": text, "0": text, "+1": text}
            "background": str,  # JSON list of paragraphs
            "average_printed": str,
            "line": int,
        },
        pk="id",
        foreign_keys=[("report_id", "reports", "id")],
    )
    db.table("commitments").create_index(["report_id", "number"], unique=True)
    db.table("member_sections").create(
        {
            "id": int,
            "commitment_id": int,
            "member": str,
            "position": int,
            "score": int,
            "table_score": int,
            "table_column": str,
            "heading_score": int,
            "sentence_score": int,
            "analysts": str,  # JSON list
            "opening": str,
            "conclusions": str,  # JSON list of paragraphs
            "score_sentence": str,
            "line": int,
        },
        pk="id",
        foreign_keys=[("commitment_id", "commitments", "id")],
    )
    db.table("member_sections").create_index(["commitment_id", "member"], unique=True)
    db.table("footnotes").create(
        {
            "report_id": str,
            "number": int,
            "title": str,
            "publisher": str,
            "place": str,
            "published": str,
            "published_raw": str,
            "accessed": str,
            "url": str,
            "translation": str,
            "raw": str,
            "line": int,
        },
        pk=("report_id", "number"),
        foreign_keys=[("report_id", "reports", "id")],
    )
    db.table("gold_evidence").create(
        {
            "id": int,
            "key": str,  # stable across re-imports of the same text: <report sha prefix>:<n>:<member>:<seq>
            "report_id": str,
            "commitment_id": int,
            "commitment": int,
            "member": str,
            "seq": int,
            "date": str,
            "date_raw": str,
            "date_source": str,
            "text": str,
            "footnotes": str,  # JSON list of footnote numbers, in citation order
            "line": int,
        },
        pk="id",
        foreign_keys=[("report_id", "reports", "id"), ("commitment_id", "commitments", "id")],
    )
    db.table("gold_evidence").create_index(["key"], unique=True)
    db.table("gold_evidence").create_index(["commitment", "member"])
    db.table("parse_warnings").create(
        {
            "id": int,
            "report_id": str,
            "code": str,
            "message": str,
            "line": int,
            "commitment": int,
            "member": str,
        },
        pk="id",
        foreign_keys=[("report_id", "reports", "id")],
    )


@migrations()
def m002_corpus(db: Database) -> None:
    """Press releases: raw responses, documents and their versions, the fetch log, links to gold."""
    db.table("raw_responses").create(
        {
            "sha256": str,  # sha256:<hex> of the body as received
            "content_type": str,
            "size": int,
            "compression": str,  # zlib
            "body": bytes,
            "stored_utc": str,
        },
        pk="sha256",
    )
    db.table("documents").create(
        {
            "id": int,
            "canonical_url": str,
            "first_url": str,
            "host": str,
            "kind": str,  # html | pdf
            "current_version": int,
            "etag": str,
            "last_modified": str,
            "first_seen_utc": str,
            "last_fetched_utc": str,
            "last_outcome": str,
        },
        pk="id",
    )
    db.table("documents").create_index(["canonical_url"], unique=True)
    db.table("document_versions").create(
        {
            "id": int,
            "document_id": int,
            "version": int,
            "content_sha256": str,  # of the extracted text: a new version only when this changes
            "raw_sha256": str,
            "fetched_utc": str,
            "final_url": str,
            "title": str,
            "text": str,
            "language": str,
            "site": str,
            "author": str,
            "description": str,
            "published": str,
            "date_source": str,
            "date_conflict": int,
            "date_candidates": str,  # JSON {metadata, url, text}
            "encoding": str,
            "encoding_source": str,
            "truncated": int,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id"), ("raw_sha256", "raw_responses", "sha256")],
    )
    db.table("document_versions").create_index(["document_id", "version"], unique=True)
    db.table("document_versions").create_index(["published"])
    db.table("document_aliases").create(
        {"url": str, "document_id": int}, pk="url"
    )  # other spellings of a page
    db.table("document_links").create(
        {
            "id": int,
            "canonical_url": str,
            "member": str,
            "commitment": int,
            "source": str,  # a sources.toml name, or 'gold'
            "report_id": str,
            "footnote": int,
            "item_date": str,  # the date a feed or listing gave the item
            "discovered_utc": str,
        },
        pk="id",
    )
    db.table("document_links").create_index(
        ["canonical_url", "member", "commitment", "source", "report_id", "footnote"], unique=True
    )
    db.table("fetch_log").create(
        {
            "id": int,
            "run_id": str,
            "url": str,
            "canonical_url": str,
            "purpose": str,  # document | feed | sitemap | listing
            "source": str,
            "started_utc": str,
            "elapsed_ms": int,
            "outcome": str,
            "status": int,
            "attempts": int,
            "bytes": int,
            "error": str,
            "document_id": int,
            "version": int,
        },
        pk="id",
    )
    db.table("fetch_log").create_index(["canonical_url"])
    db.table("fetch_log").create_index(["run_id"])
    db.table("source_state").create(
        {
            "source": str,
            "url": str,
            "etag": str,
            "last_modified": str,
            "last_crawled_utc": str,
            "last_outcome": str,
        },
        pk="source",
    )


@migrations()
def m003_classifications(db: Database) -> None:
    """Model calls (the cache and call log), grounded classifications, prompt versions seen."""
    db.table("prompt_versions").create({"name": str, "sha": str, "text": str}, pk="name")
    db.table("llm_calls").create(
        {
            "id": int,
            "backend": str,
            "model": str,
            "prompt_name": str,  # e.g. classify-v1
            "prompt_sha": str,  # of the rendered messages
            "input_sha": str,  # content sha256 of the document text
            "commitment": int,
            "request": str,  # JSON: messages and parameters (never a key)
            "raw_response": str,
            "parsed": str,  # JSON output as validated
            "outcome": str,  # ok | invalid-output | refused | timeout | rate-limited | http-error | network-error
            "error": str,
            "tokens_in": int,
            "tokens_out": int,
            "cached_tokens": int,
            "cost": float,
            "latency_ms": int,
            "retries": int,
            "run_id": str,
            "created_utc": str,
        },
        pk="id",
    )
    db.table("llm_calls").create_index(["input_sha", "commitment", "prompt_sha", "model"])
    db.table("classifications").create(
        {
            "id": int,
            "document_id": int,
            "version": int,
            "content_sha": str,
            "commitment": int,
            "backend": str,
            "model": str,
            "prompt_name": str,
            "prompt_sha": str,
            "call_id": int,
            "status": str,  # ok | failed
            "error": str,
            "relevant": int,
            "members": str,  # JSON list
            "action_date": str,
            "summary": str,
            "dimensions": str,  # JSON {id: {label, rationale, quotes: [{quote, start, end, method, score}], grounded}}
            "confidence": float,
            "flags": str,  # JSON list: outside_period, excluded:<id>, ungrounded, truncated
            "truncated": int,
            "created_utc": str,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id"), ("call_id", "llm_calls", "id")],
    )
    db.table("classifications").create_index(
        ["content_sha", "commitment", "prompt_sha", "model"], unique=True
    )
    db.table("classifications").create_index(["document_id", "commitment"])


@migrations()
def m004_queue(db: Database) -> None:
    """The analyst review queue: candidate actions, append-only decisions, claims."""
    db.table("queue_items").create(
        {
            "id": int,
            "document_id": int,
            "content_sha": str,
            "commitment": int,
            "member": str,
            "classification_id": int,
            "suggestion": str,  # JSON: labels, quotes, rationale, summary, date, confidence, flags, backend
            "suggestion_sha": str,
            "version": int,  # bumped by every suggestion change and every decision
            "attention": int,  # higher: look first (low confidence, ungrounded, flags, disagreement)
            "published": str,
            "created_utc": str,
            "updated_utc": str,
        },
        pk="id",
        foreign_keys=[("document_id", "documents", "id"), ("classification_id", "classifications", "id")],
    )
    db.table("queue_items").create_index(["document_id", "commitment", "member"], unique=True)
    db.table("queue_items").create_index(["member", "commitment", "published"])
    db.table("queue_items").create_index(["attention"])
    db.table("decisions").create(
        {
            "id": int,
            "item_id": int,
            "analyst": str,
            "action": str,  # accept | reject | relabel | edit | note
            "payload": str,  # JSON: reason, dimension+label, summary, note
            "based_on_version": int,
            "created_utc": str,
        },
        pk="id",
        foreign_keys=[("item_id", "queue_items", "id")],
    )
    db.table("decisions").create_index(["item_id"])
    # Decisions are append-only: the database itself refuses to change or remove one.
    db.execute(
        "CREATE TRIGGER decisions_append_only_update BEFORE UPDATE ON decisions "
        "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER decisions_append_only_delete BEFORE DELETE ON decisions "
        "BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END"
    )
    db.table("claims").create(
        {"item_id": int, "analyst": str, "claimed_utc": str, "expires_utc": str},
        pk="item_id",
        foreign_keys=[("item_id", "queue_items", "id")],
    )


@migrations()
def m005_eval(db: Database) -> None:
    """Evaluation runs against the gold and every per-item prediction."""
    db.table("eval_runs").create(
        {
            "id": str,
            "created_utc": str,
            "mode": str,  # title | paragraph | document
            "backend": str,
            "model": str,
            "prompt": str,
            "prompt_sha": str,
            "dataset_sha": str,
            "commitment": int,
            "config": str,  # JSON
            "metrics": str,  # JSON: action, dimension, score, run
            "note": str,
        },
        pk="id",
    )
    db.table("eval_predictions").create(
        {
            "id": int,
            "run_id": str,
            "item_id": str,
            "commitment": int,
            "kind": str,  # positive | out_of_period | background | other_commitment
            "member": str,
            "gold_date": str,
            "prediction": str,  # JSON, or null when the item failed
        },
        pk="id",
        foreign_keys=[("run_id", "eval_runs", "id")],
    )
    db.table("eval_predictions").create_index(["run_id"])


@migrations()
def m006_runs(db: Database) -> None:
    """Nightly runs: when, how each stage went, the summary."""
    db.table("runs").create(
        {
            "id": str,
            "started_utc": str,
            "finished_utc": str,
            "status": str,  # running | ok | failures | stopped-by-budget | crashed
            "since": str,  # items since this date were crawled
            "summary": str,  # JSON: per stage counts, failures by reason, tokens, cost, duration
            "exit_code": int,
        },
        pk="id",
    )


@migrations()
def m007_system_sha(db: Database) -> None:
    """The rendered system prompt (prompt version x rubric) of each classification, so the nightly
    job finds what is still to classify with one query instead of rendering every prompt."""
    db.table("classifications").add_column("system_sha", str)
    db.table("classifications").create_index(["content_sha", "commitment", "model", "system_sha"])


@migrations()
def m008_users(db: Database) -> None:
    """Analyst accounts for the web interface, and their sessions (only a token's hash is stored)."""
    db.table("users").create(
        {
            "id": int,
            "name": str,
            "password_hash": str,  # argon2id
            "role": str,  # analyst | reader
            "disabled": int,
            "created_utc": str,
        },
        pk="id",
    )
    db.table("users").create_index(["name"], unique=True)
    db.table("sessions").create(
        {
            "id": str,  # sha256 of the cookie's token
            "user_id": int,
            "csrf": str,
            "created_utc": str,
            "expires_utc": str,
        },
        pk="id",
        foreign_keys=[("user_id", "users", "id")],
    )


@migrations()
def m009_item_state(db: Database) -> None:
    """Each item's state (pending | accepted | rejected) kept on the item by the decision that sets
    it, so the queue filters, counts and orders 100,000 items with indexes instead of a subquery
    per item; the decisions stay the record it is derived from."""
    db.table("queue_items").add_column("state", str, not_null_default="pending")
    db.execute(
        """
        update queue_items set state = coalesce(
            (select case d.action when 'accept' then 'accepted' else 'rejected' end
             from decisions d where d.item_id = queue_items.id and d.action in ('accept', 'reject')
             order by d.id desc limit 1), 'pending')
        """
    )
    db.execute(
        "create index idx_queue_items_attention_order on queue_items (attention desc, published desc, id)"
    )
    db.execute(
        "create index idx_queue_items_state_attention on queue_items (state, attention desc, published desc, id)"
    )
    db.execute("create index idx_queue_items_state_member on queue_items (member, commitment, state)")


@migrations()
def m010_chapter_versions(db: Database) -> None:
    """A chapter is identified by what it is, (summit, report kind, commitment number), not by
    the file it came in: another file of the same chapter is a new version of it, and readers
    take the newest version of each chapter. ``content_sha`` (of the parsed chapter and the
    footnotes it cites) lets a file that repeats a chapter unchanged add no version of it.
    Existing chapters are numbered in the order they were imported."""
    db.table("commitments").add_column("summit", str)
    db.table("commitments").add_column("report_kind", str)
    db.table("commitments").add_column("version", int)
    db.table("commitments").add_column("content_sha", str)
    db.execute(
        """
        update commitments set
            summit = (select coalesce(r.summit, '') from reports r where r.id = commitments.report_id),
            report_kind = (select r.kind from reports r where r.id = commitments.report_id)
        """
    )
    db.execute(
        """
        with ranked as (
            select c.id, row_number() over (
                partition by c.summit, c.report_kind, c.number order by r.imported_utc, r.version, c.id
            ) as version
            from commitments c join reports r on r.id = c.report_id
        )
        update commitments set version = (select version from ranked where ranked.id = commitments.id)
        """
    )
    db.execute(
        "create unique index idx_commitments_chapter_version "
        "on commitments (summit, report_kind, number, version)"
    )


@migrations()
def m011_kebab_case_flags(db: Database) -> None:
    """Flags are spelt in kebab-case (``outside-period``, like ``backends-disagree``): the flags
    stored with classifications, queue items' suggestions and evaluation predictions are
    rewritten. A suggestion's hash is that of the suggestion as stored, so it is recomputed:
    the next queue fill finds the item unchanged; the item's version and decisions stay."""
    renamed = {"outside_period": "outside-period"}  # this migration's own list: never edit it

    def rewrite(flags: list) -> list:
        return [renamed.get(f, f) for f in flags]

    def rows(table: str, key: str, column: str, path: str):
        """Rows of ``table`` whose JSON ``column`` holds a flag to rename at ``path``."""
        names = ", ".join("?" * len(renamed))
        sql = (
            f"select {key}, {column} from {table} where {column} is not null and json_valid({column}) "
            f"and exists (select 1 from json_each({column}, '{path}') f where f.value in ({names}))"
        )
        return db.execute(sql, list(renamed)).fetchall()

    for key, flags in rows("classifications", "id", "flags", "$"):
        db.execute(
            "update classifications set flags = ? where id = ?", [json.dumps(rewrite(json.loads(flags))), key]
        )
    for key, raw in rows("queue_items", "id", "suggestion", "$.flags"):
        suggestion = json.loads(raw)
        suggestion["flags"] = rewrite(suggestion["flags"])
        sha = "sha256:" + hashlib.sha256(json.dumps(suggestion, sort_keys=True).encode()).hexdigest()
        db.execute(
            "update queue_items set suggestion = ?, suggestion_sha = ? where id = ?",
            [json.dumps(suggestion), sha, key],
        )
    for key, raw in rows("eval_predictions", "id", "prediction", "$.flags"):
        prediction = json.loads(raw)
        prediction["flags"] = rewrite(prediction["flags"])
        db.execute("update eval_predictions set prediction = ? where id = ?", [json.dumps(prediction), key])


@migrations()
def m015_learned_models(db: Database) -> None:
    """Learned models, one row per commitment and version: the model itself (gzip pickle, with
    its sha256 checked before loading), its settings, what it was trained on and its held-out
    figures. ``decisions_through`` is the last decision id it learned from, so the nightly job
    knows when new decisions call for a retrain."""
    db.table("learned_models").create(
        {
            "id": int,
            "commitment": int,
            "version": str,  # sha256: of the training examples and settings
            "model": str,  # the backend's model string: learned-tfidf-lr@<short version>
            "settings": str,  # JSON
            "counts": str,  # JSON: examples by source
            "figures": str,  # JSON: held-out figures and the thresholds chosen on them
            "decisions": int,  # decisions it learned from
            "decisions_through": int,
            "blob": bytes,
            "blob_sha256": str,
            "created_utc": str,
        },
        pk="id",
    )
    db.table("learned_models").create_index(["commitment", "version"], unique=True)


@migrations()
def m016_batches(db: Database) -> None:
    """Batches submitted to the OpenAI Batch API (`evidence classify --batch`), one row each,
    written before the batch is created and updated at every poll, so that a rerun after a kill
    picks up the batch in flight instead of submitting it again. ``items`` lists every request's
    custom_id with what is needed to store its result (the document version, the prompt sha)."""
    db.table("batches").create(
        {
            "id": int,
            "batch_id": str,  # the provider's id; null until the batch is created
            "state": str,  # uploading | submitting | submitted | collected
            "status": str,  # the provider's last status: validating, in_progress, completed, expired ...
            "backend": str,
            "model": str,
            "prompt_name": str,
            "base_url": str,  # where it was submitted (never the key)
            "settings": str,  # JSON: the request parameters and prompt budget it was built with
            "items": str,  # JSON list: custom_id, content_sha, commitment, prompt_sha, document_id, version
            "requests": int,
            "input_file_id": str,
            "output_file_id": str,
            "error_file_id": str,
            "request_counts": str,  # JSON: total, completed, failed as the provider last said
            "error": str,
            "run_id": str,
            "created_utc": str,
            "updated_utc": str,
            "collected_utc": str,
        },
        pk="id",
    )
    db.table("batches").create_index(["state"])


@migrations()
def m017_verdicts(db: Database) -> None:
    """Member x dimension verdicts: append-only analyst decisions on a whole dimension of a member's
    compliance (strong | weak | none | unassessed), each with its note, analyst, time and the cell
    version it was based on (optimistic concurrency), and what the proposal and the confirmed
    actions were when it was taken."""
    db.table("verdicts").create(
        {
            "id": int,
            "commitment": int,
            "member": str,
            "dimension": str,
            "label": str,  # strong | weak | none | unassessed
            "note": str,
            "analyst": str,
            "version": int,  # the cell's version this verdict makes: based_on_version + 1
            "based_on_version": int,
            "proposal": str,  # JSON: the proposal shown when the verdict was taken
            "actions": str,  # JSON: the confirmed actions (item ids and labels) it was taken on
            "created_utc": str,
        },
        pk="id",
    )
    # two analysts setting one cell from the same version: the second insert fails here
    db.table("verdicts").create_index(["commitment", "member", "dimension", "version"], unique=True)
    db.execute(
        "CREATE TRIGGER verdicts_append_only_update BEFORE UPDATE ON verdicts "
        "BEGIN SELECT RAISE(ABORT, 'verdicts are append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER verdicts_append_only_delete BEFORE DELETE ON verdicts "
        "BEGIN SELECT RAISE(ABORT, 'verdicts are append-only'); END"
    )


@migrations()
def m018_prefilter(db: Database) -> None:
    """Items the embedded learned model ruled out before a model endpoint saw them: which learned
    model version said so, and its calibrated probability of relevance. Such a classification is
    not relevant and has no call; it stands while that version is current and the probability is
    below the configured threshold, so a retrain (or a lower threshold) decides it again."""
    db.table("classifications").add_column("prefilter_model", str)
    db.table("classifications").add_column("prefilter_probability", float)


@migrations()
def m019_blind_coding(db: Database) -> None:
    """Double coding: the analysts an item is assigned to for blind coding, and each one's
    coding of it (accept, reject, relabel, note), append-only like decisions. A coding changes
    neither the item's version nor its decisions: until every assigned analyst has coded the
    item, nobody sees another's coding; then agreement settles it or a reconciling decision does."""
    db.table("coding_assignments").create(
        {"item_id": int, "analyst": str, "seed": int, "assigned_utc": str},
        pk=("item_id", "analyst"),
        foreign_keys=[("item_id", "queue_items", "id")],
    )
    db.table("codings").create(
        {
            "id": int,
            "item_id": int,
            "analyst": str,
            "action": str,  # accept | reject | relabel | note
            "payload": str,  # JSON: reason, dimension+label, note
            "based_on_version": int,
            "created_utc": str,
        },
        pk="id",
        foreign_keys=[("item_id", "queue_items", "id")],
    )
    db.table("codings").create_index(["item_id", "analyst"])
    for event in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER codings_append_only_{event.lower()} BEFORE {event} ON codings "
            "BEGIN SELECT RAISE(ABORT, 'codings are append-only'); END"
        )
