# The few commands a newcomer needs. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test faults lint format schema schema-check release-schema migrate seed clean-db bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

run: $(STAMP)  ## serve GraphiQL on http://127.0.0.1:8000/graphql with demo data
	$(BIN)/lending serve --demo

test: $(STAMP)  ## run the whole test suite against a PostgreSQL it starts itself
	$(BIN)/python -m pytest $(PYTEST_ARGS)

faults: $(STAMP)  ## the fault suite: kill -9, outages, overload, 10,000 fuzzed requests, races (~7 min)
	$(BIN)/python -m pytest tests/faults -p no:cacheprovider -q $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(STAMP)  ## regenerate schema.graphql from the code
	$(BIN)/lending export-schema > schema.graphql

schema-check: $(STAMP)  ## refuse breaking changes from the last released schema (see CHANGELOG.md)
	$(BIN)/lending schema-check $(if $(REF),--ref $(REF))

release-schema: $(STAMP)  ## record schema.graphql as the released schema of this version
	cp schema.graphql releases/$$($(BIN)/python -c "import importlib.metadata as m; print(m.version('lending-graphql'))").graphql

migrate: $(STAMP)  ## apply migrations to DATABASE_URL (or the embedded database)
	$(BIN)/lending migrate

bench: $(STAMP)  ## benchmarks vs the ceiling and PostGraphile (about 10 min); writes bench/RESULTS.md
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean-db:  ## delete the local embedded database (the demo data comes back on the next run)
	rm -rf .pgdata
