"""Confirmed evidence -> a draft of the report's member sections, in the report's own form.

Per member: the opening verdict, one dated paragraph per accepted item with a numbered
footnote citing its source (with the reports' "Translation provided by …" note for a source
not in English: :func:`translation_note`), the conclusion naming the dimensions of strong and weak action,
and the "receives a score of" sentence, with the score from :func:`classifier.score.member_scores`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlite_utils

from .dates import long_date
from .languages import language_name, normalise_code
from .review import source_of, states
from .rubric import Rubric, format_score, score
from .score import member_scores

VERDICT = {1: "fully complied", 0: "partially complied", -1: "not complied"}
# An untranslated summary names its language first: "[German] Berlin, 2. Juli 2024. …"
UNTRANSLATED = re.compile(r"^\[([^\]]{2,40})\]\s*")
# An endpoint model's summary of a page not in English ends so (prompt classify-v3).
TRANSLATED = re.compile(r"\s*\(Translated from [^()]{2,40}\.?\)\s*$", re.I)
FOOTNOTE_MARK = re.compile(r"\[\^(\d+)\]")


def translation_note(
    language: str | None, summary: str, *, edited_by_analyst: bool, model: str | None
) -> str:
    """The footnote's translation note for a source in ``language``, as the reports print it.

    English sources have none. An analyst's summary is their translation ("Translation provided
    by Analyst."); an untranslated one (the embedded baseline quotes the original) says so; a
    model's English summary was translated by that model.
    """
    code = normalise_code(language)
    if code in (None, "en"):
        return ""
    if edited_by_analyst:
        return "Translation provided by Analyst."
    if UNTRANSLATED.match(summary):
        return f"Original in {language_name(code)}, not translated."
    return f"Translation provided by {model or 'the classifier'}."


def _language_of(db: sqlite_utils.Database, item: dict) -> str | None:
    row = db.execute(
        "select language from document_versions where document_id = ? and content_sha256 = ?",
        [item["document_id"], item["content_sha"]],
    ).fetchone()
    return row[0] if row else None


# member -> {dimension id: (label, confirmed, [item ids it rests on])}: the shape of
# classifier.verdicts.member_readings, which member_readings reads
Reading = tuple[str, bool, list[int]]
Readings = dict[str, dict[str, Reading]]
RANK = {"none": 0, "unassessed": 0, "weak": 1, "strong": 2}
THE = ("United Kingdom", "United States", "European Union")


def subject(member: str, *, start: bool = False) -> str:
    """The member as the reports write it in a sentence: "the United States", "Canada"."""
    name = f"the {member}" if member in THE else member
    return name[0].upper() + name[1:] if start else name


def readings_from_scores(db: sqlite_utils.Database, rubric: Rubric, *, until: str | None = None) -> Readings:
    """Per member and dimension, the strongest label among the accepted items (score.py's rule),
    with the accepted items carrying it; ``until`` (an ISO date) keeps only items dated up to it.

    A stand-in for analysts' verdicts (:func:`classifier.verdicts.member_readings`) with the
    same shape. Every reading counts as confirmed: it rests only on items analysts accepted,
    which is how :func:`classifier.score.member_scores` treats them.
    """
    out: Readings = {m: {d: ("none", True, []) for d in rubric.dimension_ids} for m in rubric.members}
    for state in states(db, commitment=rubric.number):
        if state.state != "accepted" or state.item["member"] not in out:
            continue
        if until and (state.item["published"] or "")[:10] > until:
            continue
        mine = out[state.item["member"]]
        for dim, label in state.labels.items():
            if dim not in mine or label not in ("weak", "strong"):
                continue
            held, confirmed, items = mine[dim]
            if RANK[label] > RANK[held]:
                mine[dim] = (label, confirmed, [state.item["id"]])
            elif label == held:
                items.append(state.item["id"])
    return out


def member_readings(db: sqlite_utils.Database, rubric: Rubric, *, until: str | None = None) -> Readings:
    """The members' dimension readings the draft is written from: the analysts' member verdicts,
    else the proposals (:func:`classifier.verdicts.member_readings`).

    ``until`` (a report's period end): a member with accepted actions dated after it is read
    from its actions up to then (a verdict is about all of a member's evidence, not a period's).
    """
    from .verdicts import member_readings as verdict_readings

    readings: Readings = verdict_readings(db, rubric)
    if until is None:
        return readings
    later = {
        s.item["member"]
        for s in states(db, commitment=rubric.number)
        if s.state == "accepted" and (s.item["published"] or "")[:10] > until
    }
    if later:
        dated = readings_from_scores(db, rubric, until=until)
        readings = {m: dated[m] if m in later else r for m, r in readings.items()}
    return readings


def score_of(readings: dict[str, Reading], rubric: Rubric) -> int:
    """The rubric's score from one member's readings (an unassessed dimension counts as none)."""
    labels = {d: readings.get(d, ("none", True, []))[0] for d in rubric.dimension_ids}
    return score(
        {d: v if v in ("weak", "strong") else "none" for d, v in labels.items()},
        rubric.scoring,
        rubric.dimension_ids,
    )


def _lower(name: str) -> str:
    return name[0].lower() + name[1:] if name and not name[:2].isupper() else name


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def conclusion_template(
    member: str, rubric: Rubric, readings: dict[str, Reading], notes: dict[int, int]
) -> str:
    """The concluding paragraph in the report's form from one member's readings: the strong
    dimensions, then "but has not adequately addressed" the weak ones and "has not addressed"
    the rest, each citing the footnotes of the actions it rests on (``notes``: item id -> number)
    as ``[^N]`` marks that the renderers turn into the report's superscripts."""

    def cited(dim_id: str) -> str:
        name = _lower(next(d.name for d in rubric.dimensions if d.id == dim_id))
        numbers = sorted({notes[i] for i in readings[dim_id][2] if i in notes})
        return name + "".join(f"[^{n}]" for n in numbers)

    by_label: dict[str, list[str]] = {"strong": [], "weak": [], "none": [], "unassessed": []}
    for dim in rubric.dimension_ids:
        label = readings.get(dim, ("unassessed", False, []))[0]
        by_label.setdefault(label, []).append(dim)
    who = subject(member, start=True)
    strong = [cited(d) for d in by_label["strong"]]
    weak = [cited(d) for d in by_label["weak"]]
    none = [_lower(next(x.name for x in rubric.dimensions if x.id == d)) for d in by_label["none"]]
    sentences = []
    if strong:
        sentence = f"{who} has taken strong action on {_joined(strong)}"
        if weak:
            sentence += f" but has not adequately addressed {_joined(weak)}, where its action was weak"
        sentences.append(sentence + ".")
    elif weak:
        sentences.append(f"{who} has taken only weak action on {_joined(weak)}.")
    if none:
        lead = "It has" if sentences else f"{who} has"
        sentences.append(f"{lead} not addressed {_joined(none)}.")
    if by_label["unassessed"]:
        names = [_lower(next(x.name for x in rubric.dimensions if x.id == d)) for d in by_label["unassessed"]]
        sentences.append(f"No verdict has been reached yet on {_joined(names)}.")
    return " ".join(sentences)


def draft(
    db: sqlite_utils.Database,
    rubric: Rubric,
    member: str | None = None,
    *,
    readings: Readings | None = None,
    writer: Callable[[str, dict[str, Reading], list[dict]], tuple[str | None, str | None]] | None = None,
    first_footnote: int = 1,
    until: str | None = None,
) -> list[dict]:
    """Member sections in the report's own form, from confirmed evidence.

    Footnotes are numbered continuously from ``first_footnote`` in the order the dated
    paragraphs appear. ``readings`` are the members' dimension readings (by default
    :func:`member_readings`); the score is the rubric's rule on them. ``writer(member,
    readings, paragraphs)`` may draft the conclusion (a model, :mod:`classifier.conclusion`):
    it returns the paragraph, or None and why it was not used, and the template stands in.
    ``until`` (an ISO date, a report's period end) leaves out the actions dated after it.
    """
    readings = readings if readings is not None else member_readings(db, rubric, until=until)
    sections = []
    footnote = first_footnote - 1
    accepted: dict[str, list] = {}
    for state in states(db, commitment=rubric.number, member=member):
        if state.state == "accepted" and not (until and (state.item["published"] or "")[:10] > until):
            accepted.setdefault(state.item["member"], []).append(state)
    for name in rubric.members if member is None else [member]:
        (row,) = member_scores(db, rubric, member=name)
        paragraphs, notes, analysts = [], [], []
        mine = sorted(accepted.get(name, []), key=lambda s: (s.item["published"] or "", s.item["id"]))
        for state in mine:
            doc = source_of(db, state.item)
            footnote += 1
            # a model's "(Translated from German.)": the footnote's translation note says it
            text = TRANSLATED.sub("", state.summary.strip())
            untranslated = UNTRANSLATED.match(text)
            if untranslated:  # the original's words, not ours: keep their case, name the language
                text = f"On {long_date(state.item['published'])} [{untranslated[1]}]: {text[untranslated.end() :]}"
            elif not text.startswith("On "):
                text = (
                    f"On {long_date(state.item['published'])}, {text[0].lower() + text[1:]}" if text else ""
                )
            paragraphs.append(
                {
                    "text": text,
                    "footnote": footnote,
                    "date": state.item["published"],
                    "item": state.item["id"],
                }
            )
            for d in state.history:
                if d["action"] == "accept" and d["analyst"] and d["analyst"] not in analysts:
                    analysts.append(d["analyst"])
            doc = doc or {}
            url, title, site = doc.get("url"), doc.get("title"), doc.get("site")
            if (url or "").startswith("gold:"):  # a cited action's source: the address it cites
                url = doc.get("final_url")
            published, fetched = doc.get("published"), doc.get("fetched")
            note = translation_note(
                _language_of(db, state.item),
                state.summary.strip(),
                edited_by_analyst=any(d["action"] == "edit" for d in state.history),
                model=state.suggestion.get("model"),
            )
            notes.append(
                {
                    "number": footnote,
                    "citation": f"{title or 'Untitled'}, {site or 'n/a'} {long_date(published)}. "
                    + (f"{note} " if note else "")
                    + f"Access Date: {long_date(fetched)}. {url or ''}".strip(),
                    "translation": note or None,
                    "url": url,
                }
            )
        mine_readings = readings.get(name, {})
        value = score_of(mine_readings, rubric)
        printed = format_score(value)
        who = subject(name, start=True)
        opening = (
            f"{who} has {VERDICT[value]} with its commitment to {rubric.title.split(': ', 1)[-1].lower()}."
        )
        numbers = {p["item"]: p["footnote"] for p in paragraphs}
        template = conclusion_template(name, rubric, mine_readings, numbers)
        conclusion, flag, drafted_by = template, None, "template"
        if writer is not None:
            written, problem = writer(name, mine_readings, paragraphs)
            if written:
                conclusion, drafted_by = written, "model"
            else:
                flag = f"the model's conclusion was not used: {problem}; the template stands in"
        sections.append(
            {
                "member": name,
                "score": printed,
                "score_value": value,
                "provisional": row["provisional"] or not all(r[1] for r in mine_readings.values()),
                "pending": row["pending"],
                "readings": {d: list(r) for d, r in mine_readings.items()},
                "opening": opening,
                "paragraphs": paragraphs,
                "conclusion": conclusion,
                "conclusion_by": drafted_by,
                "conclusion_flag": flag,
                "score_sentence": f"Thus, {subject(name)} receives a score of {printed}.",
                "analysts": analysts,
                "footnotes": notes,
            }
        )
    return sections


def plain(text: str) -> str:
    """A paragraph without its ``[^N]`` footnote marks."""
    return FOOTNOTE_MARK.sub("", text)


def _marks(text: str, fmt: str) -> str:
    """``[^N]`` marks as the format shows them: markdown keeps them, HTML gets superscripts."""
    import html

    if fmt == "md":
        return text
    return FOOTNOTE_MARK.sub(lambda m: f"<sup>{m[1]}</sup>", html.escape(text))


def render_draft(sections: list[dict], rubric: Rubric, fmt: str = "md") -> str:
    """Markdown or HTML (every value escaped) of a draft."""
    import html

    if fmt not in ("md", "html"):
        raise ValueError(f"--format must be md or html, not {fmt!r}")
    if fmt == "md":
        out = [f"## {rubric.number}. {rubric.title}", ""]
        for s in sections:
            flag = " (provisional)" if s["provisional"] else ""
            out += [f"### {s['member']}: {s['score']}{flag}", "", s["opening"], ""]
            out += [f"{p['text']}[^{p['footnote']}]\n" for p in s["paragraphs"]]
            if s.get("conclusion_flag"):
                out += [f"> {s['conclusion_flag']}", ""]
            out += [s["conclusion"], "", s["score_sentence"], ""]
            out += [f"[^{n['number']}]: {n['citation']}" for n in s["footnotes"]]
            out.append("")
        return "\n".join(out)
    e = html.escape
    out = [f"<h2>{e(str(rubric.number))}. {e(rubric.title)}</h2>"]
    for s in sections:
        flag = " (provisional)" if s["provisional"] else ""
        out.append(f"<h3>{e(s['member'])}: {e(s['score'])}{flag}</h3><p>{e(s['opening'])}</p>")
        out += [f"<p>{e(p['text'])}<sup>{p['footnote']}</sup></p>" for p in s["paragraphs"]]
        if s.get("conclusion_flag"):
            out.append(f'<p class="flag">{e(s["conclusion_flag"])}</p>')
        out.append(f"<p>{_marks(s['conclusion'], 'html')}</p><p>{e(s['score_sentence'])}</p>")
        if s["footnotes"]:
            out.append('<ol class="footnotes">')
            out += [f'<li value="{n["number"]}">{e(n["citation"])}</li>' for n in s["footnotes"]]
            out.append("</ol>")
    return "\n".join(out)
