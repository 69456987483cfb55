# radgate: two set-up commands on a fresh machine.
#   make demo   creates the environment and runs the demo (SQLite, bundled model, synthetic site)
#   make test   creates the environment, installs the test peers, runs lint, types and the whole suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test venv train-extra peers lint typecheck pytest bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,scale]'
	rm -f $(VENV)/.installed-*
	touch $@

# torch==2.13.0 exactly: it installs a CPU build from this machine's disk (a looser pin pulls CUDA builds).
train-extra: venv
	$(BIN)/python -c "import torch, onnx, onnxscript, monai" 2>/dev/null || $(BIN)/pip install --quiet -e '.[dev,train]'

peers:
	bash scripts/install-peers.sh
	bash scripts/install-ohif.sh

demo: venv
	@echo "make demo: runs the demo in radgate-data/demo, rebuilt from scratch (a previous demo run there is removed); nothing else is touched."
	$(BIN)/radgate demo --data-dir radgate-data/demo

lint: venv
	$(BIN)/ruff check radgate tests bench scripts

typecheck: venv
	$(BIN)/mypy

pytest: venv peers train-extra
	$(BIN)/pytest -q

test: venv peers train-extra lint typecheck pytest

bench: venv peers train-extra
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/results.py
	$(BIN)/python bench/review.py
	$(BIN)/python bench/stats.py
	$(BIN)/python bench/fuzz.py
	$(BIN)/python bench/active_learning.py

clean:
	rm -rf $(VENV) radgate-data .tmp .pytest_cache .mypy_cache .ruff_cache
