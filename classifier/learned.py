"""The learned model: TF-IDF word and character n-grams with logistic regression.

Three learned parts, per commitment where the commitment matters:

- relevance of a document to the commitment (binary, calibrated);
- each dimension's strength (none / weak / strong), with a calibrated probability of strong
  and the threshold above which that probability counts, chosen on held-out folds;
- the acting member: cue rules (names of governments, ministries and agencies, in the members'
  own languages) where exactly one member's cues fire, the model where none or several do.

A model starts cold from what exists before any decision (the rubrics' definitions and
examples, the imported gold's cited actions, the off-topic paragraphs shipped in
``classifier/data/offtopic.txt``) and is retrained as decisions arrive: an accept is a positive
with its labels, a reject a negative, a relabel the analyst's label. A model's version is the
sha256 of its training examples and settings, so the same inputs always give the same version.

Held-out evaluation keeps near-duplicates together (:func:`near_duplicate_groups`): the
bundled chapters repeat many paragraphs, and a split across a pair would measure memory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import pickle
import re
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

LABELS = ("none", "weak", "strong")
MEMBER_NAMES = (
    "Canada", "France", "Germany", "Italy", "Japan", "United Kingdom", "United States", "European Union",
)  # fmt: skip
MODEL_FORMAT = 2  # 2: each dimension in two steps (mentioned at all; then strong against weak)
OFFTOPIC_FILE = Path(__file__).resolve().parent / "data" / "offtopic.txt"
THREADS_ENV = "EVIDENCE_THREADS"

# Everything that changes what a model learns is here, and in the model's version.
SETTINGS: dict[str, Any] = {
    "format": MODEL_FORMAT,
    "max_chars": 20000,  # of a document, for features: pages are cut, cited actions never are
    "window_chars": 700,  # a long document is judged by its best window of about this size
    "max_windows": 40,
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 5],
    "min_df": 2,
    "max_features": 50000,
    "alpha_relevance": 1e-4,  # L2 penalty of the logistic regressions (larger: smoother)
    "alpha_dimension": 1e-4,
    "dimension_model": "two-step",  # none against weak-or-strong, then strong against weak
    "alpha_member": 1e-4,
    "calibration_folds": 4,
    "strong_precision": 0.8,  # a probability of strong counts above the threshold reaching this
    "relevance_precision": 0.9,
    "relevance_recall": 0.95,
    "seed": 0,
}


# ---------------------------------------------------------------------------
# Threads: one process must not take both cores from another


def thread_count() -> int:
    """Threads for numerical work: ``EVIDENCE_THREADS``, else 1.

    Several processes share a small machine (the nightly job, the web interface, an evaluation);
    BLAS and OpenMP default to every core each, and oversubscribed they ran 4-5x slower.
    """
    try:
        return max(1, int(os.environ.get(THREADS_ENV, "1")))
    except ValueError:
        return 1


_controller: Any = None
_limited: int | None = None  # the limit in force (set by the outermost limited_threads)


@contextmanager
def limited_threads(threads: int | None = None) -> Iterator[None]:
    """BLAS/OpenMP thread pools limited for the duration (threadpoolctl).

    The libraries are found once per process (threadpoolctl reads the process's memory map to
    find them, about 15 ms; per document that was a fifth of the classification time), again
    only when a new one was loaded since; nested uses with the same limit cost nothing.
    """
    global _controller, _limited
    from threadpoolctl import ThreadpoolController

    n = threads or thread_count()
    if _REFERENCE["on"]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=n):
            yield
        return
    if _limited == n:
        yield
        return
    if _controller is None or _libraries_loaded() != _controller_libraries:
        _refresh_controller(ThreadpoolController)
    previous = _limited
    with _controller.limit(limits=n):
        _limited = n
        try:
            yield
        finally:
            _limited = previous


_controller_libraries: int = -1


def _libraries_loaded() -> int:
    """How many modules are imported: a native library (BLAS, OpenMP) comes with a module, so a
    change is a cheap sign that the thread pools should be looked for again."""
    import sys

    return len(sys.modules)


def _refresh_controller(cls: Any) -> None:
    global _controller, _controller_libraries
    _controller = cls()
    _controller_libraries = _libraries_loaded()


# ---------------------------------------------------------------------------
# Member cues, in the members' own languages

MEMBER_CUES: dict[str, str] = {
    "Canada": r"\b(Canada|Canadian|CBSA|ASFC|RCMP|GRC|Ottawa|IRCC|Trudeau|LeBlanc|Carney|Joly)\b",
    "France": (
        r"\b(France|French|Paris|Élysée|Elysée|Gouvernement(?! du Canada)|gouvernement de la République|"
        r"ministère de l'Intérieur|ministère de l’Intérieur|ministère des Armées|Quai d'Orsay|"
        r"Gendarmerie|Police nationale|OFPRA|Darmanin|Retailleau|Macron|Barnier|Bayrou)\b"
    ),
    "Germany": (
        r"\b(Germany|German|Berlin|Bundesregierung|Bundesministerium\w*|Bundesinnenministerium|"
        r"Bundespolizei|Bundeskriminalamt|BKA|BAMF|Auswärtiges Amt|Deutschland|deutsche\w*|Faeser|"
        r"Scholz|Baerbock|Dobrindt|Merz)\b"
    ),
    "Italy": (
        r"\b(Italy|Italian|Rome|Roma|Italia|italiano|Governo|Ministero dell'Interno|Ministero dell’Interno|"
        r"Viminale|Farnesina|Guardia di Finanza|Guardia Costiera|Polizia di Stato|Carabinieri|Meloni|"
        r"Piantedosi|Tajani|Mattarella)\b"
    ),
    "Japan": r"(\b(Japan|Japanese|Tokyo|MOFA|JICA|Ishiba|Kishida|Iwaya|Kamikawa)\b|外務省|法務省|出入国在留管理庁|日本政府|日本|警察庁|海上保安庁)",
    "United Kingdom": (
        r"\b(United Kingdom|UK|U\.K\.|British|Britain|Home Office|Home Secretary|National Crime Agency|"
        r"NCA|Border Force|London|Downing Street|Foreign, Commonwealth (?:&|and) Development Office|FCDO|"
        r"Foreign Secretary|Starmer|Lammy|Cooper|Sunak|Cleverly)\b"
    ),
    "United States": (
        r"\b(United States|U\.S\.|US|USA|American|Washington|DHS|CBP|ICE|USAID|FBI|Biden|Trump|Blinken|Mayorkas|"
        r"Garland|Rubio|Noem|"
        r"Department of (?:State|Justice|Homeland Security)|State Department|White House)\b"
    ),
    "European Union": (
        r"\b(European Union|EU|European Commission|Commission européenne|Europäische Kommission|"
        r"Commissione europea|Council of the EU|Council of the European Union|European Council|Europol|"
        r"Eurojust|Frontex|EEAS|Team Europe|Global Gateway|NDICI|von der Leyen|Johansson|Brunner|Borrell|Kallas)\b"
    ),
}
_MEMBER_PATTERNS = {name: re.compile(pattern) for name, pattern in MEMBER_CUES.items()}


def member_cues(text: str) -> dict[str, int]:
    """Members whose cues occur in the text, with the position of the first occurrence."""
    found = {}
    for name, pattern in _MEMBER_PATTERNS.items():
        m = pattern.search(text)
        if m:
            found[name] = m.start()
    return found


# ---------------------------------------------------------------------------
# Training examples


@dataclass(frozen=True)
class Example:
    """One training text with what is known about it.

    ``relevant`` is about ``commitment``; ``labels`` (dimension -> none/weak/strong) are known only
    where someone (the rubric, an analyst) gave them; ``member`` is the acting member if known.
    A negative with ``commitment`` 0 is a negative for every commitment.
    """

    text: str
    commitment: int
    relevant: bool
    member: str | None = None
    labels: dict[str, str] | None = None
    source: str = ""

    def key(self) -> str:
        return json.dumps(
            [
                self.text,
                self.commitment,
                self.relevant,
                self.member,
                sorted((self.labels or {}).items()),
                self.source,
            ],
            ensure_ascii=False,
        )


def offtopic_paragraphs(path: Path = OFFTOPIC_FILE) -> list[tuple[str, str]]:
    """The shipped off-topic paragraphs: (language, text)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        language, _, text = line.partition("\t")
        rows.append((language.strip(), text.strip()))
    return rows


