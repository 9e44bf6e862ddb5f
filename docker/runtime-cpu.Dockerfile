# syntax=docker/dockerfile:1.7
# The recops runtime on CPU: the gRPC service with ONNX Runtime and OpenVINO engines.
# Build from the repository root: docker build -f docker/runtime-cpu.Dockerfile .
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
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
RUN /opt/recops/bin/pip install --no-compile -c requirements/constraints.txt ".[runtime]" \
    && /opt/recops/bin/recops serve --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="recops-runtime" \
      org.opencontainers.image.description="recops gRPC recommendation service (CPU engines)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 recops \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin recops
COPY --from=build /opt/recops /opt/recops
ENV PATH=/opt/recops/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
# 8500: gRPC; 8080: JSON adapter, admin and health; 9090: Prometheus metrics.
EXPOSE 8500 8080 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["recops"]
CMD ["serve", "--help"]
