"""The ``evidence`` command line. Thin: each command calls one library function."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from . import calls as calls_lib
from . import crawl as crawl_lib
from . import documents as documents_lib
from . import gold as gold_lib
from . import sources as sources_lib
from . import users as users_lib
from .config import Config, ConfigError, load_config
from .errors import EndpointUnusable, NotFound
from .gold import ManifestError
from .models import MEMBER_CODES, MEMBERS, resolve_member
from .prompts import PromptError
from .redaction import redact
from .reports import ReportParseError
from .review import STATES, QueueError, check_state
from .rubric import RubricError, load_rubrics, rubrics_for
from .rubric_draft import DraftError
from .sources import SourcesError
from .store import StoreError, corpus_dir, open_db, resolve_db_path, results_dir
from .users import UserError
from .verdicts import VerdictError

# Errors a user can cause: one line, non-zero exit, no traceback unless --debug.
USER_ERRORS = (
    ReportParseError,
    RubricError,
    DraftError,
    ManifestError,
    StoreError,
    ConfigError,
    SourcesError,
    PromptError,
    QueueError,
    VerdictError,
    UserError,
    NotFound,
    EndpointUnusable,
    ValueError,
    FileNotFoundError,
)

STATE_HELP = f"{', '.join(STATES[:-1])} or {STATES[-1]}."  # the --state options' help

app = typer.Typer(
    help="Evidence classifier for G7 compliance monitoring: gold from compliance reports, "
    "rubrics and the scoring rule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
gold_app = typer.Typer(help="The hand-coded compliance reports as data.", no_args_is_help=True)
rubric_app = typer.Typer(help="Commitment rubrics and their dimension-level gold.", no_args_is_help=True)
docs_app = typer.Typer(
    help="Fetched press releases: documents, versions and the fetch log.", no_args_is_help=True
)
calls_app = typer.Typer(
    help="The model call log: every call, its request, response, tokens and cost.", no_args_is_help=True
)
queue_app = typer.Typer(
    help="The analyst review queue: candidate actions and decisions.", no_args_is_help=True
)
score_app = typer.Typer(
    help="Scores from confirmed evidence: tables, and each score's receipt.", invoke_without_command=True
)
report_app = typer.Typer(help="Report drafts from confirmed evidence.", no_args_is_help=True)
verdict_app = typer.Typer(
    help="Member x dimension verdicts: an analyst's judgement of everything a member did in a dimension.",
    no_args_is_help=True,
)
eval_app = typer.Typer(help="Agreement with the hand-coded reports, run after run.", no_args_is_help=True)
runs_app = typer.Typer(help="Past nightly runs and their summaries.", no_args_is_help=True)
users_app = typer.Typer(help="Analyst accounts for the web interface.", no_args_is_help=True)
app.add_typer(gold_app, name="gold")
app.add_typer(rubric_app, name="rubric")
app.add_typer(docs_app, name="docs")
app.add_typer(calls_app, name="calls")
llm_app = typer.Typer(help="The model endpoint: check it before a run spends on it.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")
app.add_typer(queue_app, name="queue")
app.add_typer(score_app, name="score")
app.add_typer(verdict_app, name="verdict")
app.add_typer(report_app, name="report")
app.add_typer(eval_app, name="eval")
app.add_typer(runs_app, name="runs")
app.add_typer(users_app, name="users")


class State:
    db: str | None = None
    config: str | None = None
    debug: bool = False


state = State()


def handled(func):
    """Turn the errors a user can cause into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            if state.debug:
                raise
            typer.echo(f"error: {redact(str(exc))}", err=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main_options(
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="SQLite database path (default: $EVIDENCE_DB, else .evidence/evidence.db)."
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="Configuration file (default: $EVIDENCE_CONFIG, else evidence.toml)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    state.db = db
    state.config = config
    state.debug = debug


# `classify` and `eval run` take the same prefilter options
PrefilterOption = Annotated[
    float | None,
    typer.Option(
        "--prefilter",
        min=0.0,
        max=1.0,
        help="With a model endpoint: send only items the learned model gives P(relevant) >= this (default: [llm] prefilter, 0.05).",
    ),
]
NoPrefilterOption = Annotated[
    bool, typer.Option("--no-prefilter", help="With a model endpoint: send every item, rule none out first.")
]


def _db():
    return open_db(state.db)


@app.command("run")
@handled
def run_command(
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", help="N dataset items per input mode, sampled (a quick look)."),
    ] = None,
) -> None:
    """The main job on embedded defaults: import the reports, classify the gold dataset with the
    configured backend (the learned model, cross-validated, unless configured), fill the review
    queue, print the evaluation (three levels) and the provisional scores."""
    from . import pipeline
    from . import score as score_lib
    from .evaluation_report import side_by_side

    def show(stage: str, job: pipeline.MainJob) -> None:
        if stage == "gold":
            _print_imports(job.imports)
            for table in job.gold_tables:
                typer.echo("")
                typer.echo(gold_lib.render_score_table(table))
            typer.echo("")
            typer.echo(
                "Evaluation against the reports' own coding (this takes a minute or two on the embedded model):"
            )
        elif stage == "evaluation":
            typer.echo("")
            typer.echo(side_by_side(job.runs))
        elif stage == "queue":
            typer.echo("")
            typer.echo(
                f"Review queue: {job.queued['added']} new candidate actions, {job.queued['updated']} updated "
                "(`evidence queue list` to triage)"
            )
        elif stage == "scores":
            typer.echo("")
            typer.echo(
                "PROVISIONAL scores: pending suggestions counted as if confirmed; only analysts' decisions "
                "make them final."
            )
            for table in job.provisional:
                typer.echo("")
                typer.echo(score_lib.render_table(table))

    started = time.perf_counter()
    job = pipeline.main_job(
        _db(),
        load_config(state.config),
        limit=limit,
        on_stage=show,
        on_notice=lambda notice: typer.echo(notice, err=True),
        on_run=_print_run,
    )
    typer.echo("")
    typer.echo(
        f"database: {resolve_db_path(state.db)}; evaluation runs: {', '.join(r['id'] for r in job.runs)}"
    )
    typer.echo("review the queue in a browser: `evidence users add NAME`, then `evidence serve`")
    typer.echo(f"done in {time.perf_counter() - started:.0f} s")


def _print_imports(results: list[gold_lib.ImportResult]) -> None:
    for r in results:
        chapters = ", ".join(
            f"{n} v{r.versions[n]}"
            + (f" (v{r.current[n]} is current)" if r.current[n] != r.versions[n] else "")
            for n in r.chapters
        )
        detail = f"{r.evidence} cited actions, {r.warnings} parse warnings" if r.status != "unchanged" else ""
        typer.echo(f"{r.status:<11} {r.path.name}  commitment {chapters}  {detail}".rstrip())


@gold_app.command("import")
@handled
def gold_import(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Report files (.txt, .md or .pdf: a chapter or a whole report), or directories of them."
        ),
    ],
) -> None:
    """Import compliance-report chapters, from text or PDF (a chapter or a whole report). A chapter is identified by
    summit, report kind and commitment: another file of it is a new version of it; the same text twice changes
    nothing; an incomplete chapter is refused."""
    db = _db()
    results = []
    for path in gold_lib.expand_paths(paths):
        results.append(gold_lib.import_report(db, path))
    _print_imports(results)


@gold_app.command("show")
@handled
def gold_show(
    warnings: Annotated[
        bool, typer.Option("--warnings/--no-warnings", help="List every parse warning.")
    ] = True,
) -> None:
    """Chapters and their versions, each current chapter's member scores, and the parser's warnings."""
    db = _db()
    versions = gold_lib.chapter_versions(db)
    if not versions:
        typer.echo("no reports imported: run `evidence gold import corpus/reports`")
        return
    typer.echo("Chapters (summit, report kind, commitment: every version, newest first; * the one read)")
    chapter = None
    for v in versions:
        key = (v["summit"], v["report_kind"], v["number"])
        if key != chapter:
            chapter = key
            typer.echo(f"  {v['summit']} {v['report_kind']} {v['number']}. {v['title']}")
        typer.echo(
            f"    {'*' if v['current'] else ' '} v{v['version']}  {v['file_name']}  {v['report_id'][:19]}  "
            f"{v['actions']} cited actions  imported {v['imported_utc']}"
        )
    typer.echo("")
    for r in gold_lib.current_reports(db):
        typer.echo(
            f"  {r['file_name']}  {r['summit']} {r['kind']}  "
            f"{r['period_start']} to {r['period_end']}  {r['source_format']}  {r['id'][:19]}"
        )
    typer.echo("")
    for c in gold_lib.current_commitments(db):
        actions, sections = gold_lib.commitment_sections(db, c)
        dims = json.loads(c["dimensions"])
        typer.echo(f"Commitment {c['number']}: {c['title']} ({c['report_kind']} report, v{c['version']})")
        typer.echo(f"  {c['commitment']}")
        typer.echo(f"  dimensions as written: {'; '.join(d['name'] for d in dims)}")
        typer.echo(f"  {actions} cited actions; average {c['average_printed']}")
        for s in sections:
            typer.echo(
                f"    {s['member']:<16} {gold_lib.printed_score(s['score']):>3}  {s['actions']:>3} actions  "
                f"{', '.join(json.loads(s['analysts']))}"
            )
        typer.echo("")
    rows = gold_lib.warnings_for(db)
    counts = Counter(w["code"] for w in rows)
    typer.echo(f"Warnings: {len(rows)} ({', '.join(f'{k} {v}' for k, v in counts.most_common())})")
    if warnings:
        for w in rows:
            where = f"{w['file_name']}:{w['line']}" if w["line"] else w["file_name"]
            typer.echo(f"  {where}  {w['code']}: {w['message']}")


