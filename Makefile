# Two entry points: `make run` (set up, then the main job on embedded defaults) and
# `make test` (the whole test suite; installs Debian's Chromium for the browser tests when it
# is missing, see .ci/ensure-browser). `make test-fast` leaves out the tests marked slow.
# All build the virtual environment from pyproject.toml on first use and again whenever
# pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint docs bench clean

run: $(STAMP)
	$(VENV)/bin/evidence run

test: $(STAMP)
	bash .ci/ensure-browser
	$(VENV)/bin/python -m pytest -q

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# The README's command reference, regenerated from the CLI's own help (tests/test_cli_reference.py
# fails when it is out of date).
docs: $(STAMP)
	$(VENV)/bin/python -m classifier.cli_reference

bench: $(STAMP)
	$(VENV)/bin/python -m bench.gold_import
	$(VENV)/bin/python -m bench.report_pdf
	$(VENV)/bin/python -m bench.report_scaling
	$(VENV)/bin/python -m bench.fetch_extract
	$(VENV)/bin/python -m bench.classify_stub
	$(VENV)/bin/python -m bench.queue_bench
	$(VENV)/bin/python -m bench.nightly_bench --documents 1000
	$(VENV)/bin/python -m bench.web_bench
	$(VENV)/bin/python -m bench.learned_speed
	$(VENV)/bin/python -m bench.learned_study

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .evidence .pytest_cache .ruff_cache .mypy_cache .hypothesis
