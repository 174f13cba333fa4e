# Tasks for the demo and the test suite. Needs python3 (3.11 or later), pip and make.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.installed
DEMO_ROWS ?= 20000
DEMO_FILE ?= backups/demo.jsonl.gz
# The second backup of the demo, to show that unchanged files add no blob.
DEMO_AGAIN = $(basename $(basename $(DEMO_FILE)))-again.jsonl.gz
PYTEST_ARGS ?=
# COVERAGE=1 measures the coverage of backups_app while the tests run (manage.py
# subprocesses included); make coverage combines and reports it.
ifeq ($(COVERAGE),1)
PYTEST := $(PY) -m coverage run -m pytest
else
PYTEST := $(PY) -m pytest
endif

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-quick test-slow test-sqlite test-postgres test-mysql test-crossvendor test-thirdparty lint matrix coverage

help:
	@echo "make demo           seed a demo shop, back it up, change it, restore, validate"
	@echo "make test           run the test suite on SQLite, PostgreSQL and MySQL/MariaDB,"
	@echo "                    then the cross-vendor tests (about 35 minutes on 2 cores)"
	@echo "make test-quick     SQLite, no browser and no processes, for iteration (about 4 minutes)"
	@echo "make test-slow      the slow tests (big files, many examples), on SQLite"
	@echo "make test-sqlite    ... on SQLite only (also test-postgres, test-mysql)"
	@echo "make test-thirdparty  round trips of Wagtail, django-mptt and django-reversion on each vendor"
	@echo "make matrix         nox: every Python x Django x database (nox -l lists them)"
	@echo "make coverage       report the coverage measured by make test COVERAGE=1 (fails under the floor)"
	@echo "make lint           ruff check and format, the layer contracts (lint-imports), mypy"
	@echo "make venv           create $(VENV) and install everything (the other targets do this first)"

venv: $(STAMP)

# Installed once; again only when a requirements file or pyproject.toml changes.
$(STAMP): requirements.txt requirements-mysql.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e .
	@$(PY) -m pip install --quiet -r requirements-mysql.txt || { \
		echo; \
		echo "!!! mysqlclient could not be installed: it needs pkg-config and libmariadb-dev."; \
		echo "!!! Everything else works; tests on MySQL/MariaDB will report it as unavailable."; \
		echo "!!! To add it later: apt-get install pkg-config libmariadb-dev"; \
		echo "!!!                  $(PY) -m pip install -r requirements-mysql.txt"; \
		echo; \
	}
	@touch $@

demo: venv
	@echo "==> Migrate the demo database"
	$(MANAGE) migrate --noinput --verbosity 0
	@echo
	@echo "==> Fill the demo shop with $(DEMO_ROWS) rows, product photos and invoice PDFs"
	$(MANAGE) seeddemo --rows $(DEMO_ROWS) --clear
	@echo
	@echo "==> Back up the whole database, and the files its rows reference (BACKUPS['MEDIA'])"
	@mkdir -p $(dir $(DEMO_FILE))
	$(MANAGE) backup --output $(DEMO_FILE)
	@echo
	@echo "==> Back up again: the files did not change, so no blob is written"
	$(MANAGE) backup --output $(DEMO_AGAIN)
	@rm -f $(DEMO_AGAIN)
	@echo
	@echo "==> Validate the backup against the database and the media (expected: exact match)"
	$(MANAGE) validatebackup $(DEMO_FILE)
	@echo
	@echo "==> Change the data: add, update and delete some rows; retouch photos, lose an invoice"
	$(MANAGE) seeddemo --mutate
	@echo
	@echo "==> Validate again (expected: differences in rows and files, exit status 1)"
	@echo "$(MANAGE) validatebackup $(DEMO_FILE)"
	@status=0; $(MANAGE) validatebackup $(DEMO_FILE) || status=$$?; \
	if [ $$status -ne 1 ]; then \
		echo "validatebackup exited with status $$status where 1 was expected."; \
		exit 1; \
	fi; \
	echo "(exit status 1, as expected: the database and its files no longer match the backup)"
	@echo
	@echo "==> What a restore would do, files included (nothing changes)"
	$(MANAGE) restore $(DEMO_FILE) --dry-run --prune-media
	@echo
	@echo "==> Restore the backup: rows and files; delete the files no row references any more"
	$(MANAGE) restore $(DEMO_FILE) --noinput --prune-media
	@echo
	@echo "==> Validate once more (expected: exact match, files included)"
	$(MANAGE) validatebackup $(DEMO_FILE)
	@echo
	@echo "Demo done: the restored database equals $(DEMO_FILE), row for row, and its files are the backup's."