@gold_app.command("evidence")
@handled
def gold_evidence(
    format: Annotated[str, typer.Option("--format", "-f", help="jsonl or table.")] = "jsonl",
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code (UK) or name.")] = None,
) -> None:
    """Every cited action paragraph: report, commitment, member, date, text and resolved footnotes."""
    if format not in ("jsonl", "table"):
        raise ValueError(f"--format must be jsonl or table, not {format!r}")
    rows = gold_lib.evidence_items(_db(), commitment, member)
    if format == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(gold_lib.evidence_record(row), ensure_ascii=False) + "\n")
        return
    for row in rows:
        urls = " ".join(fn["url"] or f"[{fn['number']}: no URL]" for fn in row["footnote_details"])
        text = row["text"] if len(row["text"]) <= 100 else row["text"][:99] + "…"
        flag = "*" if row["date_source"] == "footnote" else " "
        typer.echo(
            f"{row['commitment']:>3} {MEMBER_CODES[row['member']]} {row['seq']:>3} "
            f"{row['date'] or '?':<10}{flag} {text}  {urls}"
        )


@gold_app.command("scores")
@handled
def gold_scores(
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
) -> None:
    """Member scores per commitment, with the average and percentage exactly as printed."""
    if format not in ("json", "table"):
        raise ValueError(f"--format must be json or table, not {format!r}")
    tables = gold_lib.score_tables(_db(), commitment)
    if format == "json":
        typer.echo(json.dumps(tables, indent=2, ensure_ascii=False))
        return
    if not tables:
        typer.echo("no reports imported: run `evidence gold import corpus/reports`")
    for table in tables:
        typer.echo(gold_lib.render_score_table(table))
        typer.echo("")


@rubric_app.command("check")
@handled
def rubric_check(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Rubric files to check (default: every file in --dir).")
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Rubric directory (default: corpus/commitments).")
    ] = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against", help="Hand-checked rubric file or directory: how far the drafts reproduce it."
        ),
    ] = None,
) -> None:
    """Validate rubrics, score their dimension-level gold against the printed scores, and list
    the draft values an analyst must confirm."""
    from . import rubric as rubric_lib

    if files:
        rubrics = [rubric_lib.load_rubric(f) for f in files]
    else:
        rubrics = load_rubrics(directory or corpus_dir() / "commitments")
    unexplained = 0
    for rubric in rubrics:
        result = rubric_lib.check(rubric)
        unexplained += result.unexplained
        typer.echo(rubric_lib.render_check(result))
        if against is not None:
            typer.echo(_agreement(rubric, against))
    if unexplained:
        typer.echo(
            f"error: {unexplained} member(s) whose gold does not give the printed score and no note says why",
            err=True,
        )
        raise typer.Exit(1)


def _agreement(rubric, against: Path) -> str:
    from .rubric import load_rubric
    from .rubric_draft import compare

    candidates = [against] if against.is_file() else sorted(against.glob("*.toml"))
    checked = [c for c in (load_rubric(p) for p in candidates) if c.number == rubric.number]
    if not checked:
        return f"  against {against}: no rubric for commitment {rubric.number}"
    a = compare(rubric, checked[0])
    lines = [
        f"  against {against}: dimensions {'same' if a.dimensions_same else 'DIFFER'} "
        f"({a.ids_same} of {a.dimensions} ids equal), rule {'same' if a.rule_same else 'DIFFERS'}, "
        f"member readings {a.readings_same} of {a.readings} ({a.readings_share:.0%}), "
        f"examples {a.examples_same} of {a.examples} word for word"
    ]
    lines += [f"    {d}" for d in a.differences]
    return "\n".join(lines)


