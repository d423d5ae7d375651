# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates .venv and installs the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean install

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/campaign demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Starts throwaway PostgreSQL and Redis servers unless TEST_DATABASE_URL and
# TEST_REDIS_URL point at servers the tests may use.
test: lint
	scripts/ensure-chromium
	$(BIN)/pytest -n 2 --dist loadgroup

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) campaign.db outbox .pytest_cache .mypy_cache .ruff_cache
