"""What readiness costs: the remediation's planner run for every host's loss (N+1) and, per
cluster, for every pair of hosts (N+2), on synthetic pools of growing size (pure: no Redis, no
OpenNebula). Printed per size: seconds for N+1 alone, for the whole report, and the ratio
whole / N+1 — the price of N+2, which checks the pairs of at most
`gateway.domain.readiness.MAX_PAIR_HOSTS` hosts a cluster. Informational: no target, exits 0.

    .venv/bin/python bench/readiness.py [--vms-per-host 20] [--sizes 10,50,200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GB = 1024 * 1024  # KB


def pools(hosts: int, per_host: int):
    from gateway.domain.objects import Disk, HistoryRecord, HostInfo, VmInfo
    host_list = [HostInfo(id=i, name=f"node{i:04d}", state=2, cluster_id=0, cluster="c0",
                          max_mem=256 * GB, mem_usage=per_host * 4 * GB, max_cpu=6400,
                          cpu_usage=per_host * 100) for i in range(hosts)]
    vms = [VmInfo(id=i * 1000 + j, name=f"vm-{i}-{j}", state=3, lcm_state=3, cpu=1,
                  memory_mb=4096, system_tm_mad="shared",
                  history=(HistoryRecord(seq=0, host_id=i, host_name=f"node{i:04d}"),),
                  disks=(Disk(0, 1, "img", j % 3 == 0, 1, "ds", "shared"),))
           for i in range(hosts) for j in range(per_host)]
    return host_list, vms


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> int:
    from gateway.domain.readiness import Inputs, _vms_by_host, assess, plan_loss
    from gateway.domain.remediation.policy import RemediationConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms-per-host", type=int, default=20)
    ap.add_argument("--sizes", default="10,50,200", help="host counts, comma separated")
    args = ap.parse_args()
    policy_for = RemediationConfig(mode="auto").for_labels
    print(f"{'hosts':>6} {'VMs':>6} {'N+1 s':>8} {'report s':>9} {'report/N+1':>11}  N+2 pairs of")
    for size in (int(s) for s in args.sizes.split(",")):
        hosts, vms = pools(size, args.vms_per_host)
        inp = Inputs(hosts=hosts, vms=vms, policy_for=policy_for, now=0.0)
        by_host = _vms_by_host(vms)
        n1 = timed(lambda: [plan_loss(h, hosts, by_host.get(h.id, ()), policy_for, 0.0, 60.0)
                            for h in hosts])
        report = None

        def whole():
            nonlocal report
            report = assess(inp)
        total = timed(whole)
        print(f"{size:>6} {len(vms):>6} {n1:>8.2f} {total:>9.2f} {total / n1:>11.1f}  "
              f"{report.clusters[0].pairs_of} hosts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