@rubric_app.command("draft")
@handled
def rubric_draft(
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    report: Annotated[
        str | None,
        typer.Option(
            "--report", help="Which imported chapter, when several: interim, final, a summit or a file name."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write (default: corpus/commitments/<summit>-<N>.toml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="rules, or openai: the member readings by the configured model endpoint."
        ),
    ] = "rules",
) -> None:
    """Draft a rubric from an imported chapter, every value marked draft until an analyst confirms it."""
    from . import rubric_draft as draft_lib

    db = _db()
    source = draft_lib.chapter_source(db, commitment, report)
    path = out or corpus_dir() / "commitments" / source.default_name
    if path.exists() and not force:
        raise draft_lib.DraftError(f"{path} exists: not overwritten (use --force to replace it, or --out)")
    if backend == "rules":
        draft = draft_lib.draft_rubric(source)
    elif backend == "openai":
        draft = draft_lib.draft_with_model(source, load_config(state.config).llm, db=db)
    else:
        raise ValueError(f"--backend must be rules or openai, not {backend!r}")
    draft_lib.write_draft(draft, path, force=force)
    rubric = draft.rubric
    typer.echo(
        f"{path}: drafted {rubric.summit} commitment {rubric.number} from {source.file_name} "
        f"({backend}): {len(rubric.dimensions)} dimensions, "
        f"{len(rubric.scoring.rules)} scoring rules, {len(rubric.gold)} members; "
        f"{len(rubric.draft_fields)} values to confirm"
    )
    for text in draft.could_not:
        typer.echo(f"  could not: {text}")
    typer.echo("  next: `evidence rubric check " + str(path) + "` lists what to confirm")


@rubric_app.command("list")
@handled
def rubric_list() -> None:
    """The rubrics in corpus/commitments: commitment, title, period, dimensions."""
    for rubric in load_rubrics(corpus_dir() / "commitments"):
        drafted = f"  DRAFT: {len(rubric.draft_fields)} values to confirm" if rubric.draft_fields else ""
        typer.echo(
            f"{rubric.number:>3}  {rubric.title}  {rubric.period_start} to {rubric.period_end}  "
            f"[{', '.join(rubric.dimension_ids)}]{drafted}"
        )


def _progress(total: int, label: str):
    """A progress bar on stderr (only on a terminal); returns (advance, close)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    progress.start()
    task = progress.add_task(label, total=total or None)

    def advance(*_args) -> None:
        progress.advance(task)

    def grow(n: int) -> None:
        progress.update(task, total=n)

    return advance, grow, progress.stop


def _finish(summary: documents_lib.Summary) -> None:
    for line in summary.lines():
        typer.echo(line)
    if summary.failures:
        typer.echo(f"{summary.failures} failed: see `evidence docs log --run {summary.run_id}`", err=True)
        raise typer.Exit(1)


@app.command("fetch")
@handled
def fetch_command(
    urls: Annotated[list[str] | None, typer.Argument(help="Press-release URLs to fetch.")] = None,
    from_gold: Annotated[
        bool, typer.Option("--from-gold", help="Fetch every URL cited in the imported reports' footnotes.")
    ] = False,
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="With --from-gold.")] = None,
    member: Annotated[
        str | None, typer.Option("--member", "-m", help="With --from-gold: code or name.")
    ] = None,
) -> None:
    """Fetch pages, extract their text and store them (conditional requests for known pages)."""
    import asyncio

    if not urls and not from_gold:
        raise ValueError("give URLs to fetch, or --from-gold")
    config = load_config(state.config)
    config.fetch.agent()  # refuse early without a contact address
    db = _db()
    targets: list[documents_lib.Target] = []
    invalid: list[str] = []
    if from_gold:
        targets = crawl_lib.gold_targets(db, commitment, resolve_member(member))
        if not targets:
            raise ValueError(
                "no cited URLs: import the reports first (`evidence gold import corpus/reports`)"
            )
    if urls:
        more, invalid = crawl_lib.make_targets(urls)
        targets += more
    summary = documents_lib.Summary()
    crawl_lib.log_invalid(db, invalid, summary)
    for url in invalid:
        typer.echo(f"invalid URL (only http and https): {url}", err=True)
    advance, _, stop = _progress(len(targets), "fetching")
    try:
        asyncio.run(crawl_lib.fetch_targets(db, targets, config, summary=summary, on_done=advance))
    finally:
        stop()
    _finish(summary)


@app.command("crawl")
@handled
def crawl_command(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Source name(s) from sources.toml.")
    ] = None,
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only items dated on or after YYYY-MM-DD.")
    ] = None,
    sources_file: Annotated[
        Path | None, typer.Option("--sources", help="Sources file (default: corpus/sources.toml).")
    ] = None,
) -> None:
    """Discover new items from the newsrooms' feeds, sitemaps and listing pages, and fetch them."""
    import asyncio
    import datetime as dt

    config = load_config(state.config)
    config.fetch.agent()
    sources = sources_lib.load_sources(sources_file or corpus_dir() / "sources.toml")
    if source:
        unknown = sorted(set(source) - {s.name for s in sources})
        if unknown:
            raise ValueError(f"unknown source(s): {', '.join(unknown)}")
        sources = [s for s in sources if s.name in source]
    if member:
        name = resolve_member(member)
        sources = [s for s in sources if MEMBERS[s.member] == name]
    if not sources:
        raise ValueError("no source matches the filters")
    start = None
    if since:
        try:
            start = dt.date.fromisoformat(since)
        except ValueError:
            raise ValueError(f"--since must be a date YYYY-MM-DD, not {since!r}") from None
    db = _db()
    advance, grow, stop = _progress(0, f"crawling {len(sources)} sources")
    try:
        summary = asyncio.run(
            crawl_lib.crawl(db, sources, config, since=start, on_discovered=grow, on_done=advance)
        )
    finally:
        stop()
    _finish(summary)


@docs_app.command("list")
@handled
def docs_list(
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    source: Annotated[str | None, typer.Option("--source", "-s", help="Source name, or 'gold'.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Published on or after YYYY-MM-DD.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
) -> None:
    """Stored documents, newest first: id, date (and where it came from), version, title, URL."""
    import datetime as dt

    start = dt.date.fromisoformat(since) if since else None
    rows = documents_lib.list_documents(
        _db(), member=resolve_member(member), source=source, since=start, limit=limit
    )
    for row in rows:
        flag = "!" if row["date_conflict"] else " "
        title = (row["title"] or "")[:70]
        typer.echo(
            f"{row['id']:>6}  {row['published'] or '?':<10}{flag} {(row['date_source'] or '-'):<8} "
            f"v{row['current_version']}  {row['kind']:<4} {title}  {row['canonical_url']}"
        )
    if not rows:
        typer.echo(
            "no documents: run `evidence fetch URL...`, `evidence fetch --from-gold` or `evidence crawl`"
        )


@docs_app.command("show")
@handled
def docs_show(
    ref: Annotated[str, typer.Argument(help="Document id or URL.")],
    text: Annotated[bool, typer.Option("--text/--no-text", help="Print the extracted text.")] = True,
) -> None:
    """One document: versions, dates and their sources, links to members and gold, fetch history, text."""
    import json as json_lib

    doc = documents_lib.document_detail(_db(), ref)
    versions = doc["versions"]
    current = versions[-1] if versions else None
    typer.echo(f"document {doc['id']}: {doc['canonical_url']}")
    typer.echo(
        f"  kind {doc['kind']}, first seen {doc['first_seen_utc']}, last fetched {doc['last_fetched_utc']}"
    )
    for v in versions:
        typer.echo(
            f"  v{v['version']}  {v['fetched_utc']}  {v['content_sha256'][:19]}  raw {v['raw_sha256'][:19]}"
        )
    if current:
        candidates = json_lib.loads(current["date_candidates"] or "{}")
        conflict = "  (the witnesses disagree)" if current["date_conflict"] else ""
        typer.echo(f"  title: {current['title']}")
        typer.echo(
            f"  published: {current['published']} from {current['date_source']}; "
            f"witnesses {candidates}{conflict}"
        )
        typer.echo(f"  language {current['language']}, site {current['site']}, author {current['author']}")
        typer.echo(f"  encoding {current['encoding']} ({current['encoding_source']})")
    for link in doc["links"]:
        extra = f", footnote {link['footnote']}" if link["footnote"] else ""
        typer.echo(f"  linked: {link['member']} commitment {link['commitment']} via {link['source']}{extra}")
    for c in doc["classifications"]:
        if c["status"] != "ok":
            typer.echo(f"  commitment {c['commitment']} ({c['backend']}/{c['model']}): failed: {c['error']}")
            continue
        dims = json_lib.loads(c["dimensions"])
        labels = ", ".join(f"{k} {v['label']}" for k, v in dims.items())
        flags = ", ".join(json_lib.loads(c["flags"])) or "no flags"
        typer.echo(
            f"  commitment {c['commitment']} ({c['backend']}/{c['model']}, {c['prompt_name']}): "
            f"{'relevant' if c['relevant'] else 'not relevant'}; {labels}; {flags}"
        )
    if text and current:
        typer.echo("")
        typer.echo(current["text"])


@docs_app.command("log")
@handled
def docs_log(
    url: Annotated[str | None, typer.Argument(help="Only attempts at this URL.")] = None,
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="Only this outcome (e.g. timeout).")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run id.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
) -> None:
    """The fetch log: every attempt, its outcome, status, attempts, bytes and error, newest first."""
    rows = documents_lib.fetch_log(_db(), url, outcome, limit=limit, run_id=run)
    for row in rows:
        typer.echo(
            f"{row['started_utc']}  {row['outcome']:<18} {row['status'] or '-':>3}  x{row['attempts'] or 0}  "
            f"{row['purpose']:<8} {row['url']}" + (f"  ({row['error']})" if row["error"] else "")
        )
    if not rows:
        typer.echo("no fetch attempts recorded" + (f" for {url}" if url else ""))


@app.command("classify")
@handled
def classify_command(
    commitment: Annotated[
        int | None, typer.Option("--commitment", "-c", help="Only this commitment.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Documents published on or after YYYY-MM-DD.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="learned, baseline or openai (default: config).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name for the openai backend.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Prompt version, e.g. classify-v1.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="At most this many documents.")] = None,
    cost_cap: Annotated[
        float | None, typer.Option("--cost-cap", help="Stop calling the model past this many USD.")
    ] = None,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Through the OpenAI Batch API (half price, results within 24 h); a rerun picks up "
            "the batch in flight.",
        ),
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="With --batch: list the stored batches and their states.")
    ] = False,
    prefilter: PrefilterOption = None,
    no_prefilter: NoPrefilterOption = False,
) -> None:
    """Classify stored documents against every commitment's rubric: relevance, members, labels, quotes."""
    import asyncio
    import datetime as dt

    from . import classify as classify_lib

    config = with_prefilter(load_config(state.config), prefilter, no_prefilter)
    db = _db()
    if status:
        if not batch:
            raise ValueError("--status lists batches: use it with --batch")
        from . import batch as batch_lib

        for line in batch_lib.status_lines(db):
            typer.echo(line)
        return
    rubrics = rubrics_for(commitment)
    start = None
    if since:
        try:
            start = dt.date.fromisoformat(since)
        except ValueError:
            raise ValueError(f"--since must be a date YYYY-MM-DD, not {since!r}") from None
    classifier = classify_lib.Classifier(
        db, config, backend=backend, model=model, prompt=prompt, cost_cap=cost_cap
    )
    if notice := classifier.backend.notice():
        typer.echo(f'{notice}. Set [llm] backend = "openai" in evidence.toml to use a model.', err=True)
    items = classify_lib.document_items(db, rubrics, since=start, limit=limit)
    if not items:
        raise ValueError("no documents to classify: fetch some first (`evidence fetch`, `evidence crawl`)")
    if batch:
        from . import batch as batch_lib

        batch_lib.check_backend(classifier)
        if cost_cap is not None or classifier.cost_cap is not None:
            typer.echo(
                "note: a cost cap does not apply to a batch (its cost is known when it ends)", err=True
            )
    # a batch prints its states as they change (it may wait hours), not a progress bar
    advance, _, stop = _progress(len(items), "classifying") if not batch else (None, None, lambda: None)
    try:
        if batch:
            batches = asyncio.run(
                batch_lib.run_batch(
                    db, config, classifier, items, echo=lambda line: typer.echo(line, err=True)
                )
            )
            for line in batches.lines():
                typer.echo(line)
            summary = classifier.summary
        else:
            summary = asyncio.run(classifier.run(items, on_done=advance))
    except Exception as exc:  # not one item's failure (those are counted): e.g. the database failing
        if batch and isinstance(exc, batch_lib.BatchError):
            raise  # one line naming the endpoint and the problem; the batch stays stored
        if state.debug:
            raise
        from .llm import unexpected

        typer.echo(f"error: classify stopped: {unexpected(exc)}; what was classified is stored", err=True)
        raise typer.Exit(1) from None
    finally:
        stop()
    for line in summary.lines():
        typer.echo(line)
    from . import review

    counts = review.fill(db)
    typer.echo(
        f"queue: {counts['added']} new items, {counts['updated']} updated, "
        f"{counts['changed_after_decision']} changed after a decision"
    )
    if summary.stopped:
        typer.echo(f"error: {summary.stopped}", err=True)
        raise typer.Exit(1)
    if summary.failures:
        outcome = summary.failed.most_common(1)[0][0]
        typer.echo(
            f"{summary.failures} failed, retried by the next run: see `evidence calls list --outcome {outcome}`",
            err=True,
        )
        raise typer.Exit(1)


