"""Installing anywhere: declared dependencies, the bundled corpus and prompts, the test tiers.

What is real here: pyproject.toml as written, the installed packages' own metadata, a fresh
virtual environment per install test built by ``python -m venv`` with the pip that Python
ships (no upgrade), pip installing the project from a copy of the repository through the
package index this machine is configured with, the installed ``evidence`` console script run
from an empty directory, the Makefile, and .ci/ensure-browser run as an unprivileged user.
"""

from __future__ import annotations

import ast
import ensurepip
import functools
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from classifier import store

from .conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# What a build of the package needs from the repository (pyproject.toml names the readme).
BUILD_INPUTS = [
    "pyproject.toml",
    "README.md",
    "classifier",
    "corpus",
    "prompts",
    "eval/data/reference-labels",
]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


RUNTIME = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
TEST_EXTRA = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}


def _imported_modules(files) -> dict[str, set[str]]:
    """Top-level third-party modules imported by ``files`` (absolute imports, stdlib and local
    modules left out) -> the files importing each."""
    found: dict[str, set[str]] = {}
    for path in files:
        local = {p.stem for p in path.parent.glob("*.py")} | {"classifier", "tests"}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return found


@functools.cache
def _module_owners() -> dict[str, list[str]]:
    return packages_distributions()  # scans every installed distribution: once


def _distributions_of(module: str) -> set[str]:
    return {re.sub(r"[-_.]+", "-", d).lower() for d in _module_owners().get(module, [])}


def test_every_module_the_package_imports_is_a_declared_dependency():
    imported = _imported_modules(sorted((ROOT / "classifier").rglob("*.py")))
    assert {"typer", "sqlite_utils", "trafilatura"} <= set(imported)  # the walk sees imports
    undeclared = {
        module: sorted(files) for module, files in imported.items() if not _distributions_of(module) & RUNTIME
    }
    assert not undeclared, f"imported by the package but not in [project] dependencies: {undeclared}"


def test_modules_only_tests_import_are_test_extras():
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "eval").rglob("*.py")])
    imported = _imported_modules(files)
    package_imports = set().union(
        *(_distributions_of(m) for m in _imported_modules(sorted((ROOT / "classifier").rglob("*.py"))))
    )
    required_by_runtime = set()
    for dependency in RUNTIME:
        for requirement in distribution(dependency).requires or []:
            if "extra ==" not in requirement:
                required_by_runtime.add(_name(requirement))
    undeclared, misplaced = {}, {}
    for module, using in imported.items():
        dists = _distributions_of(module)
        if not dists & (RUNTIME | TEST_EXTRA):
            undeclared[module] = sorted(using)
        # A runtime dependency that only the tests use (and no runtime dependency needs) belongs
        # in the test extra: installing the package should not install the test tools.
        elif dists & RUNTIME and not dists & (package_imports | required_by_runtime):
            misplaced[module] = sorted(using)
    assert "vcr" in imported and "pytest" in imported  # the walk sees the tests' imports
    assert not undeclared, f"imported by tests but declared nowhere: {undeclared}"
    assert not misplaced, f"used only by tests, but a runtime dependency: {misplaced}"


def test_extras_that_dependencies_ask_for_are_declared_directly():
    """A dependency that asks for another package's extra (justext: ``lxml[html_clean]``) gets
    that extra only from a pip that matches the extra's name the way the package spells it; the
    pip Python 3.11 ships does not for lxml, so what such extras pull in is declared here."""
    missing: dict[str, str] = {}
    seen: set[str] = set()
    todo = list(PYPROJECT["project"]["dependencies"])
    while todo:
        requirement = Requirement(todo.pop())
        name = _name(str(requirement))
        requires = distribution(name).requires or []  # markers for other platforms are not followed
        for extra in requirement.extras:
            for added in requires:
                marker = Requirement(added).marker
                asked = marker is not None and "extra" in str(marker) and marker.evaluate({"extra": extra})
                if asked and _name(added) not in RUNTIME:
                    missing[_name(added)] = f"{name}[{extra}], asked for by a dependency"
        if name in seen:
            continue
        seen.add(name)
        for sub in requires:
            marker = Requirement(sub).marker
            if marker is None or marker.evaluate({"extra": ""}):
                todo.append(sub)
    assert {"trafilatura", "justext", "lxml"} <= seen  # the walk reaches the dependencies' dependencies
    assert not missing, f"declare in [project] dependencies: {missing}"


