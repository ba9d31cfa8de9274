"""The worker is SIGKILLed (its whole process group, pool included) in the middle of a
remediation: a host of the simulated cloud fails, its hooks run the real sender, the plan
reschedules its 20 VMs three a second, and the worker dies after the first few. `oneha up`'s
restart (Processes.restart_exited) brings a new one, which carries the plan on: every VM runs
again elsewhere, each rescheduled exactly once, and each receiver is told the story once.

Redis is a private AOF one here as in the other fault tests; the beat and gateway stay up."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter

import pytest

from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.pending import PendingEvents
from simulator import CloudSpec, HostSpec, VmSpec
from tests.faults.table import ROWS, Row
from tests.support.procs import RedisServer
from tests.support.remediation import vm_actions
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

VMS = 20


def cloud() -> CloudSpec:
    hosts = [HostSpec(f"node0{i}", cpu=3200, memory_mb=131072) for i in (1, 2, 3)]
    vms = [VmSpec(f"app-{i:02d}", "node01", memory_mb=1024) for i in range(VMS)]
    return CloudSpec(hosts=hosts, vms=vms, frontends=3, monitoring_interval=0.5, boot_time=0.5,
                     prolog_time=0.2, epilog_time=0.1, sched_interval=0.3)


@pytest.mark.timeout(300)
def test_the_worker_killed_mid_remediation(tmp_path, monkeypatch):
    redis_server = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        with Stack(cloud(), f"faults-{uuid.uuid4().hex[:8]}:", tmp_path, monkeypatch,
                   redis_url=redis_server.url, mode="auto", rate_limit_actions=3,
                   rate_limit_window=1) as stack:
            victim = next(h for h in stack.sim.hosts() if h["name"] == "node01")
            ids = list(victim["vm_ids"])
            stack.sim.crash_host(victim["id"])
            stack.wait("the plan under way", lambda: len(vm_actions(stack.sim, "resched")) >= 3,
                       120)
            worker = stack.procs.procs["worker"]
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            acted = len(vm_actions(stack.sim, "resched"))
            assert acted < VMS, "the plan finished before the kill; the test proves nothing"
            assert [n for n, _ in stack.procs.restart_exited()] == ["worker"]
            stack.wait("every VM running elsewhere",
                       lambda: stack.running_elsewhere(ids, victim["id"]), 180)
            stack.wait("the resolve message to both receivers", lambda: all(
                any(t.kind == "RESOLVED" for t in stack.told(r)) for r in ("mail", "chat")), 90)
            stack.sim.wait_hooks_idle(30)
            row = outcome(stack, ids)
    finally:
        redis_server.stop(kill=True)
    ROWS.append(row)
    assert (row.lost, row.doubled, row.actions_doubled) == (0, 0, 0), row


def outcome(stack: Stack, vm_ids: list[int]) -> Row:
    runs = stack.sim.hook_executions
    runtime = Runtime.from_settings(settings_from_dict(stack.config, env={}))
    pending = PendingEvents.of(runtime)
    r = runtime.redis
    spool = stack.base / "spool"
    left = [p for p in spool.rglob("*.json")] if spool.exists() else []  # spooled or rejected
    objects = set()
    for incident in IncidentStore(runtime).list(open_only=False, limit=10_000):
        objects.update(incident.objects)
    missing = [i for i in vm_ids if f"vm:{i}" not in objects]
    lost = (len(left) + len(missing) + r.xlen(pending.stream) + r.xlen(pending.failed_key)
            + sum(run["rc"] != 0 for run in runs))
    doubled = 0
    for receiver in ("mail", "chat"):
        told = stack.told(receiver)
        # A notification sent twice is the same text twice; and an incident resolves once. (Its
        # [FIRING] may be repeated by design: the group_interval update naming more VMs.)
        resolved = Counter(t.title for t in told if t.kind == "RESOLVED")
        doubled += sum(n - 1 for n in resolved.values() if n > 1)
        doubled += sum(n - 1 for n in Counter((t.title, t.body) for t in told).values() if n > 1)
    moved = Counter(vm_actions(stack.sim, "resched"))
    actions_doubled = sum(n - 1 for n in moved.values() if n > 1)
    assert sorted(moved) == sorted(vm_ids), moved
    notified = len(stack.told("mail")) + len(stack.told("chat"))
    acknowledged = sum(run["rc"] == 0 for run in runs)
    return Row("worker SIGKILL mid-remediation", len(runs), acknowledged, notified, lost,
               doubled, actions_doubled)
