# The two commands of the README: `make run` and `make test`. Both work on a fresh clone.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install lint demo histories diagram clean soak web-assets

# The web pages' assets come from npm (package-lock.json pins them): GOV.UK Frontend compiled
# with our own font stack, Swagger UI for /docs, axe-core for the browser tests. The browser
# tests drive Debian's chromium (never a downloaded browser build).
WEB_BUILD := web/static/build
$(STAMP): pyproject.toml package.json package-lock.json web/assets/senflow.scss
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(MAKE) --no-print-directory web-assets
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	touch $(STAMP)

web-assets:
	mkdir -p $(WEB_BUILD)/govuk $(WEB_BUILD)/swagger-ui
	node_modules/.bin/sass --no-source-map --quiet-deps --load-path=node_modules \
		web/assets/senflow.scss $(WEB_BUILD)/senflow.css
	cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js $(WEB_BUILD)/govuk/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
		node_modules/swagger-ui-dist/favicon-32x32.png $(WEB_BUILD)/swagger-ui/

install: $(STAMP)

## run: dev server (Web UI on :8233) + worker, until Ctrl-C
run: $(STAMP)
	$(BIN)/senflow up

## test: lint, types, then every test tier
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

## soak: the fault tier (tests/faults) at full size; not part of `make test`. Figures are
## printed and saved to .senflow/soak.json (docs/reliability.md quotes them). Override sizes
## with e.g. `make soak SOAK_ENV="FAULTS_LOAD_JOURNEYS=200"`.
SOAK_ENV ?= FAULTS_CRASH_JOURNEYS=40 FAULTS_KILLS=100 FAULTS_STAGGER=4 \
	FAULTS_MID_UPDATE_JOURNEYS=12 \
	FAULTS_RESTART_JOURNEYS=40 FAULTS_RESTART_MINUTE=10 FAULTS_RESTART_OUTAGE_SECONDS=60 \
	FAULTS_OUTAGE_JOURNEYS=30 FAULTS_OUTAGE_SECONDS=60 \
	FAULTS_BAD_INPUT_COPIES=20 \
	FAULTS_LOAD_JOURNEYS=1000 FAULTS_LOAD_MINUTE=60
soak: $(STAMP)
	mkdir -p .senflow
	env $(SOAK_ENV) FAULTS_REPORT=.senflow/soak.json \
		$(BIN)/python -m pytest tests/faults -q -p no:cacheprovider --basetemp=.senflow/soak-tmp

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## demo: one pupil through the whole journey (needs `make run` in another terminal)
demo: $(STAMP)
	$(BIN)/senflow demo

## diagram: redraw docs/state-machine.md from the transitions table (tests/test_docs.py checks it)
diagram: $(STAMP)
	$(BIN)/senflow diagram | $(BIN)/python scripts/write_state_machine_doc.py

## histories: regenerate tests/histories/ on purpose (see docs/decisions.md)
histories: $(STAMP)
	@test -n "$(V)" || (echo 'usage: make histories V=v3  (a new prefix; old files stay)'; exit 2)
	$(BIN)/python scripts/record_histories.py $(V)

clean:
	rm -rf $(VENV) node_modules $(WEB_BUILD) .senflow .pytest_cache .mypy_cache .ruff_cache .hypothesis
