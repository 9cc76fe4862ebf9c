# Cordon's container image: slim Python, dependencies built in a first stage, runs as a non-root user, no secrets
# (every setting and credential comes from the environment: see README "Deploy to Azure").
#   docker build -t cordon . && docker run -p 8000:8000 -e MicrosoftAppId=... -e CORDON_TOML="$(cat cordon.toml)" cordon
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md app.py ./
COPY adapters adapters
COPY bot bot
COPY dialogs dialogs
COPY manifest manifest
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check . \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

FROM python:3.12-slim
RUN groupadd --system --gid 10001 cordon \
 && useradd --system --uid 10001 --gid cordon --home-dir /home/cordon --create-home --shell /usr/sbin/nologin cordon
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker-entrypoint.sh /usr/local/bin/cordon-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000
USER 10001:10001
WORKDIR /home/cordon
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["cordon-entrypoint"]
