"""One attempt of an incident transaction (`IncidentStore.transact`): reads watch their keys,
the first write starts MULTI, and what it asks to send goes into the outbox with the writes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

from gateway.domain import grouping, muting
from gateway.domain.incidents import Incident, TimelineEntry

if TYPE_CHECKING:
    from gateway.adapters.store.incidents import IncidentStore

T = TypeVar("T")


def task_message(name: str, args: list[Any]) -> str:
    """An outbox entry: the Celery task to send once the transaction that wrote it commits."""
    return json.dumps({"task": name, "args": args}, separators=(",", ":"), sort_keys=True)


def own_mark_holds(mark: dict[str, Any], now: float) -> bool:
    """A mark of oneha's own host action holds until the host is healthy, or until its `until`."""
    return mark.get("until") is None or float(mark["until"]) > now


class Tx:
    """One attempt of a transaction: reads watch their keys; the first write starts MULTI."""

    def __init__(self, store: "IncidentStore", pipe, now: float):
        self.store, self.pipe, self.now = store, pipe, now
        self.outbox: list[str] = []
        self._watched: set[str] = set()
        self._read_incidents: dict[str, Incident] = {}  # as this attempt read them
        self._writing = False
        self.aborted = False

    # -- reading (while watching) -------------------------------------------------------------
    def _read(self, *keys: str):
        """The pipeline, watching `keys` (each WATCHed once: a round trip per new key only)."""
        assert not self._writing, "read after the first write of a transaction"
        new = [k for k in keys if k not in self._watched]
        if new:
            self.pipe.watch(*new)
            self._watched.update(new)
        return self.pipe

    def watch_incidents(self, incident_ids: list[str]) -> None:
        """Watch incidents about to be written that were not read (one round trip for all):
        a concurrent change of any of them re-runs the attempt."""
        self._read(*[self.store.doc(i) for i in incident_ids])

    def incident(self, incident_id: str | None) -> Incident | None:
        if not incident_id:
            return None
        raw = self._read(self.store.doc(incident_id)).get(self.store.doc(incident_id))
        incident = Incident.from_dict(json.loads(raw)) if raw else None
        if incident is not None:
            self._read_incidents[incident_id] = incident
        return incident

    def indexed(self, key: str) -> str | None:
        """The open incident holding `key` (an object key, or `hostname:<name>`)."""
        raw = self._read(self.store.index).hget(self.store.index, key)
        return raw.decode() if raw else None

    def vm_incidents_on(self, host: str) -> list[Incident]:
        key = self.store.vms_on(host)
        ids = self._read(key).smembers(key)
        return [i for i in (self.incident(x.decode()) for x in ids) if i is not None]

    def in_maintenance(self, host: str) -> bool:
        key = self.store.k("inc", "maintenance")
        return bool(host) and bool(self._read(key).hexists(key, host))

    def own_host_state(self, host_id: str) -> str:
        """oneha's own action behind this host's DISABLED/OFFLINE state, or ""."""
        key = self.store.k("inc", "own-host-state")
        raw = self._read(key).hget(key, host_id)
        mark = json.loads(raw) if raw else None
        return mark.get("action", "oneha") if mark and own_mark_holds(mark, self.now) else ""

    def group(self, gid: str) -> grouping.GroupState | None:
        raw = self._read(self.store.grp(gid)).hget(self.store.grp(gid), "state")
        return grouping.GroupState.from_dict(json.loads(raw)) if raw else None

    def members(self, gid: str) -> list[Incident]:
        key = self.store.members(gid)
        ids = sorted(x.decode() for x in self._read(key).smembers(key))
        docs = self.pipe.mget([self.store.doc(i) for i in ids]) if ids else []
        return [Incident.from_dict(json.loads(d)) for d in docs if d]

    def silences(self) -> list[muting.Silence]:
        return self.store.silences(self.pipe)

    def open_labels(self) -> list[muting.OpenIncident]:
        """The open incidents' labels (inhibition sources); not watched: a storm rewrites them
        all the time, and a flush that misses a just-opened host incident is corrected by the
        next one."""
        return [muting.OpenIncident(k.decode(), json.loads(v))
                for k, v in self.pipe.hgetall(self.store.k("inc", "labels")).items()]

    def escalated_to(self, incident_id: str) -> list[str]:
        return sorted(x.decode() for x in self.pipe.smembers(self.store.k("inc", incident_id,
                                                                          "escalated")))

    def abort(self, result: T) -> T:
        self.aborted = True
        return result

    # -- writing (queued after MULTI) ---------------------------------------------------------
    def _w(self):
        if not self._writing:
            self.pipe.multi()
            self._writing = True
        return self.pipe

    def save(self, i: Incident) -> None:
        """The incident and every index that finds it (open or resolved)."""
        s, p = self.store, self._w()
        p.set(s.doc(i.id), json.dumps(i.to_dict(), separators=(",", ":")))
        p.zadd(s.k("inc", "all"), {i.id: i.created_at})
        host = i.primary.host
        if i.is_open:
            p.zadd(s.k("inc", "open"), {i.id: i.created_at})
            # Objects the open incident held when this attempt read it are indexed to it already
            # (the index is watched): a host incident gaining its 200th VM writes one entry.
            before = self._read_incidents.get(i.id)
            known = before.objects if before is not None and before.is_open else {}
            new_keys = [k for k in i.objects if k not in known]
            if new_keys:
                p.hset(s.index, mapping={k: i.id for k in new_keys})
            if i.primary.resource == "HOST" and host:
                p.hset(s.index, f"hostname:{host}", i.id)
            if i.primary.resource == "VM" and host:
                p.sadd(s.vms_on(host), i.id)
            p.hset(s.k("inc", "labels"), i.id, json.dumps(i.labels))
            return
        p.zrem(s.k("inc", "open"), i.id)
        p.hdel(s.k("inc", "labels"), i.id)
        if i.merged_into is None:
            p.hdel(s.index, *i.objects.keys())
            if i.primary.resource == "HOST" and host:
                p.hdel(s.index, f"hostname:{host}")
        if i.primary.resource == "VM" and host:
            p.srem(s.vms_on(host), i.id)

    def add_timeline(self, incident_id: str, entries: Iterable[TimelineEntry]) -> None:
        data = [json.dumps(e.to_dict(), separators=(",", ":")) for e in entries]
        if data:
            self._w().rpush(self.store.tl(incident_id), *data)

    def set_group(self, state: grouping.GroupState) -> None:
        self._w().hset(self.store.grp(state.id), "state", json.dumps(state.to_dict()))

    def touch_group(self, gid: str, members: Iterable[str]) -> None:
        p = self._w()
        p.hset(self.store.grp(gid), "touched", repr(self.now))
        p.sadd(self.store.members(gid), *members)

    def forget_members(self, gid: str, incident_ids: list[str]) -> None:
        if incident_ids:
            self._w().srem(self.store.members(gid), *incident_ids)

    def delete_group(self, gid: str) -> None:
        self._w().delete(self.store.grp(gid), self.store.members(gid))

    def due(self, member: str, at: float | None, only_earlier: bool = False) -> None:
        """Set (None: remove) when `member` of the due set is looked at next."""
        p = self._w()
        if at is None:
            p.zrem(self.store.k("due"), member)
        elif only_earlier:
            p.zadd(self.store.k("due"), {member: at}, lt=True)
        else:
            p.zadd(self.store.k("due"), {member: at})

    def note_escalated(self, incident_id: str, receiver: str) -> None:
        self._w().sadd(self.store.k("inc", incident_id, "escalated"), receiver)

    def set_maintenance(self, host: str, on: bool) -> None:
        if on:
            self._w().hset(self.store.k("inc", "maintenance"), host, repr(self.now))
        else:
            self._w().hdel(self.store.k("inc", "maintenance"), host)

    def forget_own_host_state(self, host_id: str) -> None:
        self._w().hdel(self.store.k("inc", "own-host-state"), host_id)

    def commit(self) -> None:
        """Write the outbox with the rest, and execute (WatchError: a watched key changed)."""
        if self.outbox:
            self._w().zadd(self.store.k("outbox"), {m: self.now for m in self.outbox})
        self._w()
        self.pipe.execute()

    def send(self, name: str, args: list[Any]) -> None:
        """Send task `name` once this transaction commits (through the outbox)."""
        self.outbox.append(task_message(name, args))
