# The few commands a newcomer needs. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
GRAPHIQL := .graphiql
CLIENTS  := tests/e2e/clients
# Debian packages a target needs, installed when missing (as root, as CI runs).
APT_INSTALL := timeout 300 apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq
# GraphiQL's scripts from the npm registry (npm from Debian when missing); no recursive make, so
# that a VENV given on the command line is the one used throughout.
FETCH_GRAPHIQL = { command -v npm >/dev/null || { $(APT_INSTALL) npm; }; } && \
	$(BIN)/python -m graph.server.ide $(GRAPHIQL)

.PHONY: install run test faults cluster e2e graphiql-assets lint format schema schema-check release-schema migrate seed clean-db bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

run: $(STAMP)  ## serve GraphiQL on http://127.0.0.1:8000/graphql with demo data
	@$(BIN)/python -m graph.server.ide --check $(GRAPHIQL) || ! command -v npm >/dev/null || \
		$(BIN)/python -m graph.server.ide $(GRAPHIQL) || echo "GraphiQL loads its scripts from the CDN"
	$(BIN)/lending serve --demo

graphiql-assets: $(STAMP)  ## GraphiQL's and the dashboard's scripts from the npm registry into .graphiql/ (both offline)
	@$(FETCH_GRAPHIQL)

# Test processes sharing the embedded server, each with a database of its own; a file's tests
# stay in one process (their module fixtures hold databases named after the file's subject).
TEST_WORKERS ?= 2

test: $(STAMP)  ## run the whole test suite against a PostgreSQL it starts itself
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { $(APT_INSTALL) pgbouncer; }
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

faults: $(STAMP)  ## the fault suite: kill -9, outages, overload, fuzzing, races, wide differentials
	$(BIN)/python -m pytest tests/faults -p no:cacheprovider -q $(PYTEST_ARGS)
	DIFF_GENERATED=4000 DIFF_GENERATED_EVENTS=400 DIFF_GENERATED_PAYLOADS=40 \
		$(BIN)/python -m pytest -p no:cacheprovider -q -k generated \
		tests/api/test_compiled_reads.py tests/api/test_event_objects.py tests/api/test_compiled_payloads.py

cluster: $(STAMP)  ## HAProxy, three servers, PgBouncer and a replica under load: kill -9, rolling restart, pooler restart
	@command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { $(APT_INSTALL) haproxy; }
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { $(APT_INSTALL) pgbouncer; }
	timeout -k 30 600 $(BIN)/python -m pytest tests/cluster -p no:cacheprovider -q -s $(PYTEST_ARGS)

e2e: $(STAMP)  ## GraphiQL, the dashboard, CORS and the Node clients (graphql-ws, Apollo) against a demo server
	@[ -x /usr/bin/chromium ] || { $(APT_INSTALL) chromium; }
	@command -v node >/dev/null && command -v npm >/dev/null || { $(APT_INSTALL) nodejs npm; }
	@$(BIN)/python -m graph.server.ide --check $(GRAPHIQL) || { $(FETCH_GRAPHIQL); }
	@[ $(CLIENTS)/node_modules/.package-lock.json -nt $(CLIENTS)/package-lock.json ] || \
		npm ci --prefix $(CLIENTS) --no-audit --no-fund --loglevel=error
	@mkdir -p .e2e
	timeout -k 30 300 $(BIN)/python -m pytest tests/e2e -p no:cacheprovider -q --basetemp=.e2e/tmp $(PYTEST_ARGS)

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
