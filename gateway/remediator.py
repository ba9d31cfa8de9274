"""Moved to gateway/flows/remediation/ (one module per stage). Kept only for gateway/web/
approvals.py, which imports `build_remediator` from here: import gateway.flows.remediation."""
from gateway.flows.remediation import (PLAN_TASK, RESUME_TASK, RUN_TASK, VERIFY_TASK,  # noqa: F401
                                       IncidentPort, Remediator, Wake, build_remediator)
