"""Chapter variants made from the two bundled chapters, each with the gold it must parse to.

There is no third chapter in the repository, so the ways real chapters differ from these two
are made here: another member set (the G20's nineteen countries, the EU and the African Union,
members not assessed), 1 to 5 dimensions, analyst lines of every form, conclusions without a
"Thus, X receives a score of" sentence, action dates without a year. Each transformation edits
the chapter's text *and* the expectation together, so what a test expects comes from what was
changed, never from running the parser on the variant. The only parse is of the unchanged
bundled chapter (its gold is pinned by tests/test_reports.py: 398 actions, 16 scores), which
is the starting expectation.

    doc = ChapterDoc.load(INTERIM_18)          # text split at the table and the member headings
    doc = g20_members(doc, not_assessed={...})  # each transformation returns a new doc
    text, expected = doc.render(), doc.expected
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from classifier.reports import parse_report
from classifier.rubric import format_average

from .conftest import FINAL_19, INTERIM_18

G7 = ["Canada", "France", "Germany", "Italy", "Japan", "United Kingdom", "United States", "European Union"]
G20_COUNTRIES = [
    "Argentina", "Australia", "Brazil", "Canada", "China", "France", "Germany", "India", "Indonesia",
    "Italy", "Japan", "Korea", "Mexico", "Russia", "Saudi Arabia", "South Africa", "Türkiye",
    "United Kingdom", "United States",
]  # fmt: skip
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"

# What each bundled file is (as its manifest entry says).
SOURCES = {
    18: (INTERIM_18, "markdown", "interim", (dt.date(2024, 6, 15), dt.date(2024, 12, 20))),
    19: (FINAL_19, "pdf-text", "final", (dt.date(2024, 6, 15), dt.date(2025, 5, 15))),
}


@dataclass
class Action:
    date: dt.date | None
    date_source: str | None
    text: str
    footnotes: list[int]


@dataclass
class Member:
    name: str
    score: int | None  # None: not assessed
    analysts: list[str]
    actions: list[Action]
    has_section: bool = True
    score_sentence: bool = True


@dataclass
class Expected:
    """The gold a variant must parse to, and the warnings it must (not) raise."""

    members: list[Member]
    dimensions: list[str]
    average: str | None
    warnings: set[str] = field(default_factory=set)  # codes that must be raised
    no_warnings: set[str] = field(default_factory=set)  # codes that must not be


@dataclass
class Block:
    """A member's section as text: its heading line and the lines after it."""

    member: str
    heading: str
    body: list[str]


@dataclass
class ChapterDoc:
    number: int
    fmt: str
    kind: str
    period: tuple[dt.date, dt.date]
    head: list[str]  # up to the assessment table's column titles (inclusive)
    average_line: str  # the table's Average row, as printed
    middle: list[str]  # from after the table to the first member heading
    blocks: list[Block]
    expected: Expected
    footnote_dates: dict[int, dt.date | None]  # (what the unchanged chapter's footnotes say)

    # --- reading the bundled chapter -------------------------------------------------

    @classmethod
    def load(cls, number: int) -> ChapterDoc:
        path, fmt, kind, period = SOURCES[number]
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        header = next(i for i, line in enumerate(lines) if "No Compliance\tPartial Compliance" in line)
        average = next(i for i in range(header, len(lines)) if lines[i].startswith("Average"))
        heading = re.compile(r"^[#\s]*\**(?:the\s+)?(" + "|".join(G7) + r")\s*:\s*([+\-−–]?\d)\**\s*$", re.I)
        starts = [i for i, line in enumerate(lines) if heading.match(line)]
        blocks = []
        for k, start in enumerate(starts):
            stop = starts[k + 1] if k + 1 < len(starts) else len(lines)
            name = heading.match(lines[start])[1]
            blocks.append(Block(name, lines[start], lines[start + 1 : stop]))
        report = parse_report(text, file_name=path.name, source_format=fmt, kind=kind, period=period)
        (chapter,) = report.chapters
        members = [
            Member(
                name=s.member,
                score=s.score,
                analysts=list(s.analysts),
                actions=[Action(a.date, a.date_source, a.text, list(a.footnotes)) for a in s.actions],
            )
            for s in chapter.members
        ]
        return cls(
            number=number,
            fmt=fmt,
            kind=kind,
            period=period,
            head=lines[: header + 1],
            average_line=lines[average],
            middle=lines[average + 1 : starts[0]],
            blocks=blocks,
            expected=Expected(
                members=members,
                dimensions=[d.name for d in chapter.dimensions],
                average=chapter.average_printed,
            ),
            footnote_dates={n: fn.published for n, fn in report.footnotes.items()},
        )

    # --- writing it out ---------------------------------------------------------------

    def render(self) -> str:
        rows = []
        for m in self.expected.members:
            cells = ["", "", ""]
            if m.score is None:
                cells[0] = "N/A"
            else:
                cells[m.score + 1] = printed(m.score, self.fmt)
            rows.append("\t".join([m.name, *cells]))
        scores = [m.score for m in self.expected.members if m.score is not None]
        average = re.sub(r"[+\-−]?\d\.\d\d \(\d+%\)", format_average(scores), self.average_line)
        body = [line for block in self.blocks for line in (block.heading, *block.body)]
        return "\n".join([*self.head, *rows, average, *self.middle, *body])

    def parse(self, **kwargs):
        return parse_report(
            self.render(),
            file_name=f"variant-{self.number}.txt",
            source_format=self.fmt,
            kind=self.kind,
            period=kwargs.pop("period", self.period),
            **kwargs,
        )

    def copy(self) -> ChapterDoc:
        return copy.deepcopy(self)

    def heading_line(self, name: str, score: str) -> str:
        return f"### {name}: {score}" if self.fmt == "markdown" else f"{name}: {score}"

    def member(self, name: str) -> Member:
        return next(m for m in self.expected.members if m.name == name)


