"""How fast the simulator answers: `python -m simulator.bench [--vms 500]`.

Prints per-call times and their ratio to a baseline measured in the same run (the cheapest
call, one.system.version), so numbers from different machines compare.
"""

from __future__ import annotations

import argparse
import statistics
import time
import xmlrpc.client

import pyone

from .core import Simulator
from .spec import CloudSpec, HostSpec


def _timed(fn, repeat: int) -> float:
    fn()  # warm-up: first connection, first render
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    per_host = -(-args.vms // args.hosts)
    hosts = [HostSpec(f"node{i:03d}", cpu=100 * per_host, memory_mb=1024 * per_host)
             for i in range(args.hosts)]
    spec = CloudSpec(hosts=hosts, vms=args.vms, monitoring_interval=1.0)
    with Simulator(spec, control_port=None) as sim:
        raw = xmlrpc.client.ServerProxy(sim.endpoints[0])
        one = pyone.OneServer(sim.endpoints[0], session=sim.session)
        base = _timed(lambda: raw.one.system.version(sim.session), args.repeat)
        rows = [
            ("one.system.version (raw XML-RPC)", base),
            ("one.vm.info (raw)", _timed(lambda: raw.one.vm.info(sim.session, 1), args.repeat)),
            ("one.host.info (raw)", _timed(lambda: raw.one.host.info(sim.session, 1), args.repeat)),
            (f"one.vmpool.info {args.vms} VMs (raw)",
             _timed(lambda: raw.one.vmpool.info(sim.session, -2, -1, -1, -1), args.repeat)),
            (f"one.vmpool.infoextended {args.vms} VMs (raw)",
             _timed(lambda: raw.one.vmpool.infoextended(sim.session, -2, -1, -1, -1),
                    args.repeat)),
            ("one.hostpool.info (raw)", _timed(lambda: raw.one.hostpool.info(sim.session),
                                               args.repeat)),
            ("one.vm.action reboot (raw)",
             _timed(lambda: raw.one.vm.action(sim.session, "reboot", 1), args.repeat)),
            ("one.vm.info (pyone, parsed)", _timed(lambda: one.vm.info(1), args.repeat)),
            (f"one.vmpool.info {args.vms} VMs (pyone, parsed)",
             _timed(lambda: one.vmpool.info(-2, -1, -1, -1), max(3, args.repeat // 4))),
        ]
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds * 1000:8.2f} ms  x{seconds / base:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