# Slow tests (marked slow) are left out of these; test-slow runs them.
QUICK := not crossvendor and not slow

test:
	@started=$$(date +%s); \
	status=0; $(MAKE) --no-print-directory -k test-sqlite test-postgres test-mysql test-crossvendor test-thirdparty || status=$$?; \
	echo "==> make test took $$(( $$(date +%s) - started )) s"; exit $$status

# For iteration: SQLite, without the browser and the tests that run commands as
# processes (test-sqlite runs those too).
test-quick: venv
	@echo "==> Quick tests on SQLite (no browser, no processes)"
	@started=$$(date +%s); status=0; \
	BACKUPS_TEST_DB=sqlite $(PYTEST) -m "$(QUICK) and not browser and not process" $(PYTEST_ARGS) || status=$$?; \
	echo "==> make test-quick took $$(( $$(date +%s) - started )) s"; exit $$status

test-slow: venv
	@echo "==> Slow tests on SQLite"
	BACKUPS_TEST_DB=sqlite $(PYTEST) -m "slow and not crossvendor" $(PYTEST_ARGS)

matrix: venv
	$(PY) -m nox $(NOX_ARGS)

test-sqlite: venv
	@echo "==> Test suite on SQLite"
	BACKUPS_TEST_DB=sqlite $(PYTEST) -m "$(QUICK)" $(PYTEST_ARGS)

test-postgres: venv
	@echo "==> Test suite on PostgreSQL"
	BACKUPS_TEST_DB=postgres $(PYTEST) -m "$(QUICK)" $(PYTEST_ARGS)

test-mysql: venv
	@echo "==> Test suite on MySQL/MariaDB"
	BACKUPS_TEST_DB=mysql $(PYTEST) -m "$(QUICK)" $(PYTEST_ARGS)

# Backups taken on one vendor and restored into another, every pair; a vendor that
# cannot be reached is reported and its pairs skipped (unless BACKUPS_REQUIRE_DBS).
test-crossvendor: venv
	@echo "==> Cross-vendor tests (SQLite, PostgreSQL, MySQL/MariaDB at once)"
	BACKUPS_CROSSVENDOR=1 $(PYTEST) -m "crossvendor and not slow" $(PYTEST_ARGS)

# Third-party schemas (tests/thirdparty, its own settings module) on each vendor in
# turn; every vendor runs even when one fails.
test-thirdparty: venv
	@status=0; for db in sqlite postgres mysql; do \
		echo "==> Third-party schemas on $$db"; \
		BACKUPS_TEST_DB=$$db $(PYTEST) --ds tests.thirdparty.settings \
			tests/thirdparty $(PYTEST_ARGS) || status=1; \
	done; exit $$status

# The same checks as CI's lint stage and nox's lint session (CONTRIBUTING.md).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check backups_app tests project bench noxfile.py
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# The coverage data of every test run since the last report, combined: the floor
# is fail_under in pyproject.toml. HTML in htmlcov/ with COVERAGE_HTML=1.
coverage: venv
	$(PY) -m coverage combine --quiet
	$(PY) -m coverage report
	@if [ "$(COVERAGE_HTML)" = 1 ]; then $(PY) -m coverage html --quiet && echo "htmlcov/index.html"; fi
