# syntax=docker/dockerfile:1.7
# The recops runtime on NVIDIA GPUs: ONNX Runtime with CUDA, TensorRT 10 and torch with CUDA
# (TensorRT engines keep their buffers in torch tensors). CUDA and cuDNN user-space libraries
# come as NVIDIA's Python wheels; the driver comes from the node (NVIDIA container toolkit).
# Build from the repository root: docker build -f docker/runtime-gpu.Dockerfile .
ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
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
# onnxruntime and onnxruntime-gpu install the same module: the CPU build is swapped out.
RUN /opt/recops/bin/pip install --no-compile --index-url "${TORCH_INDEX_URL}" "torch==2.13.0" \
    && /opt/recops/bin/pip install --no-compile -c requirements/constraints.txt ".[runtime]" \
    && /opt/recops/bin/pip uninstall --yes onnxruntime \
    && /opt/recops/bin/pip install --no-compile \
       "onnxruntime-gpu[cuda,cudnn]==1.31.1" "tensorrt-cu12==10.16.1.11" \
    && /opt/recops/bin/recops serve --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="recops-runtime-gpu" \
      org.opencontainers.image.description="recops gRPC recommendation service (CUDA, TensorRT)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 recops \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin recops
COPY --from=build /opt/recops /opt/recops
ENV PATH=/opt/recops/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
EXPOSE 8500 8080 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["recops"]
CMD ["serve", "--help"]
