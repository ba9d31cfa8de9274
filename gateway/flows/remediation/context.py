"""What every remediation stage works with: the adapters, the settings and the worker's identity,
built once per process and never changed after (a frozen `RemediationContext`).

What a stage remembers between calls lives in the stage (the planner's monitoring interval);
what one pass over a plan holds lives in that pass (`actions.Pass`), never here.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from gateway.adapters import fencing
from gateway.adapters.store.remediation import RemediationStore
from gateway.domain.remediation.outcomes import StepOutcome, outcomes_from
from gateway.domain.remediation.plans import Plan, Step

from .ports import RUN_TASK, IncidentPort

Send = Callable[[str, list, float], None]


@dataclass(frozen=True)
class RemediationContext:
    settings: Any
    cfg: Any  # settings.remediation
    store: RemediationStore
    one: Any  # the OpenNebula client; None when only deciding (the CLI approves and pauses)
    incidents: IncidentPort
    send: Send  # send(task name, args, delay in seconds): the queue
    clock: Callable[[], float]
    fencer: fencing.Fencer | None
    worker_id: str  # owner of the leases this process takes
    lease_ttl: float

    @classmethod
    def build(cls, settings, store: RemediationStore, one, incidents: IncidentPort | None = None,
              send: Send | None = None, clock: Callable[[], float] = time.time,
              fencer: fencing.Fencer | None = None, worker_id: str | None = None
              ) -> "RemediationContext":
        cfg = settings.remediation
        one_cfg = settings.opennebula
        return cls(
            settings=settings, cfg=cfg, store=store, one=one,
            incidents=incidents or IncidentPort(None),
            send=send or (lambda name, args, delay: None), clock=clock,
            fencer=fencer if fencer is not None else fencing.from_config(cfg),
            worker_id=worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
            # Longer than one action can take (timeout × attempts), so a live executor keeps it.
            lease_ttl=max(5.0, 3 * one_cfg.timeout * (one_cfg.retries + 1)))

    def timeline(self, incident_id: str, text: str, actor: str = "oneha", **data) -> None:
        self.incidents.add_timeline(incident_id, text, actor, data)

    def outcomes(self, plan_id: str) -> dict[str, StepOutcome]:
        return outcomes_from(self.store.outcomes(plan_id))

    def record(self, plan: Plan, step: Step, status: str, detail: str, out: StepOutcome,
               **extra) -> StepOutcome:
        """The step's next record, written over `out` (the record the caller holds)."""
        return StepOutcome.from_dict(self.store.record(plan.plan_id, step.key, status, detail,
                                                       previous=out.to_dict(), **extra))

    def start_chunks(self, plan_id: str) -> None:
        """Wake the other executors of a plan (chunk 0 is the caller's, or already queued)."""
        for chunk in range(1, self.cfg.parallel_executors):
            self.send(RUN_TASK, [plan_id, chunk], 0)
