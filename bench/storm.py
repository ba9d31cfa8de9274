"""A host with N VMs (default 500) fails under the `auto` policy: how much does oneha add?

Two runs on identical simulated clouds (the simulator over real XML-RPC, through pyone):
- oneha: a real `oneha worker` (Redis at 127.0.0.1:6379, its own key prefix), the host's ERROR
  event sent as the hook would; oneha plans (grace 0), checks its guards, re-reads each VM,
  claims, calls `one.vm.action("resched", id)` and follows the VMs until they run;
- baseline: a sequential loop in this process that calls the same pyone methods with nothing in
  between — one pool read, then per VM `one.vm.info` + `one.vm.action("resched", id)` — and
  polls the pool until every VM runs.
Both clocks start when the host is seen in ERROR ("declared failed"). Printed: time to the last
recover call and to all VMs running, for both, and oneha/baseline (target <= 1.5); the count of
recover actions oneha made (must be exactly N, one per VM). Exits 1 if the count is wrong or a VM
did not run again.

    .venv/bin/python bench/storm.py [--vms 500] [--workers-concurrency 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from gateway.adapters.opennebula import OpenNebula  # noqa: E402
from simulator import CloudSpec, HostSpec, Simulator, VmSpec  # noqa: E402
from tests.support.remediation import hook_event  # noqa: E402
from tests.support.worker import celery_client, start_worker  # noqa: E402

TARGET = 1.5
REDIS = "redis://127.0.0.1:6379/0"


def cloud(n: int) -> CloudSpec:
    # Room for every VM on the four remaining hosts; short boot so the action path dominates.
    hosts = [HostSpec(f"node{i:02d}", cpu=100 * n, memory_mb=1024 * n) for i in range(1, 6)]
    vms = [VmSpec(f"vm{i:03d}", host="node01", memory_mb=512) for i in range(n)]
    return CloudSpec(hosts=hosts, vms=vms, frontends=3, monitoring_interval=0.2,
                     boot_time=0.05, prolog_time=0.05, sched_interval=0.1)


def crash(sim: Simulator, one: OpenNebula, n: int) -> float:
    sim.crash_host(0)
    sim.wait_for(lambda: one.host(0).is_error, timeout=30, message="host 0 in ERROR")
    declared = time.time()
    sim.wait_for(lambda: sum(v.is_unknown for v in one.vms()) == n, timeout=60,
                 message="every VM UNKNOWN")
    return declared


def resched_calls(sim: Simulator) -> list[dict]:
    return [e for e in list(sim.action_log)
            if e["method"] == "one.vm.action" and e["ok"] and e["args"][0] == "resched"]


def all_running(one: OpenNebula, n: int) -> bool:
    vms = one.vms()
    return sum(v.is_running and v.host_id != 0 for v in vms) == n


def run_baseline(n: int) -> tuple[float, float, int]:
    with Simulator(cloud(n)) as sim:
        one = OpenNebula(sim.endpoints, sim.session, timeout=5, retries=1)
        declared = crash(sim, one, n)
        ids = [v.id for v in one.vms() if v.host_id == 0 and v.is_unknown]
        for vid in ids:
            one.vm(vid)
            one.vm_action("resched", vid)
        last_call = resched_calls(sim)[-1]["t"]
        sim.wait_for(lambda: all_running(one, n), timeout=300, interval=0.1,
                     message="all VMs running (baseline)")
        done = time.time()
        return last_call - declared, done - declared, len(resched_calls(sim))


def run_oneha(n: int, concurrency: int) -> tuple[float, float, Counter]:
    prefix = f"oneha-bench-{uuid.uuid4().hex[:8]}:"
    r = redis.Redis.from_url(REDIS)
    with Simulator(cloud(n)) as sim, tempfile.TemporaryDirectory() as tmp:
        config = {"redis_url": REDIS, "key_prefix": prefix, "secret_key": "bench",
                  "opennebula": {"endpoints": sim.endpoints, "session": sim.session,
                                 "timeout": 5, "retries": 1},
                  "remediation": {"mode": "auto", "grace_cycles": 0, "monitoring_interval": 0.2,
                                  "rate_limit_actions": 100_000, "concurrency": 64,
                                  "verify_interval": 0.1, "verify_timeout": 120,
                                  "storm": {"max_error_percent": 30, "max_error_hosts": 3}}}
        worker = start_worker(config, Path(tmp), concurrency=concurrency, name="bench")
        try:
            one = OpenNebula(sim.endpoints, sim.session, timeout=5, retries=1)
            client = celery_client(config)
            declared = crash(sim, one, n)
            client.send_task("oneha.process_event", args=[hook_event(one, "HOST", 0).to_json()])
            sim.wait_for(lambda: len(resched_calls(sim)) >= n, timeout=300, interval=0.05,
                         message="every VM rescheduled (oneha)")
            sim.wait_for(lambda: all_running(one, n), timeout=300, interval=0.1,
                         message="all VMs running (oneha)")
            done = time.time()
            time.sleep(1.0)  # anything oneha would do twice shows up now
            calls = resched_calls(sim)
            last_call = max(e["t"] for e in calls)
            return last_call - declared, done - declared, Counter(e["args"][1] for e in calls)
        finally:
            worker.stop()
            keys = list(r.scan_iter(match=prefix + "*", count=1000))
            if keys:
                r.delete(*keys)
            r.delete(prefix.rstrip(":") + ".tasks")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vms", type=int, default=500)
    ap.add_argument("--workers-concurrency", type=int, default=2)
    args = ap.parse_args()
    n = args.vms
    base_call, base_run, base_count = run_baseline(n)
    one_call, one_run, counts = run_oneha(n, args.workers_concurrency)
    actions = sum(counts.values())
    twice = sorted(v for v, c in counts.items() if c > 1)
    print(f"storm: host with {n} VMs fails, auto policy")
    print(f"  baseline (sequential pyone loop): last recover call {base_call:7.2f} s, "
          f"all running {base_run:7.2f} s, {base_count} calls")
    print(f"  oneha (worker, guards, claims):    last recover call {one_call:7.2f} s, "
          f"all running {one_run:7.2f} s, {actions} recover actions on {len(counts)} VMs")
    ratio_call, ratio_run = one_call / base_call, one_run / base_run
    print(f"  ratio to last recover call: {ratio_call:.2f}   ratio to all running: "
          f"{ratio_run:.2f}   (target <= {TARGET})")
    ok = actions == n and len(counts) == n and not twice
    print(f"  actions: {actions} (must be exactly {n}, one per VM)"
          + (f"; acted twice on {twice[:10]}" if twice else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
