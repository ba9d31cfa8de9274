"""`/v1/incidents…` and `/v1/silences…` on a real Redis, and the `oneha` incident commands."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from gateway.adapters.store.incidents import IncidentStore
from gateway.flows.incident import IncidentFlow
from gateway.app import create_app
from gateway.cli import main
from gateway.config import settings_from_dict
from gateway.domain.events import Event
from gateway.runtime import Runtime
from tests.support.auth import auth_section, bearer, login
from tests.support.worker import write_config


@pytest.fixture
def config(key_prefix, redis_url):
    return {"redis_url": redis_url, "key_prefix": key_prefix,
            "receivers": [{"name": "ops-mail", "urls": ["mailto://127.0.0.1:1?to=a@b.c"]}],
            "route": {"receiver": "ops-mail", "group_wait": "5s"},
            "api": {"tokens": [API_TOKEN]}, "auth": auth_section()}


@pytest.fixture
def settings(config):
    return settings_from_dict(config, env={})


@pytest.fixture
def store(settings):
    return IncidentStore(Runtime.from_settings(settings))


API_TOKEN = "api-token-for-tests"


@pytest.fixture
def client(settings):
    c = create_app(settings).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = bearer("approver")["Authorization"]
    return c


def test_reads_need_a_viewer_and_writes_an_approver(settings, store):
    iid = open_incident(store)
    anonymous = create_app(settings).test_client()
    assert error_of(anonymous.get(f"/v1/incidents/{iid}"), 401) == "unauthorized"
    assert anonymous.get("/v1/incidents").headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(anonymous.post(f"/v1/incidents/{iid}/ack", json={"by": "eve"}), 401) \
        == "unauthorized"
    wrong = {"Authorization": "Bearer nope"}
    assert error_of(anonymous.post("/v1/silences", json={"matchers": ["host=x"], "duration": "1h",
                                                         "author": "eve", "comment": "x"},
                                   headers=wrong), 401) == "unauthorized"
    assert anonymous.get(f"/v1/incidents/{iid}", headers=bearer("viewer")).status_code == 200
    assert error_of(anonymous.post(f"/v1/incidents/{iid}/ack", json={},
                                   headers=bearer("viewer")), 403) == "forbidden"
    assert store.get(iid).state == "firing" and store.list_silences() == []
    # A plain token of api.tokens (older configs) acts as an approver.
    legacy = anonymous.post(f"/v1/incidents/{iid}/ack", json={"by": "carol"},
                            headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert legacy.status_code == 200 and legacy.get_json()["acknowledged_by"] == "carol (token api)"


def test_a_logged_in_write_needs_the_sessions_csrf_token(settings, store):
    iid = open_incident(store)
    browser = create_app(settings).test_client()
    csrf = login(browser, "approver")
    assert browser.get(f"/v1/incidents/{iid}").status_code == 200
    assert error_of(browser.post(f"/v1/incidents/{iid}/ack", json={}), 403) == "csrf"
    assert error_of(browser.post(f"/v1/incidents/{iid}/ack", json={},
                                 headers={"X-CSRF-Token": csrf[:-2] + "xx"}), 403) == "csrf"
    assert store.get(iid).state == "firing"
    done = browser.post(f"/v1/incidents/{iid}/ack", json={"by": "someone else"},
                        headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200 and done.get_json()["acknowledged_by"] == "approver"


def open_incident(store, vm_id=42):
    e = Event(event_id=f"{vm_id:032x}", source="test", resource="VM", object_id=str(vm_id),
              name=f"web-{vm_id}", status="firing", condition="VM/ACTIVE/UNKNOWN",
              occurred_at=time.time(), state=3, lcm_state=16, labels={"host": "node07"})
    return IncidentFlow(store.rt).apply_event(e).decision.incident_id


def error_of(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "detail"} and body["detail"]
    return body["error"]


def test_list_and_show_incidents_with_timeline(client, store):
    iid = open_incident(store)
    listed = client.get("/v1/incidents").get_json()["incidents"]
    assert [i["id"] for i in listed] == [iid]
    one = client.get(f"/v1/incidents/{iid}").get_json()
    assert one["title"] == "VM web-42 (42) is ACTIVE/UNKNOWN on host node07"
    assert [e["kind"] for e in one["timeline"]][:2] == ["event", "transition"]
    assert error_of(client.get("/v1/incidents/nope"), 404) == "not_found"
    assert error_of(client.get("/v1/incidents?limit=0"), 400) == "bad_query"


def test_ack_records_who_and_refuses_a_second_ack(client, store):
    iid = open_incident(store)
    r = client.post(f"/v1/incidents/{iid}/ack", json={"comment": "on it", "by": "alice"})
    who = "alice (token test-approver)"
    assert r.status_code == 200 and r.get_json()["acknowledged_by"] == who
    assert "on it" in store.timeline(iid)[-1].text and store.timeline(iid)[-1].actor == who
    assert error_of(client.post(f"/v1/incidents/{iid}/ack", json={"by": "bob"}), 409) == "conflict"
    assert error_of(client.post("/v1/incidents/nope/ack", json={"by": "bob"}), 404) == "not_found"
    assert error_of(client.post(f"/v1/incidents/{iid}/ack", data="by=bob"), 415) \
        == "unsupported_media_type"


def test_silence_crud(client, store):
    r = client.post("/v1/silences", json={"matchers": ["host=node07"], "duration": "1h",
                                          "author": "alice", "comment": "rack work"})
    assert r.status_code == 201
    sid = r.get_json()["id"]
    assert r.get_json()["state"] == "active" and r.get_json()["matchers"] == ['host="node07"']
    assert [s["id"] for s in client.get("/v1/silences").get_json()["silences"]] == [sid]
    assert client.get(f"/v1/silences/{sid}").get_json()["author"] == "alice (token test-approver)"
    gone = client.delete(f"/v1/silences/{sid}?by=bob").get_json()
    assert gone["state"] == "expired" and gone["expired_by"] == "bob (token test-approver)"
    assert client.get("/v1/silences").get_json()["silences"] == []
    assert len(client.get("/v1/silences?all=1").get_json()["silences"]) == 1
    assert error_of(client.delete("/v1/silences/nope"), 404) == "not_found"


@pytest.mark.parametrize("body,error", [
    ({"matchers": ["host=~("], "duration": "1h", "author": "a", "comment": "c"}, "bad_silence"),
    ({"matchers": [], "duration": "1h", "author": "a", "comment": "c"}, "bad_silence"),
    ({"matchers": "host=a", "duration": "1h", "author": "a", "comment": "c"}, "bad_field"),
    ({"matchers": ["host=a"], "author": "a", "comment": "c"}, "missing_field"),
    ({"matchers": ["host=a"], "duration": "soon", "author": "a", "comment": "c"}, "bad_field"),
    ({"matchers": ["host=a"], "ends_at": "tomorrow", "author": "a", "comment": "c"}, "bad_field"),
    ({"matchers": ["host=a"], "duration": "1h", "author": "a"}, "bad_silence"),
])
def test_bad_silences_are_4xx_and_record_nothing(client, store, body, error):
    assert error_of(client.post("/v1/silences", json=body), 400) == error
    assert store.list_silences(include_expired=True) == []


def test_cli_ack_silence_and_routes_test(config, tmp_path, store):
    path = write_config(config, tmp_path)
    run = CliRunner().invoke
    iid = open_incident(store, 7)
    out = run(main, ["-c", str(path), "incidents"])
    assert out.exit_code == 0 and iid in out.output
    out = run(main, ["-c", str(path), "ack", iid, "--by", "carol", "-m", "looking"])
    assert out.exit_code == 0, out.output
    assert store.get(iid).acknowledged_by == "carol"
    out = run(main, ["-c", str(path), "incident", iid])
    assert "acknowledged by carol" in out.output and "[transition]" in out.output
    out = run(main, ["-c", str(path), "silence", "add", "host=node07", "-m", "work", "-a", "dan"])
    assert out.exit_code == 0, out.output
    sid = out.output.split()[1]
    assert "dan" in run(main, ["-c", str(path), "silence", "list"]).output
    assert run(main, ["-c", str(path), "silence", "expire", sid]).exit_code == 0
    assert store.get_silence(sid).state(time.time()) == "expired"
    bad = run(main, ["-c", str(path), "silence", "add", "host=~(", "-m", "x"])
    assert bad.exit_code != 0 and "bad regular expression" in bad.output
    out = run(main, ["-c", str(path), "routes", "test", "resource=VM", "host=node07"])
    assert out.exit_code == 0 and "-> ops-mail" in out.output and "root|host=node07" in out.output
    bad = run(main, ["-c", str(path), "routes", "test", "resource"])
    assert bad.exit_code != 0 and "LABEL=VALUE" in bad.output
