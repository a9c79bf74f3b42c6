# Two commands for a fresh machine:  make demo   |   make test
# Each creates .venv when it is missing or when the dependency files changed, then runs.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
ENGINE ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
VENV := .venv
BIN := $(VENV)/bin
# The environment is rebuilt when pyproject.toml or this recipe's version changes.
VENV_RECIPE := 1
DEPS_HASH := $(shell (cat pyproject.toml; echo $(VENV_RECIPE)) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(ENGINE)-$(DEPS_HASH)
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: venv demo test test-fast check format clean-venv lab

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

# The checks first (seconds), then the suite: the README's test command, and CI's (.ci/run).
# Two workers (pytest-xdist): most of an engine test is one core importing and starting, so
# two run side by side on a 2-core machine; tests/conftest.py keeps what shares an engine
# run on one worker. PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test: venv check
	$(PYTEST)

test-fast: venv
	$(PYTEST) -m "not slow"

# JupyterLab from .venv, on 127.0.0.1 only (reach it through an SSH tunnel, see README),
# opened on notebooks/. `make lab LAB_PORT=8890` picks another port; a busy port is an error.
# Containers often run as root, which Jupyter refuses unless told (--allow-root).
LAB_PORT ?= 8888
LAB_CMD = $(BIN)/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) \
	--ServerApp.port_retries=0 --ServerApp.root_dir=$(CURDIR) \
	--ServerApp.default_url=/lab/tree/notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

lab: venv
	@echo "== JupyterLab on 127.0.0.1:$(LAB_PORT); from a laptop: ssh -N -L $(LAB_PORT):127.0.0.1:$(LAB_PORT) $$(whoami)@$$(hostname), then open the http://127.0.0.1:$(LAB_PORT)/lab?token=... URL printed below"
	$(LAB_CMD)

# Lint, formatting, the layers (import-linter's contracts in pyproject.toml) and types.
check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean-venv:
	rm -rf $(VENV)
