"""The README's command reference is the CLI's own help, for every command and option."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from typer.main import get_command

from classifier import cli_reference
from classifier.cli import app

from .conftest import ROOT


@pytest.fixture(scope="module")
def helps():
    return cli_reference.command_help()


def section_of(readme: str, path: list[str]) -> str:
    """The reference's block for one command, from its heading to the next heading."""
    reference = readme.split(cli_reference.START, 1)[1].split(cli_reference.END, 1)[0]
    heading = f"### `{' '.join(['evidence', *path])}`\n"
    assert heading in reference, f"the reference has no {heading.strip()}"
    return reference.split(heading, 1)[1].split("\n### ", 1)[0]


def test_readme_command_reference_is_up_to_date(helps):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = cli_reference.replace_section(readme, cli_reference.render(helps))
    assert expected == readme, "README.md's command reference is out of date: run `make docs`"


def test_every_command_and_option_is_in_the_reference(helps):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    walked = []

    def walk(command, path):
        walked.append(path)
        block = section_of(readme, path)
        assert f"Usage: evidence {' '.join(path)}".rstrip() in block
        for param in command.params:
            for opt in [*param.opts, *param.secondary_opts]:
                if opt.startswith("-"):
                    assert opt in block, f"`evidence {' '.join(path)}`: {opt} is not in the reference"
            if param.param_type_name == "argument":
                assert param.name in block, f"`evidence {' '.join(path)}`: argument {param.name} missing"
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(get_command(app), [])
    assert [path for path, _ in helps] == walked  # the generator saw every command, in the CLI's order
    assert len(walked) >= 40


@pytest.mark.slow  # reads the whole CLI's help twice, in child processes
def test_check_names_the_command_to_run_when_the_readme_is_stale(tmp_path):
    stale = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", stale)
    text = stale.read_text(encoding="utf-8")
    stale.write_text(text.replace("Show this message and exit.", "Show this message.", 1), encoding="utf-8")
    args = [sys.executable, "-m", "classifier.cli_reference", "--readme", str(stale)]
    done = subprocess.run([*args, "--check"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == f"{stale}: the command reference is out of date; run `make docs`"
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert stale.read_text(encoding="utf-8") == text  # regenerated: the README as committed
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("# A README without the markers\n", encoding="utf-8")
    done = subprocess.run(
        [*args[:-1], str(no_markers), "--check"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "markers" in done.stderr and "Traceback" not in done.stderr
