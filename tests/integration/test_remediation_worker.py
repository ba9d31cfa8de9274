"""Remediation on real Celery workers (`oneha worker`), real Redis, the simulator through pyone,
approvals through the HTTP API and people paged through a real chat webhook receiver.
"""

from __future__ import annotations

import re
import time

import pytest

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.remediation import RemediationStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from simulator import CloudSpec, HostSpec, Simulator, VmSpec
from tests.support.auth import bearer
from tests.support.remediation import (hook_event, remediation_config, shared_vms,
                                                     touched_vms, vm_actions, writes)
from tests.support.worker import Ticker, celery_client, wait_until

BIG = [HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 5)]
TOKEN = re.compile(r"/approvals/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


class Setup:
    def __init__(self, sim, key_prefix, chat_sink, **remediation):
        self.sim = sim
        self.config = remediation_config(key_prefix, sim, **remediation)
        self.config["receivers"] = [{"name": "oncall", "urls": [chat_sink.url()]}]
        self.config["route"] = {"group_wait": "0.2s", "group_interval": "0.5s",
                                "repeat_interval": "1h"}
        self.settings = settings_from_dict(self.config, env={})
        self.rt = Runtime.from_settings(self.settings)
        self.one = OpenNebula.from_settings(self.settings)
        self.store = RemediationStore.from_runtime(self.rt)
        self.incidents = IncidentStore(self.rt)
        self.celery = celery_client(self.config)
        self.chat = chat_sink

    def send_event(self, resource, object_id, times=1):
        event = hook_event(self.one, resource, object_id)
        for _ in range(times):
            self.celery.send_task("oneha.process_event", args=[event.to_json()])
        return event

    def incident_of(self, event):
        return wait_until(lambda: self.incidents.open_for(event.object_key), 20,
                          what=f"incident of {event.object_key}").id

    def plan_of(self, incident_id):
        return wait_until(lambda: (self.store.plan_ids(incident_id) or [None])[0], 20,
                          what="a plan")

    def status(self, plan_id):
        return self.store.plan_state(plan_id).get("status")

    def posts(self, needle):
        return [m for m in self.chat.messages if needle in m.message or needle in m.title]


@pytest.fixture
def sim(request):
    with Simulator(request.param) as s:
        yield s


@pytest.mark.parametrize("sim", [CloudSpec(hosts=2, vms=shared_vms(4), frontends=3,
                                           monitoring_interval=0.2)], indirect=True)
def test_three_unknown_vms_resumed_exactly_once_by_a_worker(sim, key_prefix, chat_sink, workers):
    s = Setup(sim, key_prefix, chat_sink, mode="auto")
    workers.start(s.config, concurrency=2)
    for vid in (0, 1, 2):
        sim.freeze_vm(vid)
    wait_until(lambda: all(s.one.vm(v).is_unknown for v in (0, 1, 2)), 10, what="UNKNOWN")
    for vid in (0, 1, 2):
        s.send_event("VM", vid, times=2)
    wait_until(lambda: all(s.one.vm(v).is_running for v in (0, 1, 2)), 30, what="RUNNING again")
    time.sleep(0.5)  # anything late would show now
    assert sorted(vm_actions(sim, "resume")) == [0, 1, 2]
    assert sorted(touched_vms(sim)) == [0, 1, 2]  # VM 3 was RUNNING all along


@pytest.mark.parametrize("sim", [CloudSpec(hosts=BIG, vms=shared_vms(20), frontends=3,
                                           monitoring_interval=0.2)], indirect=True)
def test_host_of_20_vms_one_approval_two_workers_three_deliveries_each_vm_once(
        sim, key_prefix, chat_sink, workers):
    s = Setup(sim, key_prefix, chat_sink, mode="approval")
    workers.start(s.config, concurrency=2, name="w1")
    workers.start(s.config, concurrency=2, name="w2")
    sim.crash_host(0)
    wait_until(lambda: all(v.is_unknown for v in s.one.vms()), 10, what="UNKNOWN")
    event = s.send_event("HOST", 0, times=3)
    pid = s.plan_of(s.incident_of(event))
    wait_until(lambda: s.posts("approv"), 20, what="an approval request")
    time.sleep(1.0)
    (request,) = s.posts("/approvals/")  # one request, however often the event came
    token = TOKEN.search(request.message).group(1)
    assert touched_vms(sim) == []
    client = create_app(s.settings).test_client()
    answer = client.post(f"/v1/approvals/{token}", json={"decision": "approve",
                                                           "approver": "alice"},
                         headers=bearer("approver"))
    assert answer.status_code == 200, answer.get_json()
    wait_until(lambda: s.status(pid) == "done", 60, what="plan done")
    assert sorted(vm_actions(sim, "resched")) == list(range(20))
    assert sorted(touched_vms(sim)) == list(range(20))
    assert all(v.is_running and v.host_id != 0 for v in s.one.vms())
    # The plan is marked done, then its last look writes the impact and resolves the incident.
    iid = s.store.plan(pid).incident_id
    inc = wait_until(lambda: (i := s.incidents.get(iid)) and not i.is_open and i, 30,
                     what="the incident resolved after the plan")
    assert sorted(r["vm_id"] for r in inc.impact) == list(range(20))
    # downtime from the simulator's history: last poll before the crash → RSTIME elsewhere
    assert all(r["downtime_s"] is not None and "RSTIME of history 1" in r["evidence"]
               and "last monitoring poll" in r["evidence"] for r in inc.impact)
    assert inc.state == "resolved"  # every VM runs again: people get the resolve notice
    with Ticker(s.config):  # the beat that flushes due groups
        resolve = wait_until(lambda: s.posts("Impact: 20 VM(s)"), 30, what="the resolve notice")
    assert "memory state lost on 20" in resolve[0].message
    approvals = [r for r in s.store.audit_log(500, plan_id=pid) if r["what"] == "plan_approved"]
    assert [(r["actor"], r["data"]["via"].split()[0]) for r in approvals] == [
        ("alice (token test-approver)", "api")]


@pytest.mark.parametrize("sim", [CloudSpec(
    hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 6)],
    vms=[VmSpec(f"vm{i:02d}", host=f"node{1 + i % 5:02d}") for i in range(10)],
    frontends=3, monitoring_interval=0.2)], indirect=True)