def offtopic_examples() -> list[Example]:
    return [Example(text, 0, False, source="offtopic") for _, text in offtopic_paragraphs()]


def rubric_examples(rubric: Any) -> list[Example]:
    """A rubric's own words as positives: its features, definitions and each dimension's
    definition and examples (a strong example is strong on its dimension, a weak one weak)."""
    n = rubric.number
    out = [
        Example(rubric.commitment, n, True, source="rubric"),
        Example(rubric.features.text, n, True, source="rubric"),
    ]
    for d in rubric.dimensions:
        out.append(Example(f"{d.name}. {d.definition}", n, True, source="rubric"))
        out += [Example(t, n, True, labels={d.id: "strong"}, source="rubric") for t in d.strong_examples]
        out += [Example(t, n, True, labels={d.id: "weak"}, source="rubric") for t in d.weak_examples]
    return out


def gold_examples(rows: Iterable[dict]) -> list[Example]:
    """Cited actions of the imported gold (``commitment``, ``member``, ``text``) as positives."""
    return [Example(r["text"], int(r["commitment"]), True, member=r["member"], source="gold") for r in rows]


def cold_start_examples(rubrics: Sequence[Any], gold_rows: Iterable[dict]) -> list[Example]:
    """What a model learns from before any decision."""
    out = []
    for rubric in rubrics:
        out += rubric_examples(rubric)
    return out + gold_examples(gold_rows) + offtopic_examples()


