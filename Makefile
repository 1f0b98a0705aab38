# `make run` and `make test` set themselves up: a .venv with the project installed.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# durable-rules does not import on Python 3.13: take a 3.11/3.12 from PATH, the newest first, but rather one whose
# executable holds the interpreter than one calling it in libpython (a pyenv build; Debian's /usr/bin/python3.11 is
# the former): each call inside the interpreter is then a direct one, some 15 % less CPU for any command (review
# transitions: 1,118 against 977 a second, docs/decisions/0011). The probes' stderr is dropped: a pyenv shim for a
# version that is not installed exists on PATH but fails, loudly; without /proc the first that fits is taken.
PYTHON ?= $(shell first=; for p in $$(which -a python3.12 python3.11 python3 2>/dev/null); do \
	$$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null || continue; \
	first=$${first:-$$p}; \
	$$p -c 'import sys; sys.exit("libpython" in open("/proc/self/maps").read())' 2>/dev/null && first=$$p && break; \
	done; echo $$first)

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