@app.command("learn")
@handled
def learn_command(
    commitment: Annotated[
        int | None, typer.Option("--commitment", "-c", help="Only this commitment.")
    ] = None,
) -> None:
    """Retrain the learned model from the rubrics, the gold and every analyst decision."""
    from . import learner

    rows = learner.learn(_db(), rubrics_for(commitment))
    for row in rows:
        short = row["version"].removeprefix("sha256:")[:16]
        if not row["new"]:
            typer.echo(
                f"commitment {row['commitment']}: unchanged, version {short} ({row['decisions']} decisions)"
            )
            continue
        fig = row["figures"]
        typer.echo(
            f"commitment {row['commitment']}: trained version {short} from {row['examples']} examples "
            f"({row['decisions']} decisions) in {row['seconds']} s; held-out relevance average precision "
            f"{fig.get('held_out_average_precision', 'n/a')}, threshold {fig.get('relevance_threshold', 0.5):.2f}"
        )


@llm_app.command("check")
@handled
def llm_check(
    model: Annotated[
        str | None, typer.Option("--model", help="Check this model instead of [llm] model.")
    ] = None,
) -> None:
    """Reach the configured endpoint, list its models, confirm the configured one, send one tiny
    structured request in the configured mode; print latency, mode support, context size, price."""
    from .endpoint import run_check

    report = run_check(load_config(state.config).llm, model=model)
    for line in report.lines:
        typer.echo(line, err=line.startswith("problem:"))
    if report.problem:
        raise typer.Exit(1)


@calls_app.command("list")
@handled
def calls_list(
    outcome: Annotated[
        str | None, typer.Option("--outcome", help="Only this outcome (ok, invalid-output, …).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
) -> None:
    """Model calls, newest first: id, backend, model, prompt, commitment, outcome, tokens, cost, latency."""
    rows = calls_lib.list_calls(_db(), outcome=outcome, limit=limit)
    for r in rows:
        typer.echo(
            f"{r['id']:>6}  {r['created_utc']}  {r['backend']}/{r['model']}  {r['prompt_name']}  c{r['commitment']}  "
            f"{r['outcome']:<14} {r['tokens_in']}+{r['tokens_out']} tok  ${r['cost']:.4f}  {r['latency_ms']} ms"
            f"  retries {r['retries']}" + (f"  ({r['error']})" if r["error"] else "")
        )
    if not rows:
        typer.echo("no model calls recorded")


@calls_app.command("show")
@handled
def calls_show(call_id: Annotated[int, typer.Argument(help="Call id from `evidence calls list`.")]) -> None:
    """One call: the request as sent (messages), the raw response, the parsed output and the accounting."""
    r = calls_lib.get_call(_db(), call_id)
    typer.echo(
        f"call {r['id']}: {r['backend']}/{r['model']} prompt {r['prompt_name']} ({r['prompt_sha'][:19]}) "
        f"input {r['input_sha'][:19]} commitment {r['commitment']}"
    )
    typer.echo(
        f"outcome {r['outcome']}; tokens {r['tokens_in']} in, {r['tokens_out']} out, {r['cached_tokens']} cached; "
        f"cost ${r['cost']:.6f}; {r['latency_ms']} ms; retries {r['retries']}"
    )
    if r["error"]:
        typer.echo(f"error: {r['error']}")
    for title, key in (("request", "request"), ("raw response", "raw_response"), ("parsed", "parsed")):
        typer.echo(f"\n--- {title} ---")
        value = r[key]
        try:
            typer.echo(json.dumps(json.loads(value), indent=2, ensure_ascii=False) if value else "(none)")
        except json.JSONDecodeError:
            typer.echo(value)


AnalystOption = Annotated[
    str | None, typer.Option("--analyst", "-a", help="Who decides (default: $EVIDENCE_ANALYST).")
]
VersionOption = Annotated[
    int | None,
    typer.Option(
        "--version",
        help="The item version you looked at (`queue show`). Without it, refused if anyone decided on "
        "the item since its suggestion.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Without --version: decide on the current version even if others decided."),
]


def _decide(
    item_id: int, analyst: str | None, action: str, version: int | None, force: bool = False, **payload
) -> None:
    from . import coding, review

    db = _db()
    who = review.resolve_analyst(analyst)
    blind = coding.view(db, item_id, who).blind if item_id in review.SQLITE_INTEGER else False
    try:
        if version is None:
            decision = review.decide_current(db, item_id, who, action, force=force, **payload)
        else:
            decision = review.decide(db, item_id, who, action, version, **payload)
    except review.UnseenDecisions as exc:
        typer.echo(f"item {item_id}'s decisions:", err=True)
        for d in exc.state.history:
            typer.echo(f"  {_history_line(d)}", err=True)
        raise
    state = review.state_of(db, item_id)
    seen = coding.view(db, item_id, who)
    if blind and who in seen.analysts:  # taken as this analyst's coding, not as a decision
        typer.echo(f"coding {decision}: {who} {action} item {item_id}, coded blind ({_coding_line(seen)})")
        return
    typer.echo(
        f"decision {decision}: {who} {action} item {item_id} (now {state.state}, version {state.version})"
    )


def _coding_line(seen) -> str:
    """Where an item's double coding stands, in a few words."""
    if not seen.complete:
        return f"{seen.coded} of {len(seen.analysts)} coded; the others' codings stay hidden until all have coded"
    if seen.agree:
        return "all coded and agreed: settled by the agreement"
    return f"all coded, disagreeing on {', '.join(seen.disagreements())}: needs a reconciling decision"


def _history_line(d: dict) -> str:
    """One decision as a line: when, who, what (with its reason, label, summary or note), on which version."""
    payload = json.loads(d["payload"] or "{}")
    detail = {
        "reject": payload.get("reason"),
        "relabel": f"{payload.get('dimension')} -> {payload.get('label')}",
        "edit": payload.get("summary"),
        "note": payload.get("note"),
    }.get(d["action"])
    what = f"{d['action']}: {detail}" if detail else d["action"]
    return f"{d['created_utc']}  {d['analyst']} {what} (on version {d['based_on_version']})"


@queue_app.command("fill")
@handled
def queue_fill() -> None:
    """Turn classifications into queue items (also done by `evidence classify`)."""
    from . import review

    counts = review.fill(_db())
    typer.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))


@queue_app.command("list")
@handled
def queue_list(
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
    state: Annotated[str | None, typer.Option("--state", help=STATE_HELP)] = None,
    flag: Annotated[
        str | None,
        typer.Option("--flag", help="Only items with this flag (e.g. ungrounded, outside-period)."),
    ] = None,
    order: Annotated[
        str, typer.Option("--order", help="attention (needs attention first), member, commitment or date.")
    ] = "attention",
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many (paging).")] = 0,
    dimension: Annotated[
        str | None,
        typer.Option("--dimension", "-d", help="Only items acting in this dimension (label strong or weak)."),
    ] = None,
) -> None:
    """Queue items: id, state, member, commitment, date, flags, claim, summary."""
    from . import review

    rows = review.list_items(
        _db(),
        dimension=dimension,
        member=resolve_member(member),
        commitment=commitment,
        state=state,
        flag=flag,
        order=order,
        limit=limit,
        offset=offset,
    )
    for r in rows:
        flags = ",".join(json.loads(r["flags"] or "[]")) or "-"
        claim = f" [{r['claimed_by']}]" if r["claimed_by"] else ""
        summary = (r["summary"] or "")[:80]
        typer.echo(
            f"{r['id']:>6} {r['state']:<8} {r['member']:<16} c{r['commitment']} {r['published'] or '?':<10} "
            f"v{r['version']} {flags}{claim}  {summary}"
        )
    if not rows:
        typer.echo("no queue items match")


