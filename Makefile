# romanarchive: `make demo` and `make test` work on a fresh Debian/Ubuntu machine (root or sudo for apt).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export ROMANARCHIVE_HOME ?= $(CURDIR)/.romanarchive
# Simulated+calibrated surveys the tests and benchmarks use are built once and reused (keyed by configuration).
export ROMANARCHIVE_SIM_CACHE ?= $(CURDIR)/.romanarchive/sim-cache
# The PostgreSQL service, used by `make test-service` (tests must pass against it and the embedded cluster).
SERVICE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: all deps install demo test test-service test-service-all lint bench clean

all: install

deps:
	@scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

install: deps $(STAMP)

## Embedded PostgreSQL, simulate a small survey, ingest, calibrate L1 -> L2, report.
demo: install
	$(VENV)/bin/romanarchive demo

## The test suite on an embedded PostgreSQL cluster (or ROMANARCHIVE_TEST_DATABASE_URL when set).
test: install
	$(PY) -m pytest

## The database tests again, against the PostgreSQL service (CI). The slow science tests (simulate, calibrate,
## catalogue) do the same SQL as the fast ones and are left to `make test` and `make test-service-all`: CI has 40 min.
test-service: install
	ROMANARCHIVE_TEST_DATABASE_URL=$(SERVICE_URL) $(PY) -m pytest -m "db and not slow"

## Every database test, slow ones included, against the PostgreSQL service.
test-service-all: install
	ROMANARCHIVE_TEST_DATABASE_URL=$(SERVICE_URL) $(PY) -m pytest -m db

lint: install
	$(VENV)/bin/ruff check romanarchive tests benchmarks alembic sql
	$(VENV)/bin/mypy romanarchive
	$(VENV)/bin/lint-imports

bench: install
	$(PY) benchmarks/bench_registration.py
	$(PY) benchmarks/bench_calibration.py
	$(PY) benchmarks/bench_workers.py

clean:
	-$(VENV)/bin/romanarchive db stop
	rm -rf .romanarchive
