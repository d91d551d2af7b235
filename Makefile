# The README's two commands: `make demo` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := schemas/node_modules/.bin/buf

.PHONY: demo test lint unit integration fault proto proto-check buf buf-release bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

$(BUF): schemas/package.json schemas/package-lock.json
	npm ci --prefix schemas --no-audit --no-fund --loglevel=error
	touch $(BUF)

demo: $(STAMP)
	$(BIN)/liveops demo

test: lint
	$(BIN)/pytest

lint: $(STAMP) proto-check buf
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

proto: $(STAMP)
	$(BIN)/python -m schemas.generate

proto-check: $(STAMP)
	$(BIN)/python -m schemas.generate --check

# buf lint checks style; buf breaking compares with the last released schema (the baseline image).
buf: $(BUF)
	cd schemas && node_modules/.bin/buf lint
	cd schemas && node_modules/.bin/buf breaking --against baseline/released.binpb

# Run when a schema version is released: later changes are checked against it.
buf-release: $(BUF)
	cd schemas && node_modules/.bin/buf build -o baseline/released.binpb

clean:
	rm -rf $(VENV) schemas/node_modules .mypy_cache .ruff_cache .pytest_cache
