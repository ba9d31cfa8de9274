"""POST /v1/alertmanager against a real Redis: bearer token, recorded through the same store as
hook events (log, dedup, queue), duplicates on Alertmanager's retries, 4xx leaving no trace."""

from __future__ import annotations

import copy
import json

import pytest

from gateway.app import create_app
from gateway.config import settings_from_dict
from tests.integration.test_ingest import Traces
from tests.unit.test_alertmanager import PAYLOAD

TOKEN = "am-token-0123456789"


@pytest.fixture
def settings(redis_url, key_prefix):
    return settings_from_dict({"redis_url": redis_url, "key_prefix": key_prefix,
                               "ingest": {"alertmanager_token": TOKEN}}, env={})


@pytest.fixture
def traces(settings):
    t = Traces(settings)
    yield t
    t.cleanup()


@pytest.fixture
def client(settings):
    return create_app(settings).test_client()


def send(client, payload, token=TOKEN, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/v1/alertmanager", data=raw if raw is not None else json.dumps(payload),
                       headers=headers)


def test_alerts_are_recorded_queued_and_retries_are_duplicates(client, traces):
    r = send(client, PAYLOAD)
    assert r.status_code == 202, r.json
    assert r.json["accepted"] == 2 and r.json["duplicates"] == 0
    logged = traces.log()
    assert [e.object_key for e in logged] == ["alert:3f2c1a9b8e7d6c5a", "alert:aa00bb11cc22dd33"]
    assert logged[0].labels["host"] == "node07" and logged[0].source == "alertmanager"
    assert [e.object_key for e in traces.pending()] == [e.object_key for e in logged]
    assert traces.wakeups() == ["oneha.apply_pending"]  # one wake-up for both

    r = send(client, PAYLOAD)  # Alertmanager re-sends the group: nothing is processed twice
    assert r.status_code == 202 and r.json["accepted"] == 0 and r.json["duplicates"] == 2
    assert all(a["duplicate"] for a in r.json["events"])
    assert len(traces.log()) == 2 and len(traces.pending()) == 2 and len(traces.queued()) == 1
    assert traces.counters() == {"accepted:ALERT": 2, "duplicate": 2}


def test_a_resolve_is_a_new_event(client, traces):
    send(client, PAYLOAD)
    resolved = copy.deepcopy(PAYLOAD)
    resolved["alerts"] = [resolved["alerts"][0]]
    resolved["alerts"][0].update(status="resolved", endsAt="2026-11-25T18:00:00Z")
    r = send(client, resolved)
    assert r.status_code == 202 and r.json["accepted"] == 1
    assert [e.status for e in traces.log()] == ["firing", "resolved", "resolved"]


@pytest.mark.parametrize("token,status,error", [
    (None, 401, "unauthorized"), ("wrong", 401, "unauthorized")])
def test_a_missing_or_wrong_token_is_refused_and_nothing_recorded(client, traces, token, status,
                                                                  error):
    r = send(client, PAYLOAD, token=token)
    assert r.status_code == status and r.json["error"] == error and r.json["detail"]
    assert traces.keys() == set() and traces.queued() == []


def test_malformed_payload_is_refused_and_nothing_recorded(client, traces):
    bad = copy.deepcopy(PAYLOAD)
    bad["alerts"][1]["startsAt"] = "soon"  # the first alert is fine: still nothing is recorded
    r = send(client, bad)
    assert r.status_code == 400 and "alerts[1].startsAt" in r.json["detail"]
    r = send(client, None, raw=b"{not json")
    assert r.status_code == 400 and r.json["error"] == "bad_json"
    assert traces.keys() == set() and traces.queued() == []


def test_without_a_configured_token_the_endpoint_is_off(redis_url, key_prefix):
    settings = settings_from_dict({"redis_url": redis_url, "key_prefix": key_prefix}, env={})
    r = send(create_app(settings).test_client(), PAYLOAD)
    assert r.status_code == 404 and r.json["error"] == "not_enabled"
    assert "ingest.alertmanager_token" in r.json["detail"]
