# The README's two commands: `make demo` and `make test`. Each does its own set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-backends install install-dev bench bench-quick notebooks flaxformer-fixture clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# The main job, offline: train the digits classifier, evaluate, export SavedModel + 5 TFLite variants, verify (LiteRT, vela, TFLite Micro).
demo: install
	$(PY) -m zoo demo --out demo_out

# Full suite on the TensorFlow backend, then the layer/model tests on JAX and PyTorch (separate processes).
test: install-dev
	$(PY) -m pytest -q -n 2 tests
	$(MAKE) --no-print-directory test-backends

test-backends: install-dev
	KERAS_BACKEND=jax $(PY) -m pytest -q -n 2 -p no:cacheprovider tests/layers
	KERAS_BACKEND=torch $(PY) -m pytest -q -n 2 -p no:cacheprovider tests/layers

bench: install-dev
	$(PY) -m benchmarks

# The headline table: the ImageNet Fourier preset at batch 1 on the main engines and every user path
# (benchmarks/results/inference_quick.md). An interrupted run keeps what it measured; run it again to finish.
bench-quick: install-dev
	$(PY) -m benchmarks inference --quick --models imagenet_fourier --batch-sizes 1 --warmup 1 --repeats 3

# Re-executes every notebook in place at full budget, one at a time, and stores its outputs and figures
# (notebooks/execute.py; about 4-10 min each on two cores). `make test` checks they are stored so.
notebooks: install-dev
	$(PY) notebooks/execute.py

# Regenerates tests/reference/flaxformer_perceiver_ar.npz from the T5X Perceiver AR (google/flaxformer, not on
# PyPI) at the fixture's commit, with flax, aqtp and chex installed beside the venv in build/. Needs network;
# FLAXFORMER_GIT=path/to/flaxformer/.git reads the sources from a local clone instead of GitHub.
FLAXFORMER_COMMIT := $(shell sed -n 's/^FLAXFORMER_COMMIT = "\(.*\)"/\1/p' tests/reference/flaxformer_fixture.py)
FLAXFORMER_GIT ?=
flaxformer-fixture: install-dev
	rm -rf build/flaxformer && mkdir -p build/flaxformer/src
	if [ -z "$(FLAXFORMER_GIT)" ]; then git clone -q https://github.com/google/flaxformer build/flaxformer/clone && \
		git -C build/flaxformer/clone archive $(FLAXFORMER_COMMIT) flaxformer | tar x -C build/flaxformer/src; \
	else git --git-dir=$(FLAXFORMER_GIT) archive $(FLAXFORMER_COMMIT) flaxformer | tar x -C build/flaxformer/src; fi
	$(PY) -m pip install -q --no-deps --target build/flaxformer/site flax==0.12.0 aqtp==0.9.0 chex==0.1.92 \
		gin-config==0.5.0 msgpack treescope toolz
	PYTHONPATH=build/flaxformer/src:build/flaxformer/site $(PY) tests/reference/flaxformer_fixture.py
	PYTHONPATH=build/flaxformer/src:build/flaxformer/site $(PY) tests/reference/flaxformer_fixture.py --count

clean:
	rm -rf demo_out .pytest_cache