def version_of(examples: Sequence[Example], settings: dict[str, Any]) -> str:
    """``sha256:`` of the sorted training examples and the settings."""
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for key in sorted(e.key() for e in examples):
        digest.update(b"\n")
        digest.update(key.encode())
    return "sha256:" + digest.hexdigest()


# ---------------------------------------------------------------------------
# Near-duplicates


def _shingles(text: str, k: int = 5) -> set[str]:
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}


def near_duplicate_groups(texts: Sequence[str], threshold: float = 0.5) -> list[int]:
    """A group number per text: texts whose word 5-gram sets overlap by at least ``threshold``
    (Jaccard), directly or through a chain, share a group."""
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shingles = [_shingles(t) for t in texts]
    index: dict[str, list[int]] = {}
    for i, s in enumerate(shingles):
        for g in s:
            index.setdefault(g, []).append(i)
    for i, s in enumerate(shingles):
        candidates = {j for g in s for j in index[g] if j > i}
        for j in candidates:
            inter = len(s & shingles[j])
            if inter / (len(s) + len(shingles[j]) - inter) >= threshold:
                parent[find(j)] = find(i)
    roots: dict[int, int] = {}
    return [roots.setdefault(find(i), len(roots)) for i in range(len(texts))]


def shared_citations(rows: Sequence[tuple[int, str, str | None]]) -> set[int]:
    """Indices of the (commitment, text, member) rows whose text, or a near-duplicate of it, is
    cited under more than one member of the same commitment (a joint G7 statement cited for each
    signatory): the text alone cannot say which member such a row is about."""
    groups = near_duplicate_groups([text for _, text, _ in rows])
    members: dict[tuple[int, int], set[str | None]] = {}
    for (commitment, _, member), group in zip(rows, groups, strict=True):
        members.setdefault((commitment, group), set()).add(member)
    return {i for i, ((c, _, _), g) in enumerate(zip(rows, groups, strict=True)) if len(members[(c, g)]) > 1}


# ---------------------------------------------------------------------------
# Features and windows


def windows(
    text: str, size: int = SETTINGS["window_chars"], limit: int = SETTINGS["max_windows"]
) -> list[str]:
    """A document cut into windows of whole lines (or sentences) of about ``size`` characters."""
    parts = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if len(line) <= size:
            parts.append(line)
        else:
            parts += [s for s in re.split(r"(?<=[.!?。])\s+", line) if s]
    out: list[str] = []
    current = ""
    for part in parts:
        if current and len(current) + len(part) + 1 > size:
            out.append(current)
            current = part
        else:
            current = f"{current} {part}" if current else part
        if len(out) >= limit:
            break
    if current and len(out) < limit:
        out.append(current)
    return out or [text[:size]]


