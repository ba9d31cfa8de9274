# oneha: gateway, worker and beat share this image (see docker-compose.yml).
#
# Base images come as build arguments so a site pins them by digest, e.g.
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# Any Debian-like image with python3 (>= 3.11, with venv) and useradd will do; tests/deploy makes
# one offline with `mmdebstrap --variant=minbase --include=python3,python3-venv bookworm` and
# `docker import`. BUILD_IMAGE defaults to the same image: nothing is compiled here (every
# dependency ships a wheel), and nothing of the builder but the virtualenv reaches the runtime.
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BUILD_IMAGE=${BASE_IMAGE}

FROM ${BUILD_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# The context is what .dockerignore lets through: pyproject.toml, README.md, gateway/, tasks/,
# hook_templates/ and wheelhouse/ (one COPY: with the vfs storage driver every layer is a full copy).
# wheelhouse/ holds wheels built beforehand (see wheelhouse/README.md): with any there, the build
# never touches a package index; empty, pip uses the index. The simulator is not in the context:
# the runtime image is for production (`oneha demo` needs a checkout).
COPY . /src/
RUN python3 -m venv /opt/oneha \
 && if ls /src/wheelhouse/*.whl >/dev/null 2>&1; then offline="--no-index --find-links /src/wheelhouse"; fi \
 && /opt/oneha/bin/pip install $offline /src \
 && rm -f /opt/oneha/bin/oneha-simulator \
 && /opt/oneha/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('simulator') is not None)" \
 && /opt/oneha/bin/pip uninstall -y -q pip setuptools wheel

FROM ${BASE_IMAGE}
# A numeric user needs no /etc/passwd entry, so the runtime stage is one layer (no RUN): with
# the vfs storage driver every layer is a full copy of the file system. HOME for libraries that
# look for one; the root file system is read-only in compose, /tmp a tmpfs.
ENV PATH=/opt/oneha/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/oneha /opt/oneha
USER 10001:10001
EXPOSE 8080
# `oneha health` checks what process 1 runs: serve -> /readyz is 200 (Redis reachable);
# worker -> this container's worker reported itself alive in Redis within 15 s; beat -> Redis.
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=3 CMD ["oneha", "health"]
CMD ["oneha", "serve", "--host", "0.0.0.0", "--port", "8080"]
