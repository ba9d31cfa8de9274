"""What one event costs the incident flow, and how that grows with the incident it joins.

A host incident is opened, then VM events join it one after another through the real flow
(`IncidentFlow.apply_event`, the machine's Redis at 127.0.0.1:6379, a key prefix of its own).
Printed per event, for the 10 events after the incident holds `--small` VMs and after it holds
`--large` VMs: Redis commands (from INFO commandstats, so run it on a quiet Redis) and worker CPU
time; and the ratio large/small — 1.0 would mean an event costs the same whatever the incident's
size (issue 11's storm target needs it close to that). Then the same for a whole host storm (a
HOST event and `--large` VMs) applied the way the applier does, in batches of
`gateway.flows.applier.BATCH` (`IncidentFlow.apply_events`): per event, and the ratio one at a time /
batched. Informational: no target, exits 0.

    .venv/bin/python bench/incident_event.py [--small 10] [--large 200]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = 10


def _event(resource: str, oid: int, host: str = "node01"):
    from gateway.domain.events import Event
    vm = resource == "VM"
    return Event(event_id=uuid.uuid4().hex, source="test", resource=resource,
                 object_id=str(oid), name=f"{resource.lower()}{oid}", status="firing",
                 condition="VM/ACTIVE/UNKNOWN" if vm else "HOST/ERROR", occurred_at=time.time(),
                 state=3, lcm_state=16 if vm else None, labels={"host": host})


def _sample(flow, redis_client, first_vm: int) -> tuple[float, float]:
    """Commands and CPU seconds per event over SAMPLE joining VM events."""
    def calls() -> int:
        return sum(v["calls"] for v in redis_client.info("commandstats").values())
    c0, t0 = calls(), time.process_time()
    for vm in range(first_vm, first_vm + SAMPLE):
        flow.apply_event(_event("VM", vm))
    return (calls() - c0) / SAMPLE, (time.process_time() - t0) / SAMPLE


def _batched(flow, redis_client, vms: int) -> tuple[float, float]:
    """Commands and CPU seconds per event for a host storm applied in the applier's batches."""
    from gateway.flows.applier import BATCH

    def calls() -> int:
        return sum(v["calls"] for v in redis_client.info("commandstats").values())
    events = [_event("HOST", 2, "node02")] + [_event("VM", 100_000 + v, "node02")
                                              for v in range(vms)]
    c0, t0 = calls(), time.process_time()
    for i in range(0, len(events), BATCH):
        flow.apply_events([(e, None) for e in events[i:i + BATCH]])
    return (calls() - c0) / len(events), (time.process_time() - t0) / len(events)


def main() -> int:
    import redis

    from gateway.config import settings_from_dict
    from gateway.flows.incident import IncidentFlow
    from gateway.runtime import Runtime

    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--large", type=int, default=200)
    args = ap.parse_args()
    prefix = f"bench-incident-{uuid.uuid4().hex[:6]}:"
    settings = settings_from_dict({
        "redis_url": "redis://127.0.0.1:6379/0", "key_prefix": prefix,
        "receivers": [{"name": "m", "urls": ["json://127.0.0.1:9/never"]}],
        "route": {"receiver": "m", "group_by": ["host"], "group_wait": "1h"}}, env={})
    flow = IncidentFlow(Runtime.from_settings(settings), send=lambda *a, **k: None)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        flow.apply_event(_event("HOST", 1))
        for vm in range(args.small):
            flow.apply_event(_event("VM", vm))
        small = _sample(flow, client, args.small)
        for vm in range(args.small + SAMPLE, args.large):
            flow.apply_event(_event("VM", vm))
        large = _sample(flow, client, args.large + SAMPLE)
        batched = _batched(flow, client, args.large)
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    print("incident_event: a VM event joining a host incident (the real flow, local Redis)")
    for label, n, (cmds, cpu) in (("small", args.small, small), ("large", args.large, large)):
        print(f"  {label:5} ({n:>4} VMs held): {cmds:5.1f} Redis commands, "
              f"{cpu * 1000:6.2f} ms worker CPU per event")
    print(f"  ratio large/small: commands {large[0] / small[0]:.2f}, CPU {large[1] / small[1]:.2f}"
          f"  (1.0: an event's cost does not grow with the incident)")
    print(f"  batched ({args.large:>4} VMs storm): {batched[0]:5.1f} Redis commands, "
          f"{batched[1] * 1000:6.2f} ms worker CPU per event; one at a time (large) / batched: "
          f"commands {large[0] / batched[0]:.1f}x, CPU {large[1] / batched[1]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
