"""The incident model: create, join, merge, update, resolve, maintenance, transitions (pure)."""

import pytest

from gateway.domain.events import Event
from gateway.domain.correlation import Context, decide, event_labels, object_state
from gateway.domain.incidents import Incident, ObjectState, TransitionError, transition
from gateway.domain.story import summary

T0 = 1_764_000_000.0
_n = iter(range(10**6))


def vm_event(vm_id, status="firing", host="node07", lcm=16, t=T0, event_id=None, **labels):
    state_lcm = {16: "UNKNOWN", 3: "RUNNING", 36: "BOOT_FAILURE"}[lcm]
    return Event(event_id=event_id or f"{next(_n):032x}", source="test", resource="VM",
                 object_id=str(vm_id), name=f"vm{vm_id}", status=status,
                 condition=f"VM/ACTIVE/{state_lcm}", occurred_at=t, state=3, lcm_state=lcm,
                 labels={"host": host, "host_id": "7", **labels})


def host_event(status="firing", state=3, name="node07", t=T0, event_id=None):
    cond = {3: "ERROR", 2: "MONITORED", 4: "DISABLED", 8: "OFFLINE"}[state]
    return Event(event_id=event_id or f"{next(_n):032x}", source="test", resource="HOST",
                 object_id="7", name=name, status=status, condition=f"HOST/{cond}",
                 occurred_at=t, state=state)


def only(outcome) -> Incident:
    assert len(outcome.save) == 1
    return outcome.save[0]


def test_first_failure_opens_an_incident_with_reason_and_remediation_hook():
    out = decide(host_event(), Context(), T0)
    inc = only(out)
    assert out.decision.action == "created"
    assert inc.state == "firing" and inc.key == "host:7" and inc.labels["host"] == "node07"
    assert inc.title == "Host node07 is in ERROR"
    assert out.plan_remediation == (inc.id,)
    assert [e.kind for e in out.timeline[inc.id]] == ["event", "transition"]


def test_incident_id_is_the_same_when_the_first_event_is_processed_twice():
    e = host_event()
    assert only(decide(e, Context(), T0)).id == only(decide(e, Context(), T0 + 5)).id


def test_vm_event_joins_the_open_incident_of_its_host():
    host_inc = only(decide(host_event(), Context(), T0))
    out = decide(vm_event(42), Context(host_incident=host_inc), T0 + 1)
    inc = only(out)
    assert out.decision.action == "joined" and "node07" in out.decision.reason
    assert inc.id == host_inc.id and [o.key for o in inc.affected] == ["vm:42"]
    assert inc.title == "Host node07 is in ERROR — 1 VM affected"
    assert out.plan_remediation == (inc.id,)


def test_host_incident_absorbs_vm_incidents_that_arrived_first():
    vm_inc = only(decide(vm_event(1), Context(), T0))
    out = decide(host_event(), Context(vm_incidents_on_host=(vm_inc,)), T0 + 1)
    host_inc, merged = out.save
    assert out.decision.action == "merged"
    assert set(host_inc.objects) == {"host:7", "vm:1"}
    assert merged.id == vm_inc.id and merged.state == "resolved" and merged.merged_into == host_inc.id


def test_the_same_event_twice_is_a_duplicate():
    e = vm_event(42)
    inc = only(decide(e, Context(), T0))
    out = decide(e, Context(holding=inc), T0 + 1)
    assert out.decision.action == "duplicate" and not out.changed


def test_incident_resolves_only_when_every_object_is_healthy():
    inc = only(decide(host_event(), Context(), T0))
    inc = only(decide(vm_event(1), Context(host_incident=inc), T0 + 1))
    out = decide(host_event("resolved", 2), Context(holding=inc), T0 + 60)
    inc = only(out)
    assert out.decision.action == "object_resolved" and inc.state == "firing"
    out = decide(vm_event(1, "resolved", lcm=3, t=T0 + 70), Context(holding=inc), T0 + 70)
    inc = only(out)
    assert out.decision.action == "resolved" and inc.state == "resolved" and inc.resolved_at == T0 + 70
    assert inc.objects["vm:1"].last_seen_running == T0 + 70
    assert inc.title.startswith("Host node07 recovered (was in ERROR)")


def test_healthy_event_without_incident_is_ignored_with_a_reason():
    out = decide(vm_event(5, "resolved", lcm=3), Context(), T0)
    assert out.decision.action == "ignored" and "no open incident" in out.decision.reason


def test_operator_disabling_a_host_is_maintenance_not_an_alert():
    out = decide(host_event("resolved", 4), Context(), T0)
    assert out.decision.action == "maintenance" and out.maintenance is True and not out.changed
    inc = only(decide(host_event(), Context(), T0))
    out = decide(host_event("resolved", 8), Context(holding=inc), T0 + 5)
    assert only(out).state == "resolved" and "maintenance" in out.decision.reason


def test_vm_failure_on_a_host_in_maintenance_is_recorded_with_the_maintenance_label():
    out = decide(vm_event(3), Context(host_in_maintenance=True), T0)
    assert only(out).labels["maintenance"] == "true"
    assert "maintenance" in out.timeline[only(out).id][-1].text


def test_healthy_host_event_clears_maintenance():
    assert decide(host_event("resolved", 2), Context(), T0).maintenance is False