def test_partition_of_60_percent_pages_a_human_and_recovers_nothing(sim, key_prefix, chat_sink,
                                                                   workers):
    s = Setup(sim, key_prefix, chat_sink, mode="auto")
    workers.start(s.config, concurrency=2)
    sim.partition([0, 1, 2])
    wait_until(lambda: sum(h.is_error for h in s.one.hosts()) == 3, 10, what="3 hosts in ERROR")
    for h in (0, 1, 2):
        s.send_event("HOST", h)
    wait_until(lambda: s.posts("storm guard"), 20, what="a page about the storm")
    time.sleep(1.0)
    assert len(s.posts("storm guard")) == 1
    assert "3 of 5 hosts in ERROR (60%)" in s.posts("storm guard")[0].message
    assert touched_vms(sim) == [] and writes(sim) == []


@pytest.mark.parametrize("sim", [CloudSpec(hosts=BIG, vms=shared_vms(20), frontends=3,
                                           monitoring_interval=0.2)], indirect=True)
def test_a_worker_killed_mid_plan_is_replaced_and_no_vm_is_acted_on_twice(sim, key_prefix,
                                                                         chat_sink, workers):
    s = Setup(sim, key_prefix, chat_sink, mode="auto", rate_limit_actions=3,
              rate_limit_window=1)
    s.config["opennebula"].update(timeout=1, retries=0)  # a dead worker's lease lapses in 5 s
    first = workers.start(s.config, concurrency=1, name="doomed")
    sim.crash_host(0)
    wait_until(lambda: all(v.is_unknown for v in s.one.vms()), 10, what="UNKNOWN")
    event = s.send_event("HOST", 0)
    wait_until(lambda: len(vm_actions(sim, "resched")) >= 5, 30, what="the plan under way")
    first.kill()
    acted = len(vm_actions(sim, "resched"))
    assert acted < 20, "the plan finished before the kill; the test proves nothing"
    workers.start(s.config, concurrency=1, name="replacement")
    pid = s.plan_of(s.incident_of(event))
    wait_until(lambda: s.status(pid) == "done", 90, what="the plan completed after the restart")
    assert sorted(vm_actions(sim, "resched")) == list(range(20))
    assert all(v.is_running for v in s.one.vms())


