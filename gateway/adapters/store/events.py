"""The event log: record an `Event` once, durably, and queue its processing — in one round trip.

`EventStore.record` runs one Lua script (EVALSHA; loaded again when a Redis restart forgot it):
  1. `SET <p>events:dedup:<event_id> <body sha256> NX EX <dedup_ttl>` — the event_id is claimed;
  2. if it was already claimed: same sha -> a duplicate (nothing else happens, nothing is queued
     twice); another sha -> a conflict (the caller answers 409);
  3. else `XADD <p>events:log MAXLEN ~ <n>` (the append-only log the UI and CLI read), `XADD
     <p>events:pending` (what the applier has not applied yet, see `store/pending.py`), the
     `LPUSH` of an `oneha.apply_pending` wake-up when no wake-up is outstanding, and the metric
     counters — and, first, when the front-end that signed it was last heard from (`/metrics`;
     in the same script, so an event costs the gateway one round trip, not two).
All of it or nothing: a Lua script is atomic, so no event is logged without being queued or
queued without being claimed. With AOF on, Redis has it before the 202 leaves. A storm of 2,000
events queues a handful of wake-ups, not 2,000 tasks: the applier drains the stream in batches.

The log entry and the pending entry are the same JSON: the event without its XML
(`event.to_json(with_xml=False)`). The gateway reads the XML once, when it builds the event, and
what the tasks need of it travels as fields (labels, `last_poll`); before acting they re-read the
live object through pyone anyway. Carrying the 8 KB document on is costly: a 100k-entry log of
them holds ~1 GB of Redis memory, and the queued copy (JSON-quoted, then base64 in the Celery
body, ~12 KB) is copied into Lua, into the stream and into the AOF —
measured per 8 KB VM event: 58 µs of the gateway's ~750 µs of CPU and 49 µs of Redis's 120 µs.

The wake-up's Celery message is built here from a template instead of `apply_async` (which costs
a second round trip and ~0.5 ms of CPU); it is the same JSON kombu's Redis transport would LPUSH
for `send_task(name, args=[arg])` (protocol 2, body base64, priority 0), and a test runs it on a
real worker. Key names live only here (and the other `store/*` modules).

Ingest counters (`IngestCounters`) live in one Redis hash so every gunicorn worker reports the
same `/metrics`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass

import redis

from gateway.domain.events import Event
from gateway.errors import Transient
from gateway.redis_urls import is_sentinel
from gateway.runtime import Runtime

from . import UNAVAILABLE, unavailable_is_transient
from .kept import KeptConnections, _resp_command  # noqa: F401 (tests import it from here)
from .pending import WAKE_TTL, PendingEvents

# Behind Sentinel, a 202 waits until one replica confirmed the event (`WAIT 1`, sent with the
# script in the same write): replication is asynchronous, and a primary that fails over — killed
# or demoted by `SENTINEL FAILOVER`, when it takes writes until it is told to follow — loses
# what its replicas had not received. Measured on loopback: a manual failover under a burst lost
# 4,563 acknowledged events without it, none with it. A primary with no replica answers 503:
# run two replicas, so that one failure leaves one (README, "No single point of failure").
REPLICA_WAIT_MS = 500

PROCESS_EVENT_TASK = "oneha.process_event"  # one event per task: what older gateways queue
APPLY_PENDING_TASK = "oneha.apply_pending"


RECORD_LUA = """
-- KEYS: dedup key, event log stream, pending stream, wake marker, task queue, metrics hash,
--       front-ends' last-seen hash
-- ARGV: body sha, dedup ttl, log maxlen, event id, object key, event json, wake-up task message,
--       accepted counter field, wake marker ttl (ms), the front-end that signed it (or '')
local function seen()  -- accepted (a duplicate too): the signing front-end is heard from
  if ARGV[10] ~= '' then
    local now = redis.call('TIME')
    local t = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
    redis.call('HSET', KEYS[7], 'seen:' .. ARGV[10], t, 'event:' .. ARGV[10], t)
  end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('HINCRBY', KEYS[6], 'duplicate', 1)
    seen()
    return 1
  end
  redis.call('HINCRBY', KEYS[6], 'rejected:event_id_conflict', 1)
  return 2
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
           'event_id', ARGV[4], 'object', ARGV[5], 'event', ARGV[6])
