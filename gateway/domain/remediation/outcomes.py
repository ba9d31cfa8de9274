"""What happened to one step of a plan: a typed, read-only view of the record the remediation
store keeps per step (one JSON object, written by `RemediationStore.record` / `claim`).

The record stays the store's: flows read it through `StepOutcome` and hand `raw` back as the
`previous` record when they write the next one, so what the store writes is exactly what it wrote
before this type existed (keys it does not know, such as `host_after` or `settled`, included).

Statuses: None (not acted yet) → acting (claimed, the call is being made) → done | failed |
skipped, then, for VM steps, running | retry_wait (→ acting again) | needs_human.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class StepOutcome:
    status: str | None = None
    attempt: int = 1  # the attempt this record is about (1 until a retry)
    at: float = 0.0  # when the record was written
    acted_at: float = 0.0  # when the call that took effect was made (done)
    action: str = ""  # the action made: the step's, or `retry` on a retry
    code: str = ""  # why it was skipped (a guard's code; `running`: it ran already)
    not_before: float = 0.0  # retry_wait: no next attempt before this
    running_at: float = 0.0  # when the VM was first seen RUNNING again
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False,
                                   repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "StepOutcome":
        d = d or {}
        return cls(status=d.get("status"), attempt=int(d.get("attempt") or 1),
                   at=float(d.get("at") or 0), acted_at=float(d.get("acted_at") or 0),
                   action=d.get("action") or "", code=d.get("code") or "",
                   not_before=float(d.get("not_before") or 0),
                   running_at=float(d.get("running_at") or 0), raw=MappingProxyType(dict(d)))

    def to_dict(self) -> dict[str, Any]:
        """The record as the store holds it, to pass back as `previous`."""
        return dict(self.raw)

    @property
    def pending(self) -> bool:
        """Not acted yet, or its call is being made (or was, by a worker that died)."""
        return self.status in (None, "acting")

    @property
    def gave_up(self) -> bool:
        """Failed or handed to people: the steps after it do not go."""
        return self.status in ("failed", "needs_human")

    @property
    def clears_dependents(self) -> bool:
        """Made, or skipped for a reason (e.g. the host is back): the steps after it may go, and
        their own re-read decides."""
        return self.status in ("done", "skipped")

    def since(self, default: float) -> float:
        """When its action was made (or the record written), for the verify timeout."""
        return self.acted_at or self.at or default


NOT_ACTED = StepOutcome()


def outcomes_from(records: Mapping[str, Mapping[str, Any]]) -> dict[str, StepOutcome]:
    """The store's records by step key, as outcomes; `.get(key, NOT_ACTED)` for a step."""
    return {key: StepOutcome.from_dict(rec) for key, rec in records.items()}
