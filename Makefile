# The two commands: `make demo` and `make test`. Both set themselves up through `make setup`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
RNNOISE := pyrnnoise==0.4.5

.PHONY: setup system-packages test-packages demo test lint docs clean

setup: system-packages $(STAMP)

system-packages:
	@./scripts/install-system-packages.sh

test-packages:
	@./scripts/install-system-packages.sh --test

$(STAMP): pyproject.toml Makefile
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@# RNNoise's library for voice noise suppression, without the wheel's FFmpeg and matplotlib
	@# (voice/rnnoise.py); there is no wheel for other machines, which use the spectral one.
	@case "$$(uname -m)" in x86_64|aarch64) $(VENV)/bin/pip install --quiet --no-deps $(RNNOISE);; \
	  *) echo "no RNNoise wheel for $$(uname -m): voice uses spectral noise suppression";; esac
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/retail-hub demo

test: setup test-packages
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check hub beacons vision voice sync tests bench

docs: setup
	$(VENV)/bin/python -m hub.config.reference README.md

clean:
	rm -rf $(VENV) var .pytest_cache
