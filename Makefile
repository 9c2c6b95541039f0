# Two commands do all the set-up on a fresh machine:
#   make demo    the whole loop on the embedded default (SQLite queue, local repository)
#   make test    the test suite
# Both create .venv, install CPU PyTorch first where no torch is present (a plain
# `torch` requirement would pull a multi-GB CUDA build), then the project.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.activeserve-installed

.PHONY: setup demo test lint typecheck proto bench-serving bench-active clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[server,trainer,demo,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m activeserve.trainer.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable finder, so it checks a tree of links that
# lays the folders out as the installed package.
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/activeserve
	for p in core proto client server trainer; do \
		ln -s ../../../$$p build/typecheck/activeserve/$$p; done
	cd build/typecheck && MYPYPATH=. ../../$(BIN)/mypy --config-file ../../pyproject.toml \
		-p activeserve.core -p activeserve.proto -p activeserve.client \
		-p activeserve.server -p activeserve.trainer

proto: $(STAMP)
	$(BIN)/python scripts/generate_proto.py

bench-serving: $(STAMP)
	$(BIN)/python -m benchmarks.serving

bench-active: $(STAMP)
	$(BIN)/python -m benchmarks.active_learning

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
