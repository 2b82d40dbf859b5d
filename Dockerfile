# The senflow image: the worker, the API and the CLI (docker-compose.yml builds it for the
# `worker` and `api` services). The benchmark (bench/) is left out; `senflow bench` says so.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system senflow && useradd --system --gid senflow --home-dir /app senflow
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY records ./records
COPY audit ./audit
COPY archive ./archive
COPY reform ./reform
COPY api ./api
COPY access ./access
COPY crypto ./crypto
COPY service ./service
COPY cli ./cli
COPY starter.py worker.py devserver.py settings.py ./
RUN pip install . && mkdir -p /var/lib/senflow/outbox && chown -R senflow:senflow /var/lib/senflow

USER senflow
ENV SENFLOW_STATE_DIR=/var/lib/senflow
CMD ["senflow", "worker"]
