import copy

import pytest

from gateway.domain.alertmanager import events_from_webhook
from gateway.errors import BadInput

PAYLOAD = {
    "version": "4", "groupKey": '{}:{alertname="NodeDown"}', "truncatedAlerts": 0,
    "status": "firing", "receiver": "oneha", "groupLabels": {"alertname": "NodeDown"},
    "commonLabels": {"alertname": "NodeDown"}, "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "NodeDown", "instance": "node07:9100",
                                        "one_host": "node07", "severity": "critical"},
         "annotations": {"summary": "node07 does not answer\nsince 2 minutes"},
         "startsAt": "2026-11-25T17:45:20.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus:9090/graph", "fingerprint": "3f2c1a9b8e7d6c5a"},
        {"status": "resolved", "labels": {"alertname": "DiskFull", "host": "node08"},
         "annotations": {}, "startsAt": "2026-11-25T17:00:00Z",
         "endsAt": "2026-11-25T17:30:00+00:00", "generatorURL": "", "fingerprint": "aa00bb11cc22dd33"},
    ],
}


def test_each_alert_becomes_an_event_that_groups_with_its_host():
    firing, resolved = events_from_webhook(PAYLOAD)
    assert (firing.resource, firing.object_key, firing.status, firing.condition, firing.name) == (
        "ALERT", "alert:3f2c1a9b8e7d6c5a", "firing", "ALERT/NodeDown", "NodeDown")
    assert firing.labels == {"alertname": "NodeDown", "instance": "node07:9100",
                             "one_host": "node07", "severity": "critical", "resource": "ALERT",
                             "host": "node07"}
    assert firing.summary == "node07 does not answer" and firing.source == "alertmanager"
    assert firing.occurred_at == pytest.approx(1795628720.123456)
    assert resolved.status == "resolved" and resolved.labels["host"] == "node08"
    assert resolved.summary == "DiskFull is resolved"
    assert resolved.occurred_at == 1795627800.0  # endsAt


def test_event_ids_are_deterministic_and_ignore_a_moving_ends_at_while_firing():
    again = copy.deepcopy(PAYLOAD)
    again["alerts"][0]["endsAt"] = "2026-11-25T17:50:00Z"  # Prometheus moved it forward
    again["alerts"][0]["annotations"]["summary"] = "changed"
    a, b = events_from_webhook(PAYLOAD)[0], events_from_webhook(again)[0]
    assert a.event_id == b.event_id and len(a.event_id) == 32


def test_resolve_and_next_episode_get_their_own_ids():
    firing = events_from_webhook(PAYLOAD)[0]
    resolved = copy.deepcopy(PAYLOAD)
    resolved["alerts"][0].update(status="resolved", endsAt="2026-11-25T18:00:00Z")
    later = copy.deepcopy(PAYLOAD)
    later["alerts"][0]["startsAt"] = "2026-11-26T09:00:00Z"
    ids = {firing.event_id, events_from_webhook(resolved)[0].event_id,
           events_from_webhook(later)[0].event_id}
    assert len(ids) == 3


def test_an_alert_without_a_host_label_stays_an_alert_of_its_own():
    p = copy.deepcopy(PAYLOAD)
    p["alerts"] = [p["alerts"][0]]
    del p["alerts"][0]["labels"]["one_host"]
    [e] = events_from_webhook(p)
    assert "host" not in e.labels


def test_empty_alert_list_is_nothing_to_do():
    assert events_from_webhook({**PAYLOAD, "alerts": []}) == []


@pytest.mark.parametrize("mutate,words", [
    (lambda p: p.update(version="3"), "version 4"),
    (lambda p: p.update(alerts={"a": 1}), "'alerts' must be a list"),
    (lambda p: p["alerts"].__setitem__(0, "x"), "alerts[0] must be an object"),
    (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status"),
    (lambda p: p["alerts"][0].update(labels={"a": 1}), "alerts[0].labels"),
    (lambda p: p["alerts"][0].pop("labels"), "alerts[0].labels"),
    (lambda p: p["alerts"][1].update(annotations=["x"]), "alerts[1].annotations"),
    (lambda p: p["alerts"][0].update(fingerprint="../x"), "fingerprint"),
    (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt"),
    (lambda p: p["alerts"][1].update(endsAt=None), "alerts[1].endsAt"),
    (lambda p: p["alerts"][1].update(endsAt="2026-13-45T00:00:00Z"), "alerts[1].endsAt"),
])
def test_malformed_payloads_are_refused_naming_the_field(mutate, words):
    p = copy.deepcopy(PAYLOAD)
    mutate(p)
    with pytest.raises(BadInput) as err:
        events_from_webhook(p)
    assert err.value.status == 400 and err.value.error == "bad_field"
    assert words in err.value.detail


def test_an_alert_message_says_what_the_alert_says_and_that_oneha_only_notifies():
    from gateway.domain.correlation import Context, decide
    from gateway.domain.messages import render
    from gateway.domain.notifications import Notification
    from gateway.domain.story import summary

    payload = copy.deepcopy(PAYLOAD)
    payload["alerts"][0]["annotations"] = {
        "summary": "Host kvm07 is down",
        "description": "node_exporter on kvm07 has not answered for 2 minutes.\nCheck power."}
    event = events_from_webhook(payload)[0]
    incident = decide(event, Context(), event.occurred_at).save[0]
    assert incident.title == "Host kvm07 is down (host node07)"
    n = Notification("g:firing:1:ops", "ops", "firing", summary(incident), event.occurred_at)
    chat = render(n, "chat")
    assert chat.title == "[FIRING] Host kvm07 is down (host node07)"
    assert chat.body.splitlines()[:3] == [
        "Host kvm07 is down", "node_exporter on kvm07 has not answered for 2 minutes.",
        "Check power."]
    mail = render(n, "mail").body
    assert "oneha only notifies for this alert" in mail and "route's policy" not in mail
    assert "Details:\n  Host kvm07 is down\n  node_exporter on kvm07" in mail
    assert "is in ALERT/NodeDown" not in chat.body + mail  # the old, unreadable wording