class Features:
    """TF-IDF of word 1-2-grams and character 2-5-grams (within word boundaries), stacked."""

    def __init__(self, settings: dict[str, Any]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.max_chars = settings["max_chars"]
        common = {"sublinear_tf": True, "min_df": settings["min_df"], "dtype": _float32()}
        self.word = TfidfVectorizer(
            ngram_range=tuple(settings["word_ngrams"]), token_pattern=r"(?u)\b\w+\b", lowercase=True,
            max_features=settings["max_features"], **common,
        )  # fmt: skip
        self.char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(settings["char_ngrams"]), lowercase=True,
            max_features=settings["max_features"], **common,
        )  # fmt: skip

    def fit(self, texts: Sequence[str]) -> Features:
        cut = [t[: self.max_chars] for t in texts]
        self.word.fit(cut)
        self.char.fit(cut)
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        from scipy.sparse import hstack

        cut = [t[: self.max_chars] for t in texts]
        if _REFERENCE["on"]:
            return hstack([self.word.transform(cut), self.char.transform(cut)]).tocsr()
        word = _tfidf(self.word, [self._words(t) for t in cut])
        char = _tfidf(self.char, [self._chars(t) for t in cut])
        return hstack([word, char], format="csr")

    # The vectorisers' own analyzers, re-written to count with ``collections.Counter`` and to
    # look each distinct n-gram up once: the same matrix as ``TfidfVectorizer.transform``
    # (tests/test_learned.py compares them), three to four times faster.

    def _words(self, text: str) -> Counter[str]:
        tokens = _token_pattern(self.word.token_pattern).findall(text.lower())
        low, high = self.word.ngram_range
        grams: list[str] = tokens[:] if low == 1 else []
        for n in range(max(low, 2), high + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return Counter(grams)

    def _chars(self, text: str) -> Counter[str]:
        low, high = self.char.ngram_range
        known = _WORD_GRAMS.setdefault((low, high), {})
        if len(known) > 200_000:
            known.clear()
        grams: list[str] = []
        for w in _WHITE_SPACES.sub(" ", text.lower()).split():
            mine = known.get(w)
            if mine is None:
                mine = known[w] = _char_grams(f" {w} ", low, high)
            grams += mine
        return Counter(grams)


def _char_grams(w: str, low: int, high: int) -> list[str]:
    """A padded word's character n-grams, as scikit-learn's ``char_wb`` analyzer makes them."""
    size = len(w)
    grams: list[str] = []
    for n in range(low, high + 1):
        if size <= n:  # a word no longer than n counts once, whole
            grams.append(w)
            break
        grams += [w[i : i + n] for i in range(size - n + 1)]
    return grams


_WHITE_SPACES = re.compile(r"\s\s+")
_WORD_GRAMS: dict[tuple[int, int], dict[str, list[str]]] = {}  # a word's character n-grams
_REFERENCE = {"on": False}


@contextmanager
def reference_implementation() -> Iterator[None]:
    """Within it the model computes as before it was made faster (scikit-learn's own transform
    and predict_proba, thread pools looked up on every use): for the benchmark's before/after
    figures in one run, and for the test that both give the same judgements."""
    _REFERENCE["on"] = True
    try:
        yield
    finally:
        _REFERENCE["on"] = False


@lru_cache(maxsize=4)
def _token_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _tfidf(vectorizer: Any, counts: Sequence[Counter[str]]) -> Any:
    """What ``vectorizer.transform`` gives for documents with these n-gram counts: counts of the
    vocabulary's n-grams, sublinear tf, times idf, each row scaled to unit length."""
    import numpy as np
    from scipy.sparse import csr_matrix

    vocabulary = vectorizer.vocabulary_
    known = vocabulary.keys()
    indices: list[int] = []
    values: list[int] = []
    indptr = [0]
    for c in counts:
        common = list(c.keys() & known)  # the lookups in C: this loop was the cost
        if len(common) == 1:
            indices.append(vocabulary[common[0]])
            values.append(c[common[0]])
        elif common:
            indices += itemgetter(*common)(vocabulary)
            values += itemgetter(*common)(c)
        indptr.append(len(indices))
    cols = np.asarray(indices, dtype=np.int64)
    data = np.asarray(values, dtype=np.float64)
    if vectorizer.sublinear_tf:
        data = np.log(data) + 1.0
    data *= np.asarray(vectorizer.idf_, dtype=np.float64)[cols]
    starts = np.asarray(indptr[:-1])
    lengths = np.diff(indptr)
    if len(data):
        norms = np.sqrt(np.add.reduceat(data * data, starts[lengths > 0]))
        data /= np.repeat(norms, lengths[lengths > 0])
    X = csr_matrix(
        (data.astype(vectorizer.dtype), cols, np.asarray(indptr)),
        shape=(len(counts), len(vocabulary)),
    )
    X.sort_indices()
    return X


def _float32() -> Any:
    import numpy as np

    return np.float32


# ---------------------------------------------------------------------------
# The parts


@dataclass
class Platt:
    """A sigmoid from a decision value to a calibrated probability."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, values: Any) -> Any:
        import numpy as np

        return 1 / (1 + np.exp(-(self.a * np.asarray(values) + self.b)))

    @classmethod
    def fit(cls, values: Sequence[float], targets: Sequence[int]) -> Platt:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(targets)
        if len(set(y.tolist())) < 2:
            return cls()
        lr = LogisticRegression(C=1e4).fit(np.asarray(values).reshape(-1, 1), y)
        return cls(float(lr.coef_[0, 0]), float(lr.intercept_[0]))


def _fit_lr(X: Any, y: Sequence[Any], alpha: float, seed: int) -> Any:
    """Logistic regression (one-vs-rest for three classes and more), fitted by a fixed number of
    stochastic gradient epochs: deterministic for a seed, and on a loaded 2-core machine about
    ten times faster than liblinear or lbfgs on 10^5 sparse features, for the same figures."""
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(
        loss="log_loss", alpha=alpha, max_iter=30, tol=None, class_weight="balanced", random_state=seed
    ).fit(X, y)


_WEIGHTS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _predict_proba(model: Any, X: Any) -> Any:
    """``model.predict_proba(X)`` for a fitted linear model, computed directly from its
    coefficients: the same figures (one-vs-rest sigmoids, normalised), without scikit-learn's
    per-call input validation, which cost more than the arithmetic on a few windows."""
    import numpy as np

    if isinstance(model, _Constant) or not hasattr(model, "coef_") or _REFERENCE["on"]:
        return model.predict_proba(X)
    weights = _WEIGHTS.get(model)
    if weights is None:  # the transposed coefficients, contiguous: made once per model
        weights = _WEIGHTS[model] = np.ascontiguousarray(model.coef_.T, dtype=np.float64)
    scores = np.asarray(X @ weights, dtype=np.float64) + model.intercept_
    prob = 1.0 / (1.0 + np.exp(-scores))
    if prob.shape[1] == 1:
        return np.hstack([1 - prob, prob])
    total = prob.sum(axis=1, keepdims=True)
    zero = total[:, 0] == 0
    prob[zero, :] = 1.0  # as scikit-learn: uniform where every sigmoid underflowed
    total[zero] = prob.shape[1]
    return prob / total


def _decision(model: Any, X: Any, positive: Any) -> Any:
    """The decision value for class ``positive`` (log-odds against the others)."""
    import numpy as np

    if isinstance(model, _Constant):
        return np.full(X.shape[0], 10.0 if model.value == positive else -10.0)
    probs = _predict_proba(model, X)
    classes = list(model.classes_)
    if positive not in classes:
        return np.full(X.shape[0], -10.0)
    p = np.clip(probs[:, classes.index(positive)], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class _Constant:
    """A part with only one class to learn from: it always says that class."""

    value: Any
    classes_: list = field(default_factory=list)

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        return np.ones((X.shape[0], 1))


def _fit_or_constant(X: Any, y: Sequence[Any], alpha: float, seed: int) -> Any:
    values = sorted(set(y))
    if len(values) == 1:
        return _Constant(values[0], values)
    return _fit_lr(X, y, alpha, seed)


@dataclass
class _TwoStep:
    """A dimension's label in two steps, each a logistic regression: whether the text bears on the
    dimension at all (none against weak or strong), then how strongly (strong against weak, learned
    from the weak and strong labels only). Strength is mostly a matter of what was done (enacted,
    funded, signed against reaffirmed, discussed), which the second model learns from every labelled
    action instead of sharing three-way odds with 'none'; held out, it agreed better with the
    reference labels than one three-class model (README, *The learned model*).
    Probabilities: none = 1 - P(mentioned), weak = P(mentioned) (1 - P(strong | mentioned)),
    strong = P(mentioned) P(strong | mentioned)."""

    mention: Any
    strength: Any
    classes_: list = field(default_factory=lambda: list(LABELS))

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        mentioned = _probability(self.mention, X, True)
        strong = _probability(self.strength, X, True)
        return np.stack([1 - mentioned, mentioned * (1 - strong), mentioned * strong], axis=1)


def _probability(model: Any, X: Any, positive: Any) -> Any:
    """P(``positive``) for each row, from a fitted part or a constant one."""
    import numpy as np

    if isinstance(model, _Constant):
        return np.full(X.shape[0], 1.0 if model.value == positive else 0.0)
    classes = list(model.classes_)
    if positive not in classes:
        return np.zeros(X.shape[0])
    return _predict_proba(model, X)[:, classes.index(positive)]


def _fit_dimension(X: Any, y: Sequence[Any], alpha: float, seed: int) -> Any:
    """A dimension's model (:class:`_TwoStep`), or a constant when only one label is known."""
    values = sorted(set(y))
    if len(values) == 1:
        return _Constant(values[0], values)
    mention = _fit_or_constant(X, [v != "none" for v in y], alpha, seed)
    rows = [i for i, v in enumerate(y) if v != "none"]
    strength = _fit_or_constant(X[rows], [y[i] == "strong" for i in rows], alpha, seed)
    return _TwoStep(mention, strength)


def label_of(probs: dict[str, float]) -> str:
    """The label the probabilities say, in the model's two steps: none unless the dimension is more
    likely mentioned than not, then strong or weak, whichever is the likelier given it is."""
    if probs["none"] >= probs["weak"] + probs["strong"]:
        return "none"
    return "strong" if probs["strong"] >= probs["weak"] else "weak"


def _folds(groups: Sequence[int], n: int, seed: int) -> list[list[int]]:
    """Indices split into ``n`` folds without splitting a group."""
    import random

    order = sorted(set(groups))
    random.Random(seed).shuffle(order)
    fold_of = {g: i % n for i, g in enumerate(order)}
    folds: list[list[int]] = [[] for _ in range(n)]
    for i, g in enumerate(groups):
        folds[fold_of[g]].append(i)
    return [f for f in folds if f]


def _held_out_decisions(
    X: Any, y: Sequence[Any], groups: Sequence[int], positive: Any, alpha: float, settings: dict,
    fit: Any = _fit_or_constant,
) -> Any:  # fmt: skip
    """Decision values for ``positive``, each from a model that did not see the item's group."""
    import numpy as np

    out = np.zeros(X.shape[0])
    labels = np.asarray(y, dtype=object)
    folds = _folds(groups, settings["calibration_folds"], settings["seed"])
    if len(folds) < 2:
        return _decision(fit(X, list(labels), alpha, settings["seed"]), X, positive)
    for fold in folds:
        train = np.setdiff1d(np.arange(X.shape[0]), fold)
        model = fit(X[train], list(labels[train]), alpha, settings["seed"])
        out[fold] = _decision(model, X[fold], positive)
    return out


def threshold_for_precision(probs: Sequence[float], targets: Sequence[int], precision: float) -> float | None:
    """The lowest probability threshold at which the items above it reach ``precision``
    (None when no threshold does)."""
    pairs = sorted(zip(probs, targets, strict=True), key=lambda p: -p[0])
    best = None
    hits = 0
    for n, (p, t) in enumerate(pairs, 1):
        hits += t
        if hits / n >= precision and t:
            best = p
    return None if best is None else float(best)


@dataclass
class CommitmentModel:
    commitment: int
    relevance: Any
    relevance_platt: Platt
    relevance_threshold: float
    dimensions: dict[str, Any]
    strong_platt: dict[str, Platt]
    strong_threshold: dict[str, float | None]


@dataclass
class Judgement:
    """What the model says about one document for one commitment."""

    relevance: float  # calibrated probability
    relevant: bool
    window: int  # the window that judged the document relevant
    windows: list[str]
    members: list[str]
    member_probability: float
    member_source: str  # cue | model
    dimensions: dict[str, dict[str, float]]  # dimension -> {none, weak, strong}
    strong_probability: dict[str, float]  # calibrated


class LearnedModel:
    """All parts for all commitments, with one feature space; picklable for the database."""

    def __init__(self, settings: dict[str, Any], version: str, counts: dict[str, Any]):
        self.settings = settings
        self.version = version
        self.counts = counts
        self.features: Features | None = None
        self.commitments: dict[int, CommitmentModel] = {}
        self.member: Any = None
        self.figures: dict[str, Any] = {}

    # -- prediction

    def judge(self, text: str, commitment: int) -> Judgement:
        return self.judge_many([text], commitment)[0]

    def judge_many(self, texts: Sequence[str], commitment: int) -> list[Judgement]:
        import numpy as np

        part = self.commitments[commitment]
        cut = [windows(t, self.settings["window_chars"], self.settings["max_windows"]) for t in texts]
        flat = [w for ws in cut for w in ws]
        if self.features is None:
            raise ValueError("this model has not been trained")
        X = self.features.transform(flat)
        rel = part.relevance_platt(_decision(part.relevance, X, True))
        dims = {d: _probs(model, X) for d, model in part.dimensions.items()}
        members = _probs(self.member, X) if self.member is not None else None
        out = []
        start = 0
        for ws in cut:
            rows = slice(start, start + len(ws))
            start += len(ws)
            best = int(np.argmax(rel[rows]))
            i = rows.start + best
            p = float(rel[i])
            dim_probs = {d: {label: float(dims[d][label][i]) for label in LABELS} for d in dims}
            strong = {d: float(part.strong_platt[d](_logit(dim_probs[d]["strong"]))) for d in part.dimensions}
            member, mp, source = self._member(ws[best], members, i)
            out.append(
                Judgement(
                    relevance=p,
                    relevant=p >= part.relevance_threshold,
                    window=best,
                    windows=ws,
                    members=[member] if member else [],
                    member_probability=mp,
                    member_source=source,
                    dimensions=dim_probs,
                    strong_probability=strong,
                )
            )
        return out

    def _member(self, text: str, members: dict | None, row: int) -> tuple[str | None, float, str]:
        """The acting member: the one whose cues fire; where several fire, the first named (a
        release names the member acting before the partners it acts with: "Canada and the United
        States", "Canadian ministers met US officials"; held out, this beat the model's choice among
        the named members, exact 0.909 against 0.835 on the cross-validated stream); where none
        fires, the model's choice."""
        cues = member_cues(text)
        if len(cues) == 1:
            return next(iter(cues)), 1.0, "cue"
        if cues:
            first = min(cues, key=lambda m: cues[m])
            known = members is not None and first in members
            return first, float(members[first][row]) if known else 0.5, "cue"  # type: ignore[index]
        if members is None:
            return None, 0.0, "none"
        best = max(MEMBER_NAMES, key=lambda m: members.get(m, [0.0] * (row + 1))[row])
        return best, float(members.get(best, [0.0] * (row + 1))[row]), "model"

    # -- storage

    def to_bytes(self) -> bytes:
        """gzip-compressed pickle; the database stores it with its sha256 (checked on load)."""
        return gzip.compress(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL), mtime=0)

    @staticmethod
    def from_bytes(data: bytes, sha256: str | None = None) -> LearnedModel:
        """A stored model. ``sha256`` (``sha256:...`` of ``data``) is checked when given: only
        models this project wrote are ever unpickled."""
        if sha256 is not None and blob_sha(data) != sha256:
            raise ValueError("stored model does not match its sha256: not loading it")
        model = pickle.loads(gzip.decompress(data))
        if not isinstance(model, LearnedModel):
            raise ValueError("stored model is not a learned model")
        return model


