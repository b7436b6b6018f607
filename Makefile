# Transformer Debug: every command sets up .venv first (python3 is all a fresh machine needs).
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader calls `alembic` and `jupyter` from PATH; tiny models want one thread.
export PATH := $(BIN):$(PATH)
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
# The course library from this checkout, even where .venv was installed from another one.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH),)
PORT ?= 8888
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test release assignments autograde formgrader feedback export grade student-kit answer-key class-report bugs bench check clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

## Students: JupyterLab on the released notebooks.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=release --port=$(PORT) $(ROOT_FLAG)

## Everything CI proves: unit tests, nbgrader invariants, bug matrix, nbval on notebooks/.
test: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --durations=8

## Authors: regenerate release/ (nbgrader) and notebooks/ (executed solutions) from source/.
release: $(STAMP)
	$(BIN)/course release

## Instructors (README, "Running a class"): autograde what `nbgrader collect` gathered (each
## submission sealed off; new or changed ones only), grade the reports in the formgrader, then
## feedback and export. ASSIGNMENT=01_attention and STUDENT=alice narrow a step down.
## WORKERS=2 judges two at once; SCHEDULER=tcp://host:8786 uses Dask; NO_SANDBOX=1 only for trusted work.
WORKERS ?= 1
FILTER = $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) $(if $(STUDENT),--student $(STUDENT))
SEAL = --workers $(WORKERS) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(NO_SANDBOX),--no-sandbox)
assignments: $(STAMP)
	$(BIN)/course assignments $(ASSIGNMENT)

autograde: $(STAMP)
	$(BIN)/course autograde $(SEAL) $(FILTER) $(if $(REGRADE),--regrade)

formgrader: $(STAMP)
	$(BIN)/jupyter lab --port=$(PORT) $(ROOT_FLAG) --ServerApp.default_url=/formgrader

feedback: $(STAMP)
	$(BIN)/course feedback $(FILTER) $(if $(PARTIAL),--partial)

export: $(STAMP)
	$(BIN)/course export

## All three at once, reports graded or not: a quick look, or a course without manual grading.
grade: $(STAMP)
	$(BIN)/course grade $(SEAL)

## What students install: the library's wheel (no solutions) and pinned requirements.
student-kit: $(STAMP)
	$(BIN)/course student-kit

## Instructors, after grading: which bugs the class fixed, least fixed first, and defect reports
## awaiting a grader (build/class-report.csv and .html). make class-report ASSIGNMENT=01_attention
class-report: $(STAMP)
	$(BIN)/course class-report $(ASSIGNMENT)

## Instructors, after the deadline: the answer key, one HTML page per assignment (build/answer-key/).
answer-key: $(STAMP)
	$(BIN)/course answer-key $(ASSIGNMENT)

## The bug coverage matrix (JSON in build/bugs.json).
bugs: $(STAMP)
	$(BIN)/course bugs

## Timings (not part of make test): nbval and autograde per notebook, make grade throughput.
## make bench STUDENTS=20 (the default); STUDENTS=0 skips the throughput run.
STUDENTS ?= 20
bench: $(STAMP)
	$(BIN)/course bench --students $(STUDENTS)

check: $(STAMP)
	$(BIN)/course check

clean:
	rm -rf build autograded/*/ feedback gradebook.db grades.csv
