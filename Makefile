# `make run` and `make test` set themselves up: a .venv with the project installed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# durable-rules does not import on Python 3.13: take the newest 3.11/3.12 on PATH. The probe's stderr is dropped:
# a pyenv shim for a version that is not installed exists on PATH but fails, loudly.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' \
	2>/dev/null && echo $$p && break; done)

.PHONY: run test lint browser bench clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or 3.12 is required" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/pulsecheck demo
	@echo "pulsecheck is in $(VENV)/bin: '. $(VENV)/bin/activate' puts it on PATH (see README.md, A short tour)"

lint: $(STAMP)
	$(VENV)/bin/ruff check pulsecheck tests bench
	$(VENV)/bin/mypy pulsecheck
	$(VENV)/bin/lint-imports --no-cache

# The HTML report test drives Debian's Chromium; install it when this machine can (root and apt), else it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1); } \
		|| echo "note: chromium could not be installed; the browser test will skip"

test: $(STAMP) lint browser
	$(VENV)/bin/pytest -q

# One table: each script prints its figures through bench/common.py's report(); SIZE=N runs them all at N.
bench: $(STAMP)
	$(PY) bench/run.py $(if $(SIZE),--size $(SIZE))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
