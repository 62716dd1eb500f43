# LLMOps Tracker — `make run` starts everything, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Tests and benchmarks run on PostgreSQL and Redis at these URLs; `services` provisions them when
# nothing answers there (scripts/services.sh; TRACKER_PROVISION=0 turns that off).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tracker
REDIS_URL ?= redis://127.0.0.1:6379/0
# The suite runs on this many processes (pytest-xdist), a test file each: most of its time is
# spent waiting on servers, workers and browsers it starts. Each process has its own database.
TEST_WORKERS ?= 2
# Schemathesis makes its cases while collecting, which pytest-xdist's workers do not run: one process.
SERIAL_TESTS := tests/test_api_schema.py

.PHONY: run test lint format bench services browser-deps vendor clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

## run: migrate, seed the demo the first time, then web + Celery worker + beat (Ctrl-C stops all three)
# DJANGO_DEBUG is off, as in production (the product's error pages); `make run DEBUG=true` asks for Django's.
# scripts/run.py holds the terminal and stops the three itself, so Ctrl-C ends the run with status 0.
run: $(VENV)/.runtime
	@$(if $(DEBUG),DJANGO_DEBUG=$(DEBUG)) $(BIN)/python scripts/run.py

## lint: ruff check and format check, then bandit (medium and high severity) on the app code
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit --quiet --configfile pyproject.toml --severity-level medium -r tracker projects ops webhooks

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## services: PostgreSQL and Redis answering at the URLs above (installed and started as root on Debian when down)
services:
	@TEST_DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(REDIS_URL) scripts/services.sh

## browser-deps: the services, plus Debian's Chromium for the browser tests (Playwright drives it; nothing is downloaded)
browser-deps:
	@TEST_DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(REDIS_URL) scripts/services.sh --browser

# Node tools of the test suite (Spectral lints the OpenAPI schema), pinned in package-lock.json.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

## test: the services and the browser first (a clear stop when they cannot be had), lint, then the whole suite
test: browser-deps lint node_modules/.package-lock.json
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(REDIS_URL) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile \
		--ignore=$(SERIAL_TESTS)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(REDIS_URL) $(BIN)/pytest $(SERIAL_TESTS)

## bench: performance figures on PostgreSQL (not a test): ratios, query counts, a 60 s load test (docs/bench.md)
bench: services $(VENV)/.dev
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(REDIS_URL) $(BIN)/python -m bench

## vendor: reinstall the pinned front-end libraries from npm and copy their built files to static/vendor/ (committed)
vendor:
	npm ci --no-audit --no-fund
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js
	cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.umd.min.js
	# The manifest storage of collectstatic follows the sourceMappingURL: ship the map with it.
	cp node_modules/chart.js/dist/chart.umd.min.js.map static/vendor/chart.umd.min.js.map
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css
	cp node_modules/htmx.org/LICENSE static/vendor/htmx.LICENSE
	cp node_modules/chart.js/LICENSE.md static/vendor/chart.js.LICENSE.md
	cp node_modules/@picocss/pico/LICENSE.md static/vendor/pico.LICENSE.md

clean:
	rm -rf $(VENV) var staticfiles db.sqlite3
