"""`oneha serve` as operators run it: gunicorn with forked gthread workers, keep-alive HTTP."""

from __future__ import annotations

import http.client
import json

import pytest
import yaml

from tests.integration.test_ingest import KEYS, Traces, host_event, make_settings, signed_headers
from tests.support.procs import oneha_serve


@pytest.fixture
def served(tmp_path, redis_url, key_prefix):
    config = tmp_path / "oneha.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": redis_url, "key_prefix": key_prefix,
        "ingest": {"frontends": {n: {"keys": k} for n, k in KEYS.items()}}}))
    with oneha_serve(config, workers=2, threads=2) as port:
        yield port


def _request(conn, method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, data


def test_serve_accepts_signed_events_on_keep_alive_connections(served, redis_url, key_prefix):
    traces = Traces(make_settings(redis_url, key_prefix))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
        assert _request(conn, "GET", "/healthz") == (200, b'{"status":"ok"}\n')
        answers = []
        for payload in (host_event(), host_event(), host_event(event_id="9" * 32, state=2)):
            body = json.dumps(payload).encode()
            status, data = _request(conn, "POST", "/v1/events", body, signed_headers(body))
            answers.append((status, json.loads(data)["duplicate"]))
        assert answers == [(202, False), (202, True), (202, False)]
        status, data = _request(conn, "POST", "/v1/events", b"{}", {"X-OneHA-Frontend": "fe1"})
        assert status == 401 and json.loads(data)["error"] == "unsigned"
        # Whichever gunicorn worker answers, the counters are the same: they live in Redis.
        texts = {_request(http.client.HTTPConnection("127.0.0.1", served, timeout=10), "GET",
                          "/metrics")[1] for _ in range(4)}
        assert len(texts) == 1
        text = texts.pop().decode()
        assert 'oneha_events_accepted_total{resource="HOST"} 2.0' in text
        assert "oneha_events_duplicate_total 1.0" in text
        assert 'oneha_events_rejected_total{reason="unsigned"} 1.0' in text
        assert [(e.object_key, e.status) for e in traces.log()] == [("host:7", "firing"),
                                                                    ("host:7", "resolved")]
    finally:
        traces.cleanup()
