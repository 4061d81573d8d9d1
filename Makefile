# SCRM: the commands a developer types. `make run` and `make test` are all a newcomer needs;
# both start with `make setup`, which is idempotent and takes about a second when nothing changed.
#
#   make run                      venv + deps, migrate, demo data on first run, web + worker (honcho)
#   make test [PYTEST_ARGS=...]   the pytest suite (SQLite + eager Celery unless DATABASE_URL/REDIS_URL set)
#   make help                     every target

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check --no-input
MANAGE := $(PY) manage.py

PORT ?= 8000
PYTEST_ARGS ?=
SCENARIO ?= contacts
CONTACTS ?= 10000
JSON ?=

# Stamps: a hash of the inputs, kept inside what they describe, so deleting .venv or node_modules
# (or staticfiles) is enough to force a reinstall.
DEPS_STAMP := $(VENV)/.scrm-deps
NPM_STAMP := node_modules/.scrm-npm
STATIC_STAMP := staticfiles/.scrm-collected
# Folders that are not ours to translate, lint or collect.
IGNORE := --ignore=.venv --ignore=node_modules --ignore=staticfiles
FIND_PRUNE := \( -path ./.git -o -path ./$(VENV) -o -path ./node_modules -o -path ./staticfiles \) -prune -o

DEMO_URL = http://127.0.0.1:$(PORT)/
DEMO_LOGINS := admin / manager / operator1 / operator2 / operator3
DEMO_PASSWORD := demo12345

.PHONY: help setup python-deps npm-deps compiled-messages static run test lint fmt messages bench lock \
	clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 24

setup: python-deps npm-deps compiled-messages static ## venv, Python + npm deps, compiled messages, static files
	@echo "setup: done"

python-deps: ## .venv with the pinned Python dependencies (skipped when pyproject.toml/requirements.lock unchanged)
	@if [ ! -x $(PY) ]; then \
	  command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python >= 3.11" >&2; exit 1; }; \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	    echo "error: $(PYTHON) is $$($(PYTHON) --version 2>&1); SCRM needs >= 3.11 (make PYTHON=python3.11 ...)" >&2; \
	    exit 1; }; \
	  echo "setup: creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@want="$$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"; \
	if [ "$$(cat $(DEPS_STAMP) 2>/dev/null)" != "$$want" ]; then \
	  echo "setup: installing Python dependencies (pinned by requirements.lock)"; \
	  $(PIP) install -q -c requirements.lock -e ".[dev]"; \
	  echo "$$want" > $(DEPS_STAMP); \
	fi

