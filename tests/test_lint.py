"""The code base passes ruff (lint and format) and mypy (the package), as configured in pyproject.toml."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from .conftest import ROOT

RUFF = os.path.join(os.path.dirname(sys.executable), "ruff")
MYPY = os.path.join(os.path.dirname(sys.executable), "mypy")


def test_ruff_check():
    done = subprocess.run([RUFF, "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format():
    done = subprocess.run(
        [RUFF, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy():
    # the settings (files, strictness, per-module exceptions) are pyproject.toml's [tool.mypy]
    done = subprocess.run([MYPY], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout, done.stdout


# The front ends call library functions: no SQL text, no database calls and no table access in
# cli.py or web.py. What counts (each found by reading the syntax tree, so comments and
# docstrings do not):
# - a call of a method only a database or a table has: execute, executemany, executescript,
#   query, rows_where, count_where, insert_all, upsert, upsert_all, delete_where, lookup, table;
# - a subscript of the database, ``db[...]``, ``db()[...]`` or ``_db()[...]`` (a table);
# - a string literal that reads as SQL: select ... from, insert into, update ... set, delete from,
#   create table, drop table (either case; "select" only before *, distinct, count( or a column
#   list, so English help text such as "select a file from" is not SQL).
FRONT_ENDS = ("classifier/cli.py", "classifier/web.py")
DB_METHODS = {
    "execute",
    "executemany",
    "executescript",
    "query",
    "rows_where",
    "count_where",
    "insert_all",
    "upsert",
    "upsert_all",
    "delete_where",
    "lookup",
    "table",
}
DB_NAMES = {"db", "_db", "conn", "connection"}
SQL = re.compile(
    r"\bselect\s+(\*|distinct\b|count\(|[\w.]+\s*(,|\bfrom\b|\bas\b))|\binsert\s+into\b"
    r"|\bupdate\s+\w+\s+set\b|\bdelete\s+from\b"
    r"|\b(create|drop)\s+table\b",
    re.IGNORECASE,
)


def _is_db(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        node = node.func
    return isinstance(node, ast.Name) and node.id in DB_NAMES


def sql_in(source: str) -> list[str]:
    """Each place in ``source`` that runs SQL or touches a table directly, as 'line: what'."""
    tree = ast.parse(source)
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in DB_METHODS
        ):
            found.append(f"{node.lineno}: .{node.func.attr}(...)")
        elif isinstance(node, ast.Subscript) and _is_db(node.value):
            found.append(f"{node.lineno}: table access {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL.search(node.value)
        ):
            found.append(f"{node.lineno}: SQL {node.value[:60]!r}")
    return sorted(found, key=lambda s: int(s.split(":")[0]))


def test_sql_in_finds_each_kind():
    code = (
        'rows = db.query("x")\n'
        'n = db["users"].count_where("disabled = 0")\n'
        'm = [r for r in db().execute("y")]\n'
        't = _db()["runs"]\n'
        'q = "select id from eval_runs order by id"\n'
        'ok = request.query_params["next"] + form["x"] + "Select a file from the list"[0]\n'
    )
    assert [f.split(":")[0] for f in sql_in(code)] == ["1", "2", "2", "3", "4", "5"]


def test_front_ends_hold_no_sql():
    for name in FRONT_ENDS:
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            found = sql_in(f.read())
        assert not found, f"{name} runs SQL or touches tables; call a library function:\n" + "\n".join(found)