redis.call('XADD', KEYS[3], '*', 'e', ARGV[6])
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[9]) then
  redis.call('LPUSH', KEYS[5], ARGV[7])
end
redis.call('HINCRBY', KEYS[6], ARGV[8], 1)
seen()
return 0
"""


@dataclass(frozen=True, slots=True)
class RecordResult:
    duplicate: bool = False  # the same event_id with the same body was recorded before
    conflict: bool = False  # the event_id was recorded before with a different body

    @property
    def accepted(self) -> bool:
        return not self.duplicate and not self.conflict


_RESULTS = {0: RecordResult(), 1: RecordResult(duplicate=True), 2: RecordResult(conflict=True)}


class EventStore:
    """Record events (any source: hook, reconciler, raft, alertmanager) and read the recent ones."""

    def __init__(self, runtime: Runtime):
        settings = runtime.settings
        self._redis = runtime.redis
        self._dedup = runtime.key("events", "dedup", "")
        self._log = runtime.key("events", "log")
        self._metrics = runtime.key("metrics", "ingest")
        self._frontends = runtime.key("metrics", "frontends")  # store/telemetry.py reads it
        self._queue = settings.task_queue
        self._notify_queue = settings.notify_queue
        self._ttl = str(max(1, int(settings.ingest.dedup_ttl)))
        self._maxlen = str(settings.ingest.event_log_maxlen)
        pending = PendingEvents.of(runtime)
        self._pending, self._wake = pending.stream, pending.wake_key
        self._wake_ttl = str(int(WAKE_TTL * 1000))
        self._record = self._redis.register_script(RECORD_LUA)
        self._connections = KeptConnections(self._redis)
        # Behind Sentinel an event is acknowledged once a replica has it too (see REPLICA_WAIT_MS).
        self._replicas = 1 if is_sentinel(settings.redis_url) else 0

    @classmethod
    def of(cls, runtime: Runtime) -> "EventStore":
        """The process's store (the script object and key names are built once)."""
        return runtime.cached("event_store", lambda: cls(runtime))

    def record(self, event: Event, body_sha256: str, signed_by: str = "") -> RecordResult:
        """Claim `event.event_id`, log and queue the event; `Transient` when Redis is away.

        Runs on every ingest request, so it skips redis-py's command layers (see
        `store/kept.py`). A connection that breaks is replaced once — after a Redis restart
        every kept one is dead — and a script Redis forgot (a restart flushes them) is loaded
        again. A retried script that had already run finds its own claim: a duplicate, recorded
        once."""
        script = self._script_input(event, body_sha256, signed_by)
        command = ("EVALSHA", self._record.sha, len(script["keys"]), *script["keys"],
                   *script["args"])
        what = f"cannot record event {event.event_id}: Redis unreachable"
        reconnected = reloaded = False
        while True:
            try:
                if not self._replicas:
                    return _RESULTS[int(self._connections.call(command)[0])]
                code, copies = self._connections.call(
                    command, ("WAIT", self._replicas, REPLICA_WAIT_MS))
                if int(copies) < self._replicas:
                    raise Transient(f"{what} (recorded on the primary, but no replica confirmed "
                                    f"it within {REPLICA_WAIT_MS} ms)")
                return _RESULTS[int(code)]
            except redis.exceptions.NoScriptError:
                if reloaded:
                    raise Transient(f"{what} (it forgot the record script twice)") from None
                reloaded = True
                with unavailable_is_transient(what):
                    self._redis.script_load(RECORD_LUA)
            except redis.exceptions.ConnectionError as exc:
                if reconnected:
                    raise Transient(f"{what} ({exc})") from exc
                reconnected = True
            except UNAVAILABLE as exc:
                raise Transient(f"{what} ({exc})") from exc

    def record_finding(self, event: Event) -> RecordResult:
        """`record` for an event oneha found itself (reconciler, Raft check, storm guard): the
        body hash is over what makes the event what it is, so a re-sent episode event whose
        summary moved on (a lag grew) is a duplicate, not a conflicting replay."""
        identity = f"{event.event_id}:{event.status}:{event.condition}:{event.object_key}"
        return self.record(event, hashlib.sha256(identity.encode()).hexdigest())

    def record_many(self, items: list[tuple[Event, str]]) -> list[RecordResult]:
        """`record` for several events in one pipelined round trip (each one still atomic).

        On `Transient` some may have been recorded: the caller's retry finds them duplicates.
        """
        if not items:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for event, sha in items:
            self._record(**self._script_input(event, sha), client=pipe)
        try:
            codes = pipe.execute()
        except UNAVAILABLE as exc:
            raise Transient(f"cannot record {len(items)} events: Redis unreachable ({exc})") from exc
        return [_RESULTS[int(code)] for code in codes]

    def _script_input(self, event: Event, body_sha256: str, signed_by: str = "") -> dict:
        event_json = event.to_json(with_xml=False)
        # Built for every event, used by the few that find no wake-up outstanding: the delivery
        # tag must be unique per message, and ~10 µs is less than a second round trip.
        wake = celery_task_message(APPLY_PENDING_TASK, "ingest", self._queue)
        return {"keys": [self._dedup + event.event_id, self._log, self._pending, self._wake,
                         self._queue, self._metrics, self._frontends],
                "args": [body_sha256, self._ttl, self._maxlen, event.event_id, event.object_key,
                         event_json, wake, "accepted:" + event.resource, self._wake_ttl,
                         signed_by]}

    def backlog(self) -> dict[str, int]:
        """Work waiting for a worker: `events` recorded but not applied, `tasks` (wake-ups,
        remediation) and `notify` (deliveries, the grouping clock). Growing while events come
        in: no worker is consuming."""
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.xlen(self._pending)
                pipe.llen(self._queue)
                pipe.llen(self._notify_queue)
                events, tasks, notify = pipe.execute()
        except UNAVAILABLE as exc:
            raise Transient(f"cannot read the task queues: Redis unreachable ({exc})") from exc
        return {"events": events, "tasks": tasks, "notify": notify}

    def recent(self, n: int = 50, object_key: str | None = None,
               scan: int = 100_000) -> list[Event]:
        """The last `n` recorded events, newest first (without their XML, see above); with
        `object_key` (`vm:42`), the last `n` about that object among the newest `scan` entries.
        """
        if n <= 0:
            return []
        found: list[Event] = []
        newest, seen = "+", 0
        wanted = object_key.encode() if object_key is not None else None
        try:
            while len(found) < n and seen < scan:
                batch = self._redis.xrevrange(self._log, max=newest,
                                              count=n if object_key is None else 1000)
                if not batch:
                    break
                for _id, fields in batch:
                    if wanted is None or fields.get(b"object") == wanted:
                        found.append(Event.from_json(fields[b"event"]))
                seen += len(batch)
                if object_key is None:
                    break
                newest = "(" + batch[-1][0].decode()  # exclusive: continue below the last one
        except UNAVAILABLE as exc:
            raise Transient(f"cannot read the event log: Redis unreachable ({exc})") from exc
        return found[:n]