def blob_sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _probs(model: Any, X: Any) -> dict[Any, Any]:
    import numpy as np

    if isinstance(model, _Constant):
        ones, zeros = np.ones(X.shape[0]), np.zeros(X.shape[0])
        values = LABELS if model.value in LABELS else MEMBER_NAMES
        return {v: (ones if v == model.value else zeros) for v in values}
    probs = _predict_proba(model, X)
    out = {c: probs[:, i] for i, c in enumerate(model.classes_)}
    for label in LABELS:
        if label not in out and any(c in LABELS for c in model.classes_):
            out[label] = np.zeros(X.shape[0])
    return out


# ---------------------------------------------------------------------------
# Training


def train(
    examples: Sequence[Example],
    rubrics: Sequence[Any],
    *,
    settings: dict[str, Any] | None = None,
    features: Features | None = None,
    calibrate: bool = True,
) -> LearnedModel:
    """Train every part from ``examples`` for the given rubrics.

    ``features`` is a fitted feature space to reuse (the learning curve fits one per fold);
    otherwise one is fitted on the examples' texts. ``calibrate`` fits the sigmoids and chooses
    the thresholds on held-out folds of the training examples (grouped by near-duplicate);
    without it the probabilities are the models' own and the thresholds 0.5.
    """
    import numpy as np

    settings = {**SETTINGS, **(settings or {})}
    version = version_of(examples, settings)
    counts: dict[str, Any] = {"examples": len(examples)}
    for e in examples:
        counts[e.source or "other"] = counts.get(e.source or "other", 0) + 1
    model = LearnedModel(settings, version, counts)
    # sorted: the same examples in any order give the same model, as they give the same version
    examples = expand(sorted(examples, key=Example.key), settings)
    texts = [e.text for e in examples]
    model.features = features or Features(settings).fit(texts)
    X_all = model.features.transform(texts)
    groups = near_duplicate_groups(texts) if calibrate else list(range(len(texts)))
    seed = settings["seed"]
    figures: dict[str, Any] = {}

    for rubric in rubrics:
        n = rubric.number
        # Relevance: this commitment's positives against the negatives; the other commitments'
        # positives are left out (the bundled commitments overlap in topic).
        rows = [i for i, e in enumerate(examples) if (e.commitment == n and e.relevant) or not e.relevant]
        rows = [i for i in rows if examples[i].commitment in (0, n)]
        y = [examples[i].relevant for i in rows]
        X = X_all[rows]
        relevance = _fit_or_constant(X, y, settings["alpha_relevance"], seed)
        platt, threshold = Platt(), 0.5
        fig: dict[str, Any] = {"positives": sum(y), "negatives": len(y) - sum(y)}
        if calibrate and len(set(y)) == 2:
            held = _held_out_decisions(
                X, y, [groups[i] for i in rows], True, settings["alpha_relevance"], settings
            )
            platt = Platt.fit(held, [int(v) for v in y])
            probs = platt(held)
            chosen = threshold_for_precision(probs, [int(v) for v in y], settings["relevance_precision"])
            # Training positives and negatives are often separable, so many thresholds reach the
            # precision; the highest that keeps the recall target on held-out positives is taken.
            kept = float(np.quantile(probs[np.asarray(y, dtype=bool)], 1 - settings["relevance_recall"]))
            threshold = max(0.5, chosen or 0.5, kept)
            fig["held_out_average_precision"] = _average_precision(y, probs)
        dims: dict[str, Any] = {}
        strong_platt: dict[str, Any] = {}
        strong_threshold: dict[str, float | None] = {}
        for d in rubric.dimension_ids:
            drows = [i for i, e in enumerate(examples) if e.commitment == n and e.labels and d in e.labels]
            dy = [examples[i].labels[d] for i in drows]  # type: ignore[index]
            if "none" not in dy:  # nothing says what 'none' looks like: the negatives do
                neg = [i for i, e in enumerate(examples) if not e.relevant][:50]
                drows += neg
                dy += ["none"] * len(neg)
            Xd = X_all[drows]
            fit = _fit_dimension if settings.get("dimension_model") == "two-step" else _fit_or_constant
            dims[d] = fit(Xd, dy, settings["alpha_dimension"], seed)
            strong_platt[d], strong_threshold[d] = Platt(), 0.5
            if calibrate and dy.count("strong") >= 3 and len(set(dy)) >= 2:
                held = _held_out_decisions(
                    Xd, dy, [groups[i] for i in drows], "strong", settings["alpha_dimension"], settings, fit
                )
                targets = [int(v == "strong") for v in dy]
                strong_platt[d] = Platt.fit(held, targets)
                strong_threshold[d] = threshold_for_precision(
                    strong_platt[d](held), targets, settings["strong_precision"]
                )
            fig[f"dimension:{d}"] = {label: dy.count(label) for label in LABELS}
        model.commitments[n] = CommitmentModel(
            n, relevance, platt, threshold, dims, strong_platt, strong_threshold
        )
        fig["relevance_threshold"] = threshold
        fig["strong_threshold"] = strong_threshold
        figures[str(n)] = fig

    mrows = [i for i, e in enumerate(examples) if e.member in MEMBER_NAMES]
    if mrows:
        model.member = _fit_or_constant(
            X_all[mrows], [examples[i].member for i in mrows], settings["alpha_member"], seed
        )
    figures["members"] = len(mrows)
    model.figures = figures
    return model


