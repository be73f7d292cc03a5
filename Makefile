# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= $(shell command -v python3.12 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck check bench lock up clean web

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), "Autocloud needs Python 3.12+ (set PYTHON=…)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The dashboard (web/): npm ci from the lockfile, then esbuild into web/dist. Rebuilt when a
# web source, the lockfile or the build script changes; needs node and npm (not the internet
# at run time: every asset is served by the platform).
WEB_STAMP := web/dist/.built
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/build.mjs web/package.json web/package-lock.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

$(WEB_STAMP): web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && node build.mjs
	@touch $(WEB_STAMP)

web: $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

demo: $(STAMP) $(WEB_STAMP)  ## embedded platform + scripted fleet
	$(BIN)/autocloud demo $(if $(wildcard ../shared/data/vss/vss_release_6.0.json),--vss-path ../shared/data/vss/vss_release_6.0.json,) \
	  $(if $(wildcard ../shared/data/dtc/obd_codes.json),--dtc-catalog ../shared/data/dtc/obd_codes.json,)

up: $(STAMP) $(WEB_STAMP)
	$(BIN)/autocloud up

test: $(STAMP) $(WEB_STAMP)  ## the whole suite
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

lock:  ## re-resolve dependencies into constraints.txt
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install -q -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable > constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache web/dist web/node_modules
