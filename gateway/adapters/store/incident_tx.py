"""One attempt of an incident transaction (`IncidentStore.transact`).

Reads go to Redis at once and WATCH their keys; writes are kept in order and sent with MULTI …
EXEC at `commit`, together with the outbox. Between the two, the attempt reads its own writes:
an incident saved, an index entry set, a group created are seen by every later read of the same
attempt. That is what lets one transaction apply a whole batch of events (`IncidentFlow.
apply_events`): the 200 VMs of a failed host join its incident in memory, and the incident's
document is written once, not 200 times.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from gateway.domain import grouping, muting
from gateway.domain.incidents import Incident, TimelineEntry

if TYPE_CHECKING:
    from gateway.adapters.store.incidents import IncidentStore

T = TypeVar("T")
Write = Callable[[Any], object]  # a write queued on the MULTI pipeline


def task_message(name: str, args: list[Any]) -> str:
    """An outbox entry: the Celery task to send once the transaction that wrote it commits."""
    return json.dumps({"task": name, "args": args}, separators=(",", ":"), sort_keys=True)


def own_mark_holds(mark: dict[str, Any], now: float) -> bool:
    """A mark of oneha's own host action holds until the host is healthy, or until its `until`."""
    return mark.get("until") is None or float(mark["until"]) > now


_UNREAD = object()