def _highlight(text: str, dim: str, quotes: list[dict], width: int = 160) -> list[str]:
    """Each located quote with the text around it, the quote in [[double brackets]]."""
    from .review import quote_segments

    out = []
    for q in quotes:
        if q.get("start") is None:
            out.append(f'      NOT IN THE DOCUMENT: "{q["quote"]}"')
            continue
        s, e = q["start"], q["end"]
        around = quote_segments(text, {dim: {"quotes": [q]}}, s - width // 2, e + width // 2)
        shown = "".join(f"[[{g.text}]]" if g.dims else g.text.replace("\n", " ") for g in around)
        out.append(f"      …{shown}…  ({q['method']}, {s}-{e})")
    return out


@queue_app.command("show")
@handled
def queue_show(
    item_id: Annotated[int, typer.Argument(help="Queue item id.")],
    analyst: Annotated[
        str | None,
        typer.Option("--analyst", "-a", help="Who is looking (default: $EVIDENCE_ANALYST): an item coded "
                     "blind shows only your own coding until every coder has coded it."),
    ] = None,
) -> None:  # fmt: skip
    """One item: summary, labels with their quotes highlighted in the text, source, date, history."""
    from . import coding, review

    db = _db()
    st = review.state_of(db, item_id)
    seen = coding.view(db, item_id, review.resolve_analyst(analyst))
    item, sug = st.item, st.suggestion
    doc = review.source_of(db, item) or {"url": None, "text": "", "published": None}
    url, text, published = doc["url"], doc["text"], doc["published"]
    typer.echo(
        f"item {item_id}: {item['member']}, commitment {item['commitment']}, {st.state}, version {st.version}"
    )
    if st.suggestion_changed:
        typer.echo("  ! the model's suggestion changed after the last decision: revisit")
    typer.echo(f"  source: {url}  published {published}  action date {sug.get('action_date')}")
    typer.echo(
        f"  suggested by {sug['backend']}/{sug['model']} ({sug['prompt']}), confidence {sug.get('confidence')}"
    )
    typer.echo(f"  flags: {', '.join(sug['flags']) or 'none'}")
    typer.echo(f"  summary: {st.summary}")
    for dim, label in st.labels.items():
        detail = sug["dimensions"].get(dim, {})
        changed = "" if label == sug["labels"].get(dim) else f" (suggested {sug['labels'].get(dim)})"
        typer.echo(f"  {dim}: {label}{changed} — {detail.get('rationale', '')}")
        for line in _highlight(text, dim, detail.get("quotes", [])):
            typer.echo(line)
    for d in st.history:
        typer.echo(
            f"  {d['created_utc']}  {d['analyst']} {d['action']} {d['payload']} (on version {d['based_on_version']})"
        )
    if seen.active:
        typer.echo(f"  double coding by {', '.join(seen.analysts)}: {_coding_line(seen)}")
        for c in seen.codings or ([seen.mine] if seen.mine else []):
            typer.echo(f"    {_coded(c)}")


def _coded(c) -> str:
    """One analyst's coding as a line."""
    if not c.done:
        verdict = "not coded yet (accept or reject to finish)"
    elif c.relevant:
        verdict = "accept"
    else:
        verdict = f"reject: {c.reason}"
    labels = ", ".join(f"{d} {label}" for d, label in c.labels.items())
    notes = "".join(f"; note: {n}" for n in c.notes)
    return f"{c.analyst}: {verdict}; labels {labels}{notes}"


@queue_app.command("accept")
@handled
def queue_accept(
    item_id: Annotated[int, typer.Argument(help="Queue item id.")],
    analyst: AnalystOption = None,
    version: VersionOption = None,
    force: ForceOption = False,
) -> None:
    """Confirm an item: its labels become evidence for the score."""
    _decide(item_id, analyst, "accept", version, force)


@queue_app.command("reject")
@handled
def queue_reject(
    item_id: Annotated[int, typer.Argument(help="Queue item id.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required).")] = "",
    analyst: AnalystOption = None,
    version: VersionOption = None,
    force: ForceOption = False,
) -> None:
    """Reject an item, with a reason."""
    _decide(item_id, analyst, "reject", version, force, reason=reason)


@queue_app.command("relabel")
@handled
def queue_relabel(
    item_id: Annotated[int, typer.Argument(help="Queue item id.")],
    dimension: Annotated[str, typer.Argument(help="Dimension id.")],
    label: Annotated[str, typer.Argument(help="strong, weak or none.")],
    analyst: AnalystOption = None,
    version: VersionOption = None,
    force: ForceOption = False,
) -> None:
    """Change one dimension's label."""
    _decide(item_id, analyst, "relabel", version, force, dimension=dimension, label=label)


@queue_app.command("edit")
@handled
def queue_edit(
    item_id: Annotated[int, typer.Argument(help="Queue item id.")],
    summary: Annotated[str, typer.Argument(help="The summary as it should read in the report.")],
    analyst: AnalystOption = None,
    version: VersionOption = None,
    force: ForceOption = False,
) -> None:
    """Replace the summary (the analyst's wins over the model's in report drafts)."""
    _decide(item_id, analyst, "edit", version, force, summary=summary)


@queue_app.command("note")
@handled
def queue_note(
    item_id: Annotated[int, typer.Argument(help="Queue item id.")],
    note: Annotated[str, typer.Argument(help="The note.")],
    analyst: AnalystOption = None,
    version: Annotated[
        int | None,
        typer.Option("--version", help="The item version you looked at (default: the current one)."),
    ] = None,
) -> None:
    """Add a note to an item (a note overrides nothing: taken whatever others decided)."""
    _decide(item_id, analyst, "note", version, note=note)


@queue_app.command("claim")
@handled
def queue_claim(
    count: Annotated[int, typer.Option("--count", "-n", help="How many items.")] = 20,
    minutes: Annotated[int, typer.Option("--minutes", help="How long the claim lasts.")] = 60,
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
    analyst: AnalystOption = None,
) -> None:
    """Claim a batch of pending items (needs attention first); claims expire."""
    from . import review

    ids = review.claim(
        _db(),
        review.resolve_analyst(analyst),
        count,
        minutes,
        member=resolve_member(member),
        commitment=commitment,
    )
    typer.echo(f"claimed {len(ids)} items for {minutes} minutes: {' '.join(map(str, ids))}")


@queue_app.command("assign")
@handled
def queue_assign(
    analysts: Annotated[
        str, typer.Option("--analysts", help="Two or more analysts, comma-separated (e.g. ana,ben).")
    ],
    count: Annotated[int, typer.Option("--count", "-n", help="How many items to code twice.")],
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed of the pick (default: a new one, printed).")
    ] = None,
) -> None:
    """Assign the same pending, undecided items to several analysts to code blind (double coding)."""
    from . import coding

    names = coding.parse_analysts(analysts)
    used, ids = coding.assign(_db(), names, count, commitment=commitment, seed=seed)
    if not ids:
        typer.echo("no pending, undecided, unassigned items to assign")
        return
    short = f" (only {len(ids)} free)" if len(ids) < count else ""
    typer.echo(
        f"assigned {len(ids)} items{short} to {', '.join(names)} for blind coding (seed {used}): "
        + " ".join(map(str, ids))
    )


@queue_app.command("assigned")
@handled
def queue_assigned(analyst: AnalystOption = None) -> None:
    """The items assigned to you for blind coding that you have not coded yet."""
    from . import coding, review

    who = review.resolve_analyst(analyst)
    if not who:
        raise QueueError("whose assignments? --analyst NAME or EVIDENCE_ANALYST")
    ids = coding.assigned_to(_db(), who)
    typer.echo(
        f"{len(ids)} items to code: {' '.join(map(str, ids))}" if ids else f"nothing left to code for {who}"
    )


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@queue_app.command("agreement")
@handled
def queue_agreement(
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
) -> None:
    """Agreement of the analysts who coded the same items blind: Cohen's κ and Krippendorff's α per dimension."""
    from . import coding

    a = coding.agreement(_db(), commitment=commitment)
    typer.echo(
        f"{a.assigned} items assigned for double coding, {a.coded} coded by all their coders, "
        f"{a.agreed} agreed, {a.to_reconcile} to reconcile"
    )
    if not a.rows:
        typer.echo("no item coded by all its coders yet: no agreement to measure")
        return
    typer.echo(f"coders: {', '.join(a.coders[0])} (over {a.rows[0].items} items)")
    for other in a.coders[1:]:
        typer.echo(f"  (other coder sets, not in the table: {', '.join(other)})")
    typer.echo(f"{'':<28}{'items':>6}{'agree':>7}{'kappa':>8}{'alpha':>8}{'alpha-ord':>10}  counts")
    for r in a.rows:
        counts = ", ".join(f"{k} {v}" for k, v in r.counts.items())
        observed = "n/a" if r.observed is None else f"{r.observed:.0%}"
        typer.echo(
            f"{r.name:<28}{r.items:>6}{observed:>7}{_figure(r.kappa):>8}{_figure(r.alpha_nominal):>8}"
            f"{_figure(r.alpha_ordinal) if r.name != coding.RELEVANCE else '':>10}  {counts}"
        )


