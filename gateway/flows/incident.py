"""The incident flow: from an event to an incident, and from a due group to the messages people
get. Each path is a short list of named stages, run inside one transaction of the incident
repository (`IncidentStore.transact`), so a conflicting write by another worker re-runs it:

    apply an event:   load the context → decide (pure) → save the incidents → route them into
                      their groups → ask for remediation planning
    change one:       load it → apply the change (pure) → save it → wake its groups
    flush a group:    load it and its members → mute → plan the flush (pure) → compose the
                      messages → save the group → hand the messages to the outbox
    escalate:         load the incident → mute → plan the escalation (pure) → compose → outbox

Every message an incident's story tells leaves from `flush_group` / `escalation.escalate`
(composed by `gateway/domain/composer.py`), never from anywhere else: this is what keeps [FIRING]
first.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable, Iterable

from gateway.adapters.store.incident_tx import Tx
from gateway.adapters.store.incidents import PLAN_REMEDIATION_TASK, IncidentStore
from gateway.adapters.store.pending import PendingEvents
from gateway.domain import composer, correlation, grouping, incidents as inc_mod, muting
from gateway.domain.events import Event
from gateway.domain.impact import merge_rows
from gateway.domain.incidents import Incident, TimelineEntry
from gateway.domain.routing import DEFAULT_INHIBIT_RULES, RouteMatch, match_routes
from gateway.flows import escalation
from gateway.flows.escalation import DELIVER_TASK, TIMELINE_READ
from gateway.flows.outcomes import Applied, FlushReport
from gateway.runtime import Runtime

log = logging.getLogger("oneha.incidents")

FLUSH_DUE_TASK = "oneha.flush_due"
NOTICE_COALESCE = 0.2  # notices added within this time leave in one message
MAX_HOLD = 30.0  # seconds a due group waits for events heard before it was due (> LEASE_TTL)

Change = Callable[[Incident, float], tuple[Incident, list[TimelineEntry]]]


class IncidentFlow:
    def __init__(self, runtime: Runtime, send: Callable[..., Any] | None = None):
        self.rt = runtime
        self.settings = runtime.settings
        self.store = IncidentStore(runtime, send=send)
        self.pending = PendingEvents.of(runtime)

    # -- what remediation reads and marks through the flow (the repository keeps it) -------------
    def get(self, incident_id: str) -> Incident | None:
        return self.store.get(incident_id)

    def add_timeline(self, incident_id: str, entry: TimelineEntry) -> None:
        self.store.add_timeline(incident_id, entry)

    def note_own_action(self, host_id: int | str, action: str, plan_id: str,
                        ttl: float | None = None) -> None:
        self.store.note_own_action(host_id, action, plan_id, ttl)

    def own_actions(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        return self.store.own_actions(now)

    # -- routing -----------------------------------------------------------------------------
    def routes_for(self, labels: dict[str, str]) -> list[RouteMatch]:
        return match_routes(self.settings.route, labels, [r.name for r in self.settings.receivers])

    @property
    def inhibit_rules(self):
        rules = self.settings.inhibit_rules
        return DEFAULT_INHIBIT_RULES if rules is None else tuple(rules)

    # -- apply events ----------------------------------------------------------------------------
    def apply_event(self, event: Event, now: float | None = None) -> Applied:
        return self.apply_events([(event, None)], now=now)[0]

    def apply_events(self, batch: list[tuple[Event, float | None]], now: float | None = None,
                     also: Callable[[Any], object] | None = None) -> list[Applied]:
        """Apply events in order, in one transaction: each is decided against the incidents as
        the ones before it left them, and each incident is written once. `(event, heard_at)`:
        when the gateway recorded it, which starts its new group's group_wait (a backlog does
        not delay the first message). `also`: a write that commits with it (the batch's
        acknowledgement)."""
        def attempt(tx: Tx) -> list[Applied]:
            tx.prefetch_index(key for e, _ in batch for key in correlation.index_keys(e))
            tx.prefetch_healthy_polls(e.object_key for e, _ in batch if e.resource == "VM")
            applied = [self._apply(tx, event, heard_at) for event, heard_at in batch]
            if also is not None:
                tx.also(also)
            elif all(a.decision.action == "duplicate" for a in applied):
                return tx.abort(applied)
            return applied

        what = (f"event {batch[0][0].event_id} for {batch[0][0].object_key}" if len(batch) == 1
                else f"{len(batch)} events")
        return self.store.transact(attempt, what, now)

    def _apply(self, tx: Tx, event: Event, heard_at: float | None) -> Applied:
        """One event: load the context → decide (pure) → save → route into groups → planning."""
        labels = correlation.event_labels(event)
        host = labels.get("host", "")
        ctx = self._context(tx, event, host)
        outcome = correlation.decide(event, ctx, tx.now, labels)
        if outcome.decision.action == "duplicate":
            return Applied(outcome.decision)
        tx.watch_incidents([i.id for i in outcome.save])
        started = tx.now if heard_at is None else min(heard_at, tx.now)
        new_groups = self._save(tx, outcome.save, outcome.timeline, outcome.plan_remediation,
                                started)
        if host and outcome.maintenance is not None:
            tx.set_maintenance(host, outcome.maintenance)
        if outcome.forget_own_host_state:
            tx.forget_own_host_state(event.object_id)
        if (polled := correlation.healthy_poll(event)) is not None:
            tx.note_healthy_poll(event.object_key, polled)
        return Applied(outcome.decision, new_groups=new_groups)

    def _context(self, tx: Tx, event: Event, host: str) -> correlation.Context:
        holding = tx.incident(tx.indexed(event.object_key))
        host_incident = None
        vm_incidents: tuple[Incident, ...] = ()
        if event.resource == "VM" and host:
            host_incident = tx.incident(tx.indexed(f"hostname:{host}"))
        if event.resource == "HOST" and host:
            vm_incidents = tuple(tx.vm_incidents_on(host))
        own = tx.own_host_state(event.object_id) if event.resource == "HOST" else ""
        healthy = tx.healthy_poll(event.object_key) if event.resource == "VM" else None
        return correlation.Context(holding, host_incident, vm_incidents, tx.in_maintenance(host),
                                   own, healthy)

    def _save(self, tx: Tx, save: Iterable[Incident],
              timeline: dict[str, Iterable[TimelineEntry]], plan_remediation: Iterable[str],
              started: float | None = None) -> list[tuple[str, float]]:
        """Save incidents (resolved first: open ones re-claim the index), route each into its
        groups, start escalation clocks of new ones, ask for planning. New groups' first due;
        a new group's group_wait runs from `started` (default: now)."""
        save = sorted(save, key=lambda i: i.is_open)
        groups = self._groups_of(tx, save, tx.now if started is None else started)
        # A route whose policy is off plans nothing a VM could opt into (policy.py): asking
        # would cost two pool reads per incident, a storm's worth of them, to record "off".
        remediable = {i.id for i in save
                      if self.settings.remediation.for_labels(i.labels).mode != "off"}
        plan_remediation = [iid for iid in plan_remediation if iid in remediable]
        extra = {iid: [TimelineEntry(tx.now, "remediation", "remediation planning requested")]
                 for iid in plan_remediation}
        for iid in plan_remediation:
            tx.send(PLAN_REMEDIATION_TASK, [iid])
        for i in save:
            tx.save(i)
        for iid in {*timeline, *extra}:
            tx.add_timeline(iid, [*timeline.get(iid, ()), *extra.get(iid, ())])
        new_groups = []
        for gid, (state, members, is_new) in groups.items():
            if is_new:
                tx.set_group(state)
                tx.due(f"group|{gid}", state.first_due)
                new_groups.append((gid, state.first_due))
            else:  # wake it: a change is told after group_wait or group_interval, not later
                tx.due(f"group|{gid}", state.first_due if state.last_sent_at is None else tx.now,
                       only_earlier=True)
            tx.touch_group(gid, members)
        for i in save:
            if i.version == 1 and i.is_open:
                escalation.start(self, tx, i)
        return new_groups

    def _groups_of(self, tx: Tx, save: Iterable[Incident], started: float
                   ) -> dict[str, tuple[grouping.GroupState, list[str], bool]]:
        """The groups the saved incidents belong to (read while watching, before writing)."""
        out: dict[str, tuple[grouping.GroupState, list[str], bool]] = {}
        for i in save:
            if i.merged_into:
                continue  # its host incident speaks for it
            for route in self.routes_for(i.labels):
                key = route.group_key(i.labels, i.id)
                gid = grouping.group_id_for(key)
                if gid in out:
                    out[gid][1].append(i.id)
                    continue
                state = tx.group(gid)
                if state is not None:
                    out[gid] = (state, [i.id], False)
                elif i.is_open:
                    out[gid] = (self._new_group(route, key, i, started), [i.id], True)
        return out

    def _new_group(self, route: RouteMatch, key: str, incident: Incident, now: float
                   ) -> grouping.GroupState:
        """A route's receivers hear the whole story; so do the remediation approvers its policy
        names (they are told from the alert on, never an approval request out of the blue)."""
        state = grouping.GroupState.new(route, key, now)
        extra = self.settings.remediation.for_labels(incident.labels).receivers
        known = {r.name for r in self.settings.receivers}
        add = tuple(r for r in extra if r in known and r not in state.receivers)
        return replace(state, receivers=state.receivers + add) if add else state

    # -- change one incident ---------------------------------------------------------------------
    def update(self, incident_id: str, change: Change) -> Incident:
        """Apply `change(incident, now) -> (new incident, timeline entries)` atomically.
        KeyError when there is no such incident."""
        def attempt(tx: Tx) -> Incident:
            current = tx.incident(incident_id)
            if current is None:
                raise KeyError(f"no incident {incident_id}")
            new, entries = change(current, tx.now)
            self._save(tx, [new], {incident_id: entries}, ())
            return new
        return self.store.transact(attempt, f"incident {incident_id}")

    def transition(self, incident_id: str, to: str, reason: str, actor: str) -> Incident:
        """Raises KeyError (no such incident) or incidents.TransitionError (not allowed)."""
        def change(i: Incident, now: float):
            new, entry = inc_mod.transition(i, to, reason, actor, now)
            return new, [entry]
        return self.update(incident_id, change)

    def attach(self, incident_id: str, reason: str, actor: str = "oneha",
               plan_id: str | None = None, impact: list[dict[str, Any]] | None = None) -> Incident:
        """Remediation: record a plan id and/or an impact report (shown with the resolve notice;
        a later report adds its VMs to the earlier ones). No timeline entry without a reason."""
        def change(i: Incident, now: float):
            changes: dict[str, Any] = {"updated_at": now, "version": i.version + 1}
            if plan_id is not None:
                changes["plan_id"] = plan_id
            if impact is not None:
                changes["impact"] = merge_rows(i.impact, impact)
            entries = [TimelineEntry(now, "remediation", reason, actor,
                                     {"plan_id": plan_id} if plan_id else {})] if reason else []
            return replace(i, **changes), entries
        return self.update(incident_id, change)

    def set_live_vms(self, incident_id: str, vms: list, impact: list[dict[str, Any]],
                     host_label: str = "") -> Incident:
        """Remediation's last look: each VM as it is now (and the impact report), so the resolve
        notice and the console show "RUNNING on node02", not the state it failed in."""
        def change(i: Incident, now: float):
            new = inc_mod.with_live_vms(i, vms, now, host_label)
            return replace(new, impact=merge_rows(i.impact, impact)), [
                TimelineEntry(now, "remediation", f"impact report: {len(impact)} VM(s)")]
        return self.update(incident_id, change)

    def add_notice(self, incident_id: str, kind: str, key: str, text: str,
                   approval_url: str = "", plan: list[dict[str, Any]] | None = None,
                   code: str = "", params: dict[str, Any] | None = None) -> Incident | None:
        """Keep something remediation must tell people on the incident (once per `key`); the
        incident's groups tell it after the alert. A VM incident merged into its host's tells it
        there. `text` is the English line (the timeline's); `code` and `params` say it as data,
        phrased in each receiver's language. None when the incident is gone."""
        target = self.store.get(incident_id)
        if target is not None and target.merged_into:
            incident_id = target.merged_into
        added: list[bool] = []

        def change(i: Incident, now: float):
            new = i.with_notice(kind, key, text, now, approval_url, plan or (), code, params)
            added.append(new is not None)
            return (new or i), ([TimelineEntry(now, "remediation", text)] if new else [])
        try:
            inc = self.update(incident_id, change)
        except KeyError:
            return None
        if added and added[-1]:
            # Told at once (the beat's next tick would do too, up to a second later).
            self.store.send_now(FLUSH_DUE_TASK, countdown=NOTICE_COALESCE)
        return inc

    # -- what is due -----------------------------------------------------------------------------
    def flush_due(self, now: float | None = None, limit: int = 500) -> list[FlushReport]:
        """Every due group and escalation; also re-sends what a crashed worker left in the
        outbox. A silence that ended wakes every group: what it muted is looked at now.

        A group is held while an event recorded before it became due waits to be applied (the
        applier is behind, in a storm): its message then names everything that arrived within
        group_wait, as Alertmanager's does. Held at most MAX_HOLD past its due time, so a
        stuck applier delays people's message, never stops it."""
        now = self.rt.clock() if now is None else now
        self.store.resend_stale_outbox(now)
        due = self.store.due_members(now, limit)
        ended = [m for m, _ in due if m.startswith("silence|")]
        if ended:
            self.store.wake_all_groups(now)
            self.store.drop_due(*ended)
            due = self.store.due_members(now, limit)
        waiting = self.pending.oldest_heard() if due else None
        reports, held = [], 0
        for member, at in due:
            if member.startswith("group|"):
                if waiting is not None and waiting <= at and now - at < MAX_HOLD:
                    held += 1
                    continue
                reports.append(self.flush_group(member.split("|", 1)[1], now))
            elif member.startswith("esc|"):
                reports.append(escalation.escalate(self, member, now))
            else:
                log.error("unknown due member %r removed", member)
                self.store.drop_due(member)
        if held:  # the applier wakes the flush after its next batch (the beat's tick, at worst)
            self.pending.hold_flush(MAX_HOLD)
        return reports

    def flush_group(self, gid: str, now: float | None = None) -> FlushReport:
        member = f"group|{gid}"

        def attempt(tx: Tx) -> FlushReport:
            t = tx.now
            group = tx.group(gid)
            if group is None:
                tx.due(member, None)
                return FlushReport(member, False, "group no longer exists")
            members = tx.members(gid)
            mutes = self.mutes(tx, members, t)
            plan = grouping.plan_flush(group, members, mutes, t)
            messages, state, entries = self._compose(tx, plan, group, t)
            self._save_flush(tx, plan, group, state, members, member)
            for iid, es in entries.items():
                tx.add_timeline(iid, es)
            for n in messages:
                tx.send(DELIVER_TASK, [n.to_json()])
            return FlushReport(member, plan.send, plan.reason, [n.notification_id
                                                                for n in messages])
        report = self.store.transact(attempt, f"group {gid}", now)
        # Once, for the attempt that committed (a conflicting write re-runs `attempt`).
        log.info("group_flushed", extra={"group": gid, "sent": report.sent,
                                         "reason": report.reason})
        return report

    def mutes(self, tx: Tx, members: list[Incident], now: float) -> dict[str, muting.Mute]:
        silences, sources = tx.silences(), tx.open_labels()
        return {i.id: muting.mute(i.id, i.labels, now, silences, sources, self.inhibit_rules)
                for i in members}

    def _compose(self, tx: Tx, plan: grouping.FlushPlan, group: grouping.GroupState,
                 now: float) -> tuple[list, grouping.GroupState, dict[str, list[TimelineEntry]]]:
        """The messages of a flush (none when it sends nothing), the group state that remembers
        them, and the timeline lines: mutes recorded, messages sent."""
        entries: dict[str, list[TimelineEntry]] = {}
        for i, m in plan.newly_muted:
            entries.setdefault(i.id, []).append(
                TimelineEntry(now, "muted", f"recorded, not sent: {m.reason}", data={"by": m.by}))
        if not plan.send:
            return [], plan.state, entries
        summaries = {i.id: composer.incident_summary(i, self.store.timeline(i.id, TIMELINE_READ),
                                                     self.settings.public_url)
                     for i in plan.incidents}
        escalated = {i.id: tx.escalated_to(i.id) for i in plan.resolved}
        messages, state = composer.group_messages(plan, group, summaries, escalated, now)
        sent = composer.sent_entry(plan, group, now)
        for i in plan.incidents:
            entries.setdefault(i.id, []).append(sent)
        return messages, state, entries

    @staticmethod
    def _save_flush(tx: Tx, plan: grouping.FlushPlan, group: grouping.GroupState,
                    state: grouping.GroupState, members: list[Incident], member: str) -> None:
        if plan.next_due is None:  # nothing left to tell: the group is finished
            tx.delete_group(state.id)
            tx.due(member, None)
            return
        tx.set_group(state)
        tx.forget_members(state.id, [i.id for i in members if i.merged_into or (
            i.state == inc_mod.RESOLVED and (i in plan.resolved or i.id not in group.notified))])
        tx.due(member, plan.next_due)
