# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv and installs the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# bench/bulk.py is set-up shared by the benchmarks, not one of them.
BENCHES := $(filter-out __init__ bulk,$(basename $(notdir $(wildcard bench/*.py))))

.PHONY: demo test lint bench clean install

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## install: create .venv and install the project with its dev tools
install: $(BIN)/.installed

## demo: the whole campaign on a compressed clock, against the local SendGrid
demo: $(BIN)/.installed
	$(BIN)/campaign demo

## lint: ruff, ruff format --check, mypy (strict on sender/, not strict on tests/) and the import contracts
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --config-file tests/mypy.ini
	$(BIN)/lint-imports

## test: lint, then the whole suite (CONTRIBUTING.md: subsets, services)
# Starts throwaway PostgreSQL and Redis servers unless TEST_DATABASE_URL and
# TEST_REDIS_URL point at servers the tests may use.
test: lint
	scripts/ensure-chromium
	$(BIN)/pytest -n 2 --dist loadgroup

## bench: one benchmark: make bench BENCH=render ARGS='--recipients 100000'
bench: $(BIN)/.installed
	@test -n "$(BENCH)" || { echo "make bench BENCH=<one of:$(BENCHES)> [ARGS='...']"; exit 2; }
	$(BIN)/python -m bench.$(BENCH) $(ARGS)

## clean: remove .venv, the demo's database and outbox, and tool caches
clean:
	rm -rf $(VENV) campaign.db outbox .pytest_cache .mypy_cache .ruff_cache

.PHONY: help fmt typecheck-tests

## help: list these targets
help:
	@awk '/^## [a-z-]+:/ { line = substr($$0, 4); i = index(line, ":"); \
		printf "  %-16s %s\n", substr(line, 1, i - 1), substr(line, i + 2) }' $(MAKEFILE_LIST)

## fmt: fix what ruff can fix, then format
fmt: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## typecheck-tests: mypy over tests/, not strict (settings in tests/mypy.ini)
typecheck-tests: $(BIN)/.installed
	$(BIN)/mypy --config-file tests/mypy.ini
