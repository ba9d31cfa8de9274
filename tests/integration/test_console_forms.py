"""The console's forms on a real Redis, through the login gate: silences created and expired by
an approver (recorded with their name), refused for a viewer, without the session's CSRF token,
and with bad input (a 400 page that says why, nothing recorded); the configuration page masks
secrets and is an admin's."""

from __future__ import annotations

import re

import pytest

from gateway.adapters.store.incidents import IncidentStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tests.support.auth import auth_section, login

SECRET = "s3cr3t-t0ken-in-the-url"


@pytest.fixture
def settings(key_prefix, redis_url):
    return settings_from_dict({
        "redis_url": redis_url, "key_prefix": key_prefix, "auth": auth_section(),
        "receivers": [{"name": "ops", "language": "pt-BR",
                       "urls": [f"json://127.0.0.1:9/hook?+X-Token={SECRET}"]}]}, env={})


@pytest.fixture
def store(settings):
    return IncidentStore(Runtime.from_settings(settings))


def client_as(settings, role):
    client = create_app(settings).test_client()
    return client, login(client, role)


def test_an_approver_creates_and_expires_a_silence_under_their_name(settings, store):
    client, csrf = client_as(settings, "approver")
    created = client.post("/silences", data={"csrf_token": csrf, "author": "mallory",
                                             "matchers": "host=node07\nseverity=critical",
                                             "duration": "90m", "comment": "disk swap"})
    assert created.status_code == 302
    (s,) = store.list_silences()
    assert [str(m) for m in s.matchers] == ['host="node07"', 'severity="critical"']
    assert s.author == "approver" and s.comment == "disk swap"  # the login's name, not typed
    assert round(s.ends_at - s.starts_at) == 5400
    page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert f"Silence {s.id} created" in page and 'data-state="active"' in page

    expired = client.post(f"/silences/{s.id}/expire", data={"csrf_token": csrf})
    assert expired.status_code == 302
    assert store.get_silence(s.id).state(store.rt.clock()) == "expired"
    assert store.get_silence(s.id).expired_by == "approver"
    assert client.post("/silences/nope/expire", data={"csrf_token": csrf}).status_code == 404


@pytest.mark.parametrize("form, why", [
    ({"matchers": "", "duration": "2h"}, "give at least one matcher"),
    ({"matchers": "host=node07", "duration": "soon"}, "duration"),
    ({"matchers": "host=node07", "duration": "0s"}, "longer than 0"),
    ({"matchers": "not a matcher", "duration": "2h"}, "not a matcher"),
])
def test_a_bad_silence_is_a_400_that_says_why_and_records_nothing(settings, store, form, why):
    client, csrf = client_as(settings, "approver")
    answer = client.post("/silences", data={"csrf_token": csrf, **form})
    assert answer.status_code == 400
    problem = re.search(r'id="silence-problem">([^<]*)<', answer.get_data(as_text=True))
    assert problem and why in problem.group(1), problem
    assert store.list_silences() == []


def test_a_viewer_and_a_forged_form_change_nothing(settings, store):
    viewer, csrf = client_as(settings, "viewer")
    assert viewer.get("/silences").status_code == 200
    assert viewer.post("/silences", data={"csrf_token": csrf, "matchers": "host=a",
                                          "duration": "1h"}).status_code == 403
    approver, _csrf = client_as(settings, "approver")
    assert approver.post("/silences", data={"matchers": "host=a", "duration": "1h"}
                         ).status_code == 403  # no CSRF token
    assert approver.post("/silences", data={"csrf_token": "forged", "matchers": "host=a",
                                            "duration": "1h"}).status_code == 403
    assert store.list_silences() == []


def test_the_configuration_page_is_an_admins_and_shows_no_secret(settings):
    approver, csrf = client_as(settings, "approver")
    assert approver.get("/config").status_code == 403
    assert approver.post("/config/test/ops", data={"csrf_token": csrf}).status_code == 403
    admin, csrf = client_as(settings, "admin")
    page = admin.get("/config", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert SECRET not in page and "X-Token=****" in page and "Destinatários" in page
    tested = admin.post("/config/test/ops", data={"csrf_token": csrf})
    assert tested.status_code == 200  # the receiver is down: the page says so, no 5xx
    text = tested.get_data(as_text=True)
    assert "0 of 1 URL(s) delivered" in text and SECRET not in text
    assert admin.post("/config/test/nobody", data={"csrf_token": csrf}).status_code == 404


def test_an_approver_acknowledges_from_the_incident_page_and_a_viewer_sees_no_button(
        settings, store):
    import time

    from gateway.domain.events import Event
    from gateway.flows.incident import IncidentFlow
    now = time.time()
    flow = IncidentFlow(store.rt, send=lambda *a, **k: None)
    flow.apply_event(Event(event_id="e1", source="test", resource="HOST", object_id="7",
                           name="node07", status="firing", condition="HOST/ERROR",
                           occurred_at=now, state=3,
                           labels={"resource": "HOST", "host": "node07", "host_id": "7"}),
                     now=now)
    (inc,) = store.list(open_only=True, limit=5)
    viewer, _csrf = client_as(settings, "viewer")
    assert 'id="ack"' not in viewer.get(f"/incidents/{inc.id}").get_data(as_text=True)

    approver, csrf = client_as(settings, "approver")
    page = approver.get(f"/incidents/{inc.id}").get_data(as_text=True)
    assert 'id="ack"' in page and "/silences?matchers=host%3Dnode07" in page
    assert 'value="host=node07"' not in approver.get("/silences").get_data(as_text=True)
    assert "host=node07</textarea>" in approver.get("/silences?matchers=host%3Dnode07"
                                                    ).get_data(as_text=True)
    acked = approver.post(f"/incidents/{inc.id}/ack", data={"csrf_token": csrf})
    assert acked.status_code == 302 and acked.headers["Location"].endswith(f"/incidents/{inc.id}")
    found = store.get(inc.id)
    assert found.state == "acknowledged" and found.acknowledged_by == "approver"
    assert approver.post(f"/incidents/{inc.id}/ack", data={"csrf_token": csrf}).status_code == 409
    assert approver.post("/incidents/nope/ack", data={"csrf_token": csrf}).status_code == 404