npm-deps: ## node_modules from package-lock.json (npm ci only when it changed)
	@want="$$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"; \
	if [ ! -d node_modules ] || [ "$$(cat $(NPM_STAMP) 2>/dev/null)" != "$$want" ]; then \
	  command -v npm >/dev/null || { echo "error: npm not found; install Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; }; \
	  echo "setup: npm ci"; \
	  npm ci --no-audit --no-fund --loglevel=error; \
	  echo "$$want" > $(NPM_STAMP); \
	fi

# compilemessages needs gettext's msgfmt, but only when there is a .po file newer than its .mo.
compiled-messages: python-deps
	@stale="$$(find . $(FIND_PRUNE) -path '*/locale/*' -name '*.po' -print | while read -r po; do \
	  [ "$${po%.po}.mo" -nt "$$po" ] || echo "$$po"; done)"; \
	if [ -n "$$stale" ]; then \
	  command -v msgfmt >/dev/null || { echo "error: msgfmt not found; install gettext (apt-get install gettext)" >&2; exit 1; }; \
	  echo "setup: compilemessages"; \
	  $(MANAGE) compilemessages -v0 $(IGNORE); \
	fi

# collectstatic again when our static files, the npm packages, the Python packages or settings changed.
static: python-deps npm-deps
	@if [ ! -f $(STATIC_STAMP) ] || [ -n "$$(find . $(FIND_PRUNE) \( -path '*/static/*' -o -path ./scrm/settings.py \) -newer $(STATIC_STAMP) -print -quit)" ] \
	   || [ $(DEPS_STAMP) -nt $(STATIC_STAMP) ] || [ $(NPM_STAMP) -nt $(STATIC_STAMP) ]; then \
	  echo "setup: collectstatic"; \
	  $(MANAGE) collectstatic --noinput -v0; \
	  touch $(STATIC_STAMP); \
	fi

run: setup ## setup, migrate, demo data on first run, then web (runserver) + Celery worker with beat via honcho
	@$(PY) -c "import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
	  sys.exit(s.connect_ex(('127.0.0.1', $(PORT))) == 0)" \
	  || { echo "error: port $(PORT) is in use; try: make run PORT=8001" >&2; exit 1; }
	@$(MANAGE) migrate --noinput
	@if ! $(MANAGE) shell -c "import sys; from django.contrib.auth import get_user_model; \
	    sys.exit(0 if get_user_model().objects.filter(username='admin').exists() else 1)" >/dev/null 2>&1; then \
	  echo "run: first run, loading demo data (python manage.py seed_demo)"; \
	  $(MANAGE) seed_demo; \
	fi
	@echo
	@echo "  SCRM: $(DEMO_URL)"
	@echo "  demo logins: $(DEMO_LOGINS)   password: $(DEMO_PASSWORD)"
	@echo "  (web + Celery worker with embedded beat; stop with Ctrl-C)"
	@echo
	@PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) exec $(BIN)/honcho start -f Procfile

test: setup ## run the test suite; PYTEST_ARGS="-k contacts -x" passes arguments to pytest
	@$(BIN)/pytest $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5); that is a failure" >&2; fi; \
	  exit $$rc; }

lint: python-deps ## ruff check + ruff format --check
	@rc=0; $(BIN)/ruff check . || rc=1; $(BIN)/ruff format --check . || rc=1; exit $$rc

fmt: python-deps ## ruff check --fix + ruff format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: python-deps ## update locale/zh_Hans .po from the code and templates, then compile them
	$(MANAGE) makemessages -l zh_Hans $(IGNORE)
	$(MANAGE) compilemessages $(IGNORE)

bench: setup ## benchmark: make bench SCENARIO=contacts CONTACTS=10000 [JSON=bench-contacts.json]
	@$(MANAGE) migrate --noinput -v0
	$(MANAGE) bench $(SCENARIO) --contacts $(CONTACTS) $(if $(JSON),--json $(JSON))

lock: ## rewrite requirements.lock from a fresh venv after changing pins in pyproject.toml
	@rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	@.lock-venv/bin/python -m pip --disable-pip-version-check install -q -c requirements.lock ".[dev]" \
	  || { echo "lock: the old pins conflict with pyproject.toml; resolving afresh"; \
	       .lock-venv/bin/python -m pip --disable-pip-version-check install -q ".[dev]"; }
	@{ sed -n '/^#/p' requirements.lock; \
	   .lock-venv/bin/python -m pip freeze --exclude-editable | grep -viE '^(scrm|pip|setuptools|wheel) *(==|@)'; \
	 } > requirements.lock.new && mv requirements.lock.new requirements.lock
	@rm -rf .lock-venv
	@echo "lock: requirements.lock has $$(grep -cv '^#' requirements.lock) pins"

clean: ## remove generated files (keeps .venv, node_modules, db.sqlite3)
	rm -rf staticfiles .pytest_cache .ruff_cache .hypothesis test-artifacts .celery-broker .celery-beat-schedule* \
	  bench-*.json .lock-venv requirements.lock.new
	find . $(FIND_PRUNE) \( -name __pycache__ -type d -prune -exec rm -rf {} + \) -o \
	  \( -path '*/locale/*' -name '*.mo' -exec rm -f {} + \)

distclean: clean ## clean, and also remove .venv, node_modules and the SQLite database
	rm -rf $(VENV) node_modules db.sqlite3 db.sqlite3-journal db.sqlite3-wal db.sqlite3-shm
