# kiosq: `make demo` runs the hall server with sample data, `make test` runs the tests.
# Both create .venv and install kiosq into it first; nothing is installed system-wide
# except the Debian packages below, and those only when run as root.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the demo and the tests use: curl for the README's examples; espeak-ng
# and sox for the spoken calls; Chromium for the page tests (driven by Playwright, which
# downloads no browser of its own here); a CJK font for pages, slips and PDFs; poppler-utils
# to read the A4 PDFs back in the tests; Mesa for the kiosk's Kivy window (it renders
# offscreen without a display) and libmtdev1, whose absence Kivy reports as an error;
# PostgreSQL's server, which the tests start as a throwaway cluster (tests/pg_cluster.py;
# `make demo` never needs it).
APT_PACKAGES := curl espeak-ng sox chromium fonts-wqy-microhei poppler-utils libgl1-mesa-dri libegl1 libmtdev1 \
	postgresql

.PHONY: demo test lint apt clean

demo: $(VENV)/.installed apt
	$(BIN)/kiosq demo

# The machine's clock goes to a zone on another calendar date than the hall's (tests/away_tz.py),
# so a test that mixes the machine's date with the hall's fails on every run, not a third of
# them. TEST_TZ=Zone/Name picks one by hand. The store and API suites run on SQLite and on a
# throwaway PostgreSQL cluster (tests/conftest.py): here a missing PostgreSQL is a failure.
test: $(VENV)/.installed apt lint
	@tz="$${TEST_TZ:-$$($(BIN)/python tests/away_tz.py)}" && \
		echo "make test: TZ=$$tz (the machine's time zone for this run; the hall keeps its own)" && \
		TZ="$$tz" KIOSQ_TEST_POSTGRES=required $(BIN)/python -m pytest

# ruff on the whole tree, mypy on the packages and on bench/ (pyproject.toml configures both).
# mypy reads the packages through build/typecheck/kiosq/<folder> -> <folder> links: it cannot
# follow the editable install's import hook. A new top-level folder needs its name here.
TYPECHECK_FOLDERS := base devices content queue kiosk provisioning

lint: $(VENV)/.installed
	@mkdir -p build/typecheck/kiosq
	@for d in $(TYPECHECK_FOLDERS); do ln -sfn ../../../$$d build/typecheck/kiosq/$$d; done
	$(BIN)/ruff check .
	$(BIN)/mypy $(addprefix -p kiosq.,$(TYPECHECK_FOLDERS))
	$(BIN)/mypy --follow-imports=silent bench/*.py

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "kiosq needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run: make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# Install missing Debian packages when root; otherwise say exactly what to run.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "missing Debian packages:$$missing"; \
		echo "install them with: sudo apt-get install -y$$missing"; exit 1; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache
