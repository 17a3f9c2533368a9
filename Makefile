# The recipe's entry points. `make setup` builds .venv from the lock (tools/setup_env.sh);
# every other target depends on it, so `make demo` / `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done

.PHONY: setup test test-quick lint format doctor demo bench lock

setup: $(STAMP)

# Re-runs only when the lock, the requirement lists, the project or the script changed.
$(STAMP): tools/setup_env.sh requirements/constraints.txt requirements/main.txt \
		requirements/dev.txt requirements/build.txt pyproject.toml
	VENV=$(VENV) bash tools/setup_env.sh
	touch $@

test: setup
	$(PY) -m pytest

test-quick: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

doctor: setup
	$(VENV)/bin/cephalo doctor

demo: setup
	$(VENV)/bin/cephalo demo

# Speed, memory and setup figures against their targets, one summary table at the end and
# JSON in benchmarks/results/ (about 21 minutes; run on a quiet machine).
bench: setup
	$(PY) -m benchmarks.run_all

# Rewrites the lock from what .venv holds now (after a deliberate upgrade).
lock: setup
	{ sed -n '1,/^# ---/p' requirements/constraints.txt; \
	  $(PY) -m pip list --format=freeze --exclude-editable | grep -v -i '^cephalo=='; } > requirements/constraints.txt.new
	mv requirements/constraints.txt.new requirements/constraints.txt
