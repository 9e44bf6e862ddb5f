# Two commands do all the set-up: `make test` and `make quickstart`.
# Each creates .venv when missing, installs the pinned dependencies and the
# Debian packages the tests need, and is a fast no-op for set-up afterwards.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.recops-installed
CONSTRAINTS := requirements/constraints.txt
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup deb-deps prerequisites test test-unit test-integration test-e2e lint fmt typecheck importlint \
        crds quickstart bench images clean

help:
	@echo "make quickstart   train, compile, serve and roll out on this machine"
	@echo "make test         lint, type-check, import contracts, then all test tiers"
	@echo "make lint | fmt   the inner loop (ruff, mypy, import-linter)"
	@echo "make crds         regenerate crds/ from the typed models"
	@echo "make bench        run the benchmarks (long)"
	@echo "make images       build the container images (needs a Docker engine)"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	# torch first, from its pinned CPU wheel: a looser pin would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[all,dev]"
	@touch $(STAMP)

setup: $(STAMP) deb-deps

# qemu-user runs the int8 engine checks on an emulated AVX2-only processor (x86 hosts).
deb-deps:
	@missing=""; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ "$$(uname -m)" = x86_64 ]; then command -v qemu-x86_64 >/dev/null || missing="$$missing qemu-user"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

crds: $(STAMP)
	$(BIN)/recops crds

# In CI (CI set) missing reference data or CRD schemas fail here, before set-up, naming
# them (programs are checked when the tests start, after deb-deps); elsewhere they are
# listed and the tests that need them are skipped.
prerequisites:
	@$(PYTHON) tests/support/prerequisites.py check --files

test: prerequisites setup lint
	$(BIN)/recops crds --check
	$(BIN)/pytest tests/unit tests/integration tests/e2e

test-unit: setup
	$(BIN)/pytest tests/unit

test-integration: setup
	$(BIN)/pytest tests/integration

test-e2e: setup
	$(BIN)/pytest tests/e2e

# QUICKSTART_ARGS="--data path/to/u.data" or "--size small" or "--keep-serving".
quickstart: setup
	$(BIN)/recops quickstart $(QUICKSTART_ARGS)

bench: setup
	@# Shared modules (no __main__) are imported by the benchmarks, not run.
	@for b in benchmarks/*.py; do grep -q '__main__' $$b || continue; echo "== $$b"; $(BIN)/python $$b || exit 1; done

IMAGE_REGISTRY ?= ghcr.io/recops
IMAGE_TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

# docker/NAME.Dockerfile becomes $(IMAGE_REGISTRY)/recops-NAME (runtime-cpu is recops-runtime).
images:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make images needs a running Docker engine"; exit 1; }
	@for f in docker/*.Dockerfile; do \
	  name=$$(basename $$f .Dockerfile); name=$${name%-cpu}; \
	  echo "== $(IMAGE_REGISTRY)/recops-$$name:$(IMAGE_TAG)"; \
	  docker build -f $$f -t $(IMAGE_REGISTRY)/recops-$$name:$(IMAGE_TAG) . || exit 1; \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