class IngestCounters:
    """Counters behind `/metrics`: accepted by resource, duplicates, rejected by reason, 503s.

    Accepted and duplicate events are counted by the record script itself. A count that cannot
    reach Redis (a 503 happens exactly when Redis cannot be written) is kept in the process and
    added by the next call that reaches it.
    """

    def __init__(self, runtime: Runtime):
        self._redis = runtime.redis
        self._key = runtime.key("metrics", "ingest")
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}

    @classmethod
    def of(cls, runtime: Runtime) -> "IngestCounters":
        return runtime.cached("ingest_counters", lambda: cls(runtime))

    def rejected(self, reason: str) -> None:
        self._count("rejected:" + reason)

    def unavailable(self) -> None:
        """Kept, not sent: Redis has just failed to answer, and asking it again would cost the
        503 another timeout (the sender gives up at 3 s). The next request that reaches it adds it."""
        self._keep({"unavailable": 1})

    def snapshot(self) -> dict[str, int]:
        """`{"accepted:HOST": 3, "duplicate": 1, "rejected:bad_signature": 2, ...}`."""
        self.flush()
        try:
            raw = self._redis.hgetall(self._key)
        except UNAVAILABLE as exc:
            raise Transient(f"cannot read metrics: Redis unreachable ({exc})") from exc
        return {k.decode(): int(v) for k, v in raw.items()}

    def flush(self) -> None:
        """Add the counts kept while Redis was away (no round trip when there are none)."""
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
        try:
            pipe = self._redis.pipeline(transaction=True)  # all counts or none
            for field, n in pending.items():
                pipe.hincrby(self._key, field, n)
            pipe.execute()
        except UNAVAILABLE:
            self._keep(pending)

    def _count(self, field: str) -> None:
        self._keep({field: 1})
        self.flush()

    def _keep(self, counts: dict[str, int]) -> None:
        with self._lock:
            for field, n in counts.items():
                self._pending[field] = self._pending.get(field, 0) + n


