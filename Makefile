# MissionHub. `make run` and `make test` work on a fresh machine with Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The test suite keeps its SQLite files, broker folders and mail apart from `make run`'s.
TEST_VAR_DIR ?= $(CURDIR)/var/test

.PHONY: install run migrate demo test test-fast soak lint format bench bench-inprocess clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py migrate --noinput --database=accounts

demo: migrate
	$(PY) manage.py demo_data

# Web, worker and beat under one supervisor (missionhub/run.py): a child that exits is
# restarted, one that keeps exiting stops everything; Ctrl-C stops all three and exits 0.
run: demo
	$(PY) -m missionhub.run --port $(PORT)

test: install
	MISSIONHUB_VAR_DIR=$(TEST_VAR_DIR) $(PY) -m pytest $(PYTEST_ARGS)

# The long profiles: schemathesis against a live server, the money state machine and the
# HTTP concurrency soak (make test runs the short ones; the soak needs DATABASE_URL,
# ACCOUNTS_DATABASE_URL and CELERY_BROKER_URL on PostgreSQL and Redis, as .ci/run sets).
soak: install
	MISSIONHUB_SOAK=1 MISSIONHUB_VAR_DIR=$(TEST_VAR_DIR) $(PY) -m pytest -q tests/contract/test_schemathesis.py tests/proofs tests/soak $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The HTTP bench of issue 9 (bench/README.md): gunicorn, a Celery worker and wrk on fresh
# *_bench databases of the local PostgreSQL and Redis dbs 11/12; the floor project beside it;
# writes bench/results/latest.json. BENCH_QUICK=1: under 5 minutes. Never part of `make test`.
bench: install
	$(PY) -m bench.http

# The older in-process measurements (no HTTP): SQLite under var/bench, or *_bench databases.
bench-inprocess: install
	MISSIONHUB_VAR_DIR=$(CURDIR)/var/bench $(PY) -m bench.run

clean:
	rm -rf var/test var/test-pg var/bench var/bench-pg var/bench-http var/bench-sqlite var/screenshots .pytest_cache
