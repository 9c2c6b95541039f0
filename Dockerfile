# activeserve server image.
#
#   docker build -t activeserve .                      CPU (onnxruntime)
#   docker build -t activeserve:gpu \
#       --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#       --build-arg RUNTIME=gpu .                      CUDA (onnxruntime-gpu)
#   docker run -p 8001:8001 -v $PWD/models:/models -v $PWD/data:/data activeserve
#
# The repository is mounted at /models, the label queue lives in /data/queue.db.
# The log line "model NAME version N loaded ... on <provider>" says which execution
# provider each model really runs on.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# "server" installs onnxruntime (CPU), "gpu" installs onnxruntime-gpu in its place.
ARG RUNTIME=server
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# CUDA base images come without Python; the slim Python image has it already.
RUN command -v python3 >/dev/null || \
    (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
     && rm -rf /var/lib/apt/lists/*)
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY proto proto
COPY client client
COPY server server
COPY trainer trainer
RUN python3 -m venv /opt/activeserve \
    && /opt/activeserve/bin/pip install ".[${RUNTIME}]"

FROM ${BASE_IMAGE}
RUN command -v python3 >/dev/null || \
    (apt-get update && apt-get install -y --no-install-recommends python3 \
     && rm -rf /var/lib/apt/lists/*)
RUN useradd --create-home --uid 10001 activeserve \
    && mkdir -p /models /data && chown activeserve /models /data
COPY --from=build /opt/activeserve /opt/activeserve
ENV PATH=/opt/activeserve/bin:$PATH PYTHONUNBUFFERED=1
USER activeserve
WORKDIR /home/activeserve
VOLUME ["/models", "/data"]
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["activeserve", "health", "--server", "127.0.0.1:8001"]
ENTRYPOINT ["activeserve", "serve"]
CMD ["--repository", "/models", "--address", "0.0.0.0:8001", "--queue", "sqlite:////data/queue.db", "--drain-s", "5"]
