"""The evaluation dataset, built from the hand-coded report (one per input mode):
- positives: every cited action, as its footnote's headline (``title``, closest to what a
  crawler sees), the analyst's paragraph (``paragraph``: it often contains the analyst's
  own verdict, so it flatters the classifier), or the fetched document (``document``);
- negatives: the chapters' background paragraphs about earlier summits, and actions dated
  outside the compliance period;
- actions cited only under the other commitment, reported separately.

The ``stream`` mode is what a crawler meets: the cited actions (the analyst's paragraph) among the 246
real web pages of ``eval/data/realpages/`` (see its README), every page a negative for each commitment
(kind ``page``, or ``hard_page`` when it matches :data:`HARD_NEGATIVE`).

Nothing that classifies an item sees its gold: rubrics are passed without their gold and
notes (:func:`without_gold`), and the baseline learns nothing from gold paragraphs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from .documents import CURRENT_VERSIONS
from .gold import current_commitments, evidence_items
from .rubric import Rubric

MODES = ("title", "paragraph", "document", "stream")
# Real off-topic pages for the stream mode (eval/data/realpages/, see its README): all negatives.
REALPAGES = ("eval", "data", "realpages")
# A real page is a hard negative when its extracted text matches this (case-insensitive): it mentions
# migration, refugees, asylum, border control, smuggling or trafficking, in the pages' languages.
HARD_NEGATIVE = re.compile(
    r"\b(?:im|e)?migra(?:nt|tion|zion|ción|ção|tor)"  # migrants, migration (not "migrate a database")
    r"|refugee|asylum|border control|smuggl|traffick"  # en
    r"|flüchtling|asyl|grenzkontroll|schleus|schlepper|menschenhandel"  # de
    r"|réfugié|refugiad|passeur|trafic d|traite des êtres"  # fr, es, pt
    r"|rifugiat|profugh|contrabband|traffico d",  # it
    re.IGNORECASE,
)
FLATTERY = (
    "paragraph mode feeds the classifier the analyst's own paragraph, which often states the "
    "analyst's verdict ('indicating their strong commitment'): it flatters the classifier."
)


@dataclass
class EvalItem:
    id: str
    commitment: int
    kind: str  # positive | out_of_period | background | other_commitment
    member: str | None
    date: str | None
    text: str
    url: str | None


def without_gold(rubric: Rubric) -> Rubric:
    """The rubric as a classifier may see it: no dimension gold, no notes about members."""
    return rubric.model_copy(update={"gold": [], "notes": []})


def _title_text(row: dict) -> str | None:
    fn = next((f for f in row["footnote_details"] if f["title"]), None)
    if fn is None:
        return None
    parts = [fn["title"]]
    if fn["publisher"]:
        parts.append(fn["publisher"])
    if fn["published"]:
        parts.append(fn["published"])
    return ", ".join(parts)


def _document_text(db: sqlite_utils.Database, row: dict) -> str | None:
    from .fetch import InvalidURL, normalize_url

    for fn in row["footnote_details"]:
        if not fn["url"]:
            continue
        try:
            url = normalize_url(fn["url"])
        except InvalidURL:
            continue
        found = db.execute(
            f"select v.text from ({CURRENT_VERSIONS}) v where v.canonical_url = ?", [url]
        ).fetchone()
        if found:
            return found[0]
    return None


def build_dataset(
    db: sqlite_utils.Database, rubrics: list[Rubric], mode: str, *, commitment: int | None = None
) -> list[EvalItem]:
    if mode not in MODES:
        raise ValueError(f"--input must be one of {', '.join(MODES)}")
    if mode == "stream":
        paragraphs = build_dataset(db, rubrics, "paragraph", commitment=commitment)
        stream = [i for i in paragraphs if i.kind in ("positive", "out_of_period")]
        for rubric in rubrics:
            if commitment is None or rubric.number == commitment:
                stream += [
                    EvalItem(f"page:{name}@{rubric.number}", rubric.number, kind, None, None, text, url)
                    for name, url, text, kind in real_pages()
                ]
        return stream
    rows = evidence_items(db)
    urls_by_commitment: dict[int, set[str]] = {}
    for row in rows:
        urls_by_commitment.setdefault(row["commitment"], set()).update(
            f["url"] for f in row["footnote_details"] if f["url"]
        )
    chapters = {c["number"]: c for c in current_commitments(db)}
    items: list[EvalItem] = []
    for rubric in rubrics:
        if commitment is not None and rubric.number != commitment:
            continue
        for row in rows:
            if mode == "title":
                text = _title_text(row)
            elif mode == "paragraph":
                text = row["text"]
            else:
                text = _document_text(db, row)
            if not text:
                continue
            urls = {f["url"] for f in row["footnote_details"] if f["url"]}
            if row["commitment"] == rubric.number:
                inside = row["date"] is not None and (
                    rubric.period_start.isoformat() <= row["date"] <= rubric.period_end.isoformat()
                )
                kind = "positive" if inside else "out_of_period"
            elif urls and not urls & urls_by_commitment.get(rubric.number, set()):
                kind = "other_commitment"
            else:
                continue
            items.append(
                EvalItem(
                    id=f"{row['key']}@{rubric.number}",
                    commitment=rubric.number,
                    kind=kind,
                    member=row["member"],
                    date=row["date"],
                    text=text,
                    url=next(iter(sorted(urls)), None),
                )
            )
        chapter = chapters.get(rubric.number)
        if mode == "document":
            continue  # background paragraphs have no fetched document
        for n, paragraph in enumerate(json.loads(chapter["background"]) if chapter else [], start=1):
            if not paragraph.startswith("At the ") and "Summit" not in paragraph[:80]:
                continue  # the summit-history paragraphs: past commitments, not actions in the period
            text = paragraph.split(". ")[0] + "." if mode == "title" else paragraph
            items.append(
                EvalItem(
                    f"background:{rubric.number}:{n}", rubric.number, "background", None, None, text, None
                )
            )
    return items


_PAGES: list[tuple[str, str, str, str]] = []


def real_pages() -> list[tuple[str, str, str, str]]:
    """(file name, url, extracted text, kind) for each real page that has text; read once."""
    from .extract import ExtractionFailed, ExtractionSkipped, extract_html
    from .store import data_file

    if _PAGES:
        return _PAGES
    manifest = data_file(*REALPAGES, "manifest.json")
    directory = manifest.parent
    if not manifest.is_file():
        raise ValueError(f"the stream mode needs the real pages: {manifest} is missing")
    for entry in json.loads(manifest.read_text(encoding="utf-8")):
        try:
            text = extract_html((directory / entry["file"]).read_bytes(), "text/html", entry["url"]).text
        except (ExtractionFailed, ExtractionSkipped):
            continue
        if text.strip():
            kind = "hard_page" if HARD_NEGATIVE.search(text) else "page"
            _PAGES.append((Path(entry["file"]).name, entry["url"], text, kind))
    return _PAGES


def base_rate(items: list[EvalItem]) -> float | None:
    """The share of positives among the items that are judged for relevance."""
    judged = [i for i in items if i.kind != "other_commitment"]
    return round(sum(i.kind == "positive" for i in judged) / len(judged), 4) if judged else None


REFERENCE_LABELS = ("eval", "data", "reference-labels", "actions.jsonl")


def reference_labels(db: sqlite_utils.Database) -> dict[str, dict[str, str]]:
    """Per cited action (the id of its dataset items, ``key@commitment``), the dimension labels of
    ``eval/data/reference-labels/`` (see its README): agreement with a model's reference labels, not
    with human coding. Joined on (commitment, member, date, text); an action with no match is left out."""
    from .store import data_file

    path = data_file(*REFERENCE_LABELS)
    if not path.is_file():
        raise ValueError(f"the reference labels are missing: {path}")
    by_action = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_action[(row["commitment"], row["member"], row["date"], row["text"])] = row["dimensions"]
    out = {}
    for row in evidence_items(db):
        found = by_action.get((row["commitment"], row["member"], row["date"], row["text"]))
        if found is not None:
            out[f"{row['key']}@{row['commitment']}"] = found
    return out


def sample_items(items: list[EvalItem], limit: int, *, seed: int = 0) -> list[EvalItem]:
    """``limit`` items drawn across commitments and positives / negatives in proportion to their
    numbers (each stratum keeps at least one item while the limit allows), seeded; in dataset order."""
    import random

    if limit >= len(items):
        return list(items)
    strata: dict[tuple[int, bool], list[int]] = {}
    for n, item in enumerate(items):
        strata.setdefault((item.commitment, item.kind == "positive"), []).append(n)
    keys = sorted(strata)
    share = {k: limit * len(strata[k]) / len(items) for k in keys}
    take = {k: min(len(strata[k]), int(share[k])) for k in keys}
    for k in keys:  # no stratum left empty while the limit allows
        if take[k] == 0 and sum(take.values()) < limit:
            take[k] = 1
    for k in sorted(keys, key=lambda k: share[k] - int(share[k]), reverse=True):  # largest remainders
        if sum(take.values()) >= limit:
            break
        if take[k] < len(strata[k]):
            take[k] += 1
    rng = random.Random(seed)
    chosen = sorted(n for k in keys for n in rng.sample(strata[k], take[k]))
    return [items[n] for n in chosen]


def dataset_sha(items: list[EvalItem]) -> str:
    blob = json.dumps([asdict(i) for i in items], sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()


# Near-duplicates. Commitment 19 cites many of commitment 18's actions again, reworded a little; a split
# that puts one copy in training and the other in testing measures memory, not judgement. The rule:
# two texts are near-duplicates when, with the leading "On D Month YYYY," removed and lower-cased, their
# rapidfuzz ``ratio`` (normalised Indel similarity, 0-100) is at least NEAR_DUPLICATE_RATIO; a group is
# the transitive closure of that relation. On the 398 cited actions it gives 279 groups (the largest 14
# texts); 324 texts are distinct character for character.
NEAR_DUPLICATE_RATIO = 70.0
_LEADING_DATE = re.compile(r"^\s*On [^,]{0,40}\d{4},\s*")


def _comparable(text: str) -> str:
    return " ".join(_LEADING_DATE.sub("", text).lower().split())


def near_duplicate_groups(texts: Sequence[str], *, threshold: float = NEAR_DUPLICATE_RATIO) -> list[int]:
    """A group number per text (0, 1, ... in order of first appearance): texts in one group are
    near-duplicates, directly or through others. Compares every pair, in blocks of rows."""
    from rapidfuzz import fuzz, process

    comparable = [_comparable(t) for t in texts]
    parent = list(range(len(comparable)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    block = 256
    for start in range(0, len(comparable), block):
        rows = comparable[start : start + block]
        scores = process.cdist(
            rows, comparable, scorer=fuzz.ratio, score_cutoff=threshold, dtype=np.uint8, workers=1
        )
        for r, c in zip(*np.nonzero(scores), strict=True):
            a, b = root(start + int(r)), root(int(c))
            if a != b:
                parent[max(a, b)] = min(a, b)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(root(i), len(numbers)) for i in range(len(comparable))]


def grouped_folds(
    texts: Sequence[str], labels: Sequence | None = None, *, n_splits: int = 5, seed: int = 0
) -> Iterator[tuple[list[int], list[int]]]:
    """(train, test) index lists for each of ``n_splits`` folds, every near-duplicate group on one
    side (:func:`near_duplicate_groups`); stratified by ``labels`` where given, shuffled by ``seed``."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups = near_duplicate_groups(texts)
    index = np.arange(len(texts))
    if labels is not None:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        splits = splitter.split(index, list(labels), groups)
    else:
        splits = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(index, groups=groups)
    for train, test in splits:
        yield train.tolist(), test.tolist()
