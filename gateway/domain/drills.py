"""Drills and heartbeats: proof that the alert path works before the day it is needed.

- A *drill* is a synthetic event sent through OpenNebula's real hook path: oneha makes one
  harmless write through the leader (`one.hook.update` of the drill hook, merging
  `ONEHA_DRILL="<id>"` into its template), the hook manager of the front-end that served it runs
  the drill hook (an API hook on that call) → the installed `oneha-hook --drill` → the gateway
  (`POST /v1/drills`) → an incident of resource DRILL → the drill receiver, and nobody else: a
  route in front of the operator's routes (`drill_route`) takes every DRILL object.
  A DRILL incident has no VMs, so remediation never plans anything for it.
- A *heartbeat* is what each front-end's sender signs when its scheduled `--flush` runs (the
  cron line / systemd timer every front-end has): `POST /v1/heartbeats`. A front-end's sender may
  sit idle for months while another front-end leads; its heartbeat proves it can still reach and
  sign for a gateway.
- The dead man's switch (`assess`, pure): a front-end whose heartbeats stopped for
  `missed_heartbeats` intervals, a front-end whose sender signs with a key the gateway refuses,
  a drill hook that is gone, a drill that did not come back — each is a finding, recorded as an
  event for people (normal routes), resolved when the condition is over.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from pydantic import Field

from .events import Event
from .model import Duration, Strict
from .routing import Route

DRILL_HOOK = "oneha-drill"
DRILL_CALL = "one.hook.update"  # the API call whose hook is the drill hook
DRILL_ATTRIBUTE = "ONEHA_DRILL"
DRILL_ID = re.compile(r"^[0-9a-f]{16,32}$")
ALERT_PATH = "ALERTPATH"  # resource of the dead man's switch's findings


class DrillConfig(Strict):
    """`drills:` in the YAML."""

    enabled: bool = False  # the beat runs drills (needs the drill hook: `oneha hooks install`)
    receiver: str | None = None  # the one receiver drill messages go to (none: nobody)
    interval: Duration = Field(default=3600.0, gt=0)  # a drill from the beat this often
    timeout: Duration = Field(default=60.0, gt=0)  # not back within this: not reached
    # The front-ends' `oneha-hook --flush` timer period, and how many may be missed.
    heartbeat_interval: Duration = Field(default=60.0, gt=0)  # the README's cron: every minute
    missed_heartbeats: int = Field(default=2, ge=1, le=100)
    # Whose heartbeats are watched: "seen" every front-end heard from at least once (a gateway
    # upgraded before its senders pages nobody), "all" every front-end of ingest.frontends
    # (never heard from counts as silent), "off" none.
    heartbeats: Literal["off", "seen", "all"] = "seen"
    check_interval: Duration | None = Field(default=None, gt=0)  # default: heartbeat_interval


def drill_route(receiver: str | None) -> Route:
    """Put first in the routing tree: every DRILL object goes to the drill receiver only (or to
    nobody), whatever the operator's routes say, and at once (no group wait)."""
    return Route(matchers=["resource=DRILL"], receivers=[receiver] if receiver else [],
                 group_by=["..."], group_wait=0.0, group_interval=60.0,
                 repeat_interval=30 * 86400.0)


# ---- the drill's own event -----------------------------------------------------------------

def drill_event(drill_id: str, frontend: str, hook: str, occurred_at: float,
                status: str = "firing") -> Event:
    """What a drill that came back becomes: an incident of its own, told to the drill receiver."""
    seed = f"drill:{drill_id}" if status == "firing" else f"drill-done:{drill_id}"
    return Event(
        event_id=hashlib.sha256(seed.encode()).hexdigest()[:32], source="drill",
        resource="DRILL", object_id=drill_id, name=f"drill {drill_id}", status=status,
        condition="DRILL/REACHED" if status == "firing" else "DRILL/DONE",
        occurred_at=occurred_at, frontend=frontend, hook=hook,
        summary=(f"Drill {drill_id}: run by front-end {frontend}'s hook manager ({hook}), "
                 "signed by its oneha-hook, accepted by the gateway. This message proves the "
                 "alert path; nothing is wrong." if status == "firing"
                 else f"Drill {drill_id} delivered; closed."),
        labels={"resource": "DRILL", "name": f"drill {drill_id}", "frontend": frontend,
                "severity": "info", "drill": "true"})


def drill_id_from_call_info(call_info: str) -> str | None:
    """The drill id in an API hook's CALL_INFO (the merged template of one.hook.update)."""
    m = re.search(DRILL_ATTRIBUTE + r'\s*=\s*"?([0-9a-f]{16,32})', call_info)
    return m.group(1) if m else None


# ---- the dead man's switch -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Finding:
    key: str  # object id: heartbeat/<fe>, key/<fe>, drill/hook, drill/reached
    condition: str
    firing: bool
    summary: str
    frontend: str = ""