def printed(score: int, fmt: str) -> str:
    if score > 0:
        return f"+{score}"
    return str(score) if fmt == "markdown" or score == 0 else f"−{-score}"  # (PDFs print U+2212)


def _article(name: str) -> str:
    return "the " if name.startswith(("United", "European", "African")) else ""


# --- transformations: each returns a new doc ------------------------------------------


def g20_members(doc: ChapterDoc, *, not_assessed: dict[str, str] | None = None) -> ChapterDoc:
    """The G20's members: the chapter's own eight sections, then one for each other G20 country
    (a copy of a G7 member's section under the new name, placed after the original eight so that
    its footnotes stay printed before it), then the African Union.

    ``not_assessed`` names members the table prints as N/A, each with how its section reads:
    ``"absent"`` (no section) or ``"heading"`` (a section headed 'Name: N/A' saying so).
    """
    doc = doc.copy()
    not_assessed = {"African Union": "absent", **(not_assessed or {})}
    originals = {b.member: b for b in doc.blocks}
    sources = [name for name in G7 if name != "European Union"]
    new = [name for name in G20_COUNTRIES if name not in originals]
    for k, name in enumerate(new):
        source = sources[k % len(sources)]
        block = copy.deepcopy(originals[source])
        block.member = name
        block.heading = block.heading.replace(source, name)
        block.body = [_rename_sentence(line, source, name) for line in block.body]
        doc.blocks.append(block)
        member = copy.deepcopy(doc.member(source))
        member.name = name
        doc.expected.members.append(member)
    doc.expected.members.append(Member("African Union", 1, [], []))
    doc.blocks.append(Block("African Union", "", []))  # filled in below
    for name, how in not_assessed.items():
        member = doc.member(name)
        member.score, member.actions, member.analysts = None, [], []
        block = next(b for b in doc.blocks if b.member == name)
        if how == "absent":
            doc.blocks.remove(block)
            member.has_section = False
        else:
            block.heading = doc.heading_line(name, "N/A")
            block.body = ["", f"{_article(name).capitalize()}{name} is not assessed in this report.", ""]
    doc.expected.no_warnings |= {"average-mismatch", "member-unknown", "table-cell"}
    return doc


def _rename_sentence(line: str, old: str, new: str) -> str:
    return re.sub(
        rf"\bThus, (?:[Tt]he )?{re.escape(old)} receives", f"Thus, {_article(new)}{new} receives", line
    )


