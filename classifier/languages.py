"""Languages: what a page is written in, the members' names in their own languages, and leads.

Members publish in English, French, German, Italian and Japanese. This module holds, as one
table (:data:`MEMBER_NAMES`), the names by which a text names a member acting: the state, its
government, ministries and agencies, their ministers, in each of those languages.
:func:`members_named` reads it; the baseline's attribution and the learned model's cue rules
both use it.

A name is *specific* ("Auswärtiges Amt", "Viminale", "外務省", "Home Office") or *generic*: a
word every government writing that language uses ("Bundesregierung" is also Austria's,
"Gouvernement" Québec's or Tunisia's, "Governo" Brazil's). A generic name counts only in text
of its own language, and only in a sentence that names no state, so "le gouvernement du
Canada" and "die österreichische Bundesregierung" attribute nothing to France or Germany.

Language detection is py3langid (a naive Bayes model over byte n-grams, shipped inside the
package: nothing is downloaded at run time); its model loads once, on first use (about 2.5 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# Names of the languages a summary may have to name; others are named by their code.
LANGUAGE_NAMES = {
    "en": "English", "fr": "French", "de": "German", "it": "Italian", "ja": "Japanese",
    "es": "Spanish", "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "zh": "Chinese",
    "ko": "Korean", "ru": "Russian", "uk": "Ukrainian", "ar": "Arabic", "tr": "Turkish",
    "sv": "Swedish", "no": "Norwegian", "nb": "Norwegian", "da": "Danish", "fi": "Finnish",
    "el": "Greek", "cs": "Czech", "hu": "Hungarian", "ro": "Romanian", "hi": "Hindi",
    "id": "Indonesian",
}  # fmt: skip

# Detection is trusted over the page's metadata only when it is this sure and has this much text.
DETECT_MIN_PROBABILITY = 0.9
DETECT_MIN_CHARS = 40
DETECT_MAX_CHARS = 5000  # the opening is enough, and keeps detection ~10 ms a page


def language_name(code: str | None) -> str:
    """'German' for 'de' (or 'de-AT'); the code itself for a language not in the table."""
    if not code:
        return "unknown language"
    code = normalise_code(code) or code
    return LANGUAGE_NAMES.get(code, code)


def normalise_code(value: str | None) -> str | None:
    """A language tag ('de-DE', 'EN_us', 'fr') -> its primary subtag in lower case, else None."""
    if not value:
        return None
    m = re.match(r"\s*([A-Za-z]{2,3})(?:[-_]|\s*$)", value)
    return m[1].lower() if m else None


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> tuple[str, float] | None:
    """(language code, probability) of a text, or None when it has too few letters to tell."""
    sample = text[:DETECT_MAX_CHARS]
    if sum(ch.isalpha() for ch in sample) < 10:
        return None
    code, probability = _identifier().classify(sample)
    return code, float(probability)


def page_language(text: str, declared: str | None) -> tuple[str | None, str | None]:
    """The page's language and where it came from ('metadata' or 'text').

    The declared language (trafilatura's metadata, the ``<html lang>``) is kept unless the text
    says otherwise with confidence: many pages declare ``lang="en"`` from a template over German
    text. Without a declaration, the text decides when detection is at all sure.
    """
    declared = normalise_code(declared)
    detected = detect(text) if len(text.strip()) >= DETECT_MIN_CHARS else None
    if detected is not None:
        code, probability = detected
        if code == declared:
            return declared, "metadata"
        if probability >= DETECT_MIN_PROBABILITY or (declared is None and probability >= 0.5):
            return code, "text"
    return (declared, "metadata") if declared else (None, None)


# ---------------------------------------------------------------------------
# Members' names, per language


@dataclass(frozen=True)
class Name:
    member: str
    language: str  # the language the name is written in
    pattern: str  # a regular expression, matched case-sensitively
    generic: bool = False  # counts only in text of its language, in a sentence naming no state


def _names(member: str, language: str, *patterns: str, generic: bool = False) -> list[Name]:
    return [Name(member, language, p, generic) for p in patterns]


MEMBER_NAMES: list[Name] = [
    # Canada
    *_names("Canada", "en", r"Canada", r"Canadian", r"CBSA", r"RCMP", r"Ottawa"),
    *_names("Canada", "fr", r"[Gg]ouvernement du Canada", r"canadien(?:ne)?s?\b", r"Agence des services frontaliers",
            r"Gendarmerie royale du Canada", r"GRC"),
    # France
    *_names("France", "en", r"France", r"French", r"Paris", r"Élysée", r"ministère de l'Intérieur", r"Gendarmerie"),
    *_names("France", "fr", r"République française", r"[Gg]ouvernement français", r"[Mm]inistère de l['’]Intérieur",
            r"[Mm]inistère de l['’]Europe et des Affaires étrangères", r"Quai d['’]Orsay", r"Place Beauvau",
            r"Élysée", r"Matignon", r"Gendarmerie nationale", r"Police nationale", r"OFPRA", r"OFII",
            r"Retailleau", r"Darmanin", r"Macron", r"Barnier"),
    *_names("France", "fr", r"[Gg]ouvernement", r"[Mm]inistre de l['’]Intérieur", r"Premier ministre",
            generic=True),
    # Germany
    *_names("Germany", "en", r"Germany", r"German", r"Berlin", r"Deutschland", r"Faeser", r"Federal Foreign Office",
            r"Federal Ministry of the Interior", r"Federal Police"),
    *_names("Germany", "de", r"Deutschland", r"deutschen? Bundesregierung", r"Auswärtige[ns]? Amt(?:es)?", r"BMI(?!-)",
            r"Bundesministerium des Innern", r"Bundesinnenminister(?:in|ium)?", r"Bundesamt für Migration",
            r"BAMF", r"Bundeskriminalamt", r"Bundespolizei", r"Bundeskanzler(?:in|amt)?\b", r"Faeser", r"Dobrindt",
            r"Scholz", r"Baerbock"),
    *_names("Germany", "de", r"Bundesregierung", r"Bundesministerium", generic=True),
    # Italy
    *_names("Italy", "en", r"Italy", r"Italian", r"Rome", r"Roma", r"Italia", r"Meloni", r"Piantedosi", r"Polizia di Stato"),
    *_names("Italy", "it", r"Italia", r"italian[oaie]\b", r"[Gg]overno italiano", r"Viminale", r"Farnesina", r"Palazzo Chigi",
            r"Ministero dell['’]Interno", r"Ministero degli Affari Esteri", r"Guardia di Finanza", r"Guardia Costiera",
            r"Polizia di Stato", r"Carabinieri", r"Meloni", r"Piantedosi", r"Tajani"),
    *_names("Italy", "it", r"[Gg]overno", r"Consiglio dei [Mm]inistri", generic=True),
    # Japan
    *_names("Japan", "en", r"Japan", r"Japanese", r"Tokyo", r"MOFA"),
    *_names("Japan", "ja", r"日本", r"外務省", r"法務省", r"出入国在留管理庁", r"入管庁", r"警察庁", r"海上保安庁", r"内閣",
            r"首相官邸", r"総理大臣", r"外務大臣", r"法務大臣", r"国際協力機構", r"JICA"),
    *_names("Japan", "ja", r"政府", generic=True),
    # United Kingdom
    *_names("United Kingdom", "en", r"United Kingdom", r"UK", r"U\.K\.", r"British", r"Britain", r"Home Office",
            r"National Crime Agency", r"NCA", r"London"),
    # United States
    *_names("United States", "en", r"United States", r"U\.S\.", r"US", r"American", r"Washington", r"DHS", r"CBP",
            r"Department of (?:State|Justice|Homeland Security)"),
    # European Union
    *_names("European Union", "en", r"European Union", r"EU", r"European Commission", r"Council of the EU",
            r"European Council", r"Europol", r"Eurojust", r"Frontex", r"EEAS"),
    *_names("European Union", "fr", r"Union européenne", r"Commission européenne", r"Conseil de l['’]UE", r"\bUE"),
    *_names("European Union", "de", r"Europäische[n]? Union", r"Europäische[n]? Kommission", r"EU-Kommission"),
    *_names("European Union", "it", r"Unione [Ee]uropea", r"Commissione [Ee]uropea"),
    *_names("European Union", "ja", r"欧州連合", r"欧州委員会", r"ＥＵ"),
]  # fmt: skip

# States a sentence may name (besides the members) that make a generic name someone else's.
OTHER_STATES = re.compile(
    r"österreich|Österreich|Schweiz|schweizer|Liechtenstein|Luxemburg|"
    r"Québec|québécois|Belgique|belge|Suisse|suisse|Tunisie|tunisien|Maroc|marocain|Algérie|algérien|Sénégal|"
    r"Côte d['’]Ivoire|Luxembourg|Brasil|brasileir|Portugal|portugu|San Marino|Vaticano|Svizzera|svizzer|"
    r"Ticino|Libia|libic|Tunisia|tunisin|Albania|albanes|"
    r"中国|韓国|台湾|北朝鮮|ロシア|米国|アメリカ|英国|フランス|ドイツ|イタリア|カナダ"
)
_CJK = {"ja", "zh", "ko"}


@cache
def _compiled() -> list[tuple[Name, re.Pattern[str]]]:
    out = []
    for name in MEMBER_NAMES:
        # Japanese has no word boundaries; elsewhere a name is a whole word
        pattern = name.pattern if name.language in _CJK else rf"(?<!\w){name.pattern}(?!\w)"
        out.append((name, re.compile(pattern)))
    return out


def _sentence_at(text: str, start: int, end: int) -> str:
    left = max(text.rfind(c, 0, start) for c in ".!?。\n")
    rights = [i for i in (text.find(c, end) for c in ".!?。\n") if i >= 0]
    return text[left + 1 : min(rights) if rights else len(text)]


def members_named(text: str, language: str | None = None) -> list[tuple[str, str]]:
    """The members a text names, in table order, each with the name that named it (the first
    in the text's own language, else the first).

    ``language`` is the text's language (detected when None). Generic names ("Gouvernement",
    "Bundesregierung", "Governo", "政府") count only in text of their own language and only in a
    sentence that names no other state and no other member.
    """
    if language is None:
        found = detect(text)
        language = found[0] if found else None
    # per member, its name that is in the text's language and comes first (then any name)
    specific: dict[str, tuple[tuple[bool, int], str]] = {}
    generic: list[tuple[Name, re.Match[str]]] = []
    for name, pattern in _compiled():
        if name.generic:
            if name.language == language:
                generic += [(name, m) for m in pattern.finditer(text)]
            continue
        m = pattern.search(text)
        if m:
            key = (name.language != language, m.start())
            if name.member not in specific or key < specific[name.member][0]:
                specific[name.member] = (key, m[0])
    others: dict[str, list[re.Pattern[str]]] = {member: [] for member in {n.member for n in MEMBER_NAMES}}
    for name, pattern in _compiled():
        if not name.generic:
            others[name.member].append(pattern)
    named = dict(specific)
    for name, m in sorted(generic, key=lambda g: g[1].start()):
        if name.member in named:
            continue
        sentence = _sentence_at(text, m.start(), m.end())
        if OTHER_STATES.search(sentence):
            continue
        if any(p.search(sentence) for member, ps in others.items() if member != name.member for p in ps):
            continue
        named[name.member] = ((False, m.start()), m[0])
    order = list(dict.fromkeys(n.member for n in MEMBER_NAMES))
    return [(member, named[member][1]) for member in order if member in named]


# ---------------------------------------------------------------------------
# Leads: a text's opening in whole sentences

# Abbreviations after which a full stop ends no sentence, in the members' languages.
_ABBREVIATIONS = frozenset(
    [
        "dr",
        "prof",
        "nr",
        "st",
        "abs",
        "art",
        "bzw",
        "ca",
        "vgl",
        "z.b",
        "u.a",
        "d.h",
        "usw",
        "mio",
        "mrd",
        "hrsg",
        "jan",
        "feb",
        "mär",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "okt",
        "nov",
        "dez",
        "m",
        "mme",
        "mm",
        "mr",
        "mrs",
        "ms",
        "no",
        "sig",
        "sen",
        "dott",
        "pag",
        "cit",
        "ecc",
        "etc",
        "vs",
        "e.g",
        "i.e",
        "u.s",
        "u.k",
    ]
)
_CANDIDATE = re.compile(r"[.!?][\"”’»)]*(?=\s|$)|[。！？]」?")
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def sentence_ends(text: str) -> list[int]:
    """Offsets just past each sentence end in ``text``. A full stop after a day number ("2.
    Dezember"), an initial or a common abbreviation ends no sentence; 。！？ end Japanese ones."""
    ends = []
    for m in _CANDIDATE.finditer(text):
        if m[0][0] == ".":
            word = re.search(r"(\S+)$", text[: m.start()])
            token = word[1].lower() if word else ""
            if (token.isdigit() and len(token) <= 2) or token in _ABBREVIATIONS:
                continue
            if len(token) == 1 and token.isalpha():  # an initial: "J. Smith"
                continue
        ends.append(m.end())
    return ends


def lead(text: str, max_chars: int = 300) -> str:
    """The opening of a text in whole sentences, at most ``max_chars`` long where a sentence
    ends in time; else cut at a word boundary and marked with an ellipsis. Never mid-word.

    A first line that ends no sentence is the page's heading (trafilatura keeps the ``<h1>``):
    it leads, set off by a dash, "Gemeinsamer Aktionsplan — Berlin, 2. Juli 2024. …".
    """
    first, _, rest = text.strip().partition("\n")
    first = first.strip()
    if rest.strip() and len(first) <= max_chars // 2 and not sentence_ends(first):
        return f"{first} — {lead(rest, max_chars - len(first) - 3)}"
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return ""
    ends = [e for e in sentence_ends(text) if e <= max_chars]
    if ends:
        return text[: ends[-1]].strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    # Japanese has no spaces: between any two characters is a boundary
    if space > 0 and not _CJK_CHAR.search(text[space : max_chars + 1]):
        return cut[:space].rstrip(" ,;:–—-") + " …"
    return cut.rstrip(" ,;:–—-、") + "…"
