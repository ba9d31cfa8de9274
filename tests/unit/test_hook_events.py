import base64

import pytest

from gateway.domain.hook_events import content_digest, event_from_hook
from gateway.domain.json_bodies import parse_json_object
from gateway.errors import BadInput
from tests.support.samples import b64, host_xml, vm_xml

NOW = 1_764_092_400.0
EID = "0123456789abcdef0123456789abcdef"


def host_payload(state=3, **over):
    p = {"resource": "HOST", "id": 7, "name": "node07", "state": state, "lcm_state": None,
         "state_name": "ERROR", "lcm_state_name": None, "xml": b64(host_xml(state=state)),
         "hook": "oneha-host-error", "frontend": "fe1", "sent_at": NOW - 2, "event_id": EID}
    p.update(over)
    return p


def vm_payload(state=3, lcm_state=16, **over):
    p = {"resource": "VM", "id": 42, "name": "web-42", "state": state, "lcm_state": lcm_state,
         "xml": b64(vm_xml(state=state, lcm_state=lcm_state)), "hook": "oneha-vm-unknown",
         "frontend": "fe1", "sent_at": NOW - 1, "event_id": EID}
    p.update(over)
    return p


def refused(payload, frontend="fe1") -> BadInput:
    with pytest.raises(BadInput) as err:
        event_from_hook(payload, frontend, NOW)
    assert 400 <= err.value.status < 500 and err.value.detail
    return err.value


def test_host_in_error_fires_with_routing_labels():
    e = event_from_hook(host_payload(), "fe1", NOW)
    assert (e.resource, e.object_id, e.object_key, e.status, e.condition) == (
        "HOST", "7", "host:7", "firing", "HOST/ERROR")
    assert e.labels == {"resource": "HOST", "name": "node07", "id": "7", "state": "ERROR",
                        "frontend": "fe1", "host": "node07", "host_id": "7",
                        "cluster": "production", "cluster_id": "100", "team": "infra", "rack": "r12"}
    assert e.summary == "host node07 (#7) is ERROR"
    assert e.source == "hook" and e.hook == "oneha-host-error" and e.frontend == "fe1"
    assert e.xml == host_xml() and e.occurred_at == NOW - 2 and e.event_id == EID


def test_vm_in_unknown_fires_with_its_host_owner_and_operator_labels():
    e = event_from_hook(vm_payload(), "fe1", NOW)
    assert (e.object_key, e.status, e.condition, e.state, e.lcm_state) == (
        "vm:42", "firing", "VM/ACTIVE/UNKNOWN", 3, 16)
    assert e.labels == {"resource": "VM", "name": "web-42", "id": "42", "state": "ACTIVE/UNKNOWN",
                        "lcm_state": "UNKNOWN", "frontend": "fe1", "host": "node07", "host_id": "7",
                        "cluster_id": "100", "owner": "alice", "group": "webteam",
                        "team": "web", "tier": "gold"}
    assert e.summary == "VM web-42 (#42) on node07 is ACTIVE/UNKNOWN"


@pytest.mark.parametrize("state,lcm,status,condition", [
    (3, 16, "firing", "VM/ACTIVE/UNKNOWN"),
    (3, 36, "firing", "VM/ACTIVE/BOOT_FAILURE"),
    (3, 39, "firing", "VM/ACTIVE/PROLOG_FAILURE"),
    (3, 61, "firing", "VM/ACTIVE/PROLOG_MIGRATE_UNKNOWN_FAILURE"),
    (7, 0, "firing", "VM/FAILED"),
    (11, 0, "firing", "VM/CLONING_FAILURE"),
    (3, 3, "resolved", "VM/ACTIVE/RUNNING"),
    (3, 19, "resolved", "VM/ACTIVE/BOOT_UNKNOWN"),
    (8, 0, "resolved", "VM/POWEROFF"),
    (6, 0, "resolved", "VM/DONE"),
])
def test_vm_status_is_firing_only_for_failures(state, lcm, status, condition):
    e = event_from_hook(vm_payload(state, lcm), "fe1", NOW)
    assert (e.status, e.condition) == (status, condition)
    assert ("lcm_state" in e.labels) == (state == 3)


@pytest.mark.parametrize("state,status,condition", [
    (3, "firing", "HOST/ERROR"), (5, "firing", "HOST/MONITORING_ERROR"),
    (2, "resolved", "HOST/MONITORED"), (4, "resolved", "HOST/DISABLED"),
    (8, "resolved", "HOST/OFFLINE"), (0, "resolved", "HOST/INIT"),
])
def test_host_status_is_firing_only_in_error(state, status, condition):
    e = event_from_hook(host_payload(state), "fe1", NOW)
    assert (e.status, e.condition) == (status, condition)


def test_oneha_labels_follow_the_documented_rule():
    extra = {"ONEHA_ENV": "prod", "ONEHA_": "ignored", "ONEHA_EMPTY": "", "ONEHA_HOST": "not-me",
             "oneha_lower": "yes", "OTHER": "x"}
    e = event_from_hook(vm_payload(xml=b64(vm_xml(user_template=extra))), "fe1", NOW)
    assert e.labels["env"] == "prod" and e.labels["lower"] == "yes"
    assert e.labels["host"] == "node07"  # built-in labels win
    assert "empty" not in e.labels and "" not in e.labels and "other" not in e.labels


