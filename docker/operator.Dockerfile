# syntax=docker/dockerfile:1.7
# The recops operator: Kopf and HTTP clients only (no torch, no Ray, no engines).
# Build from the repository root: docker build -f docker/operator.Dockerfile .
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
RUN /opt/recops/bin/pip install --no-compile -c requirements/constraints.txt ".[operator]" \
    && /opt/recops/bin/recops --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="recops-operator" \
      org.opencontainers.image.description="Kubernetes operator for SSE-PT recommenders" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 recops \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin recops
COPY --from=build /opt/recops /opt/recops
ENV PATH=/opt/recops/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# Numeric user, so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# 8081: Kopf's liveness endpoint.
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
ENTRYPOINT ["recops"]
CMD ["operator", "run"]
