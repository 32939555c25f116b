# Two commands: `make run` (set up and serve) and `make test` (set up and test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app portal
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# uv installs without compiling bytecode: Python caches it at the first import, as it
# does by default. An environment that sets PYTHONDONTWRITEBYTECODE would instead compile
# ~2 s of modules at every start of every process (web, worker, each command).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: run test setup assets system-deps lint bench clean

# serve.sh runs the migrations, the rollups and the demo data in one process (`flask prepare
# --demo`), then starts the web server and the worker.
run: $(VENV)/.installed static/vendor/htmx.min.js instance/config.py
	@scripts/system-deps.sh
	@scripts/serve.sh --demo

test: $(VENV)/.installed static/vendor/htmx.min.js
	@scripts/system-deps.sh --browser
	@if [ -z "$${TEST_DATABASE_URL+x}" ] && $(BIN)/python -c "import sqlalchemy as sa; sa.create_engine('$(PG_TEST_URL)').connect().close()" 2>/dev/null; then \
	  export TEST_DATABASE_URL='$(PG_TEST_URL)'; echo "PostgreSQL answers: integration tests run on SQLite and PostgreSQL"; \
	else echo "TEST_DATABASE_URL=$${TEST_DATABASE_URL:-<none>}: integration tests on SQLite$${TEST_DATABASE_URL:+ and PostgreSQL}"; fi; \
	$(BIN)/ruff check . && $(BIN)/lint-imports --no-cache && $(BIN)/mypy routing && \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(VENV)/.installed static/vendor/htmx.min.js instance/config.py
	@scripts/system-deps.sh
	@$(FLASK) prepare

# uv (pinned in constraints.txt, from the package index like the rest) installs in seconds
# what pip takes a minute and a half for; pip stays the fallback when uv cannot be had or
# cannot install (a private mirror named only in pip.conf, a proxy's certificate).
$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "== Python packages into $(VENV) (uv; pip if uv cannot be installed)"
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q -c constraints.txt uv && \
	  $(BIN)/uv pip install -q --python $(BIN)/python -c constraints.txt -e '.[dev]' || \
	{ echo "uv could not install the packages (uv reads no pip.conf: set UV_INDEX_URL for a"; \
	  echo "mirror): pip installs them"; \
	  $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -c constraints.txt -e '.[dev]'; }
	@touch $@

# htmx comes from the npm registry, pinned by package.json + package-lock.json.
static/vendor/htmx.min.js: package.json package-lock.json
	@echo "== front-end assets (npm)"
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js

# A secret made on this machine, never committed (instance/ is git-ignored).
instance/config.py:
	@mkdir -p instance
	@$(PYTHON) -c "import secrets; print(f'SECRET_KEY = {secrets.token_hex(32)!r}')" > $@
	@echo "wrote a new SECRET_KEY to $@"

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/lint-imports --no-cache && $(BIN)/mypy routing

bench: setup
	@scripts/system-deps.sh --bench
	@cat bench/README.md

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
