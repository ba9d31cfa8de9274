"""The story a receiver reads, decided purely: [FIRING] first, notices after it (or inside it),
each message chained to the one before, oneha's own host actions never read as an operator's,
and the timeline told from its beginning."""

from dataclasses import replace

from gateway.domain.composer import group_messages
from gateway.domain.events import Event
from gateway.domain.grouping import GroupState, plan_flush
from gateway.domain.correlation import Context, decide
from gateway.domain.incidents import TimelineEntry, with_live_vms
from gateway.domain.story import story, summary
from gateway.domain.messages import render
from gateway.domain.muting import Mute
from gateway.domain.objects import HistoryRecord, VmInfo
from gateway.domain.reconcile import Tracked, reconcile
from gateway.domain.remediation.policy import vm_policy
from gateway.domain.routing import Route, match_routes
from tests.unit.test_reconcile import host as pool_host

T0 = 1_764_000_000.0
_n = iter(range(10**6))
ROUTE = match_routes(Route.model_validate({"group_wait": "30s", "group_interval": "5m",
                                           "repeat_interval": "4h"}),
                     {"host": "node07"}, ["mail", "chat"])[0]


def host_event(state=3, status="firing", t=T0):
    names = {3: "ERROR", 4: "DISABLED", 8: "OFFLINE", 2: "MONITORED"}
    return Event(event_id=f"{next(_n):032x}", source="test", resource="HOST", object_id="7",
                 name="node07", status=status, condition=f"HOST/{names[state]}", occurred_at=t,
                 state=state, labels={"host": "node07"})


def host_incident():
    return decide(host_event(), Context(), T0).save[0]


def group():
    return GroupState.new(ROUTE, "root|host=node07", T0)


def approval(inc, t=T0 + 10):
    return inc.with_notice("approval_requested", "p1:approval", "Approval needed: resched 3 VM(s)",
                           t, approval_url="http://gw/approvals/tok.sig",
                           plan=[{"vm_id": 1, "vm_name": "web-1", "action": "resched"}])


def test_a_plan_ready_within_group_wait_rides_in_the_first_message():
    inc = approval(host_incident())
    assert not plan_flush(group(), [inc], {}, T0 + 29).send  # group_wait still holds it
    first = plan_flush(group(), [inc], {}, T0 + 30)
    assert first.send and first.transition == "firing" and first.notices == inc.notices
    (mail, _), state = group_messages(first, group(), {inc.id: summary(inc)}, {}, T0 + 30)
    assert mail.incident["approval_url"] == "http://gw/approvals/tok.sig"
    assert render(mail, "chat").title.startswith("[FIRING]")
    assert "approve or deny: <http://gw/approvals/tok.sig>" in render(mail, "chat").body
    # Told once: the next flush has nothing to say about it.
    assert not plan_flush(state, [inc], {}, T0 + 31).send


def test_a_notice_after_the_alert_goes_out_at_once_not_after_group_interval():
    inc = host_incident()
    first = plan_flush(group(), [inc], {}, T0 + 30)
    told = first.state
    later = approval(inc, T0 + 40)
    plan = plan_flush(told, [later], {}, T0 + 40)
    assert plan.send and plan.transition == "approval_requested"
    assert plan.state.last_sent_at == told.last_sent_at  # changes keep their own timing
    needs = later.with_notice("needs_human", "p1:3", "VM web-3 (3) was not recovered", T0 + 50)
    assert plan_flush(plan.state, [needs], {}, T0 + 50).transition == "needs_human"


def test_a_notice_never_goes_before_the_alert_nor_to_a_muted_incident():
    inc = approval(host_incident())
    other = replace(host_incident(), id="host-8-other")
    first = plan_flush(group(), [other], {}, T0 + 30).state  # told about another one
    assert not plan_flush(first, [inc], {}, T0 + 31).notices  # this one's alert is due first
    muted = plan_flush(group(), [inc], {inc.id: Mute(True, "silenced by #1", "silence:1")},
                       T0 + 30)
    assert not muted.send


def test_each_message_names_the_one_its_receiver_must_have_first():
    inc = host_incident()
    first = plan_flush(group(), [inc], {}, T0 + 30)
    msgs1, state = group_messages(first, group(), {inc.id: summary(inc)}, {}, T0 + 30)
    assert [m.after for m in msgs1] == ["", ""]
    second = plan_flush(state, [approval(inc, T0 + 40)], {}, T0 + 40)
    msgs2, _ = group_messages(second, state, {inc.id: summary(inc)}, {}, T0 + 40)
    assert [m.after for m in msgs2] == [m.notification_id for m in msgs1]
    assert {m.receiver for m in msgs2} == {"mail", "chat"}


def test_a_host_oneha_disabled_is_still_failed_not_an_operators_maintenance():
    inc = host_incident()
    out = decide(host_event(state=4), Context(holding=inc, own_host_state="disable_host"), T0 + 5)
    assert out.decision.action == "updated" and out.maintenance is None
    (saved,) = out.save
    assert saved.is_open and saved.primary.status == "firing"
    assert saved.primary.state_label == "DISABLED (by oneha)"
    # No open incident: neither maintenance nor a new failure.
    alone = decide(host_event(state=8), Context(own_host_state="refresh_host"), T0 + 6)
    assert alone.decision.action == "ignored" and not alone.save and alone.maintenance is None
    # The same state set by a person is maintenance, as before.
    assert decide(host_event(state=4), Context(holding=inc), T0 + 7).decision.action == \
        "maintenance"
    # Healthy again: oneha's mark is over.
    assert decide(host_event(state=2, status="resolved"),
                  Context(holding=inc, own_host_state="disable_host"),
                  T0 + 8).forget_own_host_state


