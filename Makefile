# Quick start:  make run   (set up .venv, integrate the bundled pp -> tt~ example)
#               make test  (set up .venv, run the test suite)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CARD   ?= examples/pp_tt.yaml

.PHONY: setup run test bench clean

$(BIN)/madnis: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: 2.13.0 is the CPU wheel on these machines (any other version pulls CUDA builds)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/madnis

setup: $(BIN)/madnis

run: setup
	$(BIN)/madnis integrate $(CARD)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_pp_tt.py

clean:
	rm -rf $(VENV) build *.egg-info
