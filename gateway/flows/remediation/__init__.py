"""Remediation, as named stages: plan → grace → storm guard → approval or policy → execute →
verify → impact. Read in this order:

1. `planning.py`     — an incident becomes a stored plan (pure `build_plan` over live reads).
2. `grace.py`        — after the grace period: host back? storm? who decides (people or policy)?
3. `approval.py`     — an approver decides by signed link (web, API, CLI) or by plan id (CLI).
4. `execution.py`    — the executors drive the steps, one chunk each, under leases;
   `actions.py`      — one step's effect, made exactly once (limits, lock, re-read, claim, call).
5. `verification.py` — follow each VM until it runs, retry or hand it to people; finish with
   the impact report.

`ports.py` is what the flow needs from outside (incidents, the queue's task names, `Wake`);
`context.py` the adapters and settings every stage works with; `remediator.py` the facade the
Celery tasks (tasks/remediate.py), the approval views and the CLI hold.

Every step of a plan is an effect made exactly once:
- one executor per plan chunk at a time (a lease in Redis that lapses when its worker dies);
- before each action: the guards again (pause, Raft leader/quorum, storm), the rate limit and a
  concurrency slot, a per-VM lock, a live re-read of the VM through pyone (act only if it still
  looks as planned), then the action's idempotency key is claimed together with its `acting`
  record (one Lua script);
- an `acting` record whose worker died is settled by re-reading the VM: the action changed it
  (OpenNebula applies state changes inside the call) or it did not run and is made again.
What people must hear is a notice on the incident (`IncidentPort.add_notice`), told in the
incident's story; the next task leaves through the context's `send`.

Shape: small stage classes over one frozen `RemediationContext`, each given the stages it calls
(`Executor` → `Grace` → `Approvals`; `Executor`/`Verifier` → `Actions` → `Planner`), not mixins
over one big object: the dependencies are visible in the constructors, there is no shared mutable
state on the facade (what one pass holds is a `Pass`), and a stage can be read — and built in a
test — on its own.
"""

from .ports import (LEFT_TO_PEOPLE, PLAN_TASK, RESUME_TASK, RUN_TASK, VERIFY_TASK, IncidentPort,
                    Wake)
from .remediator import Remediator, build_remediator

__all__ = ["IncidentPort", "LEFT_TO_PEOPLE", "PLAN_TASK", "RESUME_TASK", "RUN_TASK",
           "Remediator", "VERIFY_TASK", "Wake", "build_remediator"]
