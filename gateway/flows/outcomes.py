"""What the incident flow's paths return: what was decided, what was sent, and why."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.domain import correlation


@dataclass
class Applied:
    decision: correlation.Decision
    new_groups: list[tuple[str, float]] = field(default_factory=list)  # (gid, first due)


@dataclass
class FlushReport:
    member: str
    sent: bool
    reason: str
    notifications: list[str] = field(default_factory=list)
