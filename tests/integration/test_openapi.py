"""The API's OpenAPI 3.1 document is the API: it names every `/v1` route of the Flask url_map
with its methods and nothing else; schemathesis, driven by it against the real `oneha serve`
(gunicorn), finds no server error; and every state-changing route of the whole app (pages too,
and any a blueprint adds later) refuses a request without valid credentials or CSRF token."""

from __future__ import annotations

import re
import time

import pytest

from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.web.auth import OPEN_BLUEPRINTS, OPEN_ENDPOINTS, SAFE_METHODS
from gateway.web.openapi import DOCUMENT
from tests.support.auth import TOKENS, auth_section, bearer, login
from tests.support.procs import oneha_serve
from tests.support.worker import write_config

SCHEMATHESIS_BUDGET = 60.0  # seconds, the whole run


@pytest.fixture
def config(redis_url, key_prefix):
    return {"redis_url": redis_url, "key_prefix": key_prefix, "secret_key": "openapi-test",
            "auth": auth_section(),
            "ingest": {"frontends": {"fe1": {"keys": ["k" * 32]}}, "alertmanager_token": "am"}}


@pytest.fixture
def app(config):
    return create_app(settings_from_dict(config, env={}))


def routes(app, prefix: str = "") -> set[tuple[str, str]]:
    """(OpenAPI-style path, method) of every rule under `prefix`."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            out |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_the_document_names_exactly_the_v1_routes(app):
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    served = routes(app, "/v1/")
    assert served - documented == set(), "add these routes to gateway/web/openapi.py PATHS"
    assert documented - served == set(), "documented in gateway/web/openapi.py, but not served"
    assert DOCUMENT["openapi"].startswith("3.1")


def test_the_document_is_served_to_a_viewer_only(app):
    client = app.test_client()
    assert client.get("/v1/openapi.json").status_code == 401
    served = client.get("/v1/openapi.json", headers=bearer("viewer"))
    assert served.status_code == 200 and served.get_json() == DOCUMENT


def _writes(app):
    """Every state-changing rule of the app: (endpoint, method, a concrete URL)."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        for method in sorted(rule.methods - SAFE_METHODS):
            url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
            yield rule.endpoint, method, url


def _guarded(endpoint: str) -> bool:
    return endpoint not in OPEN_ENDPOINTS and endpoint.split(".")[0] not in OPEN_BLUEPRINTS


def test_every_state_changing_route_refuses_missing_or_wrong_credentials(app):
    writes = list(_writes(app))
    guarded = [w for w in writes if _guarded(w[0])]
    assert len(guarded) >= 8, writes  # ack, silences, approvals, plans, logout, ... at least
    anonymous = app.test_client()
    for endpoint, method, url in guarded:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"},
                        {"Authorization": f"Bearer {TOKENS['admin']}x"}):
            r = anonymous.open(url, method=method, json={}, headers=headers)
            if url.startswith("/v1/") or headers:
                assert r.status_code == 401, (endpoint, method, headers, r.status_code)
            else:  # a page: to the login page, nothing done
                assert r.status_code == 303 and r.location.startswith("/login?next="), \
                    (endpoint, r.status_code)


def test_every_state_changing_route_refuses_a_session_without_its_csrf_token(app):
    admin = app.test_client()
    csrf = login(admin, "admin")
    for endpoint, method, url in _writes(app):
        if not _guarded(endpoint):
            continue
        wrong = csrf[:-1] + ("B" if csrf.endswith("A") else "A")
        for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": wrong},
                        {"X-CSRF-Token": "x" * 2000}):
            r = admin.open(url, method=method, json={}, headers=headers)
            assert r.status_code == 403, (endpoint, method, headers, r.status_code)
            assert b"csrf" in r.data, (endpoint, r.data[:200])
        form = admin.open(url, method=method, data={"csrf_token": csrf + "x"})
        assert form.status_code == 403, (endpoint, method, "form field")


def test_a_viewer_can_change_nothing(app):
    viewer = app.test_client()
    csrf = login(viewer, "viewer")
    for endpoint, method, url in _writes(app):
        view = app.view_functions[endpoint]
        if not _guarded(endpoint) or getattr(view, "oneha_role", None) == "viewer":
            continue
        r = viewer.open(url, method=method, json={}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403 and b"forbidden" in r.data, (endpoint, r.status_code)
        r = viewer.open(url, method=method, json={}, headers=bearer("viewer"))
        assert r.status_code == 403, (endpoint, method, "viewer token")


def test_the_routes_with_their_own_authentication_refuse_a_stranger(app):
    client = app.test_client()
    for endpoint, method, url in _writes(app):
        if _guarded(endpoint):
            continue
        r = client.open(url, method=method, json={"x": 1})
        assert r.status_code in (401, 403), (endpoint, r.status_code)  # unsigned / no token / csrf


def test_schemathesis_finds_no_server_error_in_the_served_api(config, tmp_path):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import (content_type_conformance,
                                                   response_schema_conformance,
                                                   status_code_conformance)
    from schemathesis.checks import not_a_server_error

    with oneha_serve(write_config(config, tmp_path)) as port:
        base = f"http://127.0.0.1:{port}"
        schema = schemathesis.openapi.from_url(f"{base}/v1/openapi.json", headers=bearer("admin"))
        failures: list[str] = []
        calls = 0
        started = time.monotonic()

        @settings(max_examples=25, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            nonlocal calls
            calls += 1
            try:
                case.call_and_validate(base_url=base, headers=bearer("admin"), timeout=10,
                                       checks=[not_a_server_error, status_code_conformance,
                                               content_type_conformance,
                                               response_schema_conformance])
            except AssertionError as exc:  # schemathesis' failure groups are AssertionErrors
                failures.append(f"{case.operation.label}: {str(exc)[:600]}")

        for result in schema.get_all_operations():
            operation = result.ok()
            if time.monotonic() - started > SCHEMATHESIS_BUDGET:
                pytest.fail(f"schemathesis ran out of its {SCHEMATHESIS_BUDGET:.0f}s budget")
            given(case=operation.as_strategy())(run)()
        took = time.monotonic() - started
    print(f"schemathesis: {calls} calls over {len(DOCUMENT['paths'])} paths in {took:.1f}s")
    assert not failures, "\n".join(failures[:10])
    assert calls >= 100 and took < SCHEMATHESIS_BUDGET
