"""An evaluation run for people: the three levels side by side as a table, and a Markdown or
HTML report with plots (confusion matrix, predicted against printed scores).
"""

from __future__ import annotations

from pathlib import Path

from .dataset import FLATTERY


def _cell(value, width: int) -> str:
    text = "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
    return text.rjust(width)


def coverage_line(run: dict) -> str:
    """What was predicted and what failed, and why: printed before any figure."""
    c = run["metrics"].get("coverage") or {
        "items": run["metrics"]["run"]["items"],
        "predicted": run["metrics"]["run"]["predicted"],
        "failed": run["metrics"]["run"]["failed"],
        "by_reason": {},
    }
    reasons = ", ".join(f"{why} {n}" for why, n in c["by_reason"].items())
    return (
        f"coverage ({run['mode']}): {c['predicted']} of {c['items']} predicted, {c['failed']} failed"
        + (f" ({reasons})" if reasons else "")
        + ("; failures count as misses" if c["failed"] else "")
    )


ROWS = [
    ("1. action: relevance recall", "action", "relevance_recall"),
    ("   on predicted items only", "action", "relevance_recall_predicted_only"),
    ("   relevance precision", "action", "relevance_precision"),
    ("   on predicted items only", "action", "relevance_precision_predicted_only"),
    ("   relevance F1", "action", "relevance_f1"),
    ("   base rate (positives / judged)", "action", "base_rate"),
    ("   member: exact set", "action", "member_exact"),
    ("   member: top-1", "action", "member_top1"),
    ("   member: exact, actions the text can attribute", "action", "member_exact_attributable"),
    ("   actions cited under several members", "action", "member_shared_actions"),
    ("   member: anywhere in the set", "action", "member_in_set"),
    ("   date accuracy", "action", "date_accuracy"),
    ("   grounding failure rate", "action", "grounding_failure_rate"),
    ("   other-commitment items relevant", "action", "other_commitment_relevant_rate"),
    ("2. dimension: accuracy", "dimension", "accuracy"),
    ("   Cohen's kappa", "dimension", "kappa"),
    ("   pairs (unclear excluded)", "dimension", "pairs"),
    ("3. member score: exact agreement", "score", "exact_agreement"),
    ("   weighted kappa", "score", "weighted_kappa"),
    ("   mean absolute error", "score", "mae"),
    ("4. per action vs reference labels*: kappa", "reference", "kappa"),
    ("   mean kappa over dimensions", "reference", "kappa_mean"),
    ("   accuracy", "reference", "accuracy"),
    ("   actions", "reference", "actions"),
]
STREAM_ROWS = [
    ("5. stream: precision", "stream", "relevance_precision"),
    ("   recall", "stream", "relevance_recall"),
    ("   F1", "stream", "relevance_f1"),
    ("   PR-AUC (average precision)", "stream", "pr_auc"),
    ("   precision at 25", "stream", "precision_at_25"),
    ("   precision at 50", "stream", "precision_at_50"),
    ("   precision at 100", "stream", "precision_at_100"),
    ("   real pages judged relevant", "stream", "pages_relevant"),
    ("   of real pages", "stream", "pages"),
    ("   hard pages judged relevant", "stream", "hard_pages_relevant"),
    ("   of hard pages", "stream", "hard_pages"),
]


def cost_lines(run: dict) -> list[str]:
    """What the run's calls cost per relevant prediction, and what the prefilter ruled out and lost."""
    r = run["metrics"]["run"]
    lines = []
    if r.get("relevant_predictions") is not None:
        per = r.get("cost_per_relevant_prediction")
        lines.append(
            f"   cost ({run['mode']}): ${r['cost']:.4f} for {r['calls']} calls, {r['relevant_predictions']} "
            f"relevant predictions: {'-' if per is None else f'${per:.4f}'} per relevant prediction"
        )
    if (pf := run["metrics"].get("prefilter")) is not None:
        saved = "-" if pf["calls_saved_share"] is None else f"{pf['calls_saved_share']:.1%}"
        lost = "-" if pf["recall_lost"] is None else f"{pf['recall_lost']:.1%}"
        lines.append(
            f"   prefilter ({run['mode']}, P < {pf['threshold']:g}): ruled out {pf['ruled_out']} of {pf['items']} "
            f"items (calls saved {saved}); recall lost {lost} ({pf['positives_ruled_out']} of "
            f"{pf['positives']} positives)"
        )
        lines.append(f"   ({pf['note']})")
    return lines


def side_by_side(runs: list[dict]) -> str:
    """Coverage first, then the levels for several runs (input modes) in one table."""
    names = [f"{r['mode']} ({r['backend']})" for r in runs]
    width = max(len(n) for n in names) + 2
    label_width = 44
    lines = [coverage_line(r) for r in runs]
    protocols = {r["config"].get("protocol") for r in runs if r.get("config", {}).get("protocol")}
    lines += [f"protocol of every figure below: {p}" for p in sorted(protocols)]
    lines.append(f"{'metric':<{label_width}}" + "".join(n.rjust(width) for n in names))
    rows = ROWS + (STREAM_ROWS if any("stream" in r["metrics"] for r in runs) else [])
    for label, level, key in rows:
        cells = [_cell(r["metrics"].get(level, {}).get(key), width) for r in runs]
        lines.append(f"{label:<{label_width}}" + "".join(cells))
    for r in runs:
        for number, c in r["metrics"]["score"]["commitments"].items():
            lines.append(
                f"   commitment {number} average ({r['mode']}): predicted {c['predicted']}, report {c['report']}"
            )
        unclear = r["metrics"]["dimension"]["unclear_excluded"]
        lines.append(
            f"   ({r['mode']}: {unclear} 'unclear' gold dimensions excluded; dataset {r['dataset_sha'][:19]})"
        )
    for r in runs:
        dims = r["metrics"].get("reference", {}).get("dimensions", {})
        if dims:
            kappas = ", ".join(f"{d} {_cell(v['kappa'], 0)}" for d, v in dims.items())
            lines.append(f"   reference kappa per dimension ({r['mode']}): {kappas}")
    for r in runs:
        through = r["metrics"].get("stream", {}).get("pages_through")
        if through:
            shown = ", ".join(through[:12]) + (f" and {len(through) - 12} more" if len(through) > 12 else "")
            lines.append(f"   real pages judged relevant ({r['mode']}): {shown}")
    for r in runs:
        lines += cost_lines(r)
    if any("reference" in r["metrics"] for r in runs):
        lines.append(
            "* agreement with a model's reference labels (eval/data/reference-labels), not human coding"
        )
    if any(r["mode"] == "paragraph" for r in runs):
        lines.append("Note: " + FLATTERY)
    curve = next((r["metrics"]["learning_curve"] for r in runs if r["metrics"].get("learning_curve")), None)
    if curve:
        lines += ["", *curve_lines(curve)]
    return "\n".join(lines)


