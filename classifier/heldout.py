"""The learned backend judged only on what it never trained on: grouped cross-validation.

The stored model of a commitment learned from every cited action of the imported gold, so
classifying those same actions with it would measure memory. An evaluation of the learned
backend instead splits the cited actions into folds (:func:`classifier.dataset.grouped_folds`:
near-duplicates on one side, seeded), trains one model per fold and commitment from the cold
start minus that fold's cited actions (and any rubric example in their near-duplicate groups),
and judges each item with its fold's model. Items that are no cited action (background
paragraphs, real pages) are in no training set; they are spread over the folds by their id.
No analyst decision is used: the figures are those of the cold start.

The fold models live in memory for one evaluation (:class:`HeldOut`), never in the database;
their classifications are stored under their own model version like any other, so an
unchanged evaluation is a cache hit and a changed fold is classified again.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlite_utils

from . import learned
from .classify import Classifier
from .config import Config
from .dataset import EvalItem, grouped_folds, near_duplicate_groups
from .learned import Example, LearnedModel
from .learner import LearnedBackend, model_name
from .rubric import Rubric

N_FOLDS = 5


def protocol_text(n_folds: int = N_FOLDS, seed: int = 0) -> str:
    """The protocol, in words, as every report states it next to the learned backend's figures."""
    return (
        f"{n_folds}-fold grouped cross-validation; each item judged by a model trained on the cold start "
        "(rubric text, the imported gold's cited actions, shipped off-topic text) minus the item's fold of "
        f"cited actions and their near-duplicates (dataset.grouped_folds, seed {seed}); no analyst decisions; "
        "calibrated on inner grouped folds of the training set"
    )


def action_key(item: EvalItem) -> str:
    """The cited action an evaluation item was made from (its id without ``@commitment``)."""
    return item.id.rsplit("@", 1)[0]


class FoldBackend(LearnedBackend):
    """The learned backend with one fold's models (trained when first needed), never stored."""

    def __init__(self, heldout: HeldOut, fold: int):
        super().__init__()
        self.heldout = heldout
        self.fold = fold

    def model_for(self, rubric: Rubric) -> str:
        return model_name(self.heldout.model(rubric, self.fold).version)

    def learned_model(self, rubric: Rubric) -> LearnedModel | None:
        return self.heldout.model(rubric, self.fold)


class HeldOut:
    """One evaluation's folds over the imported gold's cited actions, and the fold models.

    ``rows`` are the gold's cited actions (:func:`classifier.gold.evidence_items`), read from
    ``db`` unless given.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        config: Config,
        *,
        prompt: str | None = None,
        n_folds: int = N_FOLDS,
        seed: int = 0,
        rows: list[dict] | None = None,
    ):
        from .gold import evidence_items

        self.db, self.config, self.prompt = db, config, prompt
        self.n_folds, self.seed = n_folds, seed
        self.rows = rows if rows is not None else evidence_items(db)
        self.fold_of: dict[str, int] = {}
        if len(self.rows) >= n_folds:
            texts = [r["text"] for r in self.rows]
            for fold, (_, test) in enumerate(grouped_folds(texts, n_splits=n_folds, seed=seed)):
                for i in test:
                    self.fold_of[self.rows[i]["key"]] = fold
        self._models: dict[tuple[int, int], LearnedModel] = {}
        self._classifiers: dict[int, Classifier] = {}

    @property
    def protocol(self) -> str:
        return protocol_text(self.n_folds, self.seed)

    def fold(self, item: EvalItem) -> int:
        """The fold whose model judges ``item``: its cited action's, else one chosen by its id."""
        key = action_key(item)
        if key in self.fold_of:
            return self.fold_of[key]
        return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % self.n_folds

    def held_out(self, fold: int) -> list[dict]:
        """The cited actions no model of ``fold`` learns from."""
        return [r for r in self.rows if self.fold_of.get(r["key"]) == fold]

    def training_examples(self, rubric: Rubric, fold: int) -> list[Example]:
        """The cold start of ``rubric`` without ``fold``'s cited actions, nor a rubric example in
        one of their near-duplicate groups."""
        held = self.held_out(fold)
        own = learned.rubric_examples(rubric)
        if held:
            groups = near_duplicate_groups([r["text"] for r in held] + [e.text for e in own])
            held_groups = set(groups[: len(held)])
            own = [e for e, g in zip(own, groups[len(held) :], strict=True) if g not in held_groups]
        gold = [
            r
            for r in self.rows
            if int(r["commitment"]) == rubric.number and self.fold_of.get(r["key"]) != fold
        ]
        return own + learned.gold_examples(gold) + learned.offtopic_examples()

    def model(self, rubric: Rubric, fold: int) -> LearnedModel:
        """``fold``'s model of ``rubric``, trained once per evaluation."""
        key = (fold, rubric.number)
        if key not in self._models:
            with learned.limited_threads():
                self._models[key] = learned.train(self.training_examples(rubric, fold), [rubric])
        return self._models[key]

    def classifier(self, fold: int) -> Classifier:
        """A classifier that judges with ``fold``'s models."""
        if fold not in self._classifiers:
            self._classifiers[fold] = Classifier(
                self.db, self.config, prompt=self.prompt, backend_object=FoldBackend(self, fold)
            )
        return self._classifiers[fold]

    def classifiers(self) -> list[Classifier]:
        return list(self._classifiers.values())

    def record(self) -> dict[str, Any]:
        """What the run record keeps: the protocol and each fold model's version and size."""
        return {
            "protocol": self.protocol,
            "folds": self.n_folds,
            "seed": self.seed,
            "held_out_actions": [len(self.held_out(f)) for f in range(self.n_folds)],
            "models": {
                f"{fold}:{number}": {"version": m.version, "examples": m.counts.get("examples")}
                for (fold, number), m in sorted(self._models.items())
            },
        }


__all__ = ["N_FOLDS", "FoldBackend", "HeldOut", "action_key", "protocol_text"]