@queue_app.command("stats")
@handled
def queue_stats() -> None:
    """Pending, accepted and rejected items per commitment and member; model cost per accepted action."""
    from . import review

    rows = review.stats(_db())
    typer.echo(f"{'commitment':>10}  {'member':<18}{'pending':>8}{'accepted':>9}{'rejected':>9}{'total':>7}")
    for r in rows:
        typer.echo(
            f"{r['commitment']:>10}  {r['member']:<18}{r['pending']:>8}{r['accepted']:>9}{r['rejected']:>9}{r['total']:>7}"
        )
    c = review.cost_per_accepted(_db())
    per = "n/a (nothing accepted yet)" if c["cost_per_accepted"] is None else f"${c['cost_per_accepted']:.4f}"
    typer.echo(
        f"cost: ${c['cost']:.4f} for {c['calls']} model calls, {c['accepted']} accepted: {per} per accepted action"
    )


@queue_app.command("export")
@handled
def queue_export(
    format: Annotated[str, typer.Option("--format", "-f", help="csv or jsonl.")] = "jsonl",
    state: Annotated[str | None, typer.Option("--state", help=STATE_HELP)] = None,
) -> None:
    """Every item with its current state, labels, summary and decisions, as CSV or JSON lines."""
    import csv

    from . import review

    if format not in ("csv", "jsonl"):
        raise ValueError(f"--format must be csv or jsonl, not {format!r}")
    check_state(state)
    records = review.export_records(_db(), state)
    if format == "jsonl":
        for rec in records:
            sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return
    writer = csv.writer(sys.stdout)
    writer.writerow(
        ["id", "commitment", "member", "state", "version", "date", "summary", "labels", "flags", "decisions"]
    )
    for rec in records:
        writer.writerow(
            [rec["id"], rec["commitment"], rec["member"], rec["state"], rec["version"], rec["date"], rec["summary"],
             json.dumps(rec["labels"]), ",".join(rec["flags"]), len(rec["decisions"])]
        )  # fmt: skip


@queue_app.command("next")
@handled
def queue_next(
    analyst: AnalystOption = None,
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
) -> None:
    """Triage in the terminal, one key per action: a accept, r reject, l relabel, e edit, n note, s skip, q quit."""
    from . import coding, review

    who = review.resolve_analyst(analyst)
    if not who:
        raise QueueError("a decision needs an analyst: --analyst NAME or EVIDENCE_ANALYST")
    db = _db()
    skipped: set[int] = set()
    while True:
        rows = [
            r
            for r in review.list_items(
                db, member=resolve_member(member), commitment=commitment, state=review.PENDING, limit=200
            )
            if r["id"] not in skipped
            and r["claimed_by"] in (None, who)
            and not coding.waiting_on_others(db, r["id"], who)
        ]
        if not rows:
            typer.echo("nothing left to triage")
            return
        item_id = rows[0]["id"]
        queue_show(item_id, who)
        version = review.state_of(db, item_id).version
        key = (
            typer.prompt("[a]ccept [r]eject re[l]abel [e]dit [n]ote [s]kip [q]uit", default="s")
            .strip()
            .lower()[:1]
        )
        try:
            if key == "q":
                return
            if key == "s":
                skipped.add(item_id)
            elif key == "a":
                review.decide(db, item_id, who, "accept", version)
            elif key == "r":
                review.decide(db, item_id, who, "reject", version, reason=typer.prompt("reason"))
            elif key == "l":
                review.decide(
                    db,
                    item_id,
                    who,
                    "relabel",
                    version,
                    dimension=typer.prompt("dimension"),
                    label=typer.prompt("label"),
                )
            elif key == "e":
                review.decide(db, item_id, who, "edit", version, summary=typer.prompt("summary"))
            elif key == "n":
                review.decide(db, item_id, who, "note", version, note=typer.prompt("note"))
            else:
                typer.echo("unknown key")
        except QueueError as exc:
            typer.echo(f"error: {exc}")


