"""The remediation flow against the simulator through pyone, with the real stores on Redis.

Here the tasks run in the test process (a `Driver` plays the queue, honouring countdowns) so each
guard can be shown step by step; `test_remediation_worker.py` runs the same flow on real Celery
workers. Everything else is real: the simulator over XML-RPC, the OpenNebula client, Redis, the
incident store.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import time

import pytest

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.remediation import RemediationStore
from gateway.config import settings_from_dict
from gateway.domain.hook_events import event_from_hook
from gateway.runtime import Runtime
from simulator import CloudSpec, DiskSpec, HostSpec, Simulator, VmSpec
from tasks.remediate import (PLAN_TASK, RUN_TASK, VERIFY_TASK, IncidentAdapter, Remediator)

WRITES = ("one.vm.action", "one.vm.recover", "one.host.status", "one.vm.deploy")


# ---- helpers shared by the remediation integration tests ------------------------------------

def hook_event(one: OpenNebula, resource: str, object_id: int, frontend: str = "fe1"):
    """The Event the real hook would produce for the object as OpenNebula shows it now."""
    method = "vm.info" if resource == "VM" else "host.info"
    xml = one._read(method, object_id)
    info = one.vm(object_id) if resource == "VM" else one.host(object_id)
    lcm = info.lcm_state if resource == "VM" else None
    marker = (f"{info.last_history.seq if info.last_history else ''}:{info.last_poll}"
              if resource == "VM" else str(info.last_mon_time))
    event_id = hashlib.sha256(f"{resource}:{object_id}:{info.state}:{lcm}:{marker}"
                              .encode()).hexdigest()[:32]
    payload = {"resource": resource, "id": object_id, "name": info.name, "state": info.state,
               "lcm_state": lcm, "xml": base64.b64encode(xml.encode()).decode(),
               "hook": "test", "frontend": frontend, "sent_at": time.time(),
               "event_id": event_id}
    return event_from_hook(payload, frontend, time.time())


def writes(sim, method=None, args_filter=None):
    """The simulator's successful write calls (what oneha did to the cloud)."""
    out = []
    for e in list(sim.action_log):
        if e["method"] not in WRITES or not e["ok"]:
            continue
        if method and e["method"] != method:
            continue
        if args_filter and not args_filter(e["args"]):
            continue
        out.append(e)
    return out


def vm_actions(sim, action):
    """VM ids acted on with `one.vm.action(action, id)`, in call order."""
    return [e["args"][1] for e in writes(sim, "one.vm.action", lambda a: a[0] == action)]


def touched_vms(sim):
    """Every VM id a write call acted on, once per call."""
    out = []
    for e in writes(sim):
        if e["method"] == "one.vm.action":
            out.append(e["args"][1])
        elif e["method"] in ("one.vm.recover", "one.vm.deploy"):
            out.append(e["args"][0])
    return out


def recovers(sim, op):
    return [e["args"][0] for e in writes(sim, "one.vm.recover", lambda a: a[1] == op)]


def remediation_config(key_prefix, sim, **remediation):
    base = {"mode": "approval", "grace_cycles": 0, "monitoring_interval": 0.3,
            "verify_timeout": 5, "verify_interval": 0.1, "retry_backoff": 0.2,
            "storm": {"max_error_percent": 50, "max_error_hosts": 3}}
    base.update(remediation)
    return {"redis_url": "redis://127.0.0.1:6379/0", "key_prefix": key_prefix,
            "secret_key": "test-secret", "public_url": "http://oneha.test",
            "opennebula": {"endpoints": sim.endpoints, "session": sim.session, "timeout": 2,
                           "retries": 1},
            "remediation": base}


def shared_vms(n, host="node01", prefix="vm", **kw):
    return [VmSpec(f"{prefix}{i:02d}", host=host, **kw) for i in range(n)]