@dataclass(frozen=True)
class Watch:
    """What the switch looks at: the configuration and what Redis and OpenNebula say now."""

    now: float
    frontends: Sequence[str]  # expected to beat
    heartbeats: Mapping[str, Mapping[str, Any]]  # fe -> {"at": t} (last good one)
    bad_keys: Mapping[str, Mapping[str, Any]]  # fe -> {"at": t, "count": n}
    hook_present: bool | None  # None: not checked (drills off, OpenNebula unreadable)
    drills: Sequence[Mapping[str, Any]] = ()  # newest first: {"id", "sent_at", "reached_at"}
    cfg: DrillConfig = field(default_factory=DrillConfig)
    started: float = 0.0  # when the switch began to look: "never heard from" counts from here


def assess(w: Watch) -> list[Finding]:
    out: list[Finding] = []
    limit = w.cfg.missed_heartbeats * w.cfg.heartbeat_interval
    if w.cfg.heartbeats != "off":
        watched = (w.frontends if w.cfg.heartbeats == "all"
                   else [fe for fe in w.frontends if fe in w.heartbeats or fe in w.bad_keys])
        for fe in sorted(watched):
            last = (w.heartbeats.get(fe) or {}).get("at")
            bad = w.bad_keys.get(fe) or {}
            good_after = last is not None and float(last) >= float(bad.get("at") or 0)
            mismatch = bool(bad) and not good_after
            out.append(Finding(
                f"key/{fe}", "HEARTBEAT/KEY_MISMATCH", mismatch,
                f"front-end {fe}'s sender signs with a key this gateway does not accept "
                f"({bad.get('count', 0)} refused request(s)): its events would be refused too; "
                f"set the same key in its oneha-hook.conf and in ingest.frontends.{fe}.keys"
                if mismatch else f"front-end {fe}'s sender signs with a valid key again", fe))
            if last is None:
                why = (f"no heartbeat from front-end {fe}'s sender has reached a gateway in "
                       f"{w.now - w.started:.0f}s")
                silent = w.now - w.started > limit
            else:
                silent = w.now - float(last) > limit
                why = (f"front-end {fe}'s sender has not signed a heartbeat for "
                       f"{w.now - float(last):.0f}s (more than {w.cfg.missed_heartbeats} "
                       f"intervals of {w.cfg.heartbeat_interval:g}s)")
            # A refused key explains the silence: one incident for one cause.
            silent = silent and not mismatch
            out.append(Finding(f"heartbeat/{fe}", "HEARTBEAT/MISSING", silent,
                               why + ": check its `oneha-hook --flush` timer, its urls and "
                                     "that it can reach a gateway" if silent
                               else f"front-end {fe}'s heartbeats arrive again", fe))
    if w.hook_present is not None:
        out.append(Finding(
            "drill/hook", "DRILL/HOOK_MISSING", not w.hook_present,
            f"the drill hook {DRILL_HOOK} is not in OpenNebula's hook pool: the alert path "
            "cannot be exercised (`oneha hooks install`)" if not w.hook_present
            else f"the drill hook {DRILL_HOOK} is installed again"))
    due = [d for d in w.drills if d.get("sent_at") is not None
           and (d.get("reached_at") or w.now - float(d["sent_at"]) > w.cfg.timeout)]
    if due:
        last = due[0]
        lost = not last.get("reached_at")
        out.append(Finding(
            "drill/reached", "DRILL/NOT_REACHED", lost,
            f"drill {last.get('id')} sent at {float(last['sent_at']):.0f} did not come back "
            f"through the hook path within {w.cfg.timeout:g}s: hooks of the leader, its "
            "oneha-hook or the gateway are broken" if lost
            else f"drill {last.get('id')} came back through front-end {last.get('frontend')}"))
    return out


def finding_event(f: Finding, episode: str, now: float) -> Event:
    """A finding as an event for people; `episode` (the firing event id) ties the resolve to
    its firing, and a firing finding's id is stable while it lasts."""
    seed = f"alertpath:{f.key}:{episode}" if f.firing else f"alertpath-ok:{f.key}:{episode}"
    labels = {"resource": ALERT_PATH, "name": f"alert path {f.key}", "severity": "critical",
              "check": f.key.split("/", 1)[0]}
    if f.frontend:
        labels["frontend"] = f.frontend
    return Event(event_id=hashlib.sha256(seed.encode()).hexdigest()[:32], source="drill",
                 resource=ALERT_PATH, object_id=f.key, name=f"alert path {f.key}",
                 status="firing" if f.firing else "resolved",
                 condition=f.condition if f.firing else f.condition.split("/")[0] + "/OK",
                 occurred_at=now, summary=f.summary, labels=labels)
