"""What the remediation flow needs from outside it, and how it asks for its next step.

- `IncidentPort`: what remediation reads and writes of incidents (over the incident flow), and the
  one way its news reach people: a notice on the incident, told by the incident's story.
- `Wake` and the task names: a pass over a plan never sleeps; it returns what to run next and
  when, and the Celery task (tasks/remediate.py) or the test driver enqueues it.
- `LEFT_TO_PEOPLE`: the plan's skip codes of VMs nothing automatic will recover.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from gateway.domain import phrases
from gateway.domain.i18n import SOURCE
from gateway.domain.objects import VmInfo

log = structlog.get_logger("oneha.remediation")

PLAN_TASK, RUN_TASK, VERIFY_TASK = "oneha.plan_remediation", "oneha.run_plan", "oneha.verify_plan"
RESUME_TASK = "oneha.resume_plans"
# Why a VM is left to people, by the plan's skip code (the codes of VMs nothing will recover).
LEFT_TO_PEOPLE = phrases.LEFT_ALONE[SOURCE]


@dataclass(frozen=True)
class Wake:
    """What a pass over a plan asks for next: run again / verify after `delay` seconds."""

    task: str
    delay: float


class IncidentPort:
    """What remediation reads and writes of incidents (over `IncidentFlow`), and the one way its
    news reach people: a notice on the incident, told by the incident's story after the alert.
    Without a store (`IncidentPort(None)`) it reads nothing and drops every write."""

    def __init__(self, store, clock: Callable[[], float] = time.time,
                 record_event: Callable[[Any], None] | None = None):
        self.store = store
        self.clock = clock
        self._record_event = record_event

    def get(self, incident_id: str):
        return self.store.get(incident_id) if self.store is not None else None

    def set_plan(self, incident_id: str, plan_id: str) -> None:
        if self.store is not None:
            self.store.attach(incident_id, "", plan_id=plan_id)

    def set_live_vms(self, incident_id: str, vms: list[VmInfo], impact_rows: list[dict],
                     host_label: str = "") -> None:
        if self.store is not None:
            self.store.set_live_vms(incident_id, vms, impact_rows, host_label)

    def set_state(self, incident_id: str, to: str, reason: str) -> None:
        from gateway.domain.incidents import TransitionError
        if self.store is None:
            return
        inc = self.store.get(incident_id)
        if inc is None or inc.state == to or not inc.is_open:
            return
        try:
            self.store.transition(incident_id, to, reason, "oneha-remediation")
        except TransitionError as exc:  # e.g. resolved meanwhile: nothing to change
            log.info("incident_transition_skipped", incident=incident_id, to=to, reason=str(exc))

    def add_notice(self, incident_id: str, kind: str, key: str, code: str, params: dict,
                   approval_url: str = "", plan: list[dict] | None = None) -> None:
        """A notice that says `code` with `params` (gateway/domain/phrases.py): recorded with its
        English text, told to each receiver in its language."""
        if self.store is None:
            return
        text = phrases.say(SOURCE, code, params)
        if self.store.add_notice(incident_id, kind, key, text, approval_url, plan, code,
                                 params) is None:
            log.warning("notice_without_incident", incident=incident_id, kind=kind, text=text)

    def note_own_action(self, host_id: int | None, action: str, plan_id: str,
                        ttl: float | None) -> None:
        if self.store is not None and host_id is not None:
            self.store.note_own_action(host_id, action, plan_id, ttl)

    def own_hosts(self) -> frozenset[int]:
        """Ids of hosts whose DISABLED/OFFLINE state oneha's own actions caused."""
        if self.store is None:
            return frozenset()
        return frozenset(int(k) for k in self.store.own_actions() if k.isdigit())

    def record_event(self, event) -> None:
        """An event of remediation's own (the storm guard's finding) into the incident flow."""
        if self._record_event is not None:
            self._record_event(event)

    def add_timeline(self, incident_id: str, text: str, actor: str, data: dict) -> None:
        from gateway.domain.incidents import TimelineEntry
        if self.store is None:
            return
        try:
            self.store.add_timeline(incident_id, TimelineEntry(self.clock(), "remediation", text,
                                                               actor, data))
        except KeyError:
            log.warning("timeline_without_incident", incident=incident_id, text=text)