class Tx:
    """One attempt of a transaction: reads watch their keys and see this attempt's writes."""

    def __init__(self, store: "IncidentStore", pipe, now: float):
        self.store, self.pipe, self.now = store, pipe, now
        self.outbox: list[str] = []
        self.aborted = False
        self._watched: set[str] = set()
        self._writes: list[Write] = []
        # What this attempt read from Redis, then changed: each read key is read once.
        self._read_incidents: dict[str, Incident | None] = {}
        self._docs: dict[str, Incident] = {}  # saved: written once, at commit
        self._index: dict[str, str | None] = {}  # object key -> open incident (None: none)
        self._vms_on: dict[str, set[str]] = {}  # as read
        self._vms_delta: dict[str, dict[str, bool]] = {}  # written: incident id -> on the host
        self._maintenance: dict[str, bool] = {}
        self._own_states: dict[str, str] = {}
        self._groups: dict[str, grouping.GroupState | None] = {}
        self._members_added: dict[str, set[str]] = {}
        self._members_removed: dict[str, set[str]] = {}
        self._timeline: dict[str, list[str]] = {}
        self._healthy: dict[str, int | None] = {}  # VM key -> LAST_POLL of its last healthy look

    # -- reading (watching) --------------------------------------------------------------------
    def _read(self, *keys: str):
        """The pipeline, watching `keys` (each WATCHed once: a round trip per new key only)."""
        new = [k for k in keys if k not in self._watched]
        if new:
            self.pipe.watch(*new)
            self._watched.update(new)
        return self.pipe

    def watch_incidents(self, incident_ids: list[str]) -> None:
        """Watch incidents about to be written that were not read (one round trip for all):
        a concurrent change of any of them re-runs the attempt."""
        self._read(*[self.store.doc(i) for i in incident_ids
                     if i not in self._docs and i not in self._read_incidents])

    def incident(self, incident_id: str | None) -> Incident | None:
        if not incident_id:
            return None
        if incident_id in self._docs:
            return self._docs[incident_id]
        if incident_id not in self._read_incidents:
            doc = self.store.doc(incident_id)
            raw = self._read(doc).get(doc)
            self._read_incidents[incident_id] = Incident.from_dict(json.loads(raw)) if raw else None
        return self._read_incidents[incident_id]

    def prefetch_index(self, keys: Iterable[str]) -> None:
        """Read the index entries of `keys` in one round trip (a batch's objects)."""
        wanted = list(dict.fromkeys(k for k in keys if k not in self._index))
        if wanted:
            raw = self._read(self.store.index).hmget(self.store.index, wanted)
            self._index.update((k, v.decode() if v else None) for k, v in zip(wanted, raw))

    def prefetch_healthy_polls(self, keys: Iterable[str]) -> None:
        """The healthy polls of a batch's VMs in one round trip."""
        key = self.store.k("inc", "healthy-poll")
        wanted = list(dict.fromkeys(k for k in keys if k not in self._healthy))
        if wanted:
            raw = self._read(key).hmget(key, wanted)
            self._healthy.update((k, int(v) if v else None) for k, v in zip(wanted, raw))

    def healthy_poll(self, object_key: str) -> int | None:
        """LAST_POLL of the latest observation that found this VM healthy, or None."""
        if object_key not in self._healthy:
            self.prefetch_healthy_polls([object_key])
        return self._healthy[object_key]

    def indexed(self, key: str) -> str | None:
        """The open incident holding `key` (an object key, or `hostname:<name>`)."""
        if key not in self._index:
            raw = self._read(self.store.index).hget(self.store.index, key)
            self._index[key] = raw.decode() if raw else None
        return self._index[key]

    def vm_incidents_on(self, host: str) -> list[Incident]:
        if host not in self._vms_on:
            key = self.store.vms_on(host)
            self._vms_on[host] = {x.decode() for x in self._read(key).smembers(key)}
        ids = set(self._vms_on[host])
        for iid, on in self._vms_delta.get(host, {}).items():
            (ids.add if on else ids.discard)(iid)
        return [i for i in (self.incident(x) for x in sorted(ids)) if i is not None]

    def in_maintenance(self, host: str) -> bool:
        if not host:
            return False
        if host not in self._maintenance:
            key = self.store.k("inc", "maintenance")
            self._maintenance[host] = bool(self._read(key).hexists(key, host))
        return self._maintenance[host]

    def own_host_state(self, host_id: str) -> str:
        """oneha's own action behind this host's DISABLED/OFFLINE state, or ""."""
        if host_id not in self._own_states:
            key = self.store.k("inc", "own-host-state")
            raw = self._read(key).hget(key, host_id)
            mark = json.loads(raw) if raw else None
            self._own_states[host_id] = (mark.get("action", "oneha") if mark and
                                         own_mark_holds(mark, self.now) else "")
        return self._own_states[host_id]

    def group(self, gid: str) -> grouping.GroupState | None:
        if gid not in self._groups:
            raw = self._read(self.store.grp(gid)).hget(self.store.grp(gid), "state")
            self._groups[gid] = grouping.GroupState.from_dict(json.loads(raw)) if raw else None
        return self._groups[gid]

    def members(self, gid: str) -> list[Incident]:
        key = self.store.members(gid)
        ids = {x.decode() for x in self._read(key).smembers(key)}
        ids = (ids | self._members_added.get(gid, set())) - self._members_removed.get(gid, set())
        unread = sorted(i for i in ids if i not in self._docs and i not in self._read_incidents)
        if unread:  # one round trip for the documents (not watched: members are, via the set)
            docs = self.pipe.mget([self.store.doc(i) for i in unread])
            self._read_incidents.update(
                (i, Incident.from_dict(json.loads(d)) if d else None) for i, d in zip(unread, docs))
        return [i for i in (self.incident(x) for x in sorted(ids)) if i is not None]

    def silences(self) -> list[muting.Silence]:
        return self.store.silences(self.pipe)

    def open_labels(self) -> list[muting.OpenIncident]:
        """The open incidents' labels (inhibition sources); not watched: a storm rewrites them
        all the time, and a flush that misses a just-opened host incident is corrected by the
        next one."""
        found = {k.decode(): json.loads(v)
                 for k, v in self.pipe.hgetall(self.store.k("inc", "labels")).items()}
        for i in self._docs.values():  # this attempt's saves: open ones are sources, others not
            if i.is_open:
                found[i.id] = i.labels
            else:
                found.pop(i.id, None)
        return [muting.OpenIncident(k, v) for k, v in found.items()]

    def escalated_to(self, incident_id: str) -> list[str]:
        return sorted(x.decode() for x in self.pipe.smembers(self.store.k("inc", incident_id,
                                                                          "escalated")))

    def abort(self, result: T) -> T:
        self.aborted = True
        return result

    # -- writing (kept, sent at commit) ----------------------------------------------------------
    def _w(self, write: Write) -> None:
        self._writes.append(write)

    def save(self, i: Incident) -> None:
        """The incident and every index that finds it (open or resolved)."""
        s = self.store
        before = self._docs.get(i.id) or self._read_incidents.get(i.id)
        self._docs[i.id] = i
        host = i.primary.host
        if i.is_open:
            # Objects the open incident already held are indexed to it (the index is watched):
            # a host incident gaining its 200th VM writes one entry.
            known = before.objects if before is not None and before.is_open else {}
            new_keys = [k for k in i.objects if k not in known]
            if i.primary.resource == "HOST" and host:
                new_keys.append(f"hostname:{host}")
            if new_keys:
                mapping = {k: i.id for k in new_keys}
                self._index.update(mapping)
                self._w(lambda p: p.hset(s.index, mapping=mapping))
            if i.primary.resource == "VM" and host:
                self._vms_delta.setdefault(host, {})[i.id] = True
                self._w(lambda p: p.sadd(s.vms_on(host), i.id))
            return
        if i.merged_into is None:
            gone = list(i.objects)
            if i.primary.resource == "HOST" and host:
                gone.append(f"hostname:{host}")
            self._index.update((k, None) for k in gone)
            self._w(lambda p: p.hdel(s.index, *gone))
        if i.primary.resource == "VM" and host:
            self._vms_delta.setdefault(host, {})[i.id] = False
            self._w(lambda p: p.srem(s.vms_on(host), i.id))

    def _write_docs(self, p) -> None:
        """Each saved incident as it ends this attempt: its document and the sets that list it."""
        s = self.store
        for i in self._docs.values():
            p.set(s.doc(i.id), json.dumps(i.to_dict(), separators=(",", ":")))
            p.zadd(s.k("inc", "all"), {i.id: i.created_at})
            if i.is_open:
                p.zadd(s.k("inc", "open"), {i.id: i.created_at})
                p.hset(s.k("inc", "labels"), i.id, json.dumps(i.labels))
            else:
                p.zrem(s.k("inc", "open"), i.id)
                p.hdel(s.k("inc", "labels"), i.id)

    def add_timeline(self, incident_id: str, entries: Iterable[TimelineEntry]) -> None:
        data = [json.dumps(e.to_dict(), separators=(",", ":")) for e in entries]
        if data:
            self._timeline.setdefault(incident_id, []).extend(data)

    def set_group(self, state: grouping.GroupState) -> None:
        self._groups[state.id] = state
        self._w(lambda p: p.hset(self.store.grp(state.id), "state", json.dumps(state.to_dict())))

    def touch_group(self, gid: str, members: Iterable[str]) -> None:
        members = list(members)
        now = self.now
        self._members_added.setdefault(gid, set()).update(members)
        self._members_removed.get(gid, set()).difference_update(members)
        self._w(lambda p: p.hset(self.store.grp(gid), "touched", repr(now)))
        self._w(lambda p: p.sadd(self.store.members(gid), *members))

    def forget_members(self, gid: str, incident_ids: list[str]) -> None:
        if incident_ids:
            self._members_removed.setdefault(gid, set()).update(incident_ids)
            self._members_added.get(gid, set()).difference_update(incident_ids)
            self._w(lambda p: p.srem(self.store.members(gid), *incident_ids))

    def delete_group(self, gid: str) -> None:
        self._groups[gid] = None
        self._w(lambda p: p.delete(self.store.grp(gid), self.store.members(gid)))

    def due(self, member: str, at: float | None, only_earlier: bool = False) -> None:
        """Set (None: remove) when `member` of the due set is looked at next."""
        key = self.store.k("due")
        if at is None:
            self._w(lambda p: p.zrem(key, member))
        elif only_earlier:
            self._w(lambda p: p.zadd(key, {member: at}, lt=True))
        else:
            self._w(lambda p: p.zadd(key, {member: at}))

    def note_escalated(self, incident_id: str, receiver: str) -> None:
        self._w(lambda p: p.sadd(self.store.k("inc", incident_id, "escalated"), receiver))

    def set_maintenance(self, host: str, on: bool) -> None:
        key, now = self.store.k("inc", "maintenance"), self.now
        self._maintenance[host] = on
        self._w((lambda p: p.hset(key, host, repr(now))) if on else (lambda p: p.hdel(key, host)))

    def note_healthy_poll(self, object_key: str, last_poll: int) -> None:
        """Keep the newest LAST_POLL at which this VM was seen healthy."""
        if last_poll > (self.healthy_poll(object_key) or 0):
            self._healthy[object_key] = last_poll
            key = self.store.k("inc", "healthy-poll")
            self._w(lambda p: p.hset(key, object_key, last_poll))

    def forget_own_host_state(self, host_id: str) -> None:
        self._own_states[host_id] = ""
        self._w(lambda p: p.hdel(self.store.k("inc", "own-host-state"), host_id))

    def also(self, write: Write) -> None:
        """A write of another store that must commit with this transaction or not at all (the
        acknowledgement of the events a batch applied)."""
        self._w(write)

    def send(self, name: str, args: list[Any]) -> None:
        """Send task `name` once this transaction commits (through the outbox; once per batch)."""
        message = task_message(name, args)
        if message not in self.outbox:
            self.outbox.append(message)

    def commit(self) -> None:
        """Send the writes and the outbox in one MULTI/EXEC (WatchError: a watched key changed)."""
        p = self.pipe
        p.multi()
        for write in self._writes:
            write(p)
        self._write_docs(p)
        for iid, data in self._timeline.items():
            p.rpush(self.store.tl(iid), *data)
        if self.outbox:
            p.zadd(self.store.k("outbox"), {m: self.now for m in self.outbox})
        p.execute()