def test_the_reconciler_does_not_resolve_a_host_oneha_disabled():
    disabled = pool_host(7, state=4)
    tracked = {"host:7": Tracked("host:7", "host-7-x", "firing", "node07", T0)}
    assert reconcile([disabled], [], tracked, {}, T0).count("resolve") == 1  # a person did it
    mine = reconcile([disabled], [], tracked, {}, T0, own_hosts=frozenset({"7"}))
    assert mine.count("resolve") == 0 and mine.findings[0].action == "known"


def test_the_timeline_starts_at_the_opening_and_tells_joins_once():
    entries = [TimelineEntry(T0, "event", "firing: HOST node07 [hook]"),
               TimelineEntry(T0, "transition", "opened: HOST node07 ERROR")]
    entries += [TimelineEntry(T0 + i, "decision", f"joined: VM web-{i} ({i}) runs on host",
                              data={"name": f"web-{i}"}) for i in range(30)]
    entries += [TimelineEntry(T0 + 40, "remediation", "remediation planning requested"),
                TimelineEntry(T0 + 41, "remediation", "Approval needed: resched 30 VM(s)"),
                TimelineEntry(T0 + 42, "remediation", "Approval needed: resched 30 VM(s)")]
    told = [e.text for e in story(entries)]
    assert told == ["opened: HOST node07 ERROR",
                    "30 VMs of the host joined: web-0, web-1, web-2, web-3, web-4 and 25 more",
                    "Approval needed: resched 30 VM(s)"]
    many = [TimelineEntry(T0, "transition", "opened: VM x")] + [
        TimelineEntry(T0 + i, "remediation", f"step {i}") for i in range(20)]
    short = story(many, limit=5)
    assert [e.text for e in short] == ["opened: VM x", "step 16", "step 17", "step 18", "step 19"]


def test_a_resolve_message_shows_each_vm_as_it_runs_now():
    inc = host_incident()
    inc = decide(Event(event_id="e" * 32, source="test", resource="VM", object_id="9",
                       name="web-9", status="firing", condition="VM/ACTIVE/UNKNOWN",
                       occurred_at=T0, state=3, lcm_state=16, labels={"host": "node07"}),
                 Context(host_incident=inc), T0).save[0]
    vm = VmInfo(id=9, name="web-9", state=3, lcm_state=3, history=(HistoryRecord(
        seq=1, host_id=2, host_name="node02"),))
    live = with_live_vms(inc, [vm], T0 + 60, host_label="DISABLED (by oneha)")
    assert live.objects["vm:9"].state_label == "ACTIVE/RUNNING"
    assert live.objects["vm:9"].host == "node02" and live.objects["vm:9"].status == "resolved"
    assert live.primary.state_label == "DISABLED (by oneha)"
    assert summary(live)["affected"][0] == {"resource": "VM", "id": "9", "name": "web-9",
                                            "state_label": "ACTIVE/RUNNING", "host": "node02"}


def test_an_unknown_policy_value_is_a_warning_not_a_silent_approval():
    for raw in ("migrate", "restart"):
        p = vm_policy({"ONEHA_POLICY": raw})
        assert p.mode == "approval" and f"ONEHA_POLICY={raw!r} is not a value" in p.note
    assert vm_policy({"ONEHA_POLICY": "none"}).mode == "off"
    assert vm_policy({"ONEHA_POLICY": "auto"}).note == ""


def test_a_vm_merged_into_its_hosts_incident_is_not_called_recovered():
    vm_inc = decide(Event(event_id="f" * 32, source="test", resource="VM", object_id="6",
                          name="vm006", status="firing", condition="VM/ACTIVE/UNKNOWN",
                          occurred_at=T0, state=3, lcm_state=16, labels={"host": "node01"}),
                    Context(), T0).save[0]
    merged = replace(vm_inc, state="resolved", merged_into="host-1-abc")
    assert "recovered" not in merged.title and "host incident host-1-abc" in merged.title


def test_a_notice_message_tells_the_incident_as_it_is_so_no_update_repeats_it():
    inc = host_incident()
    told = plan_flush(group(), [inc], {}, T0 + 30).state
    grown = decide(Event(event_id="a" * 32, source="test", resource="VM", object_id="9",
                         name="web-9", status="firing", condition="VM/ACTIVE/UNKNOWN",
                         occurred_at=T0 + 35, state=3, lcm_state=16, labels={"host": "node07"}),
                   Context(host_incident=inc), T0 + 35).save[0]
    notice = plan_flush(told, [approval(grown, T0 + 40)], {}, T0 + 40)
    assert notice.transition == "approval_requested"
    later = plan_flush(notice.state, [approval(grown, T0 + 40)], {}, T0 + 40 + 300)
    assert not later.send, later.reason  # the approval request already listed web-9
