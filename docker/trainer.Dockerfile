# syntax=docker/dockerfile:1.7
# The recops trainer: torch, Ray Train/Tune, MLflow and the engine builders. It is also the
# image of KubeRay's RayJob head and workers (Ray's dashboard agent takes job submissions,
# KubeRay's probes call wget) and of the compile Jobs.
# Build from the repository root: docker build -f docker/trainer.Dockerfile .
# For GPU training: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/recops
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY contracts/ contracts/
COPY operator/ operator/
COPY runtime/ runtime/
COPY trainer/ trainer/
COPY cli/ cli/
# torch first, from the chosen wheel index; the constraints pin its CPU build for laptops and
# CI, so their torch line is left out here and the installed build stays.
RUN /opt/recops/bin/pip install --no-compile --index-url "${TORCH_INDEX_URL}" "torch==2.13.0" \
    && grep -v '^torch==' requirements/constraints.txt > /tmp/constraints.txt \
    && /opt/recops/bin/pip install --no-compile -c /tmp/constraints.txt \
       ".[trainer,runtime]" "ray[default,train,tune]==2.60.0" \
    && /opt/recops/bin/recops train --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="recops-trainer" \
      org.opencontainers.image.description="recops training, tuning and engine compilation (Ray)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
    && apt-get install --yes --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 recops \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/recops \
       --shell /bin/bash recops
COPY --from=build /opt/recops /opt/recops
ENV PATH=/opt/recops/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOME=/home/recops
USER 10001:10001
WORKDIR /home/recops
# A batch image: healthy when the CLI and the training stack import.
HEALTHCHECK --interval=60s --timeout=30s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import recops_trainer, ray, torch"]
ENTRYPOINT ["recops"]
CMD ["--help"]
