"""Soak: a bounded burst of 20,000 signed events on loopback, through the whole of oneha.

The processes as deployed (tests/faults/harness.py's rig): a private redis-server with AOF
(appendfsync everysec), `oneha serve` under gunicorn (2 workers, 4 threads), one `oneha worker`
(concurrency 2), `oneha beat`, an SMTP server and a chat receiver. The burst is `--hosts` hosts
failing, each a HOST ERROR and then its VMs going UNKNOWN, every event a VM of its own, sent by
`--clients` keep-alive connections that resend what fails, as the hook sender does.

Printed: sustained events/s (acknowledged / the burst's wall time), acknowledgement latency
(p50, p99, max), how long until every event was applied and every host told, peak RSS of each
process (sampled every 0.2 s), and the count lost — acknowledged events that never reached their
incident. Exit 1 if anything was lost or not acknowledged.

The load generator shares the machine's CPUs with what it measures: read events/s as a floor.

    .venv/bin/python bench/soak.py [--events 20000] [--hosts 200] [--clients 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.faults.harness import Rig, object_key  # noqa: E402


class PeakRss:
    """Peak resident memory of each process of the rig (children included, each on its own)."""

    def __init__(self, rig: Rig, interval: float = 0.2):
        self.rig, self.interval = rig, interval
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "PeakRss":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _processes(self):
        if self.rig.redis_server and self.rig.redis_server.proc:
            yield "redis-server", psutil.Process(self.rig.redis_server.proc.pid)
        for name, proc in self.rig.procs.procs.items():
            try:
                top = psutil.Process(proc.pid)
                yield f"{name} (main)", top
                for i, child in enumerate(sorted(top.children(recursive=True),
                                                 key=lambda c: c.pid), 1):
                    yield f"{name} child {i}", child
            except psutil.NoSuchProcess:
                continue

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for label, p in list(self._processes()):
                try:
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak[label] = max(self.peak.get(label, 0), rss)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--settle", type=float, default=600.0,
                        help="seconds to wait for every event applied and every host told")
    args = parser.parse_args()
    vms = max(0, args.events // args.hosts - 1)
    events = args.hosts * (vms + 1)

    with tempfile.TemporaryDirectory(prefix="oneha-soak-") as tmp, Rig(Path(tmp)) as rig:
        rss = PeakRss(rig).start()
        started = time.monotonic()
        burst = rig.burst(args.hosts, vms, clients=args.clients).join()
        took = time.monotonic() - started
        rig.settle(args.hosts, timeout=args.settle, quiet=0.0)
        settled = time.monotonic() - started
        rss.stop()
        have = rig.incident_objects()
        lost = sum(object_key(b) not in have for b in burst.acknowledged)
        lost += rig.failed_to_apply()
        lat = burst.latencies
        print(f"oneha soak: {events} events, {args.hosts} hosts, {args.clients} clients "
              f"(gunicorn 2x4, 1 worker x2, AOF everysec)")
        print(f"  acknowledged      {burst.acked} of {events} in {took:.1f} s "
              f"= {burst.acked / took:.0f} events/s sustained; resent: "
              f"{dict(burst.failures) or 'none'}")
        print(f"  ack latency       p50 {statistics.median(lat) * 1000:.1f} ms, "
              f"p99 {percentile(lat, 0.99) * 1000:.1f} ms, max {max(lat) * 1000:.1f} ms")
        print(f"  all applied, every host told on mail and chat {settled:.1f} s after the start")
        print(f"  notified          {len(rig.smtp.messages)} mails, {len(rig.chat.messages)} "
              f"chat posts")
        print("  peak RSS          " + ", ".join(
            f"{label} {peak / 2**20:.0f} MiB" for label, peak in sorted(rss.peak.items())))
        print(f"  lost              {lost}")
    return 1 if lost or burst.acked != events else 0


if __name__ == "__main__":
    sys.exit(main())
