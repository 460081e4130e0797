"""How well each proposal rule (:data:`classifier.verdicts.RULES`) reproduces the analysts' verdicts.

The measurement: every action a bundled chapter cites, labelled per dimension by the reference
labels (``eval/data/reference-labels/``: a model's labels, not human coding) as if analysts had
confirmed them; a rule turns each member's actions into a proposal per dimension; the proposals
are compared with the dimension-level gold readings of the rubrics (``corpus/commitments``,
unclear readings left out) and, through each rubric's scoring rule, with the printed scores.

A rule with a parameter (``at-least-k``, ``share-t``, ``points-m``) is measured two ways: with
its parameter chosen on all 16 member scores (in-sample: optimistic, and said so) and leave one
member out: for each member the parameter is chosen on the other members' cells and scores and
applied to the held-out member's, both commitments together, since commitment 19 cites many of
commitment 18's actions again (near-duplicates stay on one side). The choice maximises printed
scores reproduced, then clear dimension readings agreed with; ties go to the smaller parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .metrics import dimension_metrics, score_metrics
from .rubric import Rubric, score
from .verdicts import RULES, RuleKind, propose, rule_name

Action = dict[str, Any]  # commitment, member, dimensions: {dimension: strong | weak | none}


def proposals(actions: Sequence[Action], rubrics: Sequence[Rubric], rule: str) -> dict[int, dict[str, dict]]:
    """Commitment -> member -> dimension -> proposed label, from the members' actions."""
    out: dict[int, dict[str, dict]] = {}
    for rubric in rubrics:
        own = [a for a in actions if a["commitment"] == rubric.number]
        out[rubric.number] = {}
        for member in rubric.members:
            mine = [a["dimensions"] for a in own if a["member"] == member]
            out[rubric.number][member] = {
                d: propose([labels.get(d, "none") for labels in mine], rule).label
                for d in rubric.dimension_ids
            }
    return out


def _fit(
    predicted: dict[int, dict[str, dict]], rubrics: Sequence[Rubric], members: set[str]
) -> tuple[int, int]:
    """(printed scores reproduced, clear dimension readings agreed with) over ``members``."""
    scores = readings = 0
    for rubric in rubrics:
        for g in rubric.gold:
            if g.member not in members:
                continue
            labels = predicted[rubric.number][g.member]
            scores += score(labels, rubric.scoring, rubric.dimension_ids) == g.printed_score
            readings += sum(v.label == labels[d] for d, v in g.labels.items() if v.label != "unclear")
    return scores, readings


def figures(predicted: dict[int, dict[str, dict]], rubrics: Sequence[Rubric]) -> dict[str, Any]:
    """Agreement of proposals with the gold: dimension readings (accuracy, Cohen's kappa) and scores."""
    with_gold = [r for r in rubrics if r.gold]
    dims = dimension_metrics(predicted, with_gold)
    scores = score_metrics(predicted, with_gold)
    agreed = sum(r["gold"] == r["predicted"] for r in dims["rows"])
    reproduced = sum(r["printed"] == r["predicted"] for r in scores["rows"])
    return {
        "readings": dims["pairs"],
        "readings_agreed": agreed,
        "accuracy": dims["accuracy"],
        "kappa": dims["kappa"],
        "scores": scores["members"],
        "scores_reproduced": reproduced,
        "score_weighted_kappa": scores["weighted_kappa"],
        "by_commitment": {
            n: sum(r["printed"] == r["predicted"] for r in scores["rows"] if r["commitment"] == n)
            for n in sorted({r["commitment"] for r in scores["rows"]})
        },
        "misses": [
            f"{r['commitment']} {r['member']}: {r['predicted']:+d} for printed {r['printed']:+d}"
            for r in scores["rows"]
            if r["printed"] != r["predicted"]
        ],
    }


def _best(kind: RuleKind, actions: Sequence[Action], rubrics: Sequence[Rubric], members: set[str]) -> float:
    fits = [
        (_fit(proposals(actions, rubrics, rule_name(kind, p)), rubrics, members), -p, p) for p in kind.grid
    ]
    return max(fits)[2]


def leave_one_member_out(
    kind: RuleKind, actions: Sequence[Action], rubrics: Sequence[Rubric]
) -> dict[str, Any]:
    """Proposals for each member under the parameter chosen on the other members; their figures."""
    members = sorted({g.member for r in rubrics for g in r.gold})
    predicted: dict[int, dict[str, dict]] = {r.number: {} for r in rubrics}
    chosen = {}
    for held_out in members:
        parameter = _best(kind, actions, rubrics, set(members) - {held_out})
        chosen[held_out] = parameter
        own = proposals(actions, rubrics, rule_name(kind, parameter))
        for rubric in rubrics:
            predicted[rubric.number][held_out] = own[rubric.number][held_out]
    for rubric in rubrics:  # members without gold are not scored, but figures() wants every member
        for member in rubric.members:
            predicted[rubric.number].setdefault(member, dict.fromkeys(rubric.dimension_ids, "none"))
    return {**figures(predicted, rubrics), "chosen": chosen}


def measure(actions: Sequence[Action], rubrics: Sequence[Rubric]) -> list[dict[str, Any]]:
    """One row per rule: its figures, and for a rule with a parameter also the leave-one-member-out ones."""
    rows = []
    for kind in RULES.values():
        if not kind.grid:
            rows.append(
                {
                    "rule": kind.name,
                    "protocol": "no parameter",
                    **figures(proposals(actions, rubrics, kind.name), rubrics),
                }
            )
            continue
        members = {g.member for r in rubrics for g in r.gold}
        parameter = _best(kind, actions, rubrics, members)
        name = rule_name(kind, parameter)
        rows.append({"rule": name, "protocol": "parameter chosen on all 16 scores (in-sample)",
                     **figures(proposals(actions, rubrics, name), rubrics)})  # fmt: skip
        loo = leave_one_member_out(kind, actions, rubrics)
        picked = sorted({f"{p:g}" for p in loo["chosen"].values()})
        rows.append(
            {"rule": f"{kind.name}-*", "protocol": f"leave one member out (chose {', '.join(picked)})", **loo}
        )
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    """The table `python -m bench.verdict_rules` prints."""
    head = f"{'rule':<14} {'readings agreed':>16} {'accuracy':>8} {'kappa':>6} {'scores':>7} {'18':>3} {'19':>3}  protocol"
    lines = [head, "-" * len(head)]
    for r in rows:
        by = r["by_commitment"]
        lines.append(
            f"{r['rule']:<14} {r['readings_agreed']:>9}/{r['readings']:<6} {r['accuracy']:>8.3f} {r['kappa']:>6.3f} "
            f"{r['scores_reproduced']:>4}/{r['scores']:<2} {by.get(18, 0):>3} {by.get(19, 0):>3}  {r['protocol']}"
        )
    return "\n".join(lines)