def expand(examples: Sequence[Example], settings: dict[str, Any]) -> list[Example]:
    """Long negatives become one negative per window: a document is judged by its best window,
    so every window of a page that is not evidence is a window that must not look like evidence."""
    out = []
    for e in examples:
        if not e.relevant and len(e.text) > 1.5 * settings["window_chars"]:
            out += [
                Example(w, e.commitment, False, source=e.source)
                for w in windows(e.text, settings["window_chars"], settings["max_windows"])
            ]
        else:
            out.append(e)
    return out


def _average_precision(y: Sequence[Any], probs: Sequence[float]) -> float:
    from sklearn.metrics import average_precision_score

    return round(float(average_precision_score([int(v) for v in y], probs)), 4)


def example_dicts(examples: Sequence[Example]) -> list[dict]:
    return [asdict(e) for e in examples]


__all__ = [
    "LABELS",
    "SETTINGS",
    "CommitmentModel",
    "Example",
    "Features",
    "Judgement",
    "LearnedModel",
    "blob_sha",
    "cold_start_examples",
    "gold_examples",
    "label_of",
    "limited_threads",
    "member_cues",
    "near_duplicate_groups",
    "offtopic_examples",
    "rubric_examples",
    "shared_citations",
    "thread_count",
    "threshold_for_precision",
    "train",
    "version_of",
    "windows",
]
