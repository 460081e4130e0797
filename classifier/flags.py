"""The flags a classification, and so a queue item's suggestion, can carry: one list, kebab-case.

A flag says why an analyst should look twice. Grounding sets ``ungrounded``,
``outside-period``, ``truncated``, ``instruction-like-text`` and one ``excluded:<id>`` per
exclusion the model named; filling the queue adds ``backends-disagree``. Stored values were
once spelt ``outside_period``: migration m011 rewrites them, and :func:`parse` still takes
that spelling in a filter.
"""

from __future__ import annotations

from enum import StrEnum


class Flag(StrEnum):
    """Every fixed flag, in the order the web's filter lists them."""

    UNGROUNDED = "ungrounded"  # a quote is not in the document
    OUTSIDE_PERIOD = "outside-period"  # the action falls outside the compliance period
    BACKENDS_DISAGREE = "backends-disagree"  # another backend said otherwise on the same text
    TRUNCATED = "truncated"  # the document was cut to fit the prompt
    INSTRUCTION_LIKE_TEXT = "instruction-like-text"  # the document talks to the classifier


EXCLUDED = "excluded:"  # prefix: one flag per rubric exclusion the model named
FORMER_SPELLINGS = {"outside_period": Flag.OUTSIDE_PERIOD}


def excluded(exclusion: str) -> str:
    """The flag for one rubric exclusion (``excluded:<id>``; the id is the rubric's own)."""
    return f"{EXCLUDED}{exclusion}"


def parse(name: str) -> str:
    """A flag as filters take it: a former spelling becomes today's, anything else is kept as given."""
    return FORMER_SPELLINGS.get(name, name)


__all__ = ["EXCLUDED", "FORMER_SPELLINGS", "Flag", "excluded", "parse"]
