"""A notification: one incident transition to be told to one receiver, exactly once.

Producers do not send it themselves: the incident engine builds a `Notification` (through
`gateway/domain/composer.py`; remediation's news reach it as notices on the incident) and adds it
to the incident's outbox, in the same Redis transaction as the change it tells of. The outbox
hands it to the Celery task `oneha.deliver` (tasks/notify.py, the flow in gateway/flows/delivery.py), `notification.to_json()` its one
argument; the task renders it per URL kind (mail or chat), sends it through apprise, records
every attempt and dead-letters what still fails after the retries.
`notification_id` is the idempotency key: the same id enqueued twice is delivered once per URL.
Build it with `notification_id_for(incident_id, transition, seq, receiver)` so every producer
spells it the same way.

`incident` is a JSON-able summary of the incident at the time of the transition. Only `id` and
`title` are required; every other key is optional and the templates leave out what is missing:

- `id` (str) — the incident id; `title` (str) — one line, e.g.
  "Host node07 is in ERROR — 20 VMs affected".
- `headline` (dict) — what the title says, as data, phrased in the receiver's language:
  `{"key": "host_failed", "host": "node07", "state": "ERROR", "vms": 20}` (phrases.py); without
  it (or with a key the language lacks) a message shows `title`. `next` is the same for
  `next_step`.
- `status` (str) — firing | acknowledged | remediating | resolved.
- `severity` (str) — critical | warning | info.
- `started_at`, `resolved_at` (float, unix seconds; rendered as UTC ISO 8601).
- `object` (dict) — the failing object: `resource` (HOST|VM|FRONTEND|ALERT), `id`, `name`,
  `state_label` (e.g. "ERROR", "ACTIVE/UNKNOWN"), `cluster`, `host`.
- `affected` (list of dict) — objects hit with it: `resource`, `id`, `name`, `state_label`,
  `host`. May be long (a host with 200 VMs): templates show the first few and the count.
- `affected_count` (int) — the true count when `affected` was cut short by the producer.
- `labels` (dict str→str) — routing labels.
- `next_step` (str) — what oneha will do next ("waiting for approval to recover 20 VMs").
- `approval_url` (str) — signed link to approve the plan.
- `plan` (list of dict) — `vm_id`, `vm_name`, `action`, `reason`.
- `impact` (list of dict) — per VM after resolve: `vm_id`, `vm_name`, `downtime_s` (float),
  `memory_lost` (bool), `connections_dropped` (bool), `data_loss_risk` (str, English) and its
  phrase `data_loss`.
- `notices` (list of dict) — remediation's news: `kind`, `text` (English), and `code` + `params`
  when it says one of phrases.py's notices (approval_needed, left_alone, ...).
- `timeline` (list of dict) — last entries: `t` (unix seconds), `text` (English, as recorded).
- `console_url` (str) — link to the incident in the web console.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from .backoff import backoff_delay

# `remediation_failed` is the old name of `needs_human`, still read from queued messages.
TRANSITIONS = ("firing", "repeat", "resolved", "escalated", "approval_requested",
               "needs_human", "progress", "remediation_failed", "test")


def notification_id_for(incident_id: str, transition: str, seq: int | str, receiver: str) -> str:
    """The idempotency key of one transition for one receiver: `incident:transition:seq:receiver`."""
    return f"{incident_id}:{transition}:{seq}:{receiver}"


@dataclass(frozen=True)
class Notification:
    notification_id: str  # idempotency key: f"{incident_id}:{transition}:{seq}:{receiver}"
    receiver: str  # a Settings.receivers name
    transition: str  # one of TRANSITIONS
    incident: dict[str, Any]  # JSON-able summary, keys in the module docstring
    created_at: float  # unix seconds
    # The notification this receiver must have been told first (the previous message of the
    # same story): delivery waits for it, so a receiver reads the story in order.
    after: str = ""

    def __post_init__(self) -> None:
        # Refuse a malformed notification where it is built, not deep inside a worker.
        if not self.notification_id:
            raise ValueError("notification_id must not be empty")
        if not self.receiver:
            raise ValueError("receiver must not be empty")
        if self.transition not in TRANSITIONS:
            raise ValueError(f"transition {self.transition!r} is not one of {', '.join(TRANSITIONS)}")
        if not isinstance(self.incident, dict) or not self.incident.get("id") \
                or not self.incident.get("title"):
            raise ValueError("incident must be a dict with at least 'id' and 'title'")

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Notification":
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a notification is a JSON object")
        fields = ("notification_id", "receiver", "transition", "incident", "created_at")
        missing = [f for f in fields if f not in data]
        if missing:
            raise ValueError(f"notification JSON lacks {', '.join(missing)}")
        return cls(**{f: data[f] for f in fields}, after=str(data.get("after") or ""))


# --- delivery decisions (pure; gateway/flows/delivery.py applies them) ----------------------

SENT, FAILED, DEAD = "sent", "failed", "dead"


@dataclass(frozen=True)
class Attempt:
    """What one send attempt to one URL leads to, and why."""

    state: str  # sent | failed (retry later) | dead (dead-lettered)
    reason: str
    retry_in: float = 0.0  # seconds, for `failed`


def outcome_of(ok: bool, permanent: bool, attempt: int, max_attempts: int, base: float,
               maximum: float) -> Attempt:
    if ok:
        return Attempt(SENT, f"delivered on attempt {attempt}")
    if permanent:
        return Attempt(DEAD, f"permanent failure on attempt {attempt}: retrying cannot help")
    if attempt >= max_attempts:
        return Attempt(DEAD, f"failed {attempt} of {max_attempts} attempts")
    delay = backoff_delay(attempt, base, maximum)
    return Attempt(FAILED, f"attempt {attempt} of {max_attempts} failed; retry in {delay:g}s",
                   retry_in=delay)
