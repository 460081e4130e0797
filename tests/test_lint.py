"""The code base passes ruff (lint and format) and mypy (the package), as configured in pyproject.toml."""

from __future__ import annotations

import os
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
