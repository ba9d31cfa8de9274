"""`/v1/drills` and `/v1/heartbeats` over HTTP (Flask test client, real Redis): signed like
events; everything a client gets wrong is a 4xx with the JSON error shape, never a 5xx; a
refused signature from a configured front-end is remembered (the key mismatch), an unknown
front-end's is not."""

import json

import pytest

from gateway.adapters.store.readiness import ReadinessStore
from gateway.app import create_app
from gateway.runtime import Runtime
from tests.integration.test_ingest import make_settings, signed_headers


@pytest.fixture
def gw(redis_url, key_prefix):
    settings = make_settings(redis_url, key_prefix)
    rt = Runtime.from_settings(settings)
    return create_app(settings, rt).test_client(), ReadinessStore.of(rt)


def send(client, path, payload, **sign):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(path, data=body, headers=signed_headers(body, **sign))


def refused(response, status):
    assert response.status_code == status, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert set(body) == {"error", "detail"} and body["detail"]
    return body["error"]


def test_a_heartbeat_is_noted_with_what_is_still_spooled(gw):
    client, store = gw
    r = send(client, "/v1/heartbeats", {"frontend": "fe1", "sent_at": 1.5, "spooled": 2})
    assert r.status_code == 202 and r.get_json()["frontend"] == "fe1"
    assert store.heartbeats()["fe1"]["spooled"] == 2


@pytest.mark.parametrize("payload, status, error", [
    (b"not json", 400, "bad_json"),
    (b"[1, 2]", 400, "bad_json"),
    ({"frontend": "fe2"}, 400, "frontend_mismatch"),  # signed as fe1
    ({"spooled": -1}, 400, "bad_field"),
    ({"spooled": True}, 400, "bad_field"),
    ({"sent_at": "yesterday"}, 400, "bad_field"),
])
def test_bad_heartbeats_are_4xx(gw, payload, status, error):
    client, store = gw
    assert refused(send(client, "/v1/heartbeats", payload), status) == error
    assert store.heartbeats() == {}


def test_a_wrong_key_of_a_known_front_end_is_remembered_an_unknown_one_is_not(gw):
    client, store = gw
    assert refused(send(client, "/v1/heartbeats", {}, key="stale-key"), 401) == "bad_signature"
    assert refused(send(client, "/v1/heartbeats", {}, key="stale-key"), 401) == "bad_signature"
    assert store.bad_keys()["fe1"]["count"] == 2
    assert refused(send(client, "/v1/heartbeats", {}, frontend="intruder"), 401) == \
        "unknown_frontend"
    assert refused(send(client, "/v1/drills", {"drill_id": "0" * 16}, key="x"), 401) == \
        "bad_signature"
    assert set(store.bad_keys()) == {"fe1"} and store.bad_keys()["fe1"]["count"] == 3
    stale = send(client, "/v1/heartbeats", {}, ts=1)
    assert refused(stale, 401) == "stale_timestamp"


@pytest.mark.parametrize("payload, status, error", [
    ({}, 400, "bad_field"),
    ({"drill_id": "XYZ"}, 400, "bad_field"),
    ({"drill_id": 12}, 400, "bad_field"),
    ({"drill_id": "0123456789abcdef"}, 404, "unknown_drill"),  # never sent
    (b"{" * 5000, 400, "bad_json"),
])
def test_bad_or_unknown_drills_are_4xx(gw, payload, status, error):
    client, store = gw
    assert refused(send(client, "/v1/drills", payload), status) == error


def test_a_sent_drill_is_reached_once_by_the_first_front_end_that_brings_it(gw):
    client, store = gw
    store.save_drill("0123456789abcdef", {"id": "0123456789abcdef", "sent_at": 1.0})
    r = send(client, "/v1/drills", {"drill_id": "0123456789abcdef", "hook": "oneha-drill"})
    assert r.status_code == 202 and r.get_json()["reached_by"] == "fe1"
    again = send(client, "/v1/drills", {"drill_id": "0123456789abcdef"}, frontend="fe2",
                 key="fe2-key")
    assert again.status_code == 202 and again.get_json()["reached_by"] == "fe1"
    assert store.drill("0123456789abcdef")["frontend"] == "fe1"
