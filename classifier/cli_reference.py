"""The README's command reference, made from the CLI's own help.

``python -m classifier.cli_reference`` (``make docs``) rewrites the part of README.md between
the two markers with the ``--help`` of every command; ``--check`` only says whether it is up
to date (``tests/test_cli_reference.py`` runs that). The help is read in a child process with
typer's plain (not rich) output at 80 columns, so the text is the same on every machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

START = "<!-- command-reference: start (made by `make docs` from the CLI's help; do not edit) -->"
END = "<!-- command-reference: end -->"
REGENERATE = "make docs"

# Run in the child: every command's path and help, as JSON, in the order the CLI lists them.
_HELP_OF_EVERY_COMMAND = """
import json
import typer.main
from typer.testing import CliRunner
from classifier.cli import app

def walk(command, path):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():  # a group: its commands in order
        yield from walk(sub, [*path, name])

runner = CliRunner()
out = []
for path, _ in walk(typer.main.get_command(app), []):
    result = runner.invoke(app, [*path, "--help"], prog_name="evidence", env={"COLUMNS": "80"})
    if result.exit_code != 0:
        raise SystemExit(f"evidence {' '.join(path)} --help exited with {result.exit_code}: {result.output}")
    out.append({"path": path, "help": result.output})
print(json.dumps(out))
"""


def command_help() -> list[tuple[list[str], str]]:
    """Every command's path (``[]`` for ``evidence`` itself) and its plain ``--help`` text."""
    env = {**os.environ, "TYPER_USE_RICH": "0", "COLUMNS": "80", "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-c", _HELP_OF_EVERY_COMMAND],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reading the CLI's help failed: {(done.stderr or done.stdout).strip()}")
    return [(entry["path"], entry["help"]) for entry in json.loads(done.stdout)]


def render(helps: list[tuple[list[str], str]]) -> str:
    """The reference as Markdown: one heading and one block of help per command."""
    parts = []
    for path, text in helps:
        lines = [line.rstrip() for line in text.strip("\n").splitlines()]
        parts.append(f"### `{' '.join(['evidence', *path])}`\n\n```\n" + "\n".join(lines) + "\n```\n")
    return "\n".join(parts)


def replace_section(readme: str, reference: str) -> str:
    """``readme`` with the text between the markers replaced by ``reference``."""
    if readme.count(START) != 1 or readme.count(END) != 1 or readme.index(START) > readme.index(END):
        raise ValueError("README.md needs the command-reference start and end markers, once each, in order")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{reference}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifier.cli_reference", description=__doc__)
    parser.add_argument("--readme", type=Path, default=Path("README.md"), help="default: ./README.md")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when it is out of date")
    args = parser.parse_args(argv)
    try:
        readme = args.readme.read_text(encoding="utf-8")
        replace_section(readme, "")  # the markers first: a README without them fails at once
        updated = replace_section(readme, render(command_help()))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"error: {args.readme}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if updated != readme:
            print(f"{args.readme}: the command reference is out of date; run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    if updated != readme:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"{args.readme}: command reference updated")
    else:
        print(f"{args.readme}: command reference already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