@pytest.mark.parametrize("sim", [CloudSpec(hosts=BIG, vms=shared_vms(6), frontends=1,
                                           monitoring_interval=0.2)], indirect=True)
def test_a_worker_killed_inside_an_opennebula_call_leaves_that_vm_acted_on_once(
        sim, key_prefix, chat_sink, workers):
    # oned has carried out the resched but its answer is late: the worker dies waiting for it.
    # Whoever continues the plan must see, from the live VM, that this resched is done.
    s = Setup(sim, key_prefix, chat_sink, mode="auto")
    s.config["opennebula"].update(timeout=2, retries=0)  # the dead worker's lease lapses in 6 s
    first = workers.start(s.config, concurrency=1, name="doomed")
    sim.crash_host(0)
    wait_until(lambda: all(v.is_unknown for v in s.one.vms()), 10, what="UNKNOWN")
    sim.delay_answers("one.vm.action", 1.5)
    event = s.send_event("HOST", 0)
    wait_until(lambda: vm_actions(sim, "resched"), 30, what="the first resched call")
    first.kill()
    called_at = writes(sim, "one.vm.action")[0]["t"]
    assert time.time() - called_at < 1.5, "killed after the answer; the test proves nothing"
    assert vm_actions(sim, "resched") == [vm_actions(sim, "resched")[0]]
    sim.delay_answers("one.vm.action", 0)
    workers.start(s.config, concurrency=1, name="replacement")
    pid = s.plan_of(s.incident_of(event))
    wait_until(lambda: s.status(pid) == "done", 60, what="the plan completed after the restart")
    assert sorted(vm_actions(sim, "resched")) == list(range(6))  # each VM once, the first too
    assert all(v.is_running for v in s.one.vms())


@pytest.mark.parametrize("sim", [CloudSpec(hosts=BIG, vms=shared_vms(2) + shared_vms(
    2, host="node02", prefix="other"), frontends=1, monitoring_interval=0.2)], indirect=True)
def test_expired_reused_tampered_and_misdirected_tokens_are_refused(sim, key_prefix, chat_sink,
                                                                   workers):
    s = Setup(sim, key_prefix, chat_sink, mode="approval", approval_ttl=3)
    workers.start(s.config, concurrency=2)
    sim.crash_host(0)
    sim.crash_host(1)
    wait_until(lambda: all(v.is_unknown for v in s.one.vms()), 10, what="UNKNOWN")
    e0, e1 = s.send_event("HOST", 0), s.send_event("HOST", 1)
    inc0, inc1 = s.incident_of(e0), s.incident_of(e1)
    wait_until(lambda: len(s.posts("/approvals/")) >= 2, 20, what="two approval requests")
    tokens = {}
    for post in s.posts("/approvals/"):
        token = TOKEN.search(post.message).group(1)
        tokens[s.store.plan(s.store.approval(_approval_id(token))["plan_id"]).incident_id] = token
    client = create_app(s.settings).test_client()

    def decide(token, **extra):
        r = client.post(f"/v1/approvals/{token}", headers=bearer("approver"),
                        json={"decision": "approve", "approver": "eve", **extra})
        return r.status_code, r.get_json()

    t0 = tokens[inc0]
    payload, sig = t0.split(".")
    tampered = payload[:-2] + ("AB" if payload[-2:] != "AB" else "CD") + "." + sig
    assert decide(tampered)[1]["error"] == "forged" and decide(tampered)[0] == 403
    code, body = decide(t0, incident_id=inc1)
    assert (code, body["error"]) == (409, "wrong_incident") and inc0 in body["detail"]
    assert decide(t0)[0] == 200  # the genuine one, once
    code, body = decide(t0)
    assert (code, body["error"]) == (409, "used") and "eve" in body["detail"]
    time.sleep(3.1)  # token of host 1 expires unused
    code, body = decide(tokens[inc1])
    assert (code, body["error"]) == (410, "expired")
    pid0 = s.store.plan_ids(inc0)[0]
    wait_until(lambda: s.status(pid0) == "done", 30, what="approved plan done")
    time.sleep(0.5)
    assert sorted(touched_vms(sim)) == [0, 1]  # host 1's VMs (2, 3): nothing executed
    assert s.status(s.store.plan_ids(inc1)[0]) == "awaiting_approval"


def _approval_id(token):
    import base64
    import json
    payload = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["a"]