class Driver:
    """Plays the Celery queue in-process: tasks run in due order, countdowns honoured."""

    def __init__(self, config: dict):
        self.settings = settings_from_dict(config, env={})
        self.rt = Runtime.from_settings(self.settings)
        self.queue: list = []
        self._seq = itertools.count()
        self.sent: list[tuple[str, list]] = []
        self.pages: list[dict] = []
        self.incidents = IncidentStore(self.rt, send=self._incident_send)
        self.store = RemediationStore.from_runtime(self.rt)
        self.one = OpenNebula.from_settings(self.settings)
        self.rem = Remediator(self.settings, self.store, self.one,
                              incidents=IncidentAdapter(self.incidents, self.rt.clock),
                              send=self._send, notify=self.pages.append, clock=self.rt.clock)

    def _incident_send(self, name, args=None, countdown=None, **_):
        if name == PLAN_TASK:
            self._send(name, args, countdown or 0)

    def _send(self, name, args, delay):
        self.sent.append((name, list(args)))
        heapq.heappush(self.queue, (time.time() + (delay or 0), next(self._seq), name, list(args)))

    def event(self, resource, object_id):
        return self.incidents.apply_event(hook_event(self.one, resource, object_id))

    def run_until_idle(self, timeout=20.0, stop=lambda: False):
        deadline = time.time() + timeout
        while self.queue and not stop():
            due, _, name, args = heapq.heappop(self.queue)
            if due > deadline:
                heapq.heappush(self.queue, (due, next(self._seq), name, args))
                break
            time.sleep(max(0.0, due - time.time()))
            self.run_one(name, args)
        return self

    def run_one(self, name, args):
        if name == PLAN_TASK:
            self.rem.plan(*args)
            return
        wake = self.rem.run(*args) if name == RUN_TASK else self.rem.verify(*args)
        if wake is not None:
            self._send(wake.task, args, wake.delay)

    def plan_for(self, incident_id):
        ids = self.store.plan_ids(incident_id)
        return ids

    def status(self, plan_id):
        return self.store.plan_state(plan_id).get("status")


@pytest.fixture
def cloud(request):
    spec = request.param if hasattr(request, "param") else CloudSpec()
    with Simulator(spec) as sim:
        yield sim


def wait_state(sim, one, pred, what, timeout=10.0):
    return sim.wait_for(pred, timeout=timeout, message=what)


# ---- tests ------------------------------------------------------------------------------------

THREE_UNKNOWN = CloudSpec(hosts=2, vms=shared_vms(4), frontends=3, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [THREE_UNKNOWN], indirect=True)
def test_three_unknown_vms_are_resumed_each_once_and_the_fourth_is_untouched(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="auto"))
    for vid in (0, 1, 2):
        cloud.freeze_vm(vid)
    wait_state(cloud, d.one, lambda: all(d.one.vm(v).is_unknown for v in (0, 1, 2)), "UNKNOWN")
    incidents = {d.event("VM", vid).decision.incident_id for vid in (0, 1, 2)}
    assert len(incidents) == 3
    d.run_until_idle(timeout=15)
    assert sorted(vm_actions(cloud, "resume")) == [0, 1, 2]
    assert all(d.one.vm(v).is_running for v in (0, 1, 2, 3))
    # one refresh of the host's monitoring (OFFLINE then ENABLED), not one per VM
    assert [e["args"] for e in writes(cloud, "one.host.status")] == [[0, 2], [0, 0]]
    assert sorted(touched_vms(cloud)) == [0, 1, 2]  # VM 3 was RUNNING: untouched
    for iid in incidents:
        (pid,) = d.store.plan_ids(iid)
        assert d.status(pid) == "done"
        assert len(d.rem.impact(pid)) == 1


BIG_HOSTS = [HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 5)]
HOST_OF_20 = CloudSpec(hosts=BIG_HOSTS, vms=shared_vms(20), frontends=3, monitoring_interval=0.2)


@pytest.mark.parametrize("cloud", [HOST_OF_20], indirect=True)
def test_host_crash_asks_once_then_recovers_every_vm_once_with_an_impact_report(cloud, key_prefix):
    d = Driver(remediation_config(key_prefix, cloud, mode="approval"))
    cloud.crash_host(0)
    wait_state(cloud, d.one, lambda: all(v.is_unknown for v in d.one.vms()), "VMs UNKNOWN")
    iid = {d.event("HOST", 0).decision.incident_id for _ in range(3)}.pop()
    d.run_until_idle(timeout=5)
    (pid,) = d.store.plan_ids(iid)
    assert d.status(pid) == "awaiting_approval"
    assert [p["transition"] for p in d.pages] == ["approval_requested"]
    assert touched_vms(cloud) == []  # nothing before the approval
    assert d.rem.decide_plan(pid, "approved", "alice", via="test") == "executing"
    d.run_until_idle(timeout=30)
    assert d.status(pid) == "done"
    assert sorted(vm_actions(cloud, "resched")) == list(range(20))
    assert sorted(touched_vms(cloud)) == list(range(20))
    vms = d.one.vms()
    assert all(v.is_running and v.host_id != 0 for v in vms)
    report = d.rem.impact(pid)
    assert sorted(r["vm_id"] for r in report) == list(range(20))
    assert all(r["downtime_s"] is not None and r["downtime_s"] >= 0 for r in report)
    assert all(r["memory_lost"] and r["connections_dropped"] for r in report)
    inc = d.incidents.get(iid)
    assert inc.plan_id == pid and len(inc.impact) == 20
    assert [r["what"] for r in d.store.audit_log(200, plan_id=pid)].count("action_done") == 20
