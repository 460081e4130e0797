"""Versioned prompt files (``prompts/<id>-v<N>.md``): front matter, then a system and a user part.

The system part renders only from the rubric, so it is the same for every document of a
commitment (a static prefix that providers' prompt caching can reuse); the document comes
last, in the user part, between ``<document>`` tags, as data. A version that stored results
refer to is never edited: :func:`check_unchanged` refuses a file whose text changed.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import frontmatter
import jinja2

from .languages import language_name, normalise_code
from .rubric import Rubric
from .store import data_dir

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

SYSTEM_MARK = "=== system ==="
USER_MARK = "=== user ==="


class PromptError(Exception):
    """A prompt file that is missing, malformed, or was edited after results referred to it."""


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: int
    description: str
    system: str
    user: str
    sha: str  # sha256 of the file's text
    path: Path

    @property
    def name(self) -> str:
        return f"{self.id}-v{self.version}"


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str
    sha: str  # sha256 of the rendered messages: recorded with every result
    system_sha: str
    truncated: bool
    chars: int  # document characters sent

    def messages(self) -> list[ChatCompletionMessageParam]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


def prompts_dir() -> Path:
    """The prompt files: the project's ``prompts/``, else the checkout's, else the installed copy."""
    return data_dir("prompts")


def load_prompt(
    ref: str | int | None = None, *, prompt_id: str = "classify", directory: Path | None = None
) -> PromptTemplate:
    """A prompt by version ('classify-v1', 'v1', '1' or 1); the newest version when ``ref`` is None."""
    directory = directory or prompts_dir()
    versions = sorted(
        (int(m[1]), p)
        for p in directory.glob(f"{prompt_id}-v*.md")
        if (m := re.fullmatch(rf"{re.escape(prompt_id)}-v(\d+)\.md", p.name))
    )
    if not versions:
        raise PromptError(f"{directory}: no {prompt_id}-v<N>.md prompt files")
    if ref is None:
        path = versions[-1][1]
    else:
        m = re.fullmatch(rf"(?:{re.escape(prompt_id)}-)?v?(\d+)", str(ref))
        if not m:
            raise PromptError(f"prompt version {ref!r}: use e.g. {prompt_id}-v1 or 1")
        wanted = dict(versions).get(int(m[1]))
        if wanted is None:
            have = ", ".join(f"v{v}" for v, _ in versions)
            raise PromptError(f"no prompt {prompt_id}-v{m[1]} (have {have})")
        path = wanted
    text = path.read_text(encoding="utf-8")
    try:
        post = frontmatter.loads(text)
    except Exception as exc:  # the YAML parser raises several types
        raise PromptError(f"{path}: unreadable front matter: {exc}") from None
    body = post.content
    if SYSTEM_MARK not in body or USER_MARK not in body:
        raise PromptError(f"{path}: needs '{SYSTEM_MARK}' and '{USER_MARK}' sections")
    system, user = body.split(SYSTEM_MARK, 1)[1].split(USER_MARK, 1)
    meta: dict[str, Any] = post.metadata  # front matter: whatever the YAML holds
    if meta.get("id") != prompt_id or int(meta.get("version", -1)) != int(path.stem.rsplit("-v", 1)[1]):
        raise PromptError(f"{path}: front matter id/version do not match the file name")
    return PromptTemplate(
        id=prompt_id,
        version=int(meta["version"]),
        description=str(meta.get("description", "")).strip(),
        system=system.strip() + "\n",
        user=user.strip() + "\n",
        sha="sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
        path=path,
    )


_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    """Templates compiled once per text (compiling dominated the cost of rendering)."""
    return _env.from_string(source)


def sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def render(
    template: PromptTemplate,
    rubric: Rubric,
    document: str,
    *,
    max_chars: int = 60_000,
    instruction_like: int = 0,
    language: str | None = None,
) -> RenderedPrompt:
    """Render the messages for one document. Text beyond ``max_chars`` is cut and said so.

    ``instruction_like`` is how many of the document's sentences address classifiers or
    models (:mod:`classifier.instructions`); a prompt version may tell the model so, from
    outside the document. ``language`` is the document's language code: a prompt version may
    tell the model the language of a page not in English (``language_name``; empty for English
    or an unknown language).
    """
    system = _compiled(template.system).render(rubric=rubric)
    truncated = len(document) > max_chars
    text = document[:max_chars]
    # The document cannot close its own delimiters.
    text = re.sub(r"</?\s*document\s*>", lambda m: m[0].replace("<", "‹").replace(">", "›"), text, flags=re.I)
    if truncated:
        text += f"\n[… document truncated: {len(document) - max_chars} more characters not shown]"
    code = normalise_code(language)
    name = language_name(code) if code not in (None, "en") else ""
    user = _compiled(template.user).render(
        rubric=rubric,
        document=text,
        instruction_like=instruction_like,
        language=code or "",
        language_name=name,
    )
    return RenderedPrompt(
        system=system,
        user=user,
        sha=sha256(system + "\n\x00\n" + user),
        system_sha=sha256(system),
        truncated=truncated,
        chars=len(text),
    )


def check_unchanged(db, template: PromptTemplate) -> None:
    """Remember each prompt version's text; refuse a version whose file changed since."""
    table = db.table("prompt_versions")
    rows = list(table.rows_where("name = ?", [template.name]))
    if not rows:
        table.insert(
            {"name": template.name, "sha": template.sha, "text": template.path.read_text(encoding="utf-8")},
            pk="name",
        )
        return
    if rows[0]["sha"] != template.sha:
        raise PromptError(
            f"{template.path} was edited after results referred to {template.name}: "
            f"restore it and put the change in a new version ({template.id}-v{template.version + 1}.md)"
        )
