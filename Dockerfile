# oneha: gateway, worker and beat share this image (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/oneha
# The distribution's packages (pyproject.toml: gateway*, tasks*, simulator*) and the hook
# templates, installed as data under /usr/local/share/oneha/ for `oneha hooks install`.
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY tasks ./tasks
COPY simulator ./simulator
COPY hook_templates ./hook_templates
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin oneha

USER oneha
EXPOSE 8080
# Liveness only; docker-compose.yml checks readiness (/readyz: Redis reachable) for the gateway.
CMD ["oneha", "serve", "--host", "0.0.0.0", "--port", "8080"]
