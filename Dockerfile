# The senflow image: the worker, the API and the CLI (docker-compose.yml builds it for the
# `worker` and `api` services). The benchmark (bench/) is left out; `senflow bench` says so.
# The web pages' assets (decision 103): GOV.UK Frontend compiled with our own font stack, its
# script, and Swagger UI for /docs, from the npm packages package-lock.json pins.
FROM node:20-slim AS web-assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY web/assets ./web/assets
RUN mkdir -p web/static/build/govuk web/static/build/swagger-ui \
 && node_modules/.bin/sass --no-source-map --quiet-deps --load-path=node_modules \
      web/assets/senflow.scss web/static/build/senflow.css \
 && cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js web/static/build/govuk/ \
 && cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
      node_modules/swagger-ui-dist/favicon-32x32.png web/static/build/swagger-ui/

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
COPY web ./web
COPY --from=web-assets /src/web/static/build ./web/static/build
COPY starter.py worker.py devserver.py settings.py server.py ./
RUN pip install . && mkdir -p /var/lib/senflow/outbox && chown -R senflow:senflow /var/lib/senflow

USER senflow
ENV SENFLOW_STATE_DIR=/var/lib/senflow
CMD ["senflow", "worker"]
