# Two commands on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-quick services bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The whole flow on an embedded Redis, a simulated cloud and local mail/chat sinks.
demo: install
	$(BIN)/oneha demo

# Services the tests need: Redis on 127.0.0.1:6379 (tests that kill Redis start their own),
# Debian's chromium for the browser tests, docker-compose to validate the compose file.
services:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@command -v chromium >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium docker-compose >/dev/null || \
	   (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium docker-compose >/dev/null))
	@# tests/faults and test_sentinel: Debian's redis-sentinel (a primary, replicas and sentinels
	@# of their own on free ports).
	@command -v redis-sentinel >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-sentinel >/dev/null || \
	   (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-sentinel >/dev/null))
	@# tests/deploy: a Docker engine and base images made from Debian packages; promtool for the
	@# alert rules; systemd-analyze for the units.
	@command -v dockerd >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1 && \
	  command -v promtool >/dev/null 2>&1 && command -v systemd-analyze >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io mmdebstrap prometheus systemd >/dev/null || \
	   (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io mmdebstrap prometheus systemd >/dev/null))
	@for i in 1 2 3 4 5 6 7 8 9 10; do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	  echo "redis did not start on 127.0.0.1:6379" >&2; exit 1

test: install services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: install services
	$(BIN)/python -m pytest -m "not slow" -x $(PYTEST_ARGS)

# bench/alertmanager.py runs Debian's Alertmanager beside oneha (never its service: own ports, temp dir).
bench: install services
	@command -v prometheus-alertmanager >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-alertmanager >/dev/null || \
	   (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-alertmanager >/dev/null))
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
