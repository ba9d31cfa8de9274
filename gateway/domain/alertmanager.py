"""Alertmanager webhook payloads (version 4) -> `Event`s, so Prometheus alerts join our incidents.

Each alert of the payload becomes one Event:
- `resource` `ALERT`, `object_id` the alert's fingerprint (its identity in Alertmanager), so the
  incident key is `alert:<fingerprint>`;
- `labels`: the alert's own labels, plus `resource=ALERT` and, when the alert names an OpenNebula
  host in a `one_host` (preferred) or `host` label, `host=<that name>` — the label a host's hook
  events carry too, so grouping, routing and inhibition can put the alert with that host's incident;
- `status` the alert's (`firing`/`resolved`), `condition` `ALERT/<alertname>`, `summary` the
  `summary` (or `description`) annotation's first line;
- `event_id` = first 32 hex of sha256(`fingerprint:status:startsAt:endsAt`), with endsAt only for
  resolved alerts: Prometheus moves a firing alert's endsAt forward on every evaluation, so a
  re-sent firing alert keeps its id (a duplicate) and each resolve of each episode gets its own.
- `occurred_at`: startsAt when firing, endsAt when resolved.
Pure: no Flask, no Redis; problems raise `BadInput` naming the alert and the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..errors import BadInput
from .events import Event

STATUSES = ("firing", "resolved")
HOST_LABELS = ("one_host", "host")
_FINGERPRINT = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# RFC 3339 as Go writes it: up to nanoseconds, `Z` or an offset; Python reads microseconds.
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def events_from_webhook(payload: Mapping[str, Any]) -> list[Event]:
    if str(payload.get("version")) != "4":
        raise BadInput("bad_field", f"only Alertmanager webhook version 4 is understood, got "
                                    f"version {payload.get('version')!r}")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise BadInput("bad_field", "field 'alerts' must be a list")
    return [_event(alert, n) for n, alert in enumerate(alerts)]


def _event(alert: Any, n: int) -> Event:
    where = f"alerts[{n}]"
    if not isinstance(alert, dict):
        raise BadInput("bad_field", f"{where} must be an object")
    status = alert.get("status")
    if status not in STATUSES:
        raise BadInput("bad_field", f"{where}.status must be firing or resolved, got {status!r}")
    labels = _string_map(alert.get("labels"), f"{where}.labels", required=True)
    annotations = _string_map(alert.get("annotations"), f"{where}.annotations", required=False)
    fingerprint = alert.get("fingerprint")
    if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
        raise BadInput("bad_field", f"{where}.fingerprint must be Alertmanager's fingerprint (hex)")
    starts_at = _time(alert.get("startsAt"), f"{where}.startsAt")
    ends_raw = alert.get("endsAt")
    if status == "resolved":
        ends_at = _time(ends_raw, f"{where}.endsAt")
        identity = f"{fingerprint}:{status}:{alert['startsAt']}:{ends_raw}"
        occurred_at = ends_at
    else:
        identity = f"{fingerprint}:{status}:{alert['startsAt']}:"
        occurred_at = starts_at
    alertname = labels.get("alertname", "") or fingerprint
    event_labels = dict(labels)
    event_labels["resource"] = "ALERT"
    host = next((labels[k] for k in HOST_LABELS if labels.get(k)), None)
    if host:
        event_labels["host"] = host
    return Event(
        event_id=hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32],
        source="alertmanager", resource="ALERT", object_id=fingerprint, name=alertname,
        status=status, condition=f"ALERT/{alertname}", occurred_at=occurred_at,
        summary=_explanation(annotations, alertname, status), labels=event_labels)


def _explanation(annotations: Mapping[str, str], alertname: str, status: str) -> str:
    """What the alert says of itself, as every Alertmanager template shows it: the `summary`
    annotation's first line, then the `description` (a few lines); the alert's name when the
    rule gave neither."""
    summary = next((line.strip() for line in annotations.get("summary", "").splitlines()
                    if line.strip()), "")
    description = [line.strip() for line in annotations.get("description", "").splitlines()
                   if line.strip()][:5]
    lines = [summary[:300]] if summary else []
    lines += [line[:300] for line in description if line != summary]
    return "\n".join(lines) or f"{alertname} is {status}"


def _string_map(value: Any, where: str, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise BadInput("bad_field", f"{where} must be an object of strings")
    return value


def _time(value: Any, where: str) -> float:
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if not match:
        raise BadInput("bad_field", f"{where} must be an RFC 3339 time, got {value!r}")
    base, fraction, zone = match.groups()
    text = base + (fraction or "")[:7] + ("+00:00" if zone == "Z" else zone)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise BadInput("bad_field", f"{where}: {exc}") from None
