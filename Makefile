# Two commands do all the set-up on a fresh machine (Debian, Python 3.11):
#   make book   - environment + data + execute the notebooks (papermill) + build the book
#   make test   - environment + data + the whole test suite
# Options: PROFILE=default|smoke|full   DATASET=<name or image folder>   PYTHON=python3.11
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= default
DATASET ?=
export MEGU_CACHE_DIR ?= $(CURDIR)/.cache/megu
export MEGU_RESULTS_DIR ?= $(CURDIR)/results
STAMP := $(VENV)/.installed
FMNIST_SYSTEM := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
NOTEBOOKS := $(sort $(wildcard notebooks/*.py))
EXECUTED := book/_executed

.PHONY: help env data test test-fast book book-only lock clean clean-all

help:
	@echo "make book   - set up everything and build the book into book/_build/html (PROFILE=$(PROFILE))"
	@echo "make test   - set up everything and run the whole test suite"

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

test: env data
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MEGU_PROGRESS=0 $(BIN)/python -m pytest -q -p no:cacheprovider tests

book: env data
	MEGU_PROGRESS=0 $(BIN)/python -m megu_lib.book --profile $(PROFILE) $(if $(DATASET),--dataset "$(DATASET)") \
		--out $(EXECUTED) $(NOTEBOOKS)
	$(MAKE) book-only

book-only:
	$(BIN)/jupyter-book build . --path-output book -W -n --keep-going
	@echo "The book: book/_build/html/index.html"

lock: env
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full lock of the environment `make` builds (pip install -c requirements-lock.txt). Regenerate with `make lock`.' > requirements-lock.txt

clean:
	rm -rf book/_build $(EXECUTED)

clean-all: clean
	rm -rf $(VENV) .cache
