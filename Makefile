# corebridge — two commands on a fresh Debian machine: `make run` and `make test`.
# Both bootstrap whatever is missing (Debian ODBC packages, the venv, Python deps) first.

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-stamp
SYSSTAMP := $(VENV)/.sys-stamp
DEB_PKGS := unixodbc libsqliteodbc odbc-postgresql openssh-client gcc python3-dev
PYTEST_ARGS ?=

.PHONY: run test lint bench chaos bootstrap sysdeps clean mock

bootstrap: $(SYSSTAMP) $(STAMP)

# Debian packages: installed only when one is missing (apt-get as root, else sudo).
$(SYSSTAMP):
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@odbcinst -q -d -n SQLite3 >/dev/null 2>&1 || { echo "SQLite3 ODBC driver not registered (libsqliteodbc)"; exit 1; }
	@[ -d $(VENV) ] || $(PY) -m venv $(VENV)
	@touch $(SYSSTAMP)

# setup.py builds the C row programs (mappings/engine/_rowprog.c) in place: a changed source rebuilds
$(STAMP): pyproject.toml setup.py mappings/engine/_rowprog.c $(SYSSTAMP)
	@[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

## run: the mock mainframe (SOAP, SFTP, ODBC faces) and the REST facade on loopback
run: bootstrap
	$(BIN)/python -m api.demo $(ARGS)

mock: bootstrap
	$(BIN)/python -m mock_mainframe $(ARGS)

lint: bootstrap
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## test: lint, then every suite at CI size (slow suites included at CI scale)
test: bootstrap lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: benchmarks at full size; prints a table and writes benchmarks/results.json
bench: bootstrap
	$(BIN)/python -m benchmarks

chaos: bootstrap
	CHAOS_SCALE=full $(BIN)/python -m pytest -m slow tests/chaos $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
