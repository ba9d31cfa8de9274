"""Redis away — stopped or frozen: every HTTP path answers 503 in the JSON error shape (the console
a plain page saying so) within the hook sender's 3 s budget, and the CLI says it in one line."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from gateway.app import create_app
from gateway.cli import main
from gateway.config import settings_from_dict
from gateway.domain.approvals import Claims, csrf_token, sign
from tests.integration.test_ingest import KEYS, host_event, post, signed_headers
from tests.support.auth import auth_section, bearer
from tests.support.procs import oneha_serve
from tests.support.worker import write_config

SECRET = "secret-for-tests"
API = {"Authorization": "Bearer api-token"}
SENDER_BUDGET = 3.0  # seconds: hook_templates/oneha-hook gives up on a request after this


def config_of(redis_url: str, key_prefix: str) -> dict:
    return {"redis_url": redis_url, "key_prefix": key_prefix, "secret_key": SECRET,
            "api": {"tokens": ["api-token"]}, "auth": auth_section(),
            "ingest": {"frontends": {n: {"keys": k} for n, k in KEYS.items()},
                       "alertmanager_token": "am-token"}}


def approval_token() -> str:
    return sign(SECRET, Claims("ap1", "plan-1", "inc-1", time.time() + 3600))


def api_requests() -> list[tuple[str, str, dict]]:
    token = approval_token()
    event = json.dumps(host_event()).encode()
    return [
        ("GET", "/v1/incidents", {}),
        ("GET", "/v1/incidents/inc-1", {}),
        ("POST", "/v1/incidents/inc-1/ack", {"json": {"by": "alice"}, "headers": API}),
        ("GET", "/v1/silences", {}),
        ("GET", "/v1/silences/s1", {}),
        ("POST", "/v1/silences", {"json": {"matchers": ["host=node07"], "duration": "1h",
                                           "author": "alice", "comment": "x"}, "headers": API}),
        ("DELETE", "/v1/silences/s1", {"headers": API}),
        ("GET", "/v1/events", {}),
        ("POST", "/v1/events", {"data": event, "headers": signed_headers(event)}),
        ("POST", "/v1/alertmanager", {"json": {"version": "4", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "X"}, "fingerprint": "f1",
             "startsAt": "2026-01-01T00:00:00Z"}]}, "headers": {"Authorization": "Bearer am-token"}}),
        ("GET", f"/v1/approvals/{token}", {}),
        ("POST", f"/v1/approvals/{token}", {"json": {"decision": "approve", "approver": "alice"}}),
        ("GET", "/metrics", {}),
        ("GET", "/readyz", {}),
    ]


PAGES = ["/", "/incidents/inc-1", "/silences", "/raft", "/events", "/audit"]


@pytest.fixture
def stopped(own_redis, key_prefix):
    """A gateway whose Redis has stopped (connections refused)."""
    client = signed_in(create_app(settings_from_dict(config_of(own_redis.url, key_prefix), env={})))
    assert client.get("/readyz").status_code == 200
    own_redis.stop()
    return client


def signed_in(app):
    """A test client sending an admin's bearer token (checking it needs no Redis)."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer("admin")["Authorization"]
    return client


def unavailable(response) -> str:
    assert response.status_code == 503, (response.status_code, response.get_data()[:400])
    body = response.get_json()
    assert set(body) == {"error", "detail"} and "Redis" in body["detail"], body
    return body["error"]


def test_every_api_path_answers_503_when_redis_is_stopped(stopped):
    for method, path, kw in api_requests():
        unavailable(stopped.open(path, method=method, **kw))


@pytest.mark.parametrize("path", PAGES)
def test_every_console_page_says_redis_is_unreachable(stopped, path):
    r = stopped.get(path)
    assert r.status_code == 503 and r.mimetype == "text/html"
    assert b"Redis is unreachable" in r.data and b"127.0.0.1" in r.data


def test_the_approval_page_and_its_form_say_redis_is_unreachable(stopped):
    token = approval_token()
    page = stopped.get(f"/approvals/{token}")
    assert page.status_code == 503 and b"Redis is unreachable" in page.data
    stopped.set_cookie("oneha_csrf", "nonce", path="/approvals/")
    form = stopped.post(f"/approvals/{token}", data={
        "decision": "approve", "approver": "alice", "csrf": csrf_token(SECRET, token, "nonce")})
    assert form.status_code == 503 and b"Redis is unreachable" in form.data


@contextmanager
def frozen(redis_server):
    """Redis stopped with SIGSTOP: it takes connections (the kernel does) and answers nothing."""
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


@pytest.fixture
def served(own_redis, key_prefix, tmp_path):
    """The real `oneha serve` (gunicorn, forked workers) on a private Redis."""
    config = write_config(config_of(own_redis.url, key_prefix), tmp_path)
    with oneha_serve(config, workers=1, threads=4) as port:
        yield port


def timed(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.monotonic()
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, data, time.monotonic() - started


def test_a_frozen_redis_is_a_503_within_the_senders_budget(served, own_redis):
    event = json.dumps(host_event()).encode()
    status, _, _ = timed(served, "POST", "/v1/events", event, signed_headers(event))
    assert status == 202  # the gateway now keeps connections to Redis
    again = json.dumps(host_event(event_id="9" * 32)).encode()
    requests = [("POST", "/v1/events", again, signed_headers(again)),
                ("GET", "/v1/incidents", b"", bearer()), ("GET", "/", b"", bearer()),
                ("GET", "/readyz", b"", {})]
    with frozen(own_redis):
        for method, path, body, headers in requests:
            status, data, took = timed(served, method, path, body, headers)
            assert status == 503 and took < SENDER_BUDGET, (path, status, took, data[:300])
    status, _, _ = timed(served, "POST", "/v1/events", again, signed_headers(again))
    assert status == 202  # thawed: the sender's retry goes through


def test_a_frozen_redis_is_a_503_on_a_fresh_connection_too(own_redis, key_prefix):
    client = signed_in(create_app(settings_from_dict(config_of(own_redis.url, key_prefix), env={})))
    with frozen(own_redis):
        started = time.monotonic()
        r = post(client, host_event())
        assert r.status_code == 503 and time.monotonic() - started < SENDER_BUDGET
        started = time.monotonic()
        unavailable(client.get("/v1/silences"))
        assert time.monotonic() - started < SENDER_BUDGET


CLI_COMMANDS = [["incidents"], ["incident", "inc-1"], ["ack", "inc-1", "--by", "alice"],
                ["silence", "list"], ["silence", "add", "host=node07", "--duration", "1h",
                                      "--comment", "x", "--author", "alice"],
                ["approve", "plan-1", "--as", "alice"], ["deny", "plan-1", "--as", "alice"],
                ["pause", "--as", "alice"], ["resume", "--as", "alice"], ["audit"], ["plans"],
                ["events"]]


@pytest.mark.parametrize("args", CLI_COMMANDS, ids=[" ".join(a[:2]) for a in CLI_COMMANDS])
def test_the_cli_says_in_one_line_that_redis_is_unreachable(tmp_path, args):
    config = write_config({"redis_url": "redis://127.0.0.1:9/0"}, tmp_path)
    result = CliRunner().invoke(main, ["-c", str(config), *args])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [result.output.strip()], result.output
    assert result.output.startswith("oneha: Redis at redis://127.0.0.1:9/0 is unreachable: ")
