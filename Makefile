# One command per job, each works on a fresh machine: it creates .venv and installs what it needs.
#   make demo   the main job: build the tiny countdown reasoner on the CPU, train it with
#               DeepSearch and with the flat GRPO baseline, print the comparison
#   make test   unit tests, then the notebooks
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned: this takes the local CPU build; unpinned, pip pulls CUDA wheels.
TORCH ?= torch==2.13.0
EXTRAS ?= test
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test test-unit test-notebooks lint install clean notebooks

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(STAMP)

RUNS ?= runs
demo: $(STAMP)
	$(PY) -m dslib.tiny
	$(PY) -m dslib train --preset tiny --mode deepsearch --runs $(RUNS) --name demo-deepsearch --overwrite
	$(PY) -m dslib train --preset tiny --mode grpo --runs $(RUNS) --name demo-grpo --overwrite
	$(PY) -m dslib compare $(RUNS)/demo-deepsearch $(RUNS)/demo-grpo --plot $(RUNS)/demo-compare.png

test: $(STAMP)
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=600 notebooks

test-unit: $(STAMP)
	$(PY) -m pytest -q tests

test-notebooks: $(STAMP)
	$(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=600 notebooks

lint: $(STAMP)
	$(PY) -m ruff check dslib tests notebooks reproduce

clean:
	rm -rf $(VENV) build *.egg-info

# Notebooks are written as py:percent sources in notebooks/src/ and stored executed (outputs
# kept, so they read well on a code host). `make notebooks` regenerates all; NB=01 just one.
NB ?=
notebooks: $(STAMP)
	$(PY) notebooks/build.py $(NB)
