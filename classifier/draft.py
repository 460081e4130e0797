"""Confirmed evidence -> a draft of the report's member sections, in the report's own form.

Per member: the opening verdict, one dated paragraph per accepted item with a numbered
footnote citing its source (with the reports' "Translation provided by …" note for a source
not in English: :func:`translation_note`), the conclusion naming the dimensions of strong and weak action,
and the "receives a score of" sentence, with the score from :func:`classifier.score.member_scores`.
"""

from __future__ import annotations

import re

import sqlite_utils

from .dates import long_date
from .languages import language_name, normalise_code
from .review import source_of, states
from .rubric import Rubric
from .score import member_scores

VERDICT = {1: "fully complied", 0: "partially complied", -1: "not complied"}
# An untranslated summary names its language first: "[German] Berlin, 2. Juli 2024. …"
UNTRANSLATED = re.compile(r"^\[([^\]]{2,40})\]\s*")


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


def draft(db: sqlite_utils.Database, rubric: Rubric, member: str | None = None) -> list[dict]:
    """Member sections in the report's own form, from confirmed evidence; footnotes numbered from 1."""
    sections = []
    footnote = 0
    for name in rubric.members if member is None else [member]:
        (row,) = member_scores(db, rubric, member=name)
        paragraphs, notes = [], []
        for state in states(db, commitment=rubric.number, member=name):
            if state.state != "accepted":
                continue
            doc = source_of(db, state.item)
            footnote += 1
            text = state.summary.strip()
            untranslated = UNTRANSLATED.match(text)
            if untranslated:  # the original's words, not ours: keep their case, name the language
                text = f"On {long_date(state.item['published'])} [{untranslated[1]}]: {text[untranslated.end() :]}"
            elif not text.startswith("On "):
                text = (
                    f"On {long_date(state.item['published'])}, {text[0].lower() + text[1:]}" if text else ""
                )
            paragraphs.append({"text": text, "footnote": footnote, "date": state.item["published"]})
            doc = doc or {}
            url, title, site = doc.get("url"), doc.get("title"), doc.get("site")
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
                }
            )
        paragraphs.sort(key=lambda p: p["date"] or "")
        strong = [d.name for d in rubric.dimensions if row["labels"][d.id] == "strong"]
        weak = [d.name for d in rubric.dimensions if row["labels"][d.id] == "weak"]
        subject = f"the {name}" if name in ("United Kingdom", "United States", "European Union") else name
        opening = f"{subject[0].upper() + subject[1:]} has {VERDICT[row['score']]} with its commitment to {rubric.title.split(': ', 1)[-1].lower()}."
        conclusion = opening[:-1] + "."
        if strong:
            conclusion += (
                f" {subject[0].upper() + subject[1:]} has taken strong action on {', '.join(strong)}."
            )
        if weak:
            conclusion += f" It has taken weak action on {', '.join(weak)}."
        if not strong and not weak:
            conclusion += " No confirmed action was found."
        sections.append(
            {
                "member": name,
                "score": row["printed"],
                "provisional": row["provisional"],
                "opening": opening,
                "paragraphs": paragraphs,
                "conclusion": conclusion,
                "score_sentence": f"Thus, {subject} receives a score of {row['printed']}.",
                "footnotes": notes,
            }
        )
    return sections


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
        out.append(f"<p>{e(s['conclusion'])}</p><p>{e(s['score_sentence'])}</p>")
        if s["footnotes"]:
            out.append('<ol class="footnotes">')
            out += [f'<li value="{n["number"]}">{e(n["citation"])}</li>' for n in s["footnotes"]]
            out.append("</ol>")
    return "\n".join(out)
