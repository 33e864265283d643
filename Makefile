# Two commands cover a fresh machine: `make train` and `make test`. Each sets up what is
# missing (virtualenv, pinned dependencies, datasets) and is quick when nothing is.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/ae_mnist.py
WORKDIR ?= runs/ae_mnist
# Datasets the test suite reads; fashion_mnist is prepared only where its offline source
# (Debian's dataset-fashion-mnist) or the internet is there.
TEST_DATASETS ?= mnist
# pytest-xdist workers; each test file runs whole on one worker (its fixtures built once).
TEST_WORKERS ?= 2

.PHONY: setup data train test lint clean classifiers results notebooks

# pyproject.toml states ranges; constraints.txt pins the versions CI tests, so runs here stay
# reproducible. `tfds` prepares datasets (TensorFlow is used for that alone).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,tfds]'
	touch $@

setup: $(VENV)/.installed

data: setup
	$(PY) -m jgen.data $(TEST_DATASETS)
	if [ -d /usr/share/datasets/fashion-mnist ]; then $(PY) -m jgen.data fashion_mnist; fi

train: data
	$(PY) run.py --config $(CONFIG) --workdir $(WORKDIR)

# Retrains the feature classifiers of the sample metrics and writes them into the package
# (jgen/evaluate/weights); about 15 and 30 minutes on one core of a 2-core CPU.
classifiers: data
	for d in mnist fashion_mnist; do \
	  $(PY) run.py --config configs/classifier_$$d.py --workdir runs/classifier_$$d && \
	  $(PY) run.py --config configs/classifier_$$d.py --workdir runs/classifier_$$d --mode export \
	  || exit 1; done

# The autoencoder-vs-GAN comparison (about 70 minutes on a 2-core CPU; finished runs are
# reused), then its report into docs/compare_mnist.md and its table into the README.
results: data
	$(PY) run.py --config configs/compare_mnist.py --workdir runs/compare_mnist
	$(PY) -m jgen.compare runs/compare_mnist

# Executes every notebook in place with full budgets (their committed outputs; see the
# README's notebooks section for the minutes each takes).
notebooks: data
	$(PY) notebooks/execute.py notebooks/*.ipynb

test: data
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
