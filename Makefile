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

.PHONY: deps test unit integration lint module kernel kernel-kasan lab-run bench doctor clean

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

bench: deps
	$(VENV)/bin/remaplab bench $(foreach a,$(ARCHES),--arch $(a))

doctor: deps
	$(VENV)/bin/remaplab doctor

clean:
	rm -rf results .pytest_cache .mypy_cache .ruff_cache
