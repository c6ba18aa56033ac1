# The two commands of the README: `make demo` and `make test`. Both do all set-up.
VENV   := .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: setup deps venv test lint typecheck pytest demo bench clean

setup: deps venv

deps:
	@bash scripts/install-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check src tests bench

typecheck: venv
	$(BIN)/mypy --strict src/strata

pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider tests

test: setup lint typecheck pytest

demo: setup
	$(BIN)/python examples/demo.py

# bench/buildkit.py times strata beside BuildKit (Debian's docker.io, installed here).
bench: setup
	@bash scripts/install-docker.sh
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info
