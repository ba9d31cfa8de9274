"""The HA OpenNebula client, the Raft check and the reconciler against baselines in the same run.

Against the simulator (3 front-ends, 500 VMs) on this machine:
  client    — `OpenNebula.vm(id)` (real timeout transport, failover bookkeeping, raw XML read by
              gateway.domain.objects) vs plain `pyone.OneServer(...).vm.info(id)` (pyone's
              generateDS binding): the price of HA-awareness and our reader per call;
  raft      — one `run_raft_check` (zone info, system config, raftstatus of every server in
              parallel, rules, Redis) vs the bare raftstatus calls made one after the other;
  reconcile — one `run_reconcile` pass (pools, open incidents, decisions, Redis) vs the bare
              `hostpool.info` + `vmpool.info` calls through pyone;
  failover  — seconds from killing the leader to the next write done by the new leader, against
              the simulator's election timeout (what any client has to wait).
Rounds interleave ours and the baseline; medians are reported. Read the ratios, not absolutes.

    .venv/bin/python bench/frontends.py [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyone  # noqa: E402
import redis  # noqa: E402

from gateway.adapters.opennebula import OpenNebula  # noqa: E402
from gateway.config import settings_from_dict  # noqa: E402
from gateway.runtime import Runtime  # noqa: E402
from simulator import CloudSpec, HostSpec, Simulator  # noqa: E402
from tasks.monitor import run_raft_check, run_reconcile  # noqa: E402


def timed(fn, n=1) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - started


def median_ratio(ours, base, rounds):
    o, b = [], []
    for _ in range(rounds):
        o.append(ours())
        b.append(base())
    return statistics.median(o), statistics.median(b)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    prefix = f"oneha-bench-{uuid.uuid4().hex[:8]}:"
    hosts = [HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in range(1, 21)]
    sim = Simulator(CloudSpec(hosts=hosts, vms=500, frontends=3, election_timeout=0.5),
                    control_port=None).start()
    try:
        sim.wait_for(lambda: sum(v["lcm_state_name"] == "RUNNING" for v in sim.vms()) == 500,
                     timeout=120)
        settings = settings_from_dict({
            "redis_url": args.redis, "key_prefix": prefix,
            "opennebula": {"endpoints": sim.endpoints, "session": sim.session, "timeout": 5},
            "raft": {"interval": 10}}, env={})
        rt = Runtime.from_settings(settings)
        one = OpenNebula.from_settings(settings)
        raw = pyone.OneServer(sim.endpoints[0], session=sim.session)
        ids = [v["id"] for v in sim.vms()][: args.calls]

        ours, base = median_ratio(lambda: timed(lambda: [one.vm(i) for i in ids]),
                                  lambda: timed(lambda: [raw.vm.info(i) for i in ids]),
                                  args.rounds)
        print(f"client    vm(id) x{len(ids)}: ours {ours / len(ids) * 1000:.2f} ms/call, "
              f"pyone {base / len(ids) * 1000:.2f} ms/call, ratio {ours / base:.2f}")

        servers = [pyone.OneServer(u, session=sim.session) for u in sim.endpoints]
        ours, base = median_ratio(lambda: timed(lambda: run_raft_check(rt, one)),
                                  lambda: timed(lambda: [s.zone.raftstatus() for s in servers]),
                                  args.rounds)
        print(f"raft      one check: ours {ours * 1000:.1f} ms, bare raftstatus x3 "
              f"{base * 1000:.1f} ms, ratio {ours / base:.2f}")

        ours, base = median_ratio(
            lambda: timed(lambda: run_reconcile(rt, one)),
            lambda: timed(lambda: (raw.hostpool.info(), raw.vmpool.info(-2, -1, -1, -1))),
            args.rounds)
        print(f"reconcile 20 hosts/500 VMs: ours {ours * 1000:.1f} ms, bare pools via pyone "
              f"{base * 1000:.1f} ms, ratio {ours / base:.2f}")

        vm_id = ids[0]
        one.leader()
        started = time.perf_counter()
        sim.kill_leader()
        one.vm_action("poweroff", vm_id)
        took = time.perf_counter() - started
        print(f"failover  kill leader -> write done by the new leader: {took:.2f} s "
              f"(election timeout {sim.spec.election_timeout} s, ratio "
              f"{took / sim.spec.election_timeout:.2f})")
    finally:
        sim.stop()
        r = redis.Redis.from_url(args.redis)
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        r.delete(prefix.rstrip(":") + ".tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
