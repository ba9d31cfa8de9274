"""Nothing a client sends gives a 5xx: deep JSON, odd tokens and out-of-range ids are refused
with a 4xx and the JSON error shape (Flask test client, real Redis)."""

from __future__ import annotations

import json

import pytest

from gateway.app import create_app
from gateway.config import settings_from_dict
from tests.integration.test_ingest import KEYS, host_event, post, vm_event
from tests.support.auth import auth_section, bearer
from tests.support.samples import b64, host_xml

API_TOKEN = "api-token-for-tests"
AM_TOKEN = "am-token-for-tests"
DEEP = b"[" * 100_000 + b"]" * 100_000  # 200 KB: Python's json module recurses once per level


@pytest.fixture
def client(redis_url, key_prefix):
    settings = settings_from_dict({
        "redis_url": redis_url, "key_prefix": key_prefix, "api": {"tokens": [API_TOKEN]},
        "ingest": {"frontends": {n: {"keys": k} for n, k in KEYS.items()},
                   "alertmanager_token": AM_TOKEN}, "auth": auth_section()}, env={})
    client = create_app(settings).test_client()
    # An approver's token unless a test says otherwise: what is measured is past the login gate.
    client.environ_base["HTTP_AUTHORIZATION"] = bearer("approver")["Authorization"]
    return client


def refused(response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert set(body) == {"error", "detail"} and body["detail"]
    return body["error"]


JSON_ENDPOINTS = [
    ("/v1/approvals/anything", {}),  # the approver's token of the fixture
    ("/v1/silences", {"Authorization": f"Bearer {API_TOKEN}"}),
    ("/v1/incidents/inc-1/ack", {"Authorization": f"Bearer {API_TOKEN}"}),
    ("/v1/alertmanager", {"Authorization": f"Bearer {AM_TOKEN}"}),
]


@pytest.mark.parametrize("nesting", [DEEP, b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000])
def test_deeply_nested_json_is_bad_json_on_a_signed_event(client, nesting):
    assert refused(post(client, nesting)) == "bad_json"


@pytest.mark.parametrize("path,headers", JSON_ENDPOINTS)
@pytest.mark.parametrize("nesting", [DEEP, b"[" * 5000 + b"]" * 5000])
def test_deeply_nested_json_is_bad_json_everywhere(client, path, headers, nesting):
    r = client.post(path, data=nesting, headers={**headers, "Content-Type": "application/json"})
    assert refused(r) == "bad_json"


@pytest.mark.parametrize("path,headers", JSON_ENDPOINTS)
def test_a_body_over_the_size_limit_is_refused_before_it_is_parsed(client, path, headers):
    body = json.dumps({"comment": "x" * (300 * 1024)})
    r = client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
    assert refused(r, 413) == "request_entity_too_large"


@pytest.mark.parametrize("path,headers", JSON_ENDPOINTS)
@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_numbers_json_does_not_have_are_bad_json(client, path, headers, constant):
    body = b'{"ends_at": ' + constant + b', "decision": "approve", "by": "x", "alerts": []}'
    r = client.post(path, data=body, headers={**headers, "Content-Type": "application/json"})
    assert refused(r) == "bad_json"


def test_json_nested_as_deep_as_real_bodies_go_is_still_read(client):
    matchers = {"matchers": ["host=node07"], "duration": "1h", "author": "alice",
                "comment": "maintenance", "extra": [[[[[[[[[[["deep but fine"]]]]]]]]]]]}
    r = client.post("/v1/silences", json=matchers, headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert r.status_code == 201, r.get_json()


NON_ASCII_TOKEN = "eyJhIjoiYXAxIn0.%C3%A9%C3%A9"  # the signature part is "éé"
TOKENS = [(NON_ASCII_TOKEN, 400, "malformed"), ("%C3%A9.%C3%A9", 400, "malformed"),
          ("%F0%9F%98%80.%F0%9F%98%80", 400, "malformed"), ("%ED%A0%80.x", 400, "malformed"),
          ("eyJhIjoiYXAxIn0.%00", 403, "forged"), ("eyJhIjoiYXAxIn0.%20", 403, "forged")]


@pytest.mark.parametrize("token,status,error", TOKENS)
def test_any_token_text_is_a_4xx_on_the_approval_api(client, token, status, error):
    assert refused(client.get(f"/v1/approvals/{token}"), status) == error
    assert refused(client.post(f"/v1/approvals/{token}",
                               json={"decision": "approve", "approver": "eve"}), status) == error


@pytest.mark.parametrize("token,status,error", TOKENS)
def test_any_token_text_is_a_4xx_on_the_approval_page(client, token, status, error):
    page = client.get(f"/approvals/{token}")
    assert page.status_code == status and b"approval link" in page.data


@pytest.mark.parametrize("cookie,csrf", [("n\u00e9", "n\u00e9.sig\u00e9"), ("n", "n.\u00e9"),
                                         ("\u00e9", "n.x")])
def test_any_csrf_text_is_a_4xx_on_the_approval_form(client, cookie, csrf):
    client.set_cookie("oneha_csrf", cookie, path="/approvals/")
    form = client.post(f"/approvals/{NON_ASCII_TOKEN}",
                       data={"decision": "approve", "approver": "eve", "csrf": csrf})
    assert form.status_code == 403 and b"CSRF" in form.data


@pytest.mark.parametrize("bad_id", [10**30, 2**31, -1, True, 7.0])
def test_an_object_id_outside_opennebulas_range_is_refused(client, bad_id):
    body = host_event(id=7)
    body["id"] = bad_id
    body["xml"] = b64(host_xml(7, "node07", 3).replace("<ID>7</ID>", f"<ID>{bad_id}</ID>", 1))
    assert refused(post(client, body)) == "bad_field"


def test_the_largest_opennebula_id_is_accepted(client):
    top = 2**31 - 1
    body = vm_event(id=top)
    assert post(client, body).status_code == 202
