# The two commands of the README: `make run` and `make test`. Both work on a fresh clone.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint demo histories clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: dev server (Web UI on :8233) + worker, until Ctrl-C
run: $(STAMP)
	$(BIN)/senflow up

## test: lint, types, then every test tier
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## demo: one pupil through the whole journey (needs `make run` in another terminal)
demo: $(STAMP)
	$(BIN)/senflow demo

## histories: regenerate tests/histories/ on purpose (see docs/decisions.md)
histories: $(STAMP)
	@test -n "$(V)" || (echo 'usage: make histories V=v3  (a new prefix; old files stay)'; exit 2)
	$(BIN)/python scripts/record_histories.py $(V)

clean:
	rm -rf $(VENV) .senflow .pytest_cache .mypy_cache .ruff_cache .hypothesis
