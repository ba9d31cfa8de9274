"""Events recorded but not yet applied to incidents: a Redis stream the applier drains in batches.

Keys (under the key prefix):
  `events:pending`     stream: one entry per recorded event (`e` = the event's JSON); the entry
                       id is Redis's time when the gateway recorded it
  `events:failed`      stream: events that could not be applied, with the error
  `events:flush-held`  a due group waits for the applier: it wakes the flush after its next batch
  `events:wake`        set by the record script when it queues a wake-up task, so a storm queues
                       a handful, not one task per event
  `events:applier`     the lease of the one worker applying them

The protocol, which loses no event and needs no per-event task:
  gateway (atomic, in the record script): XADD the event; if `SET events:wake NX` succeeds, also
      queue an `oneha.apply_pending` task.
  applier: take the lease (else someone is applying: return); read a batch from the head of the
      stream; apply it and XDEL its entries in the same MULTI/EXEC as the incident writes
      (`Tx.also`), so a crash before EXEC leaves the batch for the next applier and a crash after
      it leaves nothing to redo; repeat until the stream is empty; release the lease; DEL
      `events:wake`; if the stream is not empty now, start again.
An event recorded after the applier's last read either finds `events:wake` deleted (and queues
a wake-up) or was recorded before the DEL (and the applier's last look sees it). A wake-up lost
with a worker, or a lease left by a killed one (it expires), is covered by the beat, which sends
`oneha.apply_pending` every few seconds.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import redis

from gateway.runtime import Runtime

from . import unavailable_is_transient

LEASE_TTL = 10.0  # seconds a killed applier holds the events up at most (renewed per batch)
FAILED_KEEP = 10_000  # events that could not be applied, kept for people to look at
WAKE_TTL = 10.0  # a wake marker outliving a lost wake-up delays events this long at most

# Release the lease only if it is still ours (it may have expired and been taken over).
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Pending:
    """One recorded event waiting to be applied."""

    entry_id: str
    event_json: bytes
    heard_at: float  # when the gateway recorded it (Redis's clock, from the entry id)


def heard_at(entry_id: str) -> float:
    return int(entry_id.split("-", 1)[0]) / 1000.0


class PendingEvents:
    def __init__(self, runtime: Runtime):
        self.r: redis.Redis = runtime.redis
        self.stream = runtime.key("events", "pending")
        self.wake_key = runtime.key("events", "wake")
        self.lease_key = runtime.key("events", "applier")
        self.failed_key = runtime.key("events", "failed")
        self.held_key = runtime.key("events", "flush-held")
        self._release = self.r.register_script(_RELEASE_LUA)
        self._renew = self.r.register_script(_RENEW_LUA)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"

    @classmethod
    def of(cls, runtime: Runtime) -> "PendingEvents":
        return runtime.cached("pending_events", lambda: cls(runtime))

    # -- the applier's lease ------------------------------------------------------------------
    def take_lease(self) -> bool:
        with unavailable_is_transient("cannot take the applier lease"):
            return bool(self.r.set(self.lease_key, self.holder, nx=True,
                                   px=int(LEASE_TTL * 1000)))

    def after_batch(self) -> tuple[bool, bool]:
        """One round trip after each batch: (the lease renewed — False: it expired and another
        applier may have it, stop; a due group waited for this batch — wake the flush)."""
        with unavailable_is_transient("cannot renew the applier lease"):
            with self.r.pipeline(transaction=False) as pipe:
                self._renew(keys=[self.lease_key], args=[self.holder, int(LEASE_TTL * 1000)],
                            client=pipe)
                pipe.getdel(self.held_key)
                renewed, held = pipe.execute()
        return bool(renewed), bool(held)

    def release_lease(self) -> None:
        with unavailable_is_transient("cannot release the applier lease"):
            self._release(keys=[self.lease_key], args=[self.holder])
            self.r.delete(self.wake_key)

    # -- the stream -----------------------------------------------------------------------------
    def read(self, count: int) -> list[Pending]:
        """The oldest `count` events waiting (the head of the stream)."""
        with unavailable_is_transient("cannot read the pending events"):
            entries = self.r.xrange(self.stream, count=count)
        return [Pending(i.decode(), f.get(b"e", b""), heard_at(i.decode())) for i, f in entries]

    def acknowledge(self, entry_ids: list[str]):
        """The write that forgets applied entries, for the transaction that applied them."""
        stream = self.stream
        return lambda pipe: pipe.xdel(stream, *entry_ids) if entry_ids else None

    def keep_failed(self, p: Pending, error: str) -> None:
        """An event that cannot be applied: kept (with its error) for people, out of the way."""
        with unavailable_is_transient("cannot keep a failed event"):
            with self.r.pipeline() as pipe:  # moved, never lost or doubled
                pipe.xadd(self.failed_key, {"e": p.event_json, "entry": p.entry_id,
                                            "error": error[:2000]},
                          maxlen=FAILED_KEEP, approximate=True)
                pipe.xdel(self.stream, p.entry_id)
                pipe.execute()

    def failed(self, n: int = 50) -> list[dict[str, str]]:
        """The last `n` events that could not be applied, newest first."""
        with unavailable_is_transient("cannot read the failed events"):
            rows = self.r.xrevrange(self.failed_key, count=n)
        return [{"id": i.decode(), **{k.decode(): v.decode("utf-8", "replace")
                                      for k, v in f.items()}} for i, f in rows]

    # -- a flush waiting for the applier -----------------------------------------------------------
    def hold_flush(self, ttl: float) -> None:
        """A due group waits for events this applier has not applied yet: wake the flush when
        it has (`after_batch`), rather than have the flush poll (many would, in a storm)."""
        with unavailable_is_transient("cannot mark a held flush"):
            self.r.set(self.held_key, "1", px=max(1, int(ttl * 1000)))

    def waiting(self) -> int:
        with unavailable_is_transient("cannot count the pending events"):
            return int(self.r.xlen(self.stream))

    def oldest_heard(self) -> float | None:
        """When the oldest event still waiting was recorded; None when none waits."""
        with unavailable_is_transient("cannot read the pending events"):
            head = self.r.xrange(self.stream, count=1)
        return heard_at(head[0][0].decode()) if head else None