@score_app.callback()
@handled
def score_command(
    ctx: typer.Context,
    commitment: Annotated[int | None, typer.Option("--commitment", "-c", help="Commitment number.")] = None,
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    include_pending: Annotated[
        bool,
        typer.Option("--include-pending", help="An explicitly provisional view counting pending items too."),
    ] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Scores from confirmed evidence only, shaped like the report's tables, pending items counted."""
    if ctx.invoked_subcommand is not None:
        return
    from . import score as score_lib

    db = _db()
    tables = []
    for rubric in rubrics_for(commitment):
        table = score_lib.commitment_table(db, rubric, include_pending=include_pending)
        if member:
            name = resolve_member(member)
            table["members"] = [r for r in table["members"] if r["member"] == name]
        tables.append(table)
    summary = score_lib.overview(tables)
    if format == "json":
        typer.echo(json.dumps({"commitments": tables, **summary}, indent=2))
        return
    if include_pending:
        typer.echo("PROVISIONAL VIEW: pending suggestions are counted as if confirmed.\n")
    for table in tables:
        typer.echo(score_lib.render_table(table))
        typer.echo("")
    typer.echo(score_lib.render_overview(summary))


@score_app.command("explain")
@handled
def score_explain(
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    member: Annotated[str, typer.Option("--member", "-m", help="Member code or name.")],
) -> None:
    """The receipt: score <- verdicts or proposals <- confirmed actions <- quotes <- source text and bytes (sha256)."""
    from . import score as score_lib

    rubric = rubrics_for(commitment)[0]
    receipt = score_lib.explain(_db(), rubric, resolve_member(member))
    provisional = f" (provisional: {', '.join(receipt['proposed'])} proposed, not confirmed)"
    typer.echo(
        f"{receipt['member']}, commitment {commitment}: score {receipt['printed']}"
        + (provisional if receipt["provisional"] else "")
        + f"; {receipt['pending']} pending"
    )
    for dim, entries in receipt["dimensions"].items():
        reading = receipt["readings"][dim]
        verdict, proposal = reading["verdict"], reading["proposal"]
        if reading["source"] == "verdict":
            said = f"verdict by {verdict['analyst']} at {verdict['created_utc']} (v{verdict['version']})"
            said += f": {verdict['note']}" if verdict["note"] else ""
        else:
            said = f"proposed: {proposal['reason']}"
            said += f"; unassessed by {verdict['analyst']}" if verdict else ""
        typer.echo(f"  {dim}: {reading['label']} <- {said}")
        for e in entries:
            typer.echo(f"    item {e['item']} ({e['label']}): {e['summary']}")
            typer.echo(
                f"      source {e['url']}  text {e['content_sha256']}  bytes {e['raw_sha256']}"
                f"  prompt {e['prompt']} ({e['backend']}/{e['model']})"
            )
            for q in e["quotes"]:
                where = f"{q['start']}-{q['end']}" if q.get("start") is not None else "not located"
                typer.echo(f'      "{q["quote"]}" [{where}]')
            for d in e["decisions"]:
                typer.echo(f"      {d['at']}  {d['analyst']} {d['action']}")
        if not entries:
            typer.echo("    no confirmed action")


@verdict_app.command("set")
@handled
def verdict_set(
    label: Annotated[str, typer.Argument(help="strong, weak, none or unassessed.")],
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    member: Annotated[str, typer.Option("--member", "-m", help="Member code or name.")],
    dimension: Annotated[
        str, typer.Option("--dimension", "-d", help="Dimension id (see `evidence rubric list`).")
    ],
    note: Annotated[str, typer.Option("--note", help="Why: the concluding paragraph's reasoning.")] = "",
    analyst: Annotated[
        str | None, typer.Option("--analyst", help="Who decides (default $EVIDENCE_ANALYST).")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", help="The cell version you looked at (from `verdict show`).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Set it over a verdict you have not looked at.")
    ] = False,
) -> None:
    """Give a member's verdict on one dimension (appended; the cell's history is kept)."""
    from . import review
    from . import verdicts as verdicts_lib

    rubric = rubrics_for(commitment)[0]
    name = resolve_member(member) or member
    db = _db()
    current = verdicts_lib.cell_version(db, commitment, name, dimension)
    if version is None:
        if current and not force:
            last = verdicts_lib.history(db, commitment, name, dimension)[-1]
            raise verdicts_lib.VerdictError(
                f"{name}, {dimension} has a verdict already ({last['analyst']} {last['label']} at "
                f"{last['created_utc']}, version {current}); nothing saved. Look at it (`evidence verdict show "
                f"--commitment {commitment} --member '{name}'`), then pass --version {current}, or --force"
            )
        version = current
    row = verdicts_lib.set_verdict(
        db, rubric, name, dimension, label, review.resolve_analyst(analyst), version, note=note
    )
    typer.echo(
        f"{name}, {dimension}: {row['label']} (version {row['version']}, by {row['analyst']}; "
        f"the proposal was {row['proposal']['label']}: {row['proposal']['reason']})"
    )


@verdict_app.command("show")
@handled
def verdict_show(
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """Each cell's verdict or proposal, its version (for `verdict set --version`), analyst and note."""
    from . import verdicts as verdicts_lib

    rubric = rubrics_for(commitment)[0]
    members = [resolve_member(member) or member] if member else None
    found = verdicts_lib.cells(_db(), rubric, members=members)
    if format == "json":
        typer.echo(json.dumps([c.as_dict() for c in found.values()], indent=2))
        return
    for (name, dim), cell in found.items():
        if cell.confirmed and cell.verdict:
            v = cell.verdict
            said = f"{cell.label:<10} verdict by {v['analyst']} at {v['created_utc']}" + (
                f": {v['note']}" if v["note"] else ""
            )
        else:
            said = f"{cell.label + '?':<10} proposed: {cell.proposal.reason}"
            said += f" (unassessed by {cell.verdict['analyst']})" if cell.verdict else ""
        typer.echo(f"{name:<16} {dim:<26} v{cell.version}  {said}")


@verdict_app.command("history")
@handled
def verdict_history(
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    dimension: Annotated[str | None, typer.Option("--dimension", "-d", help="Dimension id.")] = None,
) -> None:
    """Every verdict of the matching cells, oldest first, with what was proposed at the time."""
    from . import verdicts as verdicts_lib

    rows = verdicts_lib.history(_db(), commitment, resolve_member(member) if member else None, dimension)
    for r in rows:
        note = f": {r['note']}" if r["note"] else ""
        typer.echo(
            f"{r['created_utc']}  {r['member']:<16} {r['dimension']:<26} v{r['version']} {r['analyst']} "
            f"{r['label']} (proposed {r['proposal']['label']}, {len(r['actions'])} confirmed actions){note}"
        )
    if not rows:
        typer.echo("no verdicts yet")


@app.command("matrix")
@handled
def matrix_command(
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    rule: Annotated[
        str,
        typer.Option("--rule", help="Proposal rule: points-5 (default), strongest, at-least-2, share-0.5, …"),
    ] = "points-5",
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
) -> None:
    """The evidence matrix: members x dimensions, each cell's verdict or proposal, confirmed actions
    strongest first, pending candidates and the gap."""
    from . import verdicts as verdicts_lib

    rubric = rubrics_for(commitment)[0]
    verdicts_lib.parse_rule(rule)
    table = verdicts_lib.matrix(_db(), rubric, rule=rule)
    if member:
        name = resolve_member(member) or member
        table["members"] = [m for m in table["members"] if m["member"] == name]
        if not table["members"]:
            raise verdicts_lib.VerdictError(f"{name!r} is not a member of commitment {commitment}")
    if format == "json":
        typer.echo(json.dumps(table, indent=2))
        return
    typer.echo(verdicts_lib.render_matrix(table))


@report_app.command("draft")
@handled
def report_draft(
    commitment: Annotated[int, typer.Option("--commitment", "-c", help="Commitment number.")],
    member: Annotated[str | None, typer.Option("--member", "-m", help="Member code or name.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="md or html; docx with --chapter.")] = "md",
    chapter: Annotated[
        bool,
        typer.Option(
            "--chapter", help="The whole chapter: commitment, assessment table, guidelines, members, notes."
        ),
    ] = False,
    report: Annotated[
        str | None,
        typer.Option("--report", help="interim or final, when both rubrics of the commitment are bundled."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file (docx needs it).")
    ] = None,
) -> None:
    """The report draft in the report's form: member sections (dated paragraphs, numbered
    footnotes, conclusion, score), or with --chapter the whole chapter; a final report's
    chapter continues the interim one and shows how each score moved."""
    from . import chapter as chapter_lib
    from . import draft as draft_lib

    db = _db()
    rubrics = rubrics_for(commitment)
    if report is not None:
        rubrics = [r for r in rubrics if r.report_kind == report]
        if not rubrics:
            raise ValueError(f"no {report} rubric of commitment {commitment} is bundled")
    rubric = max(rubrics, key=lambda r: (r.report_kind == "final", r.period_end))
    interim = next(
        (r for r in rubrics_for(commitment) if r.report_kind == "interim" and r.summit == rubric.summit),
        None,
    )
    llm = load_config(state.config).llm
    writer = None
    if llm.backend == "openai":
        from .conclusion import model_writer

        writer = model_writer(rubric, llm, db=db)
    if chapter:
        if member:
            raise ValueError("--chapter drafts every member: leave out --member")
        drafted = chapter_lib.chapter_draft(
            db, rubric, writer=writer, interim=interim if rubric.report_kind == "final" else None
        )
        text = chapter_lib.render_chapter(drafted, format, out)
        typer.echo(f"{out}: chapter {commitment} drafted ({format})" if out else text, nl=out is not None)
        return
    if format == "docx":
        raise ValueError("--format docx is for the whole chapter: add --chapter")
    sections = draft_lib.draft(db, rubric, resolve_member(member), writer=writer)
    text = draft_lib.render_draft(sections, rubric, format)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"{out}: member sections of commitment {commitment} drafted ({format})")
    else:
        typer.echo(text)


def with_prefilter(config: Config, prefilter: float | None, no_prefilter: bool) -> Config:
    """The configuration with ``--prefilter`` / ``--no-prefilter`` applied to ``[llm] prefilter``."""
    if prefilter is None and not no_prefilter:
        return config
    llm = config.llm.model_copy(update={"prefilter": None if no_prefilter else prefilter})
    return config.model_copy(update={"llm": llm})


def run_evaluation(
    *,
    modes: list[str],
    backend: str | None = None,
    model: str | None = None,
    prompt: str | None = None,
    commitment: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    prefilter: float | None = None,
    no_prefilter: bool = False,
    curve: bool = True,
    random_orders: int = 1,
) -> list[dict]:
    """Evaluate one classifier on each input mode; print each run's line, then the three levels
    side by side."""
    from . import evaluate as eval_lib
    from .evaluation_report import side_by_side

    runs = eval_lib.evaluate_modes(
        _db(),
        with_prefilter(load_config(state.config), prefilter, no_prefilter),
        modes=modes,
        backend=backend,
        model=model,
        prompt=prompt,
        commitment=commitment,
        limit=limit,
        seed=seed,
        on_notice=lambda notice: typer.echo(notice, err=True),
        on_run=_print_run,
        curve=curve,
        random_orders=random_orders,
    )
    typer.echo("")
    typer.echo(side_by_side(runs))
    return runs


def _print_run(run: dict) -> None:
    r = run["metrics"]["run"]
    typer.echo(
        f"run {run['id']}: {r['items']} items, {r['predicted']} predicted, {r['failed']} failed, "
        f"{r['calls']} calls, {r['cache_hits']} cache hits, tokens {r['tokens_in']}/{r['tokens_out']}, "
        f"cost ${r['cost']:.4f}, latency {r['latency_ms'] / 1000:.1f} s"
    )


@eval_app.command("run")
@handled
def eval_run(
    backend: Annotated[
        str | None, typer.Option("--backend", help="learned, baseline or openai (default: config).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name for the openai backend.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Prompt version, e.g. classify-v1.")] = None,
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="title, paragraph, document or stream (repeatable; default: title and paragraph).",
        ),
    ] = None,
    commitment: Annotated[
        int | None, typer.Option("--commitment", "-c", help="Only this commitment.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", help="N items sampled across commitments, positives and negatives."),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the --limit sample and of the learned backend's folds.")
    ] = 0,
    max_failed: Annotated[
        float, typer.Option("--max-failed", help="Exit 4 when more than this share of items failed.")
    ] = 0.05,
    prefilter: PrefilterOption = None,
    no_prefilter: NoPrefilterOption = False,
    no_curve: Annotated[
        bool, typer.Option("--no-curve", help="Skip the learned model's learning curve.")
    ] = False,
    random_orders: Annotated[
        int,
        typer.Option(
            "--random-orders", min=1, help="Random orders the learning curve compares uncertainty-first with."
        ),
    ] = 1,
) -> None:
    """Classify the gold dataset and measure agreement at each level; store the run. Exit 4 when the
    failed share passes --max-failed, 5 when nothing at all was predicted."""
    from .evaluate import exit_code

    runs = run_evaluation(
        modes=input or ["title", "paragraph"],
        backend=backend,
        model=model,
        prompt=prompt,
        commitment=commitment,
        limit=limit,
        seed=seed,
        prefilter=prefilter,
        no_prefilter=no_prefilter,
        curve=not no_curve,
        random_orders=random_orders,
    )
    stopped = next(
        (r["metrics"]["run"].get("stopped") for r in runs if r["metrics"]["run"].get("stopped")), None
    )
    code = exit_code(runs, max_failed)
    if stopped:  # the endpoint failed in a way no later item could avoid: what to change, last
        typer.echo(f"error: {redact(stopped)}", err=True)
        code = code or 1
    if code:
        raise typer.Exit(code)


@eval_app.command("gate")
@handled
def eval_gate(
    update: Annotated[
        bool, typer.Option("--update", help="Raise the floors (lower the ceilings) to the latest runs.")
    ] = False,
    allow_regression: Annotated[
        bool,
        typer.Option(
            "--allow-regression",
            help="With --update: allow a lower floor or a higher ceiling (needs --reason).",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason", help="The history entry's reason (needed to lower a floor or raise a ceiling)."
        ),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option("--backend", help="Only this backend's keys (learned or baseline; default: every key)."),
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="The floors file (default: eval/baseline.json).")
    ] = None,
) -> None:
    """Check the newest whole-dataset run of each key's backend and input mode (stream: the baseline's,
    learned:stream: the learned backend's) against its floors, ceilings and pinned dataset; exit 1 below."""
    from . import gate as gate_lib
    from .store import project_dir

    path = baseline or project_dir() / "eval" / "baseline.json"
    doc = gate_lib.load_baseline(path)
    runs = gate_lib.latest_runs(_db(), gate_lib.keys(doc, backend))
    if update:
        new, changes = gate_lib.update(
            doc, runs, allow_regression=allow_regression, reason=reason, backend=backend
        )
        if changes:
            gate_lib.write_baseline(path, new)
        typer.echo(f"{path}: " + ("; ".join(changes) if changes else "unchanged"))
        return
    problems = gate_lib.history_problems(doc) + gate_lib.check(doc, runs, backend=backend)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    checked = ", ".join(f"{key} run {run['id']}" for key, run in runs.items())
    typer.echo(f"gate passed: {checked}")


@eval_app.command("list")
@handled
def eval_list(limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 20) -> None:
    """Stored evaluation runs, newest first, with their headline figures."""
    from . import evaluate as eval_lib

    for run in eval_lib.list_runs(_db(), limit):
        h = eval_lib.headline(run)
        typer.echo(
            f"{run['id']}  {run['model']}  {run['prompt']}  recall {h['action.relevance_recall']}  "
            f"dimension kappa {h['dimension.kappa']}  score agreement {h['score.exact_agreement']}"
        )


@eval_app.command("compare")
@handled
def eval_compare(
    run_a: Annotated[str, typer.Argument(help="Run id (or a prefix).")],
    run_b: Annotated[str, typer.Argument(help="Run id (or a prefix).")],
    show: Annotated[int, typer.Option("--show", help="List at most this many changed items.")] = 20,
) -> None:
    """Metric deltas between two runs, and the items whose predictions changed."""
    from . import evaluate as eval_lib

    result = eval_lib.compare(_db(), run_a, run_b)
    typer.echo(
        f"A {result['a']['id']} ({result['a']['model']}, {result['a']['prompt']}, {result['a']['mode']})"
    )
    typer.echo(
        f"B {result['b']['id']} ({result['b']['model']}, {result['b']['prompt']}, {result['b']['mode']})"
    )
    if not result["same_dataset"]:
        typer.echo("warning: the two runs used different datasets (different sha); deltas mix both changes")
    for key, (a, b, delta) in result["deltas"].items():
        shown = "-" if delta is None else f"{delta:+.3f}"
        typer.echo(f"  {key:<34} {a!s:>8} -> {b!s:<8} {shown}")
    typer.echo(f"{len(result['changed'])} items changed")
    for change in result["changed"][:show]:
        typer.echo(
            f"  {change['item']}: {json.dumps(change['a'], default=str)[:120]} -> {json.dumps(change['b'], default=str)[:120]}"
        )


@eval_app.command("report")
@handled
def eval_report(
    run_id: Annotated[str, typer.Argument(help="Run id (or a prefix).")],
    format: Annotated[str, typer.Option("--format", "-f", help="md or html.")] = "md",
    out: Annotated[Path | None, typer.Option("--out", help="Directory (default: eval/results).")] = None,
) -> None:
    """Tables and plots (confusion matrix, predicted vs printed scores) for one run, as Markdown or HTML."""
    from . import evaluate as eval_lib
    from .evaluation_report import write_report

    run = eval_lib.load_run(_db(), run_id)
    path = write_report(run, out or results_dir(), format)
    typer.echo(str(path))


@app.command("nightly")
def nightly_command(
    sources_file: Annotated[
        Path | None, typer.Option("--sources", help="Sources file (default: corpus/sources.toml).")
    ] = None,
    max_documents: Annotated[
        int | None,
        typer.Option("--max-documents", min=1, help="Classify at most this many documents, then stop."),
    ] = None,
    cost_cap: Annotated[
        float | None, typer.Option("--cost-cap", min=0, help="Stop calling the model past this many USD.")
    ] = None,
    token_cap: Annotated[
        int | None, typer.Option("--token-cap", min=1, help="Stop calling the model past this many tokens.")
    ] = None,
    log_format: Annotated[
        str,
        typer.Option("--log-format", envvar="EVIDENCE_LOG_FORMAT", help="Log lines on stderr: text or json."),
    ] = "text",
) -> None:
    """Crawl every source since the last successful run, classify, fill the queue; one run at a time.

    Exit codes: 0 all done; 1 finished with some failures (or stopped by a budget); 2 configuration
    error; 3 another run holds the lock."""
    from . import logs
    from . import nightly as nightly_lib
    from .classify import Classifier

    def config_error(exc: BaseException) -> typer.Exit:
        typer.echo(f"error: {exc}", err=True)
        return typer.Exit(nightly_lib.EXIT_CONFIG)

    try:
        logs.setup(log_format)
        config = load_config(state.config)
        config.fetch.agent()
        sources = sources_lib.load_sources(sources_file or corpus_dir() / "sources.toml")
        rubrics_for()
        db = _db()
    except (*USER_ERRORS, ValueError) as exc:
        raise config_error(exc) from None
    try:
        lock = nightly_lib.acquire(resolve_db_path(state.db).parent / "nightly.lock")
    except nightly_lib.LockHeld as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(nightly_lib.EXIT_LOCKED) from None
    try:
        if lock.took_over:
            typer.echo(f"took over a stale lock: {lock.took_over}", err=True)
        try:
            classifier = Classifier(db, config, cost_cap=cost_cap, token_cap=token_cap)
        except USER_ERRORS as exc:
            raise config_error(exc) from None
        summary = nightly_lib.run_nightly(
            db,
            config,
            sources,
            max_documents=max_documents,
            results_dir=results_dir().parent / "runs",
            classifier=classifier,
        )
    except Exception as exc:  # e.g. the database itself failing: one line, work done is stored
        if state.debug:
            raise
        typer.echo(f"error: the nightly run stopped: {nightly_lib.one_line(exc)}", err=True)
        raise typer.Exit(nightly_lib.EXIT_FAILURES) from None
    finally:
        lock.release()
    typer.echo(json.dumps(summary, indent=1))
    raise typer.Exit(summary["exit_code"])


@runs_app.command("list")
@handled
def runs_list(limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 20) -> None:
    """Nightly runs, newest first: id, status, exit code, start and finish."""
    from . import nightly as nightly_lib

    for r in nightly_lib.list_runs(_db(), limit):
        typer.echo(
            f"{r['id']}  {r['status']:<18} exit {r['exit_code']}  {r['started_utc']} -> {r['finished_utc']}"
        )


@runs_app.command("show")
@handled
def runs_show(run_id: Annotated[str, typer.Argument(help="Run id.")]) -> None:
    """One run's summary: per stage counts, failures by reason, tokens, cost and duration."""
    from . import nightly as nightly_lib

    row = nightly_lib.get_run(_db(), run_id)
    typer.echo(f"{row['id']}  {row['status']}  exit {row['exit_code']}  since {row['since']}")
    typer.echo(json.dumps(row["summary"], indent=1))


@app.command("serve")
@handled
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (behind an HTTPS proxy).")
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated addresses of your reverse proxy: only requests from these have their "
            "X-Forwarded-For honoured as the client's address (default: never).",
        ),
    ] = None,
) -> None:
    """The analysts' web interface on this database: queue, items, decisions, scores, evaluation, drafts."""
    from . import web

    if not users_lib.has_active_users(_db()):
        typer.echo("note: no active account yet: add one with `evidence users add NAME`", err=True)
    web.serve(host, port, resolve_db_path(state.db), secure_cookies=secure_cookies,
              forwarded_allow_ips=forwarded_allow_ips)  # fmt: skip


@users_app.command("add")
@handled
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="analyst (decides) or reader (read-only).")] = "analyst",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (for scripts).")
    ] = False,
) -> None:
    """Add an account; the password is asked for twice (or read from stdin), and stored argon2-hashed."""
    import sys

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = users_lib.add_user(_db(), name, password, role)
    typer.echo(f"added {user.name} ({user.role})")


@users_app.command("list")
@handled
def users_list() -> None:
    """Accounts: name, role, active or disabled, created."""
    for u in users_lib.list_users(_db()):
        typer.echo(
            f"{u['name']:<20} {u['role']:<8} {'disabled' if u['disabled'] else 'active':<9} {u['created_utc']}"
        )


@users_app.command("disable")
@handled
def users_disable(name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Disable an account and end its sessions; its decisions stay attributed to it."""
    users_lib.disable_user(_db(), name)
    typer.echo(f"disabled {name}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