def curve_lines(curve: dict) -> list[str]:
    """The learning curve as a table per commitment (mean dimension kappa, stream PR-AUC and the
    real pages judged relevant, uncertainty-first against random), its protocol and verdict."""
    steps = curve["steps"]
    lines = [
        "learning curve of the learned model (simulated analysts' decisions):",
        f"  protocol: {curve['protocol']}",
    ]
    for number, per in curve["commitments"].items():
        lines.append(f"  commitment {number}, decisions" + "".join(f"{n:>8}" for n in steps))
        for label, key in (("mean kappa", "mean_kappa"), ("PR-AUC", "pr_auc"),
                           ("pages relevant", "negatives_judged_relevant_share"), ("member exact", "member_exact")):  # fmt: skip
            for strategy in ("uncertainty", "random"):
                cells = []
                for n in steps:
                    row = per[strategy][str(n)]
                    value = row.get(key, row.get("stream", {}).get(key))
                    cells.append(_cell(value, 8))
                lines.append(f"    {label:<15}{strategy:<12}" + "".join(cells))
    lines.append(f"  verdict: {curve['verdict']}")
    lines.append(
        f"  ({curve.get('seconds', '?')} s; kappa against reference labels from a model, not human coding)"
    )
    return lines


def write_report(run: dict, directory: Path, fmt: str = "md") -> Path:
    """Tables and plots (confusion matrix, predicted vs printed scores) for one run."""
    import html

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if fmt not in ("md", "html"):
        raise ValueError(f"--format must be md or html, not {fmt!r}")
    directory.mkdir(parents=True, exist_ok=True)
    dim = run["metrics"]["dimension"]
    images = []
    if dim["confusion"]:
        images.append(
            _confusion_plot(
                plt, dim["confusion"], dim["labels"], "Blues", "predicted (strongest per member)",
                "gold (analysts' conclusions)", f"Dimension labels ({run['mode']})", None,
                directory / f"{run['id']}-confusion.png",
            )
        )  # fmt: skip
    ref = run["metrics"].get("reference") or {}
    if ref.get("confusion"):
        images.append(
            _confusion_plot(
                plt, ref["confusion"], ref["labels"], "Greens", "predicted (per action)",
                "a model's reference labels", f"Per action vs reference labels ({run['mode']})", 9,
                directory / f"{run['id']}-reference.png",
            )
        )  # fmt: skip
    rows = run["metrics"]["score"]["rows"]
    if rows:
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        for commitment in sorted({r["commitment"] for r in rows}):
            mine = [r for r in rows if r["commitment"] == commitment]
            jitter = 0.06 if commitment % 2 else -0.06
            ax.scatter(
                [r["printed"] + jitter for r in mine],
                [r["predicted"] for r in mine],
                label=f"commitment {commitment}",
            )
        ax.plot([-1, 1], [-1, 1], color="grey", linewidth=0.8)
        ax.set_xticks([-1, 0, 1])
        ax.set_yticks([-1, 0, 1])
        ax.set_xlabel("printed score")
        ax.set_ylabel("predicted score")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(f"Member scores ({run['mode']})")
        fig.tight_layout()
        path = directory / f"{run['id']}-scores.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        images.append(path)
    if curve := run["metrics"].get("learning_curve"):
        from .learning import plot_learning_curve

        images.append(plot_learning_curve(curve, directory / f"{run['id']}-curve.png"))
    table = side_by_side([run])
    title = f"Evaluation {run['id']}: {run['backend']}/{run['model']}, prompt {run['prompt']}, input {run['mode']}"
    if fmt == "md":
        text = f"# {title}\n\n```\n{table}\n```\n\n" + "".join(f"![{p.stem}]({p.name})\n\n" for p in images)
        out = directory / f"{run['id']}.md"
    else:
        text = (
            f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><pre>{html.escape(table)}</pre>"
            + "".join(f"<img src='{html.escape(p.name)}' alt='{html.escape(p.stem)}'>" for p in images)
        )
        out = directory / f"{run['id']}.html"
    out.write_text(text, encoding="utf-8")
    return out


def _confusion_plot(plt, matrix, labels, cmap, xlabel, ylabel, title, title_size, path: Path) -> Path:
    """A 3x3 confusion matrix with its counts written in the cells, saved as a PNG."""
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(matrix, cmap=cmap)
    ax.set_xticks(range(3), labels)
    ax.set_yticks(range(3), labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    peak = max(max(row) for row in matrix) or 1
    for y, row in enumerate(matrix):
        for x, value in enumerate(row):
            ax.text(
                x, y, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black"
            )
    ax.set_title(title, fontsize=title_size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
