# verbcal developer entry points. `make test` works on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint format run install bench clean test-real-llm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run: $(STAMP)
	$(BIN)/verbcal demo

# verbcal on llama.cpp's llama-server, a real model and BBC News (README: "Run it on a real
# LLM"). Not part of `make test`: the first run downloads ~1.1 GB and builds for ~15 minutes
# into ~/.cache/verbcal/real-llm. Options: REAL_LLM_ARGS='--n 60 --reasoning both' (--help).
test-real-llm: $(STAMP)
	$(BIN)/python -m scripts.real_llm $(REAL_LLM_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_calibrators.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
