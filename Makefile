# Two commands do all the set-up on a fresh machine (Debian, Python 3.11):
#   make book   - environment + data + execute the notebooks (papermill) + build the book
#   make test   - environment + data + the linter (ruff) + the unit tests + the notebooks on the smoke profile
#                 (executed, built into a scratch book with -W -n, checked in headless Chromium at
#                 1280 px by tests/browser, re-run by nbval)
# Options: PROFILE=main|default|smoke|full   DATASET=<name or image folder>   PYTHON=python3.11
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= main
DATASET ?=
export MEGU_CACHE_DIR ?= $(CURDIR)/.cache/megu
export MEGU_RESULTS_DIR ?= $(CURDIR)/results
STAMP := $(VENV)/.installed
FMNIST_SYSTEM := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
NOTEBOOKS := $(sort $(wildcard notebooks/*.py))
EXECUTED := book/_executed
# the book's sources besides the executed notebooks (copied for the smoke build)
BOOK_SOURCES := _config.yml _toc.yml references.bib
# tables the book's pages include from the records beside them (benchmarks/gpu_collect.py writes them)
BOOK_INCLUDES := $(wildcard results/gpu_h200/*.md results/gpu_h200/*/*.md)
# make test's smoke book: its own results and build, never the real book's
SMOKE := .cache/book-smoke
SMOKE_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MEGU_PROGRESS=0 MEGU_RESULTS_DIR=$(CURDIR)/$(SMOKE)/results

.PHONY: help env data browser lint test test-unit test-book test-browser book book-only lock clean clean-all

help:
	@echo "make book   - set up everything and build the book into book/_build/html (PROFILE=$(PROFILE))"
	@echo "make test   - set up everything, run the unit tests, then the notebooks on the smoke profile"

$(STAMP): pyproject.toml requirements-lock.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip==26.3"
	$(BIN)/python -m pip install -q -c requirements-lock.txt -e ".[dev]"
	touch $@

env: $(STAMP)

# Fashion-MNIST, the embedded default data: Debian's package (we are root here), else a clear message.
data:
	@if [ -f $(FMNIST_SYSTEM) ] || [ -f "$${MEGU_DATA_DIR:-$$HOME/.local/share/megu_lib}/fashion_mnist/train-images-idx3-ubyte.gz" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null; \
	elif command -v sudo >/dev/null; then sudo apt-get install -y dataset-fashion-mnist; \
	else echo "Fashion-MNIST missing: run 'apt-get install dataset-fashion-mnist' as root, or put its IDX files in ~/.local/share/megu_lib/fashion_mnist"; exit 1; fi

# Headless Chromium and its driver for the browser test of the book (tests/browser, selenium):
# Debian's packages (we are root here, else sudo), else a clear message. Nothing is downloaded at test time.
browser:
	@if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then :; \
	elif [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq chromium chromium-driver || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)) >/dev/null; \
	elif command -v sudo >/dev/null; then sudo apt-get install -y chromium chromium-driver; \
	else echo "Chromium missing for the browser test: run 'apt-get install chromium chromium-driver' as root"; exit 1; fi

test: lint test-unit test-book

# ruff, configured in pyproject.toml: zero findings
lint: env
	$(BIN)/ruff check .

# JOBS pytest-xdist workers (one per core, at most 4, by default; JOBS=0 runs in this process)
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n < 4 ? n : 4 )))
XDIST = $(if $(filter 0 1,$(JOBS)),,-n $(JOBS))

test-unit: env data
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MEGU_PROGRESS=0 $(BIN)/python -m pytest -q -p no:cacheprovider $(XDIST) tests --ignore=tests/browser

# The notebooks on the smoke profile: executed by papermill (strict: no warning, no empty
# output, a figure each), built with -W -n into $(SMOKE)/book/_build (never the real book),
# every page checked in headless Chromium at 1280 px (tests/browser: overflow, figure text size
# and captions, tracebacks, empty outputs, internal links), then executed again by nbval.
# Smoke records stay in $(SMOKE)/results (the runner resumes).
test-book: env data browser
	rm -rf $(SMOKE)/book && mkdir -p $(SMOKE)/book
	cp $(BOOK_SOURCES) $(SMOKE)/ && cp book/*.md $(SMOKE)/book/ && cp -r book/_ext book/_static $(SMOKE)/book/
	$(if $(BOOK_INCLUDES),cp --parents $(BOOK_INCLUDES) $(SMOKE)/)
	$(SMOKE_ENV) $(BIN)/python -m megu_lib.book --profile smoke --strict --out $(SMOKE)/book/_executed $(NOTEBOOKS)
	$(BIN)/jupyter-book build $(SMOKE) --path-output $(SMOKE)/book -W -n --keep-going
	@echo "The smoke book: $(SMOKE)/book/_build/html/index.html"
	$(SMOKE_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser --book-html $(SMOKE)/book/_build/html
	$(SMOKE_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		$(SMOKE)/book/_executed/*.ipynb

# The browser test alone on a book already built: BOOK_HTML=book/_build/html for the real book
BOOK_HTML ?= $(SMOKE)/book/_build/html
test-browser: env browser
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser --book-html $(BOOK_HTML)

book: env data
	MEGU_PROGRESS=0 $(BIN)/python -m megu_lib.book --profile $(PROFILE) $(if $(DATASET),--dataset "$(DATASET)") \
		--times-log book/run_times.json --out $(EXECUTED) $(NOTEBOOKS)
	$(MAKE) book-only

book-only:
	$(BIN)/jupyter-book build . --path-output book -W -n --keep-going
	@echo "The book: book/_build/html/index.html"

lock: env
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full lock of the environment `make` builds (pip install -c requirements-lock.txt). Regenerate with `make lock`.' > requirements-lock.txt

clean:
	rm -rf book/_build $(EXECUTED) $(SMOKE)

clean-all: clean
	rm -rf $(VENV) .cache
