"""The applier: recorded events → incidents, in batches, by one worker at a time.

    take the lease → read a batch from the head of the pending stream → apply it in one
    transaction that also forgets its entries → wake the grouping clock for new groups, and a
    flush that waited for this batch → repeat until the stream is empty → release the lease →
    look once more (see `store/pending.py`)

Why batches: in a storm a host incident gains hundreds of VMs within a second. Applied one per
transaction, each rewrote the whole incident (O(VMs) per event) and cost a task and ~24 Redis
commands; applied as a batch, each incident is read and written once, and a round trip serves
hundreds of events. Why one applier: every event transaction watches the incident index, so two
appliers would mostly undo each other's work; one keeps up with the gateway (bench/alertmanager.py).

An event that cannot be applied (a bug, a document this version cannot read) must not hold up
the ones behind it: the batch is split until the culprit stands alone, and that one is kept in
`events:failed` with its error — never dropped silently. "Not now" errors (Redis away) are
raised: the task retries, and nothing was acknowledged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import redis

from gateway.adapters.store.pending import Pending, PendingEvents
from gateway.domain.events import Event
from gateway.errors import Transient
from gateway.flows.incident import Applied, IncidentFlow

log = logging.getLogger("oneha.applier")

BATCH = 250  # events per transaction: large enough for a host's VMs, small enough to redo
GROUP_WAKE_BUCKET = 0.05  # new groups due within this of each other share one wake-up


@dataclass
class Drained:
    applied: int = 0
    batches: int = 0
    failed: int = 0
    busy: bool = False  # another worker holds the lease (it will see what this one would)
    actions: dict[str, int] = field(default_factory=dict)


class Applier:
    def __init__(self, flow: IncidentFlow, wake_groups: Callable[[float], None],
                 batch: int = BATCH):
        """`wake_groups(due)`: make sure the due groups are looked at by `due` (a delayed
        `oneha.flush_due`), so group_wait is not rounded up to the beat's tick."""
        self.flow = flow
        self.pending: PendingEvents = flow.pending
        self.wake_groups = wake_groups
        self.batch = batch

    def drain(self) -> Drained:
        out = Drained()
        while True:
            if not self.pending.take_lease():
                out.busy = True
                return out
            try:
                self._drain_held(out)
            finally:
                self.pending.release_lease()  # and forgets the wake marker
            # An event recorded between the last empty read and the release found the wake
            # marker set and queued no wake-up: it is ours to apply.
            if not self.pending.waiting():
                return out

    def _drain_held(self, out: Drained) -> None:
        while True:
            entries = self.pending.read(self.batch)
            if not entries:
                return
            self._apply(entries, out)
            out.batches += 1
            renewed, held = self.pending.after_batch()
            if held:  # a due group waited for this batch
                self.wake_groups(0.0)
            if not renewed:
                raise Transient("the applier lease expired mid-drain; another worker goes on")

    def _apply(self, entries: list[Pending], out: Drained) -> None:
        batch, readable = [], []
        for p in entries:
            try:
                batch.append((Event.from_json(p.event_json), p.heard_at))
                readable.append(p)
            except (ValueError, TypeError) as exc:
                self._keep_failed(p, f"not an Event: {exc}")
                out.failed += 1
        if not readable:
            return
        ack = self.pending.acknowledge([p.entry_id for p in readable])
        try:
            applied = self.flow.apply_events(batch, also=ack)
        except (Transient, redis.exceptions.RedisError):
            raise  # not now: nothing was acknowledged, the task retries
        except Exception as exc:  # noqa: BLE001 — isolated and kept below, never dropped
            if len(readable) == 1:
                self._keep_failed(readable[0], f"{type(exc).__name__}: {exc}")
                out.failed += 1
                return
            half = len(readable) // 2
            self._apply(readable[:half], out)
            self._apply(readable[half:], out)
            return
        self._account(batch, applied, out)

    def _account(self, batch: list[tuple[Event, float]], applied: list[Applied],
                 out: Drained) -> None:
        buckets: dict[int, float] = {}
        for (event, _), a in zip(batch, applied):
            d = a.decision
            out.actions[d.action] = out.actions.get(d.action, 0) + 1
            log.debug("event_applied", extra={"event": event.event_id, "object": event.object_key,
                                              "action": d.action, "incident": d.incident_id,
                                              "reason": d.reason})
            for _gid, due in a.new_groups:
                bucket = int(due / GROUP_WAKE_BUCKET)
                buckets[bucket] = max(due, buckets.get(bucket, due))
        out.applied += len(batch)
        for due in sorted(buckets.values()):
            self.wake_groups(due)

    def _keep_failed(self, p: Pending, error: object) -> None:
        log.error("event_failed entry=%s error=%s body=%.200s", p.entry_id, error,
                  p.event_json.decode("utf-8", "replace"))
        self.pending.keep_failed(p, str(error))
