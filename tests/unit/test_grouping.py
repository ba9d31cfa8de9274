"""Group timing with a fake clock: group_wait, group_interval, repeat_interval, resolve once,
muted incidents, escalation."""

from dataclasses import replace

from gateway.domain.events import Event
from gateway.domain.grouping import GroupState, group_summary, plan_escalation, plan_flush
from gateway.domain.correlation import Context, decide
from gateway.domain.incidents import transition
from gateway.domain.story import summary
from gateway.domain.muting import Mute
from gateway.domain.routing import Route, match_routes

T0 = 1_764_000_000.0
_n = iter(range(10**6))


def event(resource, oid, status="firing", host="node07", t=T0):
    cond = "HOST/ERROR" if resource == "HOST" else "VM/ACTIVE/UNKNOWN"
    return Event(event_id=f"{next(_n):032x}", source="test", resource=resource, object_id=str(oid),
                 name=f"{resource.lower()}{oid}", status=status, condition=cond, occurred_at=t,
                 labels={"host": host})


def new_incident(resource="VM", oid=1, **kw):
    return decide(event(resource, oid, **kw), Context(), T0).save[0]


ROUTE = match_routes(Route.model_validate({"group_wait": "30s", "group_interval": "5m",
                                           "repeat_interval": "4h", "escalate_after": "10m",
                                           "escalate_to": ["lead", "cto"]}),
                     {"host": "node07"}, ["mail", "chat"])[0]


def group():
    return GroupState.new(ROUTE, "root|host=node07", T0)


def test_nothing_is_sent_during_group_wait_then_one_message_for_the_whole_group():
    g = group()
    incs = [new_incident(oid=i) for i in range(3)]
    early = plan_flush(g, incs, {}, T0 + 29)
    assert not early.send and early.next_due == T0 + 30 and "group_wait" in early.reason
    plan = plan_flush(g, incs, {}, T0 + 30)
    assert plan.send and plan.transition == "firing" and len(plan.firing) == 3
    assert plan.state.seq == 1 and plan.next_due == T0 + 30 + 4 * 3600


def test_flushing_again_at_the_same_state_sends_nothing_until_repeat_interval():
    incs = [new_incident()]
    sent = plan_flush(group(), incs, {}, T0 + 30).state
    again = plan_flush(sent, incs, {}, T0 + 31)
    assert not again.send and "repeat_interval" in again.reason
    repeat = plan_flush(sent, incs, {}, T0 + 30 + 4 * 3600)
    assert repeat.send and repeat.transition == "repeat" and repeat.state.seq == 2


def test_changes_wait_for_group_interval():
    inc = new_incident("HOST", 7)
    sent = plan_flush(group(), [inc], {}, T0 + 30).state
    grown = decide(event("VM", 9), Context(host_incident=inc), T0 + 40).save[0]
    wait = plan_flush(sent, [grown], {}, T0 + 40)
    assert not wait.send and wait.next_due == T0 + 330
    update = plan_flush(sent, [grown], {}, T0 + 330)
    assert update.send and update.transition == "firing" and "changed" in update.reason


def test_resolve_message_is_sent_once_and_the_group_then_ends():
    inc = new_incident()
    sent = plan_flush(group(), [inc], {}, T0 + 30).state
    done, _ = transition(inc, "resolved", "healthy", "oneha", T0 + 100)
    plan = plan_flush(sent, [done], {}, T0 + 330)
    assert plan.send and plan.transition == "resolved" and plan.resolved == (done,)
    assert plan.next_due is None
    assert not plan_flush(plan.state, [done], {}, T0 + 9999).send


def test_resolved_before_group_wait_sends_nothing():
    inc = new_incident()
    done, _ = transition(inc, "resolved", "flap", "oneha", T0 + 5)
    plan = plan_flush(group(), [done], {}, T0 + 30)
    assert not plan.send and plan.next_due is None and "before anyone was told" in plan.reason


def test_muted_incidents_are_recorded_once_and_not_sent():
    inc = new_incident()
    mutes = {inc.id: Mute(True, "silenced by s1", "silence:s1")}
    plan = plan_flush(group(), [inc], mutes, T0 + 30)
    assert not plan.send and plan.newly_muted == ((inc, mutes[inc.id]),)
    assert plan.next_due == T0 + 30 + 300  # looks again in case the silence ends
    again = plan_flush(plan.state, [inc], mutes, T0 + 330)
    assert again.newly_muted == ()
    unmuted = plan_flush(again.state, [inc], {}, T0 + 400)
    assert unmuted.send and unmuted.firing == (inc,)


def test_acknowledged_incidents_get_no_reminders():
    inc = new_incident()
    sent = plan_flush(group(), [inc], {}, T0 + 30).state
    acked, _ = transition(inc, "acknowledged", "on it", "alice", T0 + 60)
    assert not plan_flush(sent, [acked], {}, T0 + 30 + 5 * 3600).send


def test_merged_incidents_are_dropped_from_group_messages():
    vm_inc = new_incident("VM", 1)
    out = decide(event("HOST", 7), Context(vm_incidents_on_host=(vm_inc,)), T0 + 1)
    host_inc, merged = out.save
    plan = plan_flush(group(), [host_inc, merged], {}, T0 + 30)
    assert plan.firing == (host_inc,) and plan.resolved == ()


def test_group_summary_of_several_incidents_counts_every_object():
    incs = [new_incident(oid=i) for i in range(3)]
    plan = plan_flush(group(), incs, {}, T0 + 30)
    s = group_summary(plan, {i.id: summary(i) for i in incs}, group())
    assert s["title"].startswith("3 open incidents (host=node07)")
    assert s["affected_count"] == 2 and len(s["incidents"]) == 3 and s["group"]["seq"] == 1


def test_escalation_goes_to_the_next_receiver_while_unacknowledged():
    inc = new_incident()
    assert plan_escalation(inc, ROUTE, 0, Mute(False), T0 + 599).next_due == T0 + 600
    first = plan_escalation(inc, ROUTE, 0, Mute(False), T0 + 600)
    assert first.send and first.receiver == "lead" and first.next_due == T0 + 1200
    last = plan_escalation(inc, ROUTE, 1, Mute(False), T0 + 1200)
    assert last.receiver == "cto" and last.next_due is None
    acked, _ = transition(inc, "acknowledged", "mine", "alice", T0 + 10)
    assert not plan_escalation(acked, ROUTE, 0, Mute(False), T0 + 600).send
    assert not plan_escalation(inc, ROUTE, 2, Mute(False), T0 + 9999).send
    assert not plan_escalation(inc, replace(ROUTE, escalate_after=None), 0, Mute(False), T0 + 600).send