def test_transitions_follow_the_state_machine():
    inc = only(decide(vm_event(1), Context(), T0))
    acked, entry = transition(inc, "acknowledged", "looking", "alice", T0 + 5)
    assert acked.acknowledged_by == "alice" and entry.actor == "alice" and "looking" in entry.text
    rem, _ = transition(acked, "remediating", "plan p1", "oneha", T0 + 6)
    done, _ = transition(rem, "resolved", "verified", "oneha", T0 + 9)
    assert done.resolved_at == T0 + 9
    with pytest.raises(TransitionError, match="cannot become acknowledged"):
        transition(done, "acknowledged", "late", "bob", T0 + 10)
    with pytest.raises(TransitionError, match="already firing"):
        transition(inc, "firing", "x", "bob", T0)


def test_summary_has_the_notification_keys_and_counts():
    inc = only(decide(host_event(), Context(), T0))
    for vm in range(20):
        inc = only(decide(vm_event(vm), Context(host_incident=inc), T0 + 1))
    s = summary(inc, max_objects=5)
    assert s["title"] == "Host node07 is in ERROR — 20 VMs affected"
    assert s["affected_count"] == 20 and len(s["affected"]) == 5
    assert s["object"]["name"] == "node07" and s["status"] == "firing" and s["next_step"]
    assert Incident.from_dict(inc.to_dict()) == inc


def test_labels_are_what_the_event_carries_completed_with_what_it_names():
    e = Event(event_id="e" * 32, source="reconciler", resource="VM", object_id="9", name="db1",
              status="firing", condition="VM/ACTIVE/UNKNOWN", occurred_at=T0, state=3,
              lcm_state=16, labels={"host": "node07", "team": "db"})
    labels = event_labels(e)
    assert (labels["host"], labels["team"], labels["name"], labels["id"]) == \
        ("node07", "db", "db1", "9")
    assert labels["state"] == "ACTIVE/UNKNOWN"


def test_a_host_incident_resolved_by_remediation_does_not_claim_the_host_recovered():
    from dataclasses import replace as _replace

    host = ObjectState(key="host:1", resource="HOST", id="1", name="node01",
                            condition="HOST/ERROR", state_label="ERROR", status="firing",
                            first_seen=0.0, last_seen=0.0, host="node01")
    vm = _replace(host, key="vm:5", resource="VM", id="5", name="web-1",
                  condition="VM/ACTIVE/UNKNOWN", state_label="ACTIVE/RUNNING", status="resolved")
    incident = Incident(id="i", key="host:1", state="resolved", created_at=0.0,
                             updated_at=1.0, labels={}, objects={"host:1": host, "vm:5": vm},
                             resolved_at=1.0, impact=[{"vm_id": 5, "vm_name": "web-1"}])
    assert incident.title == "Host node01 failed — its 1 VM runs again elsewhere"
    back = _replace(incident, impact=None, objects={"host:1": _replace(host, status="resolved"),
                                                   "vm:5": vm})
    assert back.title.startswith("Host node01 recovered")


def test_unknown_vm_is_last_seen_running_at_its_last_monitoring_poll():
    e = Event(event_id="f" * 32, source="hook", resource="VM", object_id="9", name="db1",
              status="firing", condition="VM/ACTIVE/UNKNOWN", occurred_at=T0, state=3,
              lcm_state=16, labels={"host": "node07"},
              xml="<VM><ID>9</ID><LAST_POLL>1763999990</LAST_POLL></VM>")
    inc = only(decide(e, Context(), T0))
    assert inc.primary.last_seen_running == 1763999990.0


def test_a_front_end_incident_keeps_the_finding_explanation_for_people():
    from gateway.domain.events import Event as _Event
    ev = _Event(event_id="r1", source="raft", resource="FRONTEND", object_id="zone0/2",
                name="fe3", status="firing", condition="RAFT/FOLLOWER_BEYOND_RETENTION",
                occurred_at=10.0, summary="fe3 is beyond the log retention\n1. onedb backup")
    state = object_state(ev, {}, 10.0)
    incident = Incident(id="i", key=state.key, state="firing", created_at=10.0,
                             updated_at=10.0, labels={}, objects={state.key: state})
    assert summary(incident)["details"] == ["fe3 is beyond the log retention",
                                                 "1. onedb backup"]


@pytest.mark.parametrize("source, polled, seen_healthy, stale", [
    ("hook", 100, 200, True),  # oned ran the UNKNOWN hook after the VM was seen running again
    ("hook", 200, 200, False),  # failed right after that poll: a new failure
    ("hook", 300, 200, False),
    ("hook", 100, None, False),  # never seen healthy: nothing to compare
    ("reconciler", 100, 200, False),  # the pool as it is now is never stale
])
def test_a_late_hooks_older_snapshot_reopens_nothing(source, polled, seen_healthy, stale):
    from dataclasses import replace

    event = replace(vm_event(42), source=source, last_poll=polled)
    out = decide(event, Context(healthy_poll=seen_healthy), T0)
    if stale:
        assert out.decision.action == "ignored" and not out.save
        assert "stale" in out.decision.reason and "reconciler" in out.decision.reason
    else:
        assert out.decision.action == "created"


def test_a_vm_seen_healthy_records_the_poll_it_was_seen_at():
    from dataclasses import replace

    from gateway.domain.correlation import healthy_poll

    assert healthy_poll(replace(vm_event(42, status="resolved", lcm=3), last_poll=250)) == 250
    assert healthy_poll(replace(vm_event(42), last_poll=250)) is None  # UNKNOWN is not healthy
    assert healthy_poll(vm_event(42, status="resolved", lcm=3)) is None  # no poll carried
