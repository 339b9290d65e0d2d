# One command from a fresh clone to the tests (`make test`) or a training run (`make train`).
# Everything installs into .venv; the stamp file makes repeat calls fast until pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONFIG ?= configs/default.yaml
PYTEST_ARGS ?=

.PHONY: install test train bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/install_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	# The CPU build of torch first: anything later that asks for torch is then satisfied.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	bash scripts/install_system_deps.sh
	@touch $(STAMP)

test: install
	MUJOCO_GL=osmesa $(PY) -m pytest -q $(PYTEST_ARGS)

train: install
	MUJOCO_GL=osmesa $(VENV)/bin/soccerlab train $(CONFIG)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
