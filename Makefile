# One command to run the embedded campaign, one to test it. Both create .venv and install everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= 2
CONFIG ?= config/config.yaml
PYTEST_ARGS ?=
# The campaign's results root: results/<the config's `campaign` key> (absent: the config file's stem).
CAMPAIGN = $(shell $(PY) -c 'from gnnff_stability.config import load_config; print(load_config("$(CONFIG)")["campaign"])' 2>/dev/null)
RESULTS_ROOT = results/$(CAMPAIGN)

.PHONY: install demo test test-fast test-slurm mutate mutate-resume dryrun paper-dryrun lint ruff mypy figures clean-results

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so that nothing pulls a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[workflow,test,labels]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	@start=$$(date +%s); \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --cores $(CORES) --configfile $(CONFIG) \
	  --rerun-incomplete --show-failed-logs && \
	echo "" && echo "Campaign finished in $$(( $$(date +%s) - start )) s." && \
	echo "Tables:  $(CURDIR)/$(RESULTS_ROOT)/tables/ (table2.md is the paper's main result)" && \
	echo "Figures: $(CURDIR)/$(RESULTS_ROOT)/figures/ (fig_outcomes.png: every run's classification)" && \
	echo "" && $(PY) -m gnnff_stability.report.outcomes $(RESULTS_ROOT)/tables/tableA4.csv --config $(CONFIG) && \
	echo "" && cat $(RESULTS_ROOT)/tables/table2.md

# ruff (pyflakes, pycodestyle errors, bugbear) and mypy over the library; both configured in pyproject.toml
ruff: install
	$(VENV)/bin/ruff check .

mypy: install
	$(VENV)/bin/mypy

test: ruff mypy
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -m "not slow and not slurm" $(PYTEST_ARGS)

test-slurm: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -m slurm tests/slurm $(PYTEST_ARGS)

# Mutation testing of the scientific core ([tool.mutmut] in pyproject.toml; docs/testing.md): mutmut
# plants one small bug at a time in the core modules and runs the fast tests that reach it. Not part of
# `make test`; results in mutants/ (a rerun continues where an interrupted one stopped: `make mutate-resume`).
mutate: install
	test -x $(VENV)/bin/mutmut || $(PY) -m pip install --quiet "mutmut==3.8.1"
	rm -rf mutants
	$(MAKE) mutate-resume

mutate-resume: install
	OMP_NUM_THREADS=1 nice -n 10 $(VENV)/bin/mutmut run --max-children $(CORES) || true
	$(VENV)/bin/mutmut results || true
	$(PY) tests/helpers/mutation_summary.py

dryrun: install
	$(VENV)/bin/snakemake -n --configfile $(CONFIG)

paper-dryrun: install
	$(VENV)/bin/snakemake -n --configfile config/paper.yaml

lint: ruff mypy
	$(VENV)/bin/snakemake --lint

# Every table and figure again from the campaign's existing results, into $(RESULTS_ROOT)/paper_figures/.
figures: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/snakemake --cores 1 paper_figures --configfile $(CONFIG) --rerun-triggers mtime
	@echo "Tables and figures: $(CURDIR)/$(RESULTS_ROOT)/paper_figures/"

# Removes one campaign's results root (CONFIG's; other campaigns are kept).
clean-results: install
	@test -n "$(CAMPAIGN)" || { echo "cannot read the campaign of $(CONFIG)"; exit 1; }
	rm -rf $(RESULTS_ROOT)
