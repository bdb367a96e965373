# syntax=docker/dockerfile:1
#
# The ari-etiquette app (the ARI client). Build from the repo root:
#   docker build -f docker/app.Dockerfile -t ari-etiquette-app .
# Run it next to an Asterisk built from docker/asterisk.Dockerfile (docker/compose.yaml does both):
#   docker run --network host \
#     -e ETIQUETTE_ARI_PASSWORD=... -e ETIQUETTE_REDIS_URL=redis://:...@127.0.0.1:6379/0 \
#     -v "$PWD/config/policy.toml:/etc/ari-etiquette/policy.toml:ro" ari-etiquette-app
#
# Settings are ETIQUETTE_* environment variables (ari_app/settings.py). The etiquette policy is a
# file the admin mounts at /etc/ari-etiquette/policy.toml (start from config/policy.example.toml);
# the image ships none, so a container without one stops at start instead of running example rules.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 etiquette \
 && useradd --uid 10001 --gid etiquette --home-dir /home/etiquette --create-home \
      --shell /usr/sbin/nologin etiquette \
 && mkdir -p /etc/ari-etiquette

COPY pyproject.toml /src/pyproject.toml
COPY ari_app/ /src/ari_app/
RUN pip install /src \
 && rm -rf /src

# The app's HTTP API and /healthz listen on all interfaces of the container; with
# network_mode: host (docker/compose.yaml) compose sets 127.0.0.1 instead.
ENV ETIQUETTE_HTTP_HOST=0.0.0.0 \
    ETIQUETTE_HTTP_PORT=8090 \
    ETIQUETTE_POLICY_FILE=/etc/ari-etiquette/policy.toml

USER 10001:10001
WORKDIR /home/etiquette
EXPOSE 8090/tcp

# /healthz answers 200 once the ARI events WebSocket is connected, 503 while it reconnects.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ETIQUETTE_HTTP_PORT', '8090'), timeout=4)"]

CMD ["ari-etiquette", "run"]