def test_wheel_configuration_ships_the_corpus_and_prompts():
    setuptools = PYPROJECT["tool"]["setuptools"]
    mapped = {Path(directory).name: package for package, directory in setuptools["package-dir"].items()}
    assert set(mapped) == {"corpus", "prompts", "eval"}
    for directory, package in mapped.items():
        assert package in setuptools["packages"] and package.startswith("classifier.bundled.")
        assert (store.BUNDLED_DIR / directory).as_posix().endswith(package.replace(".", "/"))
    patterns = setuptools["package-data"]
    shipped = {
        path.relative_to(ROOT / "corpus").as_posix()
        for pattern in patterns[mapped["corpus"]]
        for path in (ROOT / "corpus").glob(pattern)
    }
    tracked = {p.relative_to(ROOT / "corpus").as_posix() for p in (ROOT / "corpus").rglob("*") if p.is_file()}
    assert shipped == tracked  # every corpus file: commitments, reports + manifest, sources.toml
    prompts = {p.name for pattern in patterns[mapped["prompts"]] for p in (ROOT / "prompts").glob(pattern)}
    assert {p.name for p in (ROOT / "prompts").glob("classify-v*.md")} <= prompts
    # the evaluation's reference labels ship too (the stream mode's real pages stay in the checkout)
    labels = {
        p.relative_to(ROOT / "eval").as_posix()
        for pattern in patterns[mapped["eval"]]
        for p in (ROOT / "eval").glob(pattern)
    }
    assert "data/reference-labels/actions.jsonl" in labels and "data/reference-labels/README.md" in labels
    assert not any(name.startswith("data/realpages") or name.startswith("results") for name in labels)


def _copy_data(target: Path) -> Path:
    """corpus/ and prompts/ of the repository, copied under ``target``."""
    shutil.copytree(ROOT / "corpus", target / "corpus")
    shutil.copytree(ROOT / "prompts", target / "prompts")
    return target


def test_lookup_order_project_then_checkout_then_installed_copy(tmp_path, monkeypatch):
    """The installed copy is a directory laid out as the wheel lays it out (the real wheel is in
    the slow install test below); the checkout is made to look absent by pointing PACKAGE_ROOT
    at a directory without corpus/, as it is in site-packages."""
    monkeypatch.delenv("EVIDENCE_DB")
    site = tmp_path / "site-packages"
    bundled = site / "classifier" / "bundled"
    _copy_data(bundled)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # From a checkout, anywhere: the checkout's files and state (as before).
    assert store.project_dir() == ROOT
    assert store.corpus_dir() == ROOT / "corpus"

    # Installed: the installed copies for data, the working directory for state.
    monkeypatch.setattr(store, "PACKAGE_ROOT", site)
    monkeypatch.setattr(store, "BUNDLED_DIR", bundled)
    from classifier.prompts import load_prompt, prompts_dir

    assert store.project_dir() == elsewhere
    assert store.corpus_dir() == bundled / "corpus"
    assert prompts_dir() == bundled / "prompts"
    assert load_prompt().path.parent == bundled / "prompts"
    assert store.resolve_db_path() == elsewhere / ".evidence" / "evidence.db"
    assert store.results_dir() == elsewhere / "eval" / "results"

    # EVIDENCE_HOME places the state; data still comes from the installed copy.
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    assert store.project_dir() == home
    assert store.resolve_db_path() == home / ".evidence" / "evidence.db"
    assert store.results_dir() == home / "eval" / "results"
    assert store.corpus_dir() == bundled / "corpus"
    monkeypatch.delenv("EVIDENCE_HOME")

    # A project directory above the working directory wins, for state and data.
    project = tmp_path / "project"
    _copy_data(project)
    deeper = project / "notes" / "deeper"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    assert store.project_dir() == project
    assert store.corpus_dir() == project / "corpus"
    assert prompts_dir() == project / "prompts"
    assert store.results_dir() == project / "eval" / "results"


# -- the test command and its tiers ------------------------------------------------------------


