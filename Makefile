# Two entry points: `make book` builds the HTML book, `make test` runs the whole suite
# (`make test-fast` the part that builds no book and runs no nbgrader).
# Both create .venv on first use and reinstall only when pyproject.toml changes.
# Grading (see book/instructor_guide.md), from the course root:
#   make grade ASSIGNMENT=ex02_rnn_bptt [JOBS=4] [SANDBOX=off] [STUDENT=id[,id]] [FAILED=1] [GRADE_FLAGS=...]
#   make feedback ASSIGNMENT=ex02_rnn_bptt
#   make report

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# nbgrader runs `alembic` from PATH, so the venv's bin/ must come first.
export PATH := $(BIN):$(PATH)

STAMP := $(VENV)/.installed

.PHONY: book book-deps test test-fast release bench grade feedback report export queue-enqueue queue-worker queue-collect queue-status system-deps clean

ASSIGNMENT ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GRADE_FLAGS ?=
ifeq ($(SANDBOX),off)
GRADE_FLAGS += --Sandbox.enabled=False
endif
# which students `make grade` grades: STUDENT=id[,id...] (again, even if done), FAILED=1 (those whose
# grading ended without a grade); by default everyone not yet graded
comma := ,
SELECT := $(foreach s,$(subst $(comma), ,$(STUDENT)),--student $(s)) $(if $(filter 1,$(FAILED)),--failed)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Both editions: the English one from the root into _build/html/, then the Chinese one from book/zh/
# into _build/zh/ (its own execution cache), copied to _build/html/zh/ so each page links to its twin.
book: $(STAMP) book-deps
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/jupyter-book build book/zh --path-output _build/zh -W -n --keep-going
	rm -rf _build/html/zh && cp -r _build/zh/_build/html _build/html/zh
	@echo "The book is in _build/html/index.html, the Chinese edition in _build/html/zh/index.html"

# Two xdist workers. The book is built once, in the background from the start (tests/conftest.py),
# while the workers run the tests that need no book; the grading tests share out evenly. A module
# marked xdist_group keeps its tests on one worker, so its costly module fixture (a graded batch)
# is made once, not once per worker.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The quick loop while editing: everything that needs neither a book build nor nbgrader runs.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Regenerate every student version in exercises/ from its source in solutions/.
# Each Chinese student version, exercises/<a>/zh/<a>.ipynb, is the English one with the markdown
# cells of book/zh/exercises/<a>.yml: the same graded cells, in the same notebook name.
# One assignment alone: make release ASSIGNMENT=ex02_rnn_bptt
release: $(STAMP)
	for name in $(if $(ASSIGNMENT),$(ASSIGNMENT),$$(cd solutions && ls -d */ | tr -d /)); do \
		$(BIN)/nbgrader generate_assignment "$$name" --force || exit 1; \
	done
	$(BIN)/python -m course_grader translate $(ASSIGNMENT)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lstm.py
	$(BIN)/python benchmarks/bench_grading.py

# Autograde every submission of ASSIGNMENT in parallel, in the sandbox, resumable; the log with
# each student's score and reasons is grading/$(ASSIGNMENT)/log.csv.
grade: $(STAMP)
	@test -n "$(ASSIGNMENT)" || { echo "usage: make grade ASSIGNMENT=exNN_name [JOBS=N] [SANDBOX=off]"; exit 2; }
	$(BIN)/python -m course_grader grade $(ASSIGNMENT) --jobs $(JOBS) $(SELECT) $(GRADE_FLAGS)

feedback: $(STAMP)
	@test -n "$(ASSIGNMENT)" || { echo "usage: make feedback ASSIGNMENT=exNN_name"; exit 2; }
	$(BIN)/python -m course_grader feedback $(ASSIGNMENT) $(GRADE_FLAGS)

report: $(STAMP)
	$(BIN)/python -m course_grader report $(ASSIGNMENT) $(GRADE_FLAGS)

# Grades for the LMS gradebook: make export LMS=canvas (or moodle) [ASSIGNMENT=...]
export: $(STAMP)
	@test -n "$(LMS)" || { echo "usage: make export LMS=canvas|moodle [ASSIGNMENT=exNN_name]"; exit 2; }
	$(BIN)/python -m course_grader export --lms $(LMS) $(ASSIGNMENT) $(GRADE_FLAGS)

# Grading on many machines through a job queue in PostgreSQL (GRADING_QUEUE_URL=postgresql://...):
# make queue-enqueue ASSIGNMENT=..., make queue-worker (on each grading machine), make queue-status,
# make queue-collect ASSIGNMENT=... (writes the gradebook, autograded/ and the log here).
queue-enqueue queue-collect: $(STAMP)
	@test -n "$(ASSIGNMENT)" || { echo "usage: make $@ ASSIGNMENT=exNN_name"; exit 2; }
	$(BIN)/python -m course_grader queue $(@:queue-%=%) $(ASSIGNMENT)

queue-worker queue-status: $(STAMP)
	$(BIN)/python -m course_grader queue $(@:queue-%=%) $(ASSIGNMENT)

# The system packages, installed with apt-get when missing (as root; otherwise the command to run is
# printed; matplotlib's font list is then rebuilt, so it sees new fonts). The book needs the CJK fonts its Chinese figures are drawn with (fonts-noto-cjk; without
# them matplotlib reports missing glyphs and the build fails). Grading and the tests need, besides,
# bubblewrap (the sandbox), PostgreSQL (the gradebook for many workers) and headless Chromium with
# its driver (the browser tests of the book).
BOOK_PACKAGES := fonts-noto-cjk
TEST_PACKAGES := $(BOOK_PACKAGES) bubblewrap postgresql chromium chromium-driver
missing_packages = missing=""; for package in $(1); do \
	case $$package in \
	fonts-noto-cjk) fc-list 2>/dev/null | grep -q "Noto Sans CJK SC" ;; \
	bubblewrap) command -v bwrap >/dev/null ;; \
	postgresql) command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 ;; \
	chromium-driver) command -v chromedriver >/dev/null ;; \
	*) command -v $$package >/dev/null ;; \
	esac || missing="$$missing $$package"; done
install_packages = @$(call missing_packages,$(1)); \
	if [ -z "$$missing" ]; then echo "system packages installed: $(1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
		rm -f "$${MPLCONFIGDIR:-$$HOME/.cache/matplotlib}"/fontlist-*.json; \
	else \
		echo "missing:$$missing. Install them (Debian/Ubuntu: sudo apt-get install$$missing)."; \
		echo "Without fonts-noto-cjk the book does not build; without bubblewrap autograding refuses to run;"; \
		echo "without chromium the browser tests fail."; \
	fi

book-deps:
	$(call install_packages,$(BOOK_PACKAGES))

system-deps:
	$(call install_packages,$(TEST_PACKAGES))

clean:
	rm -rf _build .pytest_cache
