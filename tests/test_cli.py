"""The evidence command line: the main job, every command's help, errors a user can cause."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from classifier.cli import app

from .conftest import FINAL_19, INTERIM_18, ROOT

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def all_commands():
    def walk(command, path):
        yield path, command
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    return list(walk(get_command(app), []))


def printed_assessment(path):
    """The member scores and average straight from a report's assessment table, by regex."""
    text = path.read_text(encoding="utf-8")
    block = text[text.index("Assessment") : text.index("Background", text.index("Assessment"))]
    scores = dict(
        re.findall(
            r"^(Canada|France|Germany|Italy|Japan|United Kingdom|United States|European Union)\t+([+-]?\d)",
            block,
            re.M,
        )
    )
    average = re.search(r"^Average\t+([^\t\n]+)", block, re.M)[1].strip()
    return scores, average


def test_every_command_has_help_and_is_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    leaves = [(path, cmd) for path, cmd in all_commands() if path and not hasattr(cmd, "commands")]
    assert len(leaves) >= 7
    for path, command in leaves:
        assert (command.help or "").strip(), f"no help for {' '.join(path)}"
        assert f"evidence {' '.join(path)}" in readme, f"README does not document `evidence {' '.join(path)}`"


@pytest.mark.slow
def test_main_job_prints_both_score_tables_as_the_reports_print_them():
    result = invoke("run", "--limit", "12")
    assert result.exit_code == 0, result.output
    tables = result.output.split("\n18. Migration and Refugees: Border Management\n")[1].split(
        "\n19. Migration and Refugees: Preventing Migrant Smuggling and Trafficking\n"
    )
    for path, table in zip((INTERIM_18, FINAL_19), tables, strict=True):
        scores, average = printed_assessment(path)
        assert len(scores) == 8
        for member, value in scores.items():
            row = next(line for line in table.splitlines() if line.startswith(member + " "))
            assert row.split()[-1] == value, row
            column = {"-1": 16, "0": 32, "+1": 53}[value]  # under the No / Partial / Full heading
            assert row.index(value) == column, row
        assert f"Average                         {average}" in table
    assert "No Compliance   Partial Compliance   Full Compliance" in result.output
    # then the evaluation (both modes side by side, with the caveat), the queue and provisional scores
    assert "1. action: relevance recall" in result.output and "flatters the classifier" in result.output
    assert "Review queue:" in result.output and "PROVISIONAL scores" in result.output
    again = invoke("run", "--limit", "12")
    assert again.output.count("unchanged") == 2
    assert "0 calls, 12 cache hits" in again.output


def test_gold_commands(isolated_db):
    assert invoke("gold", "import", str(ROOT / "corpus" / "reports")).exit_code == 0
    lines = invoke("gold", "evidence", "--commitment", "19", "--member", "JP").output.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 10 and {r["member"] for r in records} == {"Japan"}
    assert all(r["date"] and r["footnotes"][0]["url"] for r in records)
    table = invoke("gold", "evidence", "--format", "table", "-c", "18", "-m", "CA").output
    assert "2024-12-17*" in table  # the date taken from the footnote is marked
    scores = json.loads(invoke("gold", "scores", "--format", "json").output)
    assert [s["average"] for s in scores] == ["+0.88 (94%)", "+0.38 (69%)"]
    show = invoke("gold", "show").output
    assert "rule-mismatch" in show and "multiple-conclusions" in show