DIMENSION_NAMES = [
    "enhancing border management and enforcement",
    "curbing transnational organized crime",
    "partnering with countries of origin and transit",
    "protecting the victims of trafficking",
    "disrupting the business models of smuggling networks",
]
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _enumerate(names: list[str]) -> str:
    items = [f"{k}) {name}" for k, name in enumerate(names, start=1)]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def dimensions(
    doc: ChapterDoc, count: int, *, table_count: int | None = None, named: bool = True
) -> ChapterDoc:
    """Rewrite the Commitment Features, the General Interpretive Guidelines and the Scoring
    Guidelines for ``count`` dimensions (the table for ``table_count`` when given: the report
    then disagrees with itself). With ``named`` False they are counted ('two main dimensions',
    'all two commitment dimensions') but never enumerated. Footnote definitions printed inside
    those sections stay."""
    doc = doc.copy()
    names = DIMENSION_NAMES[:count]
    table_names = DIMENSION_NAMES[: table_count or count]
    n, word = _enumerate(names), _WORDS[count]
    plural = "dimension" if count == 1 else "dimensions"
    features = [
        f"This commitment can be broken down into {word} main {plural}: {n}.",
    ]
    full = (
        f"Full compliance, or a score of +1, will be assigned to G7 members that take strong action in all "
        f"{word} commitment {plural}: {n}."
        if count > 1
        else f"Full compliance, or a score of +1, will be assigned to G7 members that take strong action in "
        f"the commitment's one dimension: {n}."
    )
    guidelines = [
        full,
        "",
        "Examples of strong actions include new legislation, funding and joint operations.",
        "",
        "Partial compliance, or a score of 0, will be assigned to G7 members that take strong action in "
        f"fewer than {word} of the commitment's {plural}, or weak action in all of them. Examples of weak "
        "actions include statements and meetings.",
        "",
        "Non-compliance, or a score of -1, will be assigned to G7 members that take no action or only "
        "weak action in fewer than all of the commitment's dimensions.",
    ]
    t = _enumerate(table_names)
    if not named:  # the counts only
        features = [re.sub(r": 1\).*", ".", line) for line in features]
        guidelines = [re.sub(r": 1\).*", ".", line) for line in guidelines]
        t = f"all {_WORDS[table_count or count]} commitment dimensions"
    table = [
        f"-1\tThe G7 member has taken no action, or only weak action in some of: {t}.",
        f"0\tThe G7 member has taken strong action in some, or weak action in all, of: {t}.",
        f"+1\tThe G7 member has taken strong action in all of: {t}.",
    ]
    doc.middle = _replace_section(doc.middle, "Commitment Features", features, doc.fmt)
    doc.middle = _replace_section(doc.middle, "General Interpretive Guidelines", guidelines, doc.fmt)
    doc.middle = _replace_section(doc.middle, "Scoring Guidelines", table, doc.fmt)
    doc.expected.dimensions = max([names, table_names], key=len)
    if not named:
        title = next(line for line in reversed(doc.head) if re.match(rf"^[#\s]*{doc.number}\. ", line))
        subject = title.rsplit(":", 1)[-1].strip()
        doc.expected.dimensions = [subject] if count == 1 else [f"dimension {k}" for k in range(1, count + 1)]
    if table_count is not None and table_count != count:
        doc.expected.warnings.add("dimension-count")
    else:
        doc.expected.no_warnings.add("dimension-count")
    return doc


_SECTION_HEADING = re.compile(
    r"^[#\s]*\**(Background|Commitment Features|Definitions and Concepts|General Interpretive Guidelines|"
    r"Scoring Guidelines)\**\s*$"
)
_STAFF = re.compile(r"^\*?(Compliance Director|Lead Analyst)")


def _is_footnote_start(line: str, fmt: str) -> bool:
    t = line.strip()
    return t.startswith("<sup>") if fmt == "markdown" else bool(re.match(r"^[⁰¹²³⁴⁵⁶⁷⁸⁹]+", t))


def _replace_section(lines: list[str], name: str, new: list[str], fmt: str) -> list[str]:
    """The section's paragraphs replaced by ``new``; its footnote blocks (a paragraph that starts
    with a footnote number, and the lines continuing it) kept after them."""
    start = next(i for i, line in enumerate(lines) if (m := _SECTION_HEADING.match(line)) and m[1] == name)
    stop = next(
        (
            i
            for i in range(start + 1, len(lines))
            if _SECTION_HEADING.match(lines[i]) or _STAFF.match(lines[i])
        ),
        len(lines),
    )
    kept: list[str] = []
    in_note = False
    for line in lines[start + 1 : stop]:
        if not line.strip():
            in_note = False
            if kept and kept[-1].strip():
                kept.append("")
            continue
        if _is_footnote_start(line, fmt) or (fmt == "markdown" and line.strip() == "---"):
            in_note = True
        if in_note:
            kept.append(line)
    return [*lines[: start + 1], "", *[p for line in new for p in (line, "")], *kept, "", *lines[stop:]]


ANALYST_NAMES = ["Ana Lima", "Kenji Sato", "Priya Raman", "Tomás Ruiz", "Léa Martin", "Omar Haddad"]
ANALYST_FORMS = ("one", "two-in-one", "three-in-one", "two-lines", "two-adjacent-lines", "none")
_ANALYST_LINE = re.compile(r"^\s*\*?Analysts?:.*$")


