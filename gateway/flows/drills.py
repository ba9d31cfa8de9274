"""The drill flow and the dead man's switch (`gateway.domain.drills` says what they are).

    send a drill:      find the drill hook → record the drill (id, time) → one harmless write
                       through the leader (`one.hook.update`, merging ONEHA_DRILL="<id>")
    a drill is back:   (POST /v1/drills, signed by a front-end's sender) mark it reached (the
                       first arrival counts) → record its DRILL event → incident → drill receiver
    a heartbeat:       (POST /v1/heartbeats) remember the front-end's last one; a refused
                       signature from a configured front-end is remembered too (key mismatch)
    the switch:        (beat) assess heartbeats, key mismatches, the drill hook, the last drill
                       (pure) → a finding event per change, for people → close delivered drills
                       → send the next drill when one is due

Findings and drills are recorded through the same `EventStore` as the hooks, so incidents are
opened and resolved by the normal incident path (`IncidentFlow` in the worker).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.events import EventStore
from gateway.adapters.store.notifications import NotificationStore
from gateway.adapters.store.readiness import ReadinessStore
from gateway.adapters.store.schedule import ScheduleStore
from gateway.domain import drills
from gateway.domain.events import Event
from gateway.domain.incidents import incident_id_for
from gateway.errors import Permanent, Transient
from gateway.runtime import Runtime

log = logging.getLogger("oneha.drills")

DRILL_CHECK_TASK = "oneha.drill_check"


@dataclass
class Sent:
    drill_id: str
    sent_at: float
    hook_id: int | None
    error: str = ""


@dataclass
class Switched:
    findings: list[drills.Finding] = field(default_factory=list)
    raised: list[Event] = field(default_factory=list)
    sent: Sent | None = None
    skipped: str = ""


class DrillFlow:
    def __init__(self, runtime: Runtime, one: OpenNebula | None = None):
        self.rt = runtime
        self.cfg = runtime.settings.drills
        self._one = one
        self.store = ReadinessStore.of(runtime)

    @property
    def one(self) -> OpenNebula:
        if self._one is None:
            self._one = OpenNebula.of(self.rt)
        return self._one

    # ---- send -----------------------------------------------------------------------------
    def drill_hook(self) -> dict[str, Any] | None:
        return next((h for h in self.one.hooks() if h["name"] == drills.DRILL_HOOK), None)

    def send(self, now: float | None = None) -> Sent:
        """Start one drill; its result arrives later (`received`), or never."""
        now = self.rt.clock() if now is None else now
        drill_id = secrets.token_hex(8)
        hook = self.drill_hook()
        if hook is None:
            sent = Sent(drill_id, now, None, f"the drill hook {drills.DRILL_HOOK} is not "
                                             "installed (`oneha hooks install`)")
            return sent
        # Recorded before the write: the hook may run before the write's answer is back.
        self.store.save_drill(drill_id, {"id": drill_id, "sent_at": now, "hook_id": hook["id"]})
        try:
            self.one.hook_update(int(hook["id"]), f'{drills.DRILL_ATTRIBUTE} = "{drill_id}"')
        except (Transient, Permanent) as exc:
            self.store.update_drill(drill_id, {"id": drill_id, "sent_at": now,
                                               "hook_id": hook["id"], "error": str(exc)})
            return Sent(drill_id, now, hook["id"], f"OpenNebula refused the drill's write: {exc}")
        return Sent(drill_id, now, hook["id"])

    def received(self, drill_id: str, frontend: str, hook: str, now: float) -> dict | None:
        """A drill came back through `frontend`'s hook manager and sender. None: not ours."""
        record = self.store.mark_reached(drill_id, {"reached_at": now, "frontend": frontend,
                                                    "hook": hook})
        if record is None:
            return None
        event = drills.drill_event(drill_id, record["frontend"], record.get("hook", hook),
                                   float(record["reached_at"]))
        EventStore.of(self.rt).record_finding(event)
        return record

    def status(self, drill_id: str) -> dict[str, Any] | None:
        """The drill's record, with whether its message reached the drill receiver."""
        record = self.store.drill(drill_id)
        if record is None:
            return None
        if record.get("reached_at"):
            record["delivered"] = self._delivered(record)
        return record

    def _delivered(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The drill receiver's message about this drill, once it was sent."""
        event = drills.drill_event(record["id"], record.get("frontend", ""),
                                   record.get("hook", ""), float(record["reached_at"]))
        incident = incident_id_for(event)
        for n in NotificationStore.of(self.rt).recent(200):
            if n.get("incident_id") == incident and n.get("status") == "sent":
                return {"receiver": n.get("receiver"), "at": float(n.get("updated_at") or 0),
                        "incident_id": incident}
        return None

    def wait(self, drill_id: str, timeout: float, poll: float = 0.2) -> dict[str, Any]:
        """`oneha drill`: wait until the drill's message reached the drill receiver, or the
        timeout; the record as it is then."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.status(drill_id) or {}
            if record.get("delivered") or time.monotonic() >= deadline:
                return record
            time.sleep(poll)

    # ---- the switch -------------------------------------------------------------------------
    def check(self, now: float | None = None) -> Switched:
        schedule = ScheduleStore.of(self.rt)
        token = schedule.acquire_run(DRILL_CHECK_TASK, ttl=120.0)
        if token is None:
            return Switched(skipped="another drill check is running")
        try:
            return self._check(self.rt.clock() if now is None else now)
        finally:
            schedule.release_run(DRILL_CHECK_TASK, token)

    def _check(self, now: float) -> Switched:
        hook_present = None
        if self.cfg.enabled:
            try:
                hook_present = self.drill_hook() is not None
            except (Transient, Permanent) as exc:
                log.warning("drill_hook_unreadable reason=%s", exc)
        started = self.store.watch_started(now)
        watch = drills.Watch(
            now=now, frontends=sorted(self.rt.settings.ingest.frontends),
            heartbeats=self.store.heartbeats(), bad_keys=self.store.bad_keys(),
            hook_present=hook_present, drills=self.store.recent_drills(5) if self.cfg.enabled
            else (), cfg=self.cfg, started=started)
        findings = drills.assess(watch)
        raised = self._record(findings, now)
        self._close_delivered(now)
        sent = None
        if self.cfg.enabled and hook_present and self._drill_due(now):
            sent = self.send(now)
        return Switched(findings, raised, sent)

    def _drill_due(self, now: float) -> bool:
        last = next(iter(self.store.recent_drills(1)), None)
        return last is None or now - float(last.get("sent_at") or 0) >= self.cfg.interval

    def _record(self, findings: list[drills.Finding], now: float) -> list[Event]:
        """A firing finding is recorded while it lasts (the same event: a duplicate), a resolved
        one once, after it fired."""
        before = self.store.findings()
        after: dict[str, dict[str, Any]] = {}
        events = []
        for f in findings:
            held = before.get(f.key)
            if f.firing:
                episode = held["episode"] if held and held.get("firing") else f"{now:.3f}"
                events.append(drills.finding_event(f, episode, now))
                after[f.key] = {"firing": True, "episode": episode}
            elif held and held.get("firing"):
                events.append(drills.finding_event(f, held["episode"], now))
                after[f.key] = {"firing": False, "episode": held["episode"]}
        self.store.save_findings(after)  # first: a pass that fails half-way reuses the ids
        store = EventStore.of(self.rt)
        raised = []
        for e in events:
            if store.record_finding(e).accepted:
                raised.append(e)
                log.info("alert_path_finding object=%s status=%s summary=%s", e.object_key,
                         e.status, e.summary)
        return raised

    def _close_delivered(self, now: float) -> None:
        """A drill whose message reached the drill receiver has done its job: resolve it."""
        for record in self.store.recent_drills(5):
            if not record.get("reached_at") or record.get("closed"):
                continue
            if self._delivered(record) is None:
                continue
            done = drills.drill_event(record["id"], record.get("frontend", ""),
                                      record.get("hook", ""), now, status="resolved")
            EventStore.of(self.rt).record_finding(done)
            self.store.update_drill(record["id"], {**record, "closed": now})