def _make_dry_run(target: str) -> list[str]:
    done = subprocess.run(
        # -n: print the recipe; -o: take the virtual environment as built, whatever its age
        ["make", "-n", "-o", ".venv-dry-run/.installed", target, "VENV=.venv-dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_make_test_ensures_the_browser_and_runs_everything():
    lines = _make_dry_run("test")
    browser = next(i for i, line in enumerate(lines) if ".ci/ensure-browser" in line)
    pytest_line = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert browser < pytest_line and " -m " not in lines[pytest_line].split("pytest", 1)[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test VENV=\.venv-ci$", ci, re.M)


def test_make_test_fast_leaves_out_the_slow_tests():
    lines = _make_dry_run("test-fast")
    assert any(re.search(r"-m pytest .*-m \"not slow\"", line) for line in lines), lines
    assert not any("ensure-browser" in line for line in lines)  # the browser tests are slow ones


def test_both_tiers_hold_tests():
    # One collection: the slow tier listed, the fast tier counted as what -m slow deselects.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "slow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    slow = [line for line in done.stdout.splitlines() if "::" in line]
    counts = re.search(r"^(\d+)/(\d+) tests collected \((\d+) deselected\)", done.stdout, re.M)
    assert counts, done.stdout[-500:]
    selected, total, fast = map(int, counts.groups())
    assert selected == len(slow) and selected + fast == total
    assert fast > 100 and len(slow) > 10, (fast, len(slow))
    slow_files = {item.split("::")[0] for item in slow}
    # Whole files that kill processes or drive the browser are slow from end to end (pytestmark).
    for whole in ("tests/test_web_e2e.py", "tests/test_nightly_resume.py"):
        assert whole in slow_files
        assert re.search(
            r"^pytestmark = pytest\.mark\.slow$", (ROOT / whole).read_text(encoding="utf-8"), re.M
        )
    assert any(item.startswith("tests/test_install.py::test_wheel") for item in slow)


# -- .ci/ensure-browser ------------------------------------------------------------------------


def _ensure_browser(env_browser: Path) -> subprocess.CompletedProcess:
    """Run the script as an unprivileged user (dropping root when the tests run as root), so
    that installing is impossible; the script is handed over on stdin, readable by anyone."""
    command = ["bash", "-s"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {"PATH": os.environ["PATH"], "EVIDENCE_CHROMIUM": str(env_browser)}
    with open(ROOT / ".ci" / "ensure-browser", "rb") as script:
        return subprocess.run(command, stdin=script, capture_output=True, text=True, env=env, timeout=60)


def test_ensure_browser_passes_silently_when_the_browser_is_there():
    # The script checks that the binary is there and executable (the browser tests launch it);
    # any executable the unprivileged user can reach shows that.
    done = _ensure_browser(Path(shutil.which("true")))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_ensure_browser_names_what_to_install_when_it_cannot(tmp_path):
    done = _ensure_browser(tmp_path / "no-such-chromium")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'no-such-chromium'} is missing")
    assert "apt-get install -y chromium" in lines[0]


# -- real installs into fresh virtual environments, with the pip Python ships --------------------


def _venv_run(cwd: Path, *args, timeout: int = 60) -> subprocess.CompletedProcess:
    """Run a command of a test virtual environment outside the checkout (so that no ``classifier``
    directory on the working directory's path shadows the installed one), without EVIDENCE_*
    settings: the installed command finds everything by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    version = _venv_run(path, python, "-m", "pip", "--version").stdout
    # The bundled pip, not upgraded: the one that does not resolve lxml's renamed extra.
    assert version.split()[1] == ensurepip.version(), version
    if sys.version_info[:2] == (3, 11):
        assert version.startswith("pip 23."), version
    return python


def _pip_install(python: Path, *args: str) -> None:
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    done = _venv_run(python.parent.parent, *command, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def _repository_copy(target: Path) -> Path:
    target.mkdir()
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, target / name)
    return target


def _evidence(exe: Path, cwd: Path, *args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    done = _venv_run(cwd, exe, *args, timeout=timeout)
    assert done.returncode == 0, f"evidence {' '.join(args)}: {done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_wheel_install_runs_the_main_job_from_an_empty_directory(tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    _pip_install(python, str(_repository_copy(tmp_path / "repo")))
    shutil.rmtree(tmp_path / "repo")  # nothing of the repository is left to find
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _venv_run(
        empty, python, "-c", "import classifier, pathlib; print(pathlib.Path(classifier.__file__).parent)"
    )
    site = Path(where.stdout.strip())
    assert site.parent.name == "site-packages", where.stdout + where.stderr
    assert (site / "bundled" / "corpus" / "reports" / "manifest.toml").is_file()
    installed_before = sorted(p for p in site.parent.rglob("*") if "__pycache__" not in p.parts)

    exe = python.parent / "evidence"
    assert "rubric" in _evidence(exe, empty, "--help").stdout
    listed = _evidence(exe, empty, "rubric", "list").stdout
    assert "Border Management" in listed and "Preventing Migrant Smuggling" in listed
    done = _evidence(exe, empty, "run", "--limit", "3", timeout=600)
    assert "+0.88 (94%)" in done.stdout and "+0.38 (69%)" in done.stdout
    assert "000_977e9f2715cc7214.txt" in done.stdout  # imported from the installed copy

    # State went to the working directory, nothing into the installed package.
    assert (empty / ".evidence" / "evidence.db").is_file()
    assert list((empty / "eval" / "results").glob("*.json"))
    installed_after = sorted(p for p in site.parent.rglob("*") if "__pycache__" not in p.parts)
    assert installed_after == installed_before


@pytest.mark.slow
def test_editable_install_starts_and_reads_the_checkout(tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    repo = _repository_copy(tmp_path / "repo")
    _pip_install(python, "-e", str(repo))
    exe = python.parent / "evidence"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "rubric" in _evidence(exe, empty, "--help").stdout
    # The checkout's files, live: a rubric edited there is listed so at once, without reinstalling.
    rubric = repo / "corpus" / "commitments" / "2024-apulia-18.toml"
    text = rubric.read_text(encoding="utf-8")
    title = 'title = "Migration and Refugees: Border Management"'
    rubric.write_text(text.replace(title, title[:-1] + ' (edited)"'), encoding="utf-8")
    assert "Border Management (edited)" in _evidence(exe, empty, "rubric", "list").stdout
    imported = _evidence(exe, empty, "gold", "import", str(repo / "corpus" / "reports")).stdout
    assert "000_977e9f2715cc7214.txt" in imported
    assert (repo / ".evidence" / "evidence.db").is_file()  # the checkout is the project
