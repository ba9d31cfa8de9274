"""Why an incident is recorded but not sent: maintenance, a silence, or an inhibiting incident.

`mute(...)` answers with a `Mute` value (muted or not, and why) so the timeline, the CLI and the
tests can say *why* nothing was sent — Alertmanager's inhibit and silence stages in one function.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from pydantic import TypeAdapter, ValidationError

from .routing import InhibitRule, Matcher, matches_all

_MATCHERS = TypeAdapter(list[Matcher])


class SilenceError(ValueError):
    """A silence that cannot be created as given (bad matcher, end before start, ...)."""


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    author: str
    comment: str
    created_at: float
    expired_by: str | None = None  # who expired it early, if someone did

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: float) -> str:
        return "pending" if now < self.starts_at else "active" if now < self.ends_at else "expired"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["matchers"] = [str(m) for m in self.matchers]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Silence":
        d = dict(d)
        d["matchers"] = tuple(_MATCHERS.validate_python(d["matchers"]))
        return cls(**d)


def new_silence(matchers: Iterable[str], starts_at: float, ends_at: float, author: str,
                comment: str, now: float, silence_id: str | None = None) -> Silence:
    """Validate and build a silence; every problem is a `SilenceError` naming the field."""
    texts = list(matchers)
    if not texts:
        raise SilenceError("matchers: at least one matcher is needed (a silence of everything is "
                           "a mistake waiting to happen)")
    try:
        parsed = tuple(_MATCHERS.validate_python(texts))
    except ValidationError as exc:
        raise SilenceError("matchers: " + "; ".join(e["msg"] for e in exc.errors())) from None
    if not author or not author.strip():
        raise SilenceError("author: say who creates the silence")
    if not comment or not comment.strip():
        raise SilenceError("comment: say why (people read it at 3 a.m.)")
    if ends_at <= starts_at:
        raise SilenceError(f"ends_at ({ends_at}) must be after starts_at ({starts_at})")
    if ends_at <= now:
        raise SilenceError("ends_at is in the past: the silence would never be active")
    return Silence(id=silence_id or uuid.uuid4().hex[:12], matchers=parsed, starts_at=starts_at,
                   ends_at=ends_at, author=author.strip(), comment=comment.strip(), created_at=now)


@dataclass(frozen=True, slots=True)
class Mute:
    muted: bool
    reason: str = ""
    by: str = ""  # "maintenance", "silence:<id>", "inhibited:<incident id>"

    def __bool__(self) -> bool:
        return self.muted


NOT_MUTED = Mute(False, "not muted")


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """What inhibition needs of another open incident."""

    id: str
    labels: dict[str, str] = field(default_factory=dict)


def mute(incident_id: str, labels: Mapping[str, str], now: float, silences: Iterable[Silence],
         open_incidents: Iterable[OpenIncident], inhibit_rules: Iterable[InhibitRule]) -> Mute:
    """Maintenance first, then inhibition, then silences (Alertmanager's order)."""
    if labels.get("maintenance") == "true":
        return Mute(True, f"host {labels.get('host', '?')} is in maintenance", "maintenance")
    rules = list(inhibit_rules)
    if rules:
        for source in open_incidents:
            if source.id == incident_id:
                continue
            for rule in rules:
                if rule.inhibits(source.labels, labels):
                    eq = ", ".join(f"{k}={source.labels.get(k, '')}" for k in rule.equal)
                    return Mute(True, f"inhibited by open incident {source.id}"
                                + (f" ({eq})" if eq else ""), f"inhibited:{source.id}")
    for s in silences:
        if s.active(now) and s.matches(labels):
            return Mute(True, f"silenced by {s.id} ({s.author}: {s.comment})", f"silence:{s.id}")
    return NOT_MUTED
