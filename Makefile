# Two commands for a new user: `make run` and `make test`. Both create/update .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CPU build by default (this lies on the build machines' disk). A GPU user installs a CUDA build
# of the same release first (see README), and this step then keeps it.
TORCH_SPEC ?= torch==2.13.0

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: run test test-fast lint bench clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The daily retrain flow on the embedded demo market (as of its last day), offline, no server to start.
run: $(VENV)/.installed
	$(PY) -m flows.daily --source demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

# The inner loop: every test but the end-to-end ones marked slow (CI runs `make test`, all of them).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check stockml tasks flows tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) bench/ingest.py

clean-venv:
	rm -rf $(VENV)
