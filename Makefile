# Two entry points: `make book` builds the HTML book, `make test` runs the whole suite.
# Both create .venv on first use and reinstall only when pyproject.toml changes.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# nbgrader runs `alembic` from PATH, so the venv's bin/ must come first.
export PATH := $(BIN):$(PATH)

STAMP := $(VENV)/.installed

.PHONY: book test release bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

# Regenerate every student version in exercises/ from its source in solutions/.
release: $(STAMP)
	for dir in solutions/*/; do \
		$(BIN)/nbgrader generate_assignment "$$(basename "$$dir")" --force || exit 1; \
	done

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lstm.py

clean:
	rm -rf _build .pytest_cache