def test_sent_at_in_the_future_or_missing_falls_back_to_receive_time():
    assert event_from_hook(host_payload(sent_at=NOW + 60), "fe1", NOW).occurred_at == NOW
    assert event_from_hook(host_payload(sent_at=None), "fe1", NOW).occurred_at == NOW


def test_event_survives_the_json_round_trip():
    from gateway.domain.events import Event
    e = event_from_hook(vm_payload(), "fe1", NOW)
    assert Event.from_json(e.to_json()) == e


DTD = '<!DOCTYPE HOST [<!ELEMENT HOST ANY>]><HOST><ID>7</ID></HOST>'
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
          '<HOST><ID>7</ID><NAME>&lol3;</NAME></HOST>')
XXE = ('<?xml version="1.0"?><!DOCTYPE HOST [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       '<HOST><ID>7</ID><NAME>&xxe;</NAME></HOST>')


@pytest.mark.parametrize("over,error,words", [
    ({"resource": "IMAGE"}, "unknown_resource", "HOST, VM"),
    ({"resource": None}, "unknown_resource", "None"),
    ({"id": "7"}, "bad_field", "'id' must be int"),
    ({"id": True}, "bad_field", "'id' must be int"),
    ({"id": -1}, "bad_field", ">= 0"),
    ({"id": 8}, "id_mismatch", "HOST 7"),
    ({"state": 42}, "unknown_state", "42"),
    ({"xml": b64(host_xml(state=2))}, "state_mismatch", "XML"),
    ({"lcm_state": 3}, "bad_field", "lcm_state must be null"),
    ({"event_id": "xyz"}, "bad_field", "32 lowercase hex"),
    ({"event_id": EID.upper()}, "bad_field", "32 lowercase hex"),
    ({"event_id": None}, "bad_field", "'event_id' is required"),
    ({"name": 5}, "bad_field", "'name' must be str"),
    ({"sent_at": "now"}, "bad_field", "'sent_at' must be int or float"),
    ({"frontend": "fe2"}, "frontend_mismatch", "signed as 'fe1'"),
    ({"xml": "not base64!"}, "bad_base64", "base64"),
    ({"xml": 5}, "bad_field", "'xml' must be str"),
    ({"xml": b64("<HOST><ID>7</ID>")}, "bad_xml", "not well-formed"),
    ({"xml": b64(vm_xml())}, "resource_mismatch", "<VM>"),
    ({"xml": b64("<HOST><NAME>x</NAME></HOST>")}, "bad_xml", "ID"),
    ({"xml": base64.b64encode(b"<HOST>\xff</HOST>").decode()}, "bad_xml", "UTF-8"),
    ({"xml": b64(DTD)}, "forbidden_xml", "DTD"),
    ({"xml": b64(LAUGHS)}, "forbidden_xml", "refused"),
    ({"xml": b64(XXE)}, "forbidden_xml", "refused"),
    ({"xml": b64("<!doctype HOST><HOST><ID>7</ID></HOST>")}, "bad_xml", "not well-formed"),
    ({"xml": b64("<HOST><ID>7</ID><NAME>&xxe;</NAME></HOST>")}, "bad_xml", "undefined entity"),
    ({"xml": base64.b64encode(('<?xml version="1.0" encoding="UTF-16"?>' + DTD).encode("utf-16"))
      .decode()}, "bad_xml", "UTF-8"),
])
def test_bad_host_payloads_are_refused_with_a_reason(over, error, words):
    err = refused(host_payload(**over))
    assert err.error == error and words in err.detail, err


@pytest.mark.parametrize("over,error", [
    ({"lcm_state": None}, "bad_field"),
    ({"lcm_state": 14}, "unknown_state"),  # FAILURE: a removed placeholder
    ({"lcm_state": 55}, "unknown_state"),
    ({"lcm_state": 99}, "unknown_state"),
    ({"state": 12}, "unknown_state"),
])
def test_bad_vm_states_are_refused(over, error):
    assert refused(vm_payload(**over)).error == error


@pytest.mark.parametrize("body,words", [(b"{", "not valid UTF-8 JSON"), (b"[1]", "JSON object"),
                                        (b"\xff\xfe", "not valid")])
def test_body_must_be_a_json_object(body, words):
    with pytest.raises(BadInput) as err:
        parse_json_object(body)
    assert err.value.error == "bad_json" and words in err.value.detail


def test_digest_ignores_transport_fields_but_not_the_object():
    a = event_from_hook(host_payload(), "fe1", NOW)
    b = event_from_hook(host_payload(sent_at=NOW - 100, hook="other"), "fe1", NOW)
    c = event_from_hook(host_payload(xml=b64(host_xml(mon_time=1))), "fe1", NOW)
    assert content_digest(a) == content_digest(b) != content_digest(c)