def analysts(doc: ChapterDoc, forms: list[str]) -> ChapterDoc:
    """Each member section's analyst line(s) rewritten in one of ``ANALYST_FORMS`` (cycling):
    'Analyst: A', 'Analysts: A and B', 'Analysts: A, B and C', two 'Analyst:' lines (apart or
    adjacent), or none."""
    doc = doc.copy()
    italic = doc.fmt == "markdown"  # the markdown chapter prints them in italics
    for k, block in enumerate(doc.blocks):
        if not any(_ANALYST_LINE.match(line) for line in block.body):
            continue
        form = forms[k % len(forms)]
        a, b, c = (ANALYST_NAMES[(k + j) % len(ANALYST_NAMES)] for j in range(3))
        written, names = {
            "one": ([f"Analyst: {a}"], [a]),
            "two-in-one": ([f"Analysts: {a} and {b}"], [a, b]),
            "three-in-one": ([f"Analysts: {a}, {b} and {c}"], [a, b, c]),
            "two-lines": ([f"Analyst: {a}", "", f"Analyst: {b}"], [a, b]),
            "two-adjacent-lines": ([f"Analyst: {a}", f"Analyst: {b}"], [a, b]),
            "none": ([], []),
        }[form]
        if italic:
            written = [f"*{w}*" if w else w for w in written]
        body: list[str] = []
        for line in block.body:
            if _ANALYST_LINE.match(line):
                body.extend(written)
            else:
                body.append(line)
        block.body = body
        doc.member(block.member).analysts = names
    return doc


_THUS_LINE = re.compile(r"^\s*Thus, .* receives a score of [+\-−–]?\d\.?\s*$")


def without_score_sentences(doc: ChapterDoc, members: list[str] | None = None) -> ChapterDoc:
    """The 'Thus, X receives a score of N.' line removed from the sections of ``members`` (all by
    default): the score is then the heading's."""
    doc = doc.copy()
    for block in doc.blocks:
        chosen = members is None or block.member in members
        if chosen and any(_THUS_LINE.match(line) for line in block.body):
            block.body = [line for line in block.body if not _THUS_LINE.match(line)]
            doc.member(block.member).score_sentence = False
    every = all(not m.score_sentence for m in doc.expected.members if m.score is not None and m.has_section)
    doc.expected.warnings.add("no-score-sentences" if every else "no-score-sentence")
    return doc


_YEAR_AT_START = re.compile(rf"^(\s*On \d{{1,2}}(?:\s*[-–]\s*\d{{1,2}})? (?:{MONTHS})),? \d{{4}}\b", re.M)
_YEAR_AFTER_ON = re.compile(rf"(\bOn\n+)(\d{{1,2}} (?:{MONTHS})),? \d{{4}}\b")
_DAY_MONTH = re.compile(rf"^On (\d{{1,2}})(?:\s*[-–]\s*\d{{1,2}})? ({MONTHS})")


def yearless_dates(doc: ChapterDoc, *, period: tuple[dt.date, dt.date] | None = None) -> ChapterDoc:
    """Every cited action's opening date without its year ('On 4 July, …'); with ``period`` the
    chapter is read with another compliance period (one that holds a day in two years)."""
    doc = doc.copy()
    for block in doc.blocks:
        text = "\n".join(block.body)
        text = _YEAR_AFTER_ON.sub(r"\1\2", _YEAR_AT_START.sub(r"\1", text))
        block.body = text.split("\n")
    start, end = period or doc.period
    doc.period = (start, end)
    months = {name: k for k, name in enumerate(MONTHS.split("|"), start=1)}
    for member in doc.expected.members:
        for action in member.actions:
            if action.date_source != "paragraph":
                continue
            action.text = _YEAR_AT_START.sub(r"\1", action.text)
            day, month = (
                int(x) if x.isdecimal() else months[x] for x in _DAY_MONTH.match(action.text).groups()
            )
            note = doc.footnote_dates.get(action.footnotes[0]) if action.footnotes else None
            fits = [
                d
                for y in range(start.year, end.year + 1)
                if (d := _date(y, month, day)) is not None and start <= d <= end
            ]
            if note is not None and (note.month, note.day) == (month, day):
                action.date, action.date_source = note, "footnote"
            elif len(fits) == 1:
                action.date, action.date_source = fits[0], "period"
            elif fits:
                by_note = next((d for d in fits if note is not None and d.year == note.year), None)
                action.date, action.date_source = (by_note, "footnote") if by_note else (fits[0], "period")
                doc.expected.warnings.add("date-year-ambiguous")
            else:
                action.date, action.date_source = note, ("footnote" if note else None)
    return doc


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def write_variant(doc: ChapterDoc, folder: Path, name: str) -> Path:
    """The variant as a file with its manifest entry, for `gold import`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(doc.render(), encoding="utf-8")
    manifest = folder / "manifest.toml"
    entries = manifest.read_text(encoding="utf-8") if manifest.exists() else ""
    entries += (
        f'\n[[reports]]\nfile = "{name}"\nkind = "{doc.kind}"\nsummit = "2024 Apulia"\n'
        f"period_start = {doc.period[0].isoformat()}\nperiod_end = {doc.period[1].isoformat()}\n"
        f'format = "{doc.fmt}"\n'
    )
    manifest.write_text(entries, encoding="utf-8")
    return path
