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

.PHONY: help setup deb-deps prerequisites test test-unit test-integration test-e2e lint scan fmt typecheck importlint \
        crds quickstart bench images image-deps test-images clean

help:
	@echo "make quickstart   train, compile, serve and roll out on this machine"
	@echo "make test         lint, type-check, import contracts, then all test tiers"
	@echo "make lint | fmt   the inner loop (ruff, mypy, import-linter)"
	@echo "make crds         regenerate crds/ from the typed models"
	@echo "make bench        run the benchmarks (long)"
	@echo "make images       build the container images (podman or a Docker engine)"
	@echo "make test-images  build the CPU images and run each as in a pod (root, podman)"

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

# checkov, bandit (pinned in requirements/scanners.txt) live in a virtualenv of their own:
# their dependencies' pins clash with the project's. Accepted findings: security/skips.yaml.
SCANNERS := $(VENV)/scanners
SCANNERS_STAMP := $(SCANNERS)/.recops-installed

$(SCANNERS_STAMP): requirements/scanners.txt
	@[ -x $(SCANNERS)/bin/python ] || $(PYTHON) -m venv $(SCANNERS)
	$(SCANNERS)/bin/pip install --quiet -r requirements/scanners.txt
	@touch $(SCANNERS_STAMP)

scan: $(STAMP) $(SCANNERS_STAMP)
	PYTHONPATH=tests/support $(BIN)/python -m recops_testkit.scanners --bin $(SCANNERS)/bin

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

crds: $(STAMP)
	$(BIN)/recops crds

# In CI (CI set) missing reference data or CRD schemas fail here, before set-up, naming
# them (programs are checked when the tests start, after deb-deps); elsewhere they are
# listed and the tests that need them are skipped.
prerequisites:
	@$(PYTHON) tests/support/recops_testkit/prerequisites.py check --files

test: prerequisites setup lint scan
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
# A running Docker engine when there is one, else podman (rootful: builds need no daemon).
IMAGE_BUILDER ?= $(shell if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; \
                  elif command -v podman >/dev/null; then echo podman; fi)
# Empty: the Dockerfiles' own pinned base (python:3.11-slim-bookworm); where no registry is
# reachable, docker/python-base.sh builds a stand-in to pass here.
PYTHON_IMAGE ?=
# Which docker/NAME.Dockerfile to build, and extra build flags (mounts, build arguments).
IMAGES ?= $(patsubst docker/%.Dockerfile,%,$(wildcard docker/*.Dockerfile))
IMAGE_BUILD_FLAGS ?=
# podman: Docker's image format keeps HEALTHCHECK (OCI has none); the host network leaves
# the host's firewall rules alone (podman's bridge network rewrites them).
PODMAN_BUILD_FLAGS := --format docker --network host

# docker/NAME.Dockerfile becomes $(IMAGE_REGISTRY)/recops-NAME (runtime-cpu is recops-runtime).
images:
	@[ -n "$(IMAGE_BUILDER)" ] || { echo "make images needs podman or a running Docker engine"; exit 1; }
	@for n in $(IMAGES); do \
	  name=$${n%-cpu}; \
	  echo "== $(IMAGE_REGISTRY)/recops-$$name:$(IMAGE_TAG) ($(IMAGE_BUILDER))"; \
	  $(IMAGE_BUILDER) build $(if $(filter podman,$(IMAGE_BUILDER)),$(PODMAN_BUILD_FLAGS)) \
	    $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) $(IMAGE_BUILD_FLAGS) \
	    -f docker/$$n.Dockerfile -t $(IMAGE_REGISTRY)/recops-$$name:$(IMAGE_TAG) . || exit 1; \
	done

# The image tier's programs: podman with runc (no Docker engine needed) and debootstrap for
# docker/python-base.sh. Skipped where a Docker engine runs.
image-deps:
	@[ "$(IMAGE_BUILDER)" = docker ] && exit 0; missing=""; \
	for p in podman runc debootstrap; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Builds the CPU images (operator, runtime-cpu, trainer) through `make images` and runs each
# as it runs in a pod (tests/images/README.md). Needs root for podman.
test-images: setup image-deps
	$(BIN)/pytest tests/images

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
