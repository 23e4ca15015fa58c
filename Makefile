# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
OUT ?= outputs/demo
DEMO_BUDGET ?= 3m

.PHONY: setup demo test bench clean

# torch first, from the CPU build, so that nothing pulls a CUDA build later.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m jobs.pipeline --demo --time-budget $(DEMO_BUDGET) --out $(OUT)

# Two pytest workers, one test file each at a time (module fixtures stay whole), each with its own
# Ray instance: most of the suite waits on Ray start-ups and subprocesses, so two overlap well on 2 cores.
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: setup
	$(PIP) install -q -e ".[dev,sdv]"
	$(PY) bench/tabular_vs_sdv.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