# --- Celery protocol 2 message, as kombu's Redis transport LPUSHes it -------------------------
# Key order and separators follow kombu (json.dumps defaults), so the bytes match what
# `app.send_task(name, args=[...], queue=...)` pushes, apart from ids, origin and argsrepr.
_BODY_TAIL = ', {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
_MESSAGE = (
    '{"body": "%(body)s", "content-encoding": "utf-8", "content-type": "application/json", '
    '"headers": {"lang": "py", "task": %(task)s, "id": %(id)s, "shadow": null, "eta": null, '
    '"expires": null, "group": null, "group_index": null, "retries": 0, '
    '"timelimit": [null, null], "root_id": %(id)s, "parent_id": null, "argsrepr": %(argsrepr)s, '
    '"kwargsrepr": "{}", "origin": %(origin)s, "ignore_result": true, '
    '"replaced_task_nesting": 0, "stamped_headers": null, "stamps": {}}, '
    '"properties": {"correlation_id": %(id)s, "reply_to": "", "delivery_mode": 2, '
    '"delivery_info": {"exchange": "", "routing_key": %(queue)s}, "priority": 0, '
    '"body_encoding": "base64", "delivery_tag": %(tag)s}}'
)
_origin: tuple[int, str] | None = None


def celery_task_message(task: str, arg: str, queue: str, *, task_id: str | None = None,
                        argsrepr: str | None = None, arg_is_json: bool = False) -> str:
    """The JSON to LPUSH onto `queue` so a Celery worker runs `task(arg)` (one string argument).

    `arg_is_json`: `arg` is text json.dumps wrote (ASCII, no raw control characters), so quoting
    it is two replaces — the same bytes as json.dumps, 3x faster on an 11 KB event.
    """
    if arg_is_json:
        quoted = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        quoted = json.dumps(arg)
    body = "[[" + quoted + "]" + _BODY_TAIL
    return _MESSAGE % {
        "body": base64.b64encode(body.encode("utf-8")).decode("ascii"),
        "task": json.dumps(task),
        "id": json.dumps(task_id) if task_id else '"' + _uuid4() + '"',
        "argsrepr": json.dumps(argsrepr if argsrepr is not None else repr([arg[:200]])),
        "origin": json.dumps(_origin_name()),
        "queue": json.dumps(queue),
        "tag": '"' + _uuid4() + '"',
    }


def _uuid4() -> str:
    """`str(uuid.uuid4())` in less than half its time (each queued event needs two)."""
    h = os.urandom(16).hex()
    return (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")


def _origin_name() -> str:
    """Celery's `anon_nodename()` (gen<pid>@<host>), recomputed after a fork (gunicorn workers)."""
    global _origin
    pid = os.getpid()
    if _origin is None or _origin[0] != pid:
        _origin = (pid, f"gen{pid}@{socket.gethostname()}")
    return _origin[1]
