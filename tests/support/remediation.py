"""Helpers for the remediation tests: a `Driver` that plays the queue in-process (honouring
countdowns) over the real stores, Redis and the simulator; hook events as the sender makes them;
counts of what reached OpenNebula."""

from __future__ import annotations

import base64
import hashlib
import heapq
import itertools
import time

from gateway.adapters.opennebula import OpenNebula
from gateway.flows.incident import IncidentFlow
from gateway.adapters.store.remediation import RemediationStore
from gateway.config import settings_from_dict
from gateway.domain.hook_events import event_from_hook
from gateway.flows.remediation import PLAN_TASK, RUN_TASK, IncidentPort, Remediator
from gateway.runtime import Runtime
from simulator import VmSpec
from tasks.remediate import follow_args
from tests.support.auth import auth_section

WRITES = ("one.vm.action", "one.vm.recover", "one.host.status", "one.vm.deploy")


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
            "auth": auth_section(),
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
        self.incidents = IncidentFlow(self.rt, send=self._incident_send)
        self.store = RemediationStore.from_runtime(self.rt)
        self.one = OpenNebula.from_settings(self.settings)
        self.recorded: list = []  # events of remediation's own (the storm guard's finding)
        self.rem = self.remediator(self.one)

    def remediator(self, one: OpenNebula) -> Remediator:
        """A Remediator over this driver's stores and queue, calling OpenNebula through `one`."""
        return Remediator(self.settings, self.store, one,
                          incidents=IncidentPort(self.incidents, self.rt.clock, self._record),
                          send=self._send, clock=self.rt.clock)

    def _record(self, event):
        self.recorded.append(event)
        self.incidents.apply_event(event)

    @property
    def pages(self) -> list[dict]:
        """What remediation asked to tell people: the notices on the incidents it worked on."""
        out = []
        for inc in self.incidents.store.list(open_only=False, limit=1000):
            out += [{"transition": n.kind, "text": n.text, "approval_url": n.approval_url,
                     "incident": inc.id, "at": n.at, "seq": n.seq} for n in inc.notices]
        return sorted(out, key=lambda p: (p["at"], p["seq"]))

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
            self._send(wake.task, follow_args(wake, args), wake.delay)

    def run_plan_once(self, plan_id):
        """One pass of every executor of the plan (what the workers would pick up)."""
        for chunk in range(self.settings.remediation.parallel_executors):
            self.run_one(RUN_TASK, [plan_id, chunk])

    def plan_status(self, incident_id):
        """Status of the incident's first plan (None before it exists)."""
        ids = self.store.plan_ids(incident_id)
        return self.status(ids[0]) if ids else None

    def status(self, plan_id):
        return self.store.plan_state(plan_id).get("status")


def crash_and_report(d, cloud, host=0):
    """Crash `host`, wait until its VMs show UNKNOWN, and feed the host's hook event; the
    incident id."""
    cloud.crash_host(host)
    wait_state(cloud, d.one, lambda: all(v.is_unknown for v in d.one.vms()
                                         if v.host_id == host), "UNKNOWN")
    return d.event("HOST", host).decision.incident_id


def wait_state(sim, one, pred, what, timeout=10.0):
    return sim.wait_for(pred, timeout=timeout, message=what)
