# shelfsense — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export ORT_DISABLE_TELEMETRY := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-tflite lint typecheck unit bench venv system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools

# torch first, from the pinned CPU build, then everything else constrained to it.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[edge,cloud,opencv,qr,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Mosquitto and chromium are real parts of the tests; install them with apt when missing.
system-deps:
	@command -v mosquitto >/dev/null 2>&1 || ls /usr/sbin/mosquitto >/dev/null 2>&1 || \
	  { echo "installing mosquitto with apt"; \
	    (apt-get update -qq && apt-get install -y -qq mosquitto) >/dev/null || \
	    (sudo apt-get update -qq && sudo apt-get install -y -qq mosquitto) >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || \
	  { echo "installing chromium with apt (the browser tests drive it with Playwright)"; \
	    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || \
	    (sudo apt-get update -qq && sudo apt-get install -y -qq chromium) >/dev/null; }

demo: $(STAMP)
	$(VENV)/bin/shelfsense demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy shelfsense models firmware_bridge edge cloud provisioning

# One test process per core, at most 4 (each runs its own servers and PostgreSQL
# schemas); a test that waits on a subprocess leaves its core to the other. One more
# than the cores ran slower on 2 shared cores, with tests past their time limits.
# TEST_JOBS=1 runs the suite in one process.
TEST_JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')
unit: $(STAMP) system-deps
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist worksteal \
	  --durations=20 tests

test: lint typecheck unit

# Heavy benchmarks: their own command, never part of `make test`.
# `make bench BENCH="weight decode"` runs some; `make bench QUICK=1` runs small sizes.
bench: $(STAMP) system-deps
	$(PY) -m tests.bench $(if $(QUICK),--quick) $(BENCH)

# The `tflite` backend on a student converted by litert-torch. Its own venv (about
# 2.4 GB): litert-torch needs an older typing-extensions than the main venv holds.
TFL_VENV := .venv-tflite
TFL_STAMP := $(TFL_VENV)/.installed
$(TFL_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(TFL_VENV)
	$(TFL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TFL_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(TFL_VENV)/bin/python -m pip install --quiet -c constraints.txt \
	  -e '.[edge,cloud,tflite,tflite-convert]' pytest pytest-timeout hypothesis httpx psutil
	touch $(TFL_STAMP)

test-tflite: $(TFL_STAMP)
	$(TFL_VENV)/bin/python -m pytest -q -p no:cacheprovider \
	  tests/models/test_tflite_backend.py tests/models/test_runtime.py

clean:
	rm -rf $(VENV) $(TFL_VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
