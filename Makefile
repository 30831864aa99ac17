# remaplab: two commands do all set-up on a fresh Debian/Ubuntu machine:
#   make lab-run   run the lab (every scenario, both arches)
#   make test      run the tests (unit + integration in real QEMU guests)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ARCHES ?= x86_64 arm64
PYTEST_ARGS ?=
KERNEL_ARCHES ?= x86_64
# LAB_KERNEL=lab (or kasan): make lab-run on the lab-built kernel instead of Debian's
LAB_KERNEL ?=

.PHONY: deps test unit integration lint module kernel kernel-kasan lab-run bench doctor clean \
	soak durations

deps:
	@bash scripts/deps.sh

test: deps
	$(PY) -m pytest $(PYTEST_ARGS)

unit: deps
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: deps
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check lab tests conftest.py
	$(VENV)/bin/ruff format --check lab tests conftest.py
	$(VENV)/bin/mypy

# multimap for both arches, warning-free with W=1, and checkpatch --strict clean.
module: deps
	$(VENV)/bin/remaplab build $(foreach a,$(ARCHES),--arch $(a)) --checkpatch

# The lab-built kernel (CMA, DEBUG_VM, PAGE_OWNER, debug info; kasan adds KASAN), cached.
kernel: deps
	$(VENV)/bin/remaplab kernel build $(foreach a,$(KERNEL_ARCHES),--arch $(a))

kernel-kasan: deps
	$(VENV)/bin/remaplab kernel build --profile kasan $(foreach a,$(KERNEL_ARCHES),--arch $(a))

# Every scenario on both arches: live progress, summary table, results/<run>/{junit.xml,report.json}.
lab-run: deps
	$(VENV)/bin/remaplab run $(foreach a,$(ARCHES),--arch $(a)) \
		$(if $(LAB_KERNEL),--lab-kernel $(LAB_KERNEL)) $(RUN_ARGS)

# SOAK consecutive full runs of `remaplab run` (ARCHES, LAB_KERNEL, RUN_ARGS as lab-run): each
# run's wall time, outcome counts, boots and boot retries, every result that did not pass with
# its evidence, then the flake rate.  Runs in results/soak-TIME/run-NN; exit 1 if any run was
# not clean.
SOAK ?= 20
soak: deps
	$(VENV)/bin/remaplab soak --runs $(SOAK) -- $(foreach a,$(ARCHES),--arch $(a)) \
		$(if $(LAB_KERNEL),--lab-kernel $(LAB_KERNEL)) $(RUN_ARGS)

# The whole suite once, serially (not -n: xdist renames grouped items), storing every item's
# duration in .test_durations: what pytest --splits N --group K and remaplab run --shard K/N
# split by.  Commit the file.  DURATIONS_ARGS narrows it (e.g. scenarios/); items not run keep
# their stored durations.  `remaplab report durations RUN_DIR...` updates the scenario items
# from remaplab run reports instead (no extra run).
DURATIONS_ARGS ?=
durations: deps
	$(PY) -m pytest -q --store-durations --durations-path .test_durations \
		$(DURATIONS_ARGS)

bench: deps
	$(VENV)/bin/remaplab bench $(foreach a,$(ARCHES),--arch $(a))

doctor: deps
	$(VENV)/bin/remaplab doctor

clean:
	rm -rf results .pytest_cache .mypy_cache .ruff_cache
