# econas: `make run` (quickstart study + report) and `make test` (pytest), each from scratch.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FMNIST_DIR := /usr/share/datasets/fashion-mnist
APT_PACKAGES := dataset-fashion-mnist postgresql chromium
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup data run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Debian packages: Fashion-MNIST (the embedded default data) and what the tests drive.
# Without apt, econas downloads Fashion-MNIST through torchvision on first use.
data:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    echo "installing Debian packages:$$missing" >&2; \
	    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	  else echo "econas: apt-get not found; Fashion-MNIST will be downloaded on first use" >&2; fi; \
	fi

run: setup data
	$(VENV)/bin/econas search studies/quickstart.toml
	$(VENV)/bin/econas report studies/quickstart.toml --out runs/quickstart/report.html

test: setup data
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check nas search_spaces tests benchmarks
	$(VENV)/bin/ruff format --check nas search_spaces tests benchmarks

# Regenerates every file in benchmarks/results/ from the code it describes (about 2.5 hours on
# 2 CPU cores). Each JSON carries its commit, hardware, instruction sets and thread settings.
# The technique table runs at the reduced final budget its README footnote names; drop
# --train-size/--val-size for the whole final budget (about five hours more).
bench: setup data
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/search_efficiency.py
	$(PY) benchmarks/federated_compare.py
	$(PY) benchmarks/techniques.py --repeats 5 --train-size 5000 --val-size 2000
	$(PY) benchmarks/scheduling.py
	$(PY) benchmarks/forecast_archive.py
	$(PY) benchmarks/search_tabular.py
	$(PY) benchmarks/projection.py
	$(PY) benchmarks/freed_memory.py
	$(PY) benchmarks/threads.py
	$(PY) benchmarks/cost_model.py

clean:
	rm -rf $(VENV) runs .pytest_cache
