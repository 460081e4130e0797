"""Training the learned model from the database, storing it, and the ``learned`` backend.

``evidence learn`` (:func:`learn`) trains one model per commitment from the cold start (the
rubric, the current gold's cited actions, the shipped off-topic paragraphs) and every analyst
decision: an accepted item is a positive with its labels (after relabels), a rejected item a
negative, a relabelled item that is not rejected a positive with the analyst's labels. A model
is stored with its version (sha256 of what it learned from and its settings) and its figures;
training the same inputs again stores nothing. Each commitment has its own version, so a
decision on one commitment re-classifies that commitment's documents and nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sqlite3
import time
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ValidationError

from . import instructions, learned
from .dates import long_date, now_utc
from .extract import date_from_text
from .learned import Example, LearnedModel
from .llm import Backend, CallResult, one_line
from .rubric import Rubric

MODEL_PREFIX = "learned-tfidf-lr@"
SUMMARY_CHARS = 600


def _decisions(db: sqlite_utils.Database, commitment: int) -> tuple[list[dict], int]:
    """Decided items of a commitment: state, labels (after relabels), member, document text."""
    if not db["decisions"].exists():
        return [], 0
    items = {
        row["id"]: row
        for row in db.query(
            "select q.id, q.member, q.content_sha, json_extract(q.suggestion, '$.labels') as labels, "
            "json_extract(q.suggestion, '$.quotes') as quotes from queue_items q where q.commitment = ?",
            [commitment],
        )
    }
    state: dict[int, str] = {}
    relabels: dict[int, dict[str, str]] = {}
    last = 0
    sql = (
        "select id, item_id, action, payload from decisions where action in ('accept', 'reject', 'relabel') "
        "and item_id in (select id from queue_items where commitment = ?) order by id"
    )
    for decision_id, item_id, action, payload in db.execute(sql, [commitment]).fetchall():
        last = max(last, decision_id)
        if action == "relabel":
            change = json.loads(payload)
            relabels.setdefault(item_id, {})[change["dimension"]] = change["label"]
            state.setdefault(item_id, "relabelled")
        else:
            state[item_id] = "accepted" if action == "accept" else "rejected"
    out = []
    for item_id, s in state.items():
        item = items[item_id]
        text = db.execute(
            "select text from document_versions where content_sha256 = ? order by id desc limit 1",
            [item["content_sha"]],
        ).fetchone()
        if not text or not text[0]:
            continue
        labels = {**json.loads(item["labels"] or "{}"), **relabels.get(item_id, {})}
        out.append({"state": s, "member": item["member"], "labels": labels, "text": text[0]})
    return out, last


def _decision_text(text: str, settings: dict[str, Any], model: LearnedModel | None, commitment: int) -> str:
    """What an accepted document teaches: the document itself when it is short, else its window
    that the current model finds most relevant (a page is evidence by one passage, not all)."""
    if len(text) <= 2 * settings["window_chars"]:
        return text
    ws = learned.windows(text, settings["window_chars"], settings["max_windows"])
    if model is None or commitment not in model.commitments:
        return ws[0]
    return ws[model.judge(text, commitment).window]


def training_examples(db: sqlite_utils.Database, rubric: Rubric) -> tuple[list[Example], int, int]:
    """(examples, decisions used, last decision id) for one commitment."""
    from .gold import evidence_items

    n = rubric.number
    gold = [r for r in evidence_items(db, commitment=n)]
    examples = learned.rubric_examples(rubric) + learned.gold_examples(gold) + learned.offtopic_examples()
    decided, last = _decisions(db, n)
    previous = current_model(db, n)
    settings = learned.SETTINGS
    for d in decided:
        if d["state"] == "rejected":
            examples.append(Example(d["text"], n, False, source="decision"))
        else:
            labels = {
                k: v for k, v in d["labels"].items() if k in rubric.dimension_ids and v in learned.LABELS
            }
            text = _decision_text(d["text"], settings, previous, n)
            member = d["member"] if d["member"] in learned.MEMBER_NAMES else None
            examples.append(Example(text, n, True, member=member, labels=labels or None, source="decision"))
    return examples, len(decided), last


def learn(db: sqlite_utils.Database, rubrics: list[Rubric]) -> list[dict]:
    """Train and store each commitment's model; one row per commitment: version, whether it is
    new, what it learned from and its held-out figures."""
    rows = []
    for rubric in rubrics:
        started = time.monotonic()
        examples, used, last = training_examples(db, rubric)
        version = learned.version_of(examples, learned.SETTINGS)
        if (
            db["learned_models"].exists()
            and db.execute(
                "select 1 from learned_models where commitment = ? and version = ?", [rubric.number, version]
            ).fetchone()
        ):
            db.execute(
                "update learned_models set decisions_through = max(decisions_through, ?) "
                "where commitment = ? and version = ?",
                [last, rubric.number, version],
            )
            rows.append({"commitment": rubric.number, "version": version, "new": False, "decisions": used})
            continue
        with learned.limited_threads():
            model = learned.train(examples, [rubric])
        blob = model.to_bytes()
        row = {
            "commitment": rubric.number,
            "version": version,
            "model": model_name(version),
            "settings": json.dumps(model.settings, sort_keys=True),
            "counts": json.dumps(model.counts, sort_keys=True),
            "figures": json.dumps(model.figures, sort_keys=True),
            "decisions": used,
            "decisions_through": last,
            "blob": blob,
            "blob_sha256": learned.blob_sha(blob),
            "created_utc": now_utc(),
        }
        db.table("learned_models").insert(row)
        _loaded.pop(rubric.number, None)
        rows.append(
            {
                "commitment": rubric.number,
                "version": version,
                "new": True,
                "decisions": used,
                "examples": len(examples),
                "figures": model.figures.get(str(rubric.number), {}),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    return rows


def model_name(version: str) -> str:
    return MODEL_PREFIX + version.removeprefix("sha256:")[:16]


_loaded: dict[int, tuple[str, LearnedModel]] = {}


def _newest(db: sqlite_utils.Database, columns: str, commitment: int) -> tuple | None:
    """``columns`` of the commitment's newest stored model (None when there is none, or no table)."""
    try:
        return db.execute(
            f"select {columns} from learned_models where commitment = ? order by id desc limit 1",
            [commitment],
        ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise


def current_model(db: sqlite_utils.Database, commitment: int) -> LearnedModel | None:
    """The newest stored model of a commitment (loaded once per version), or None."""
    row = _newest(db, "id, version", commitment)
    if row is None:
        return None
    row_id, version = row
    cached = _loaded.get(commitment)
    if cached and cached[0] == version:
        return cached[1]
    # the blob (megabytes) is read only when the version changed
    blob, sha = db.execute("select blob, blob_sha256 from learned_models where id = ?", [row_id]).fetchone()
    model = LearnedModel.from_bytes(blob, sha)
    _loaded[commitment] = (version, model)
    return model


def pending_decisions(db: sqlite_utils.Database, rubrics: list[Rubric]) -> int:
    """Decisions newer than what the current models learned from (all of them when a commitment
    has no model yet)."""
    if not db["decisions"].exists():
        return 0
    total = 0
    for rubric in rubrics:
        through = 0
        if db["learned_models"].exists():
            row = db.execute(
                "select decisions_through from learned_models where commitment = ? order by id desc limit 1",
                [rubric.number],
            ).fetchone()
            through = row[0] if row else 0
        total += db.execute(
            "select count(*) from decisions where id > ? and action in ('accept', 'reject', 'relabel') "
            "and item_id in (select id from queue_items where commitment = ?)",
            [through or 0, rubric.number],
        ).fetchone()[0]
    return total


# ---------------------------------------------------------------------------
# The backend

BORDER_ARREST = re.compile(
    r"\b(arrest\w*|detain\w*|apprehend\w*|intercept\w*)\b[^.]{0,120}\b(at the border|border crossing|port of entry|border patrol|at the frontier)\b|"
    r"\b(at the border|border crossing|port of entry|border patrol)\b[^.]{0,120}\b(arrest\w*|detain\w*|apprehend\w*|intercept\w*)\b",
    re.I,
)


class LearnedBackend(Backend):
    """Embedded, no key, no server: the learned model of each commitment (see :mod:`classifier.learned`).

    Its model string names the commitment's model version, so a retrain of one commitment
    re-classifies that commitment's documents only. A dimension is labelled strong only when
    the calibrated probability of strong is above the threshold chosen on held-out folds.
    """

    name = "learned"
    model = MODEL_PREFIX.rstrip("@")
    concurrent = False
    calibrated = True
    learns_from_gold = True

    def __init__(self, **_: Any):
        self.db: sqlite_utils.Database | None = None

    def notice(self) -> str:
        return (
            "backend: learned (embedded TF-IDF + logistic regression, retrained by `evidence learn`; "
            "no model endpoint configured)"
        )

    def bind(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def model_for(self, rubric: Rubric) -> str:
        """The commitment's current model (trained from the cold start when it has none yet)."""
        if self.db is None:
            return self.model
        # asked several times per item: one indexed query, no look at the schema first
        row = _newest(self.db, "model", rubric.number)
        if row is None:
            learn(self.db, [rubric])
            return self.model_for(rubric)
        return row[0]

    def learned_model(self, rubric: Rubric) -> LearnedModel | None:
        """The model that judges this rubric's documents: the commitment's current stored one."""
        return current_model(self.db, rubric.number) if self.db is not None else None

    async def classify(
        self,
        prompt: Any,
        output_model: type[BaseModel],
        rubric: Rubric,
        document: str,
        *,
        published: str | None = None,
    ) -> CallResult:
        started = time.monotonic()
        request = {"model": self.model_for(rubric), "rubric": rubric.number, "document_chars": prompt.chars}
        if self.db is None:
            return CallResult(
                "client-error", request=request, error="learned backend used without a database"
            )
        model = self.learned_model(rubric)
        if model is None:
            return CallResult(
                "client-error", request=request, error=f"no learned model for commitment {rubric.number}"
            )
        text = instructions.neutralise(document[: prompt.chars])
        output = await asyncio.to_thread(self._classify, model, rubric, text, published)
        try:
            validated = output_model.model_validate(output)
        except ValidationError as exc:
            return CallResult("invalid-output", request=request, error=one_line(str(exc)))
        return CallResult(
            "ok",
            output=validated.model_dump(mode="json"),
            request=request,
            raw_response=json.dumps(output, default=str),
            latency=time.monotonic() - started,
        )

    def _classify(self, model: LearnedModel, rubric: Rubric, text: str, published: str | None) -> dict:
        return judgement_output(model, rubric, text, published)


def _sentences(window: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?。])\s+", window) if s.strip()]


def judgement_output(model: LearnedModel, rubric: Rubric, text: str, published: str | None) -> dict:
    """The classification output (the strict schema's fields) for one document."""
    with learned.limited_threads():
        j = model.judge(text, rubric.number) if text.strip() else None
    none = {d: {"label": "none", "rationale": "document not relevant to the commitment", "quotes": []}
            for d in rubric.dimension_ids}  # fmt: skip
    if j is None or not j.relevant:
        p = j.relevance if j else 0.0
        return {"relevant": False, "members": [], "action_date": None, "summary": "", "outside_period": False,
                "confidence": round(1 - p, 3), "exclusions": [], "dimensions": none}  # fmt: skip
    part = model.commitments[rubric.number]
    window = j.windows[j.window]
    sents = _sentences(window) or [window]
    with learned.limited_threads():
        per_sentence = model.judge_many(sents, rubric.number) if len(sents) > 1 else [j]
    dimensions = {}
    for d in rubric.dimension_ids:
        probs = j.dimensions[d]
        threshold = part.strong_threshold.get(d)
        p_strong = j.strong_probability[d]
        if threshold is not None and p_strong >= threshold:
            label = "strong"
        else:
            label = "weak" if probs["weak"] + probs["strong"] > probs["none"] else "none"
        best = max(range(len(sents)), key=lambda i, d=d: 1 - per_sentence[i].dimensions[d]["none"])  # type: ignore[misc]
        shown = "none" if threshold is None else f"{threshold:.2f}"
        dimensions[d] = {
            "label": label,
            "rationale": (
                f"P(strong) {p_strong:.2f} (calibrated; counts above {shown}, chosen on held-out folds), "
                f"P(weak) {probs['weak']:.2f}, P(none) {probs['none']:.2f}"
            ),
            "quotes": [] if label == "none" else [sents[best]],
        }
    when = date_from_text(window) or date_from_text(text) or published
    action_date = when[:10] if when and len(when) >= 10 else None
    outside = action_date is not None and not (
        rubric.period_start <= dt.date.fromisoformat(action_date) <= rubric.period_end
    )
    summary = ""
    for s in sents:  # whole sentences only, never one cut in the middle
        if summary and len(summary) + len(s) + 1 > SUMMARY_CHARS:
            break
        summary = f"{summary} {s}".strip()
    if action_date and not summary.startswith("On "):
        summary = f"On {long_date(action_date)}: {summary}"
    exclusions = [e.id for e in rubric.exclusions if e.belongs_to and BORDER_ARREST.search(text)]
    return {
        "relevant": True,
        "members": j.members,
        "action_date": action_date,
        "summary": summary[:1400],
        "confidence": round(j.relevance, 3),
        "outside_period": outside,
        "exclusions": exclusions,
        "dimensions": dimensions,
    }


__all__ = ["LearnedBackend", "current_model", "learn", "pending_decisions", "training_examples"]
