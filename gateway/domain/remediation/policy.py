"""Remediation policy: the `remediation` section of the configuration, resolved per route.

The section is typed and strict like the rest of `Settings`. A route's labels pick an override
(first match wins, like a firewall rule list); the VM's own `ONEHA_POLICY` may only make things
stricter (`off`, `approval`) — a VM owner cannot opt a VM *into* automatic recovery that the
operator did not allow. `ONEHA_PRIORITY` orders recovery (higher first).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Mapping

from pydantic import Field, field_validator, model_validator

from ..model import Duration, Strict

Mode = Literal["auto", "approval", "off"]
Action = Literal["refresh_host", "resume", "resched", "recreate", "retry", "disable_host"]
ALL_ACTIONS: tuple[str, ...] = ("refresh_host", "resume", "resched", "recreate", "retry",
                                "disable_host")


class FencingConfig(Strict):
    """An allowlisted executable run with the host name as its only argument, time-limited."""

    command: str | None = None
    allowlist: list[str] = Field(default_factory=list)
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _command_is_allowlisted(self) -> "FencingConfig":
        if self.command is None:
            return self
        if not os.path.isabs(self.command):
            raise ValueError(f"fencing.command {self.command!r} must be an absolute path")
        if self.command not in self.allowlist:
            raise ValueError(f"fencing.command {self.command!r} is not in fencing.allowlist; add "
                             "it there to allow oneha to run it")
        return self


class StormConfig(Strict):
    """More than `max_error_percent` % or more than `max_error_hosts` hosts in ERROR at once
    looks like a partition or a monitoring failure, not like dead hosts."""

    max_error_percent: float = Field(default=30.0, gt=0, le=100)
    max_error_hosts: int = Field(default=3, ge=1)


class _Tunables(Strict):
    """Keys an override may change (all optional there)."""

    mode: Mode | None = None
    grace_cycles: int | None = Field(default=None, ge=0, le=100)
    allowed_actions: list[Action] | None = None
    disable_failed_host: bool | None = None
    receivers: list[str] | None = None


class PolicyOverride(_Tunables):
    match: dict[str, str] = Field(min_length=1)


class RemediationConfig(Strict):
    mode: Mode = "approval"
    grace_cycles: int = Field(default=2, ge=0, le=100)
    # None: ask OpenNebula (MONITORING_INTERVAL_HOST of one.system.config), else this.
    monitoring_interval: Duration | None = None
    allowed_actions: list[Action] = Field(default_factory=lambda: list(ALL_ACTIONS))
    disable_failed_host: bool = True  # no failback: an operator enables it after repair
    receivers: list[str] = Field(default_factory=list)  # empty: every configured receiver
    fencing: FencingConfig = FencingConfig()
    storm: StormConfig = StormConfig()
    rate_limit_actions: int = Field(default=120, ge=1)  # at most this many actions ...
    rate_limit_window: Duration = 60.0  # ... per this window, across all workers
    concurrency: int = Field(default=8, ge=1, le=256)  # simultaneous write calls, all plans
    parallel_executors: int = Field(default=2, ge=1, le=32)  # tasks sharing one plan's VMs
    max_retries: int = Field(default=3, ge=0, le=20)
    verify_timeout: Duration = 300.0
    verify_interval: Duration = 2.0
    retry_backoff: Duration = 10.0
    approval_ttl: Duration = 3600.0
    overrides: list[PolicyOverride] = Field(default_factory=list)

    @field_validator("allowed_actions")
    @classmethod
    def _unique(cls, actions: list[str]) -> list[str]:
        return list(dict.fromkeys(actions))

    def for_labels(self, labels: Mapping[str, str]) -> "RoutePolicy":
        chosen: _Tunables | None = None
        for override in self.overrides:
            if all(str(labels.get(k, "")) == v for k, v in override.match.items()):
                chosen = override
                break

        def pick(name: str):
            value = getattr(chosen, name) if chosen is not None else None
            return getattr(self, name) if value is None else value

        return RoutePolicy(
            mode=pick("mode"), grace_cycles=pick("grace_cycles"),
            allowed_actions=frozenset(pick("allowed_actions")),
            disable_failed_host=pick("disable_failed_host"), receivers=tuple(pick("receivers")),
            fencing_command=self.fencing.command,
            matched=", ".join(f"{k}={v}" for k, v in chosen.match.items())
            if isinstance(chosen, PolicyOverride) else "")


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """The policy that applies to one incident, after overrides."""

    mode: str
    grace_cycles: int
    allowed_actions: frozenset[str]
    disable_failed_host: bool = True
    receivers: tuple[str, ...] = ()
    fencing_command: str | None = None
    matched: str = ""  # the override that applied, for the plan's explanation

    def allows(self, action: str) -> bool:
        return action in self.allowed_actions


@dataclass(frozen=True, slots=True)
class VmPolicy:
    """What the VM's own USER_TEMPLATE says (`ONEHA_POLICY`, `ONEHA_PRIORITY`)."""

    mode: str | None  # None: the route decides
    priority: int
    note: str = ""


OFF_VALUES = ("off", "manual", "none", "no", "never", "opt-out", "optout")
APPROVAL_VALUES = ("approval", "approve", "ask")
AUTO_VALUES = ("", "auto", "default")


def vm_policy(labels: Mapping[str, str]) -> VmPolicy:
    raw_mode = (labels.get("ONEHA_POLICY") or "").strip().lower()
    note = ""
    if raw_mode in OFF_VALUES:
        mode: str | None = "off"
    elif raw_mode in APPROVAL_VALUES:
        mode = "approval"
    elif raw_mode in AUTO_VALUES:
        mode = None
    else:
        # Unreadable opt-out: the safe reading is "ask a human" — and say so, loudly.
        mode, note = "approval", (f"ONEHA_POLICY={raw_mode!r} is not a value oneha knows "
                                  f"(auto, approval or off); approval required")
    raw_prio = (labels.get("ONEHA_PRIORITY") or "").strip()
    try:
        priority = int(raw_prio) if raw_prio else 0
    except ValueError:
        priority = 0
        note = "; ".join(x for x in (note, f"ONEHA_PRIORITY={raw_prio!r} is not an integer; "
                                           "using 0") if x)
    return VmPolicy(mode=mode, priority=priority, note=note)