def test_rubric_commands():
    result = invoke("rubric", "check")
    assert result.exit_code == 0, result.output
    assert "differs (documented in notes)" in result.output and "DIFFERS" not in result.output
    assert "border_management, organized_crime, partnership" in invoke("rubric", "list").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gold", "evidence", "--member", "Atlantis"], "unknown member 'Atlantis'"),
        (["gold", "scores", "--format", "xml"], "--format must be json or table"),
        (["gold", "import", "/nonexistent/report.txt"], "cannot read file"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message", "error"),
    [
        (["docs", "show", "https://example.org/never-fetched"], "no document", "NoSuchDocument"),
        (["calls", "show", "999"], "no model call 999", "NoSuchCall"),
        (["runs", "show", "no-such-run"], "no nightly run 'no-such-run'", "NoSuchRun"),
        (["eval", "report", "no-such-run"], "no evaluation run 'no-such-run'", "NoSuchRun"),
        (["queue", "show", "999"], "no queue item 999", "NoSuchItem"),
    ],
)
def test_what_names_nothing_is_not_found(isolated_db, args, message, error):
    """Each store's lookup raises a NotFound (one class, subclassed): one line, exit code 1."""
    from classifier.errors import NotFound

    result = runner.invoke(app, args)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"error: {message}"), result.output
    raised = runner.invoke(app, ["--debug", *args]).exception
    assert isinstance(raised, NotFound) and type(raised).__name__ == error


def test_debug_shows_the_traceback():
    result = runner.invoke(app, ["--debug", "gold", "evidence", "--member", "Atlantis"])
    assert result.exit_code != 0 and isinstance(result.exception, ValueError)


def test_db_flag_beats_environment(tmp_path, isolated_db):
    flagged = tmp_path / "flag.db"
    assert invoke("--db", str(flagged), "gold", "import", str(INTERIM_18)).exit_code == 0
    assert flagged.exists() and not isolated_db.exists()


@pytest.mark.slow
def test_console_script_runs_the_main_job(tmp_path):
    env = {**os.environ, "EVIDENCE_DB": str(tmp_path / "sub.db")}
    exe = os.path.join(os.path.dirname(sys.executable), "evidence")
    done = subprocess.run(
        [exe, "run", "--limit", "4"], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "+0.88 (94%)" in done.stdout and "+0.38 (69%)" in done.stdout
    bad = subprocess.run(
        [exe, "gold", "import", "/etc/hostname"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode == 1 and bad.stderr.startswith("error: /etc/hostname")


def test_gold_commands_read_one_version_per_chapter(tmp_path):
    """A second file of a chapter (one cut inside its last URL, which no count can catch) is a
    new version: gold evidence lists each action once, gold scores prints each table once, and
    gold show lists both versions. A copy cut where it shows is refused, in one line."""
    assert invoke("gold", "import", str(ROOT / "corpus" / "reports")).exit_code == 0
    text = FINAL_19.read_text(encoding="utf-8")
    copy = tmp_path / "copy-of-19.txt"
    copy.write_text(text[:-30], encoding="utf-8")
    imported = invoke("gold", "import", str(copy))
    assert imported.exit_code == 0 and imported.output.startswith(
        "new-version copy-of-19.txt  commitment 19 v2"
    )
    assert len(invoke("gold", "evidence").output.splitlines()) == 198 + 200
    scores = invoke("gold", "scores").output
    assert scores.count("19. Migration and Refugees") == 1 and scores.count("18. Migration and Refugees") == 1
    show = invoke("gold", "show", "--no-warnings").output
    assert re.search(r"\* v2  copy-of-19\.txt .*\n +v1  001_917aac6ecb12f93e\.txt", show), show
    again = invoke("gold", "import", str(FINAL_19))
    assert "unchanged   001_917aac6ecb12f93e.txt  commitment 19 v1 (v2 is current)" in again.output
    cut = tmp_path / "cut.txt"
    cut.write_text(text[: text.index("⁴⁶⁴¹ Eurojust Meeting")], encoding="utf-8")
    refused = runner.invoke(app, ["gold", "import", str(cut)])
    citing = text[: text.index("On 31 March 2025, Eurojust published")].count("\n") + 1  # cites 4641
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"error: {cut}:{citing}: chapter 19 is incomplete (the file looks truncated): "
        "footnote 4641 cited but not printed"
    )
