"""Reading the project's TOML files with one-line errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError


def read_toml(path: Path, error: type[Exception], what: str) -> dict:
    """Parse a TOML file; raise ``error`` naming the file when it is missing or malformed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a {what}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None


def first_problem(exc: ValidationError) -> str:
    """'field.sub: message' for the first error of a pydantic validation error."""
    first = exc.errors()[0]
    where = "".join(f"{p}: " for p in first["loc"])
    return where + first["msg"].removeprefix("Value error, ")
