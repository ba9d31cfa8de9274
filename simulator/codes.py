"""OpenNebula's VM/host state codes, driver phases and action names, as the state machine uses
them (include/VirtualMachine.h, include/Host.h, include/VMActions.h). The name tables are in
states.py; tests/simulator/test_states.py checks the codes here against them."""

from __future__ import annotations

from . import model as m
from .states import LCM_STATES, VM_STATES

# VM states
INIT, PENDING, HOLD, ACTIVE, STOPPED, SUSPENDED, DONE, POWEROFF, UNDEPLOYED = 0, 1, 2, 3, 4, 5, 6, 8, 9
CLONING, CLONING_FAILURE = 10, 11
# LCM states used here
LCM_INIT, PROLOG, BOOT, RUNNING, MIGRATE = 0, 1, 2, 3, 4
SAVE_STOP, SAVE_SUSPEND, SAVE_MIGRATE, PROLOG_MIGRATE, PROLOG_RESUME = 5, 6, 7, 8, 9
EPILOG_STOP, EPILOG, SHUTDOWN, CLEANUP_RESUBMIT, UNKNOWN = 10, 11, 12, 15, 16
SHUTDOWN_POWEROFF, BOOT_UNKNOWN, BOOT_POWEROFF, BOOT_SUSPENDED, BOOT_STOPPED = 18, 19, 20, 21, 22
CLEANUP_DELETE, SHUTDOWN_UNDEPLOY, EPILOG_UNDEPLOY, PROLOG_UNDEPLOY, BOOT_UNDEPLOY = 23, 29, 30, 31, 32
BOOT_MIGRATE, BOOT_FAILURE, BOOT_MIGRATE_FAILURE, PROLOG_MIGRATE_FAILURE = 35, 36, 37, 38
PROLOG_FAILURE, EPILOG_FAILURE, EPILOG_STOP_FAILURE, EPILOG_UNDEPLOY_FAILURE = 39, 40, 41, 42
PROLOG_MIGRATE_POWEROFF, PROLOG_MIGRATE_POWEROFF_FAILURE = 43, 44
PROLOG_MIGRATE_SUSPEND, PROLOG_MIGRATE_SUSPEND_FAILURE = 45, 46
BOOT_UNDEPLOY_FAILURE, BOOT_STOPPED_FAILURE, PROLOG_RESUME_FAILURE = 47, 48, 49
PROLOG_UNDEPLOY_FAILURE, PROLOG_MIGRATE_UNKNOWN, PROLOG_MIGRATE_UNKNOWN_FAILURE = 50, 60, 61
# Host states
H_INIT, H_MONITORED, H_ERROR, H_DISABLED, H_OFFLINE = 0, 2, 3, 4, 8

# A phase: (what can fail it: "prolog"|"boot"|"epilog"|"save"|"shutdown"|"cleanup",
#           duration attribute of the spec, its failure LCM state or None when failing goes back)
PHASES: dict[int, tuple[str, str, int | None]] = {
    PROLOG: ("prolog", "prolog_time", PROLOG_FAILURE),
    PROLOG_RESUME: ("prolog", "prolog_time", PROLOG_RESUME_FAILURE),
    PROLOG_UNDEPLOY: ("prolog", "prolog_time", PROLOG_UNDEPLOY_FAILURE),
    PROLOG_MIGRATE: ("prolog", "prolog_time", PROLOG_MIGRATE_FAILURE),
    PROLOG_MIGRATE_UNKNOWN: ("prolog", "prolog_time", PROLOG_MIGRATE_UNKNOWN_FAILURE),
    PROLOG_MIGRATE_POWEROFF: ("prolog", "prolog_time", PROLOG_MIGRATE_POWEROFF_FAILURE),
    PROLOG_MIGRATE_SUSPEND: ("prolog", "prolog_time", PROLOG_MIGRATE_SUSPEND_FAILURE),
    BOOT: ("boot", "boot_time", BOOT_FAILURE),
    BOOT_MIGRATE: ("boot", "boot_time", BOOT_MIGRATE_FAILURE),
    BOOT_STOPPED: ("boot", "boot_time", BOOT_STOPPED_FAILURE),
    BOOT_UNDEPLOY: ("boot", "boot_time", BOOT_UNDEPLOY_FAILURE),
    BOOT_UNKNOWN: ("boot", "boot_time", None),
    BOOT_POWEROFF: ("boot", "boot_time", None),
    BOOT_SUSPENDED: ("boot", "boot_time", None),
    MIGRATE: ("boot", "boot_time", None),
    SAVE_MIGRATE: ("save", "boot_time", None),
    SAVE_STOP: ("save", "boot_time", None),
    SAVE_SUSPEND: ("save", "boot_time", None),
    SHUTDOWN: ("shutdown", "boot_time", None),
    SHUTDOWN_POWEROFF: ("shutdown", "boot_time", None),
    SHUTDOWN_UNDEPLOY: ("shutdown", "boot_time", None),
    EPILOG: ("epilog", "epilog_time", EPILOG_FAILURE),
    EPILOG_STOP: ("epilog", "epilog_time", EPILOG_STOP_FAILURE),
    EPILOG_UNDEPLOY: ("epilog", "epilog_time", EPILOG_UNDEPLOY_FAILURE),
    CLEANUP_RESUBMIT: ("cleanup", "epilog_time", None),
    CLEANUP_DELETE: ("cleanup", "epilog_time", None),
}
FAILURE_OF = {fail: base for base, (_, _, fail) in PHASES.items() if fail is not None}

ACTIONS = {  # one.vm.action strings -> HISTORY/ACTION code (VMActions)
    "terminate": m.ACTION_TERMINATE, "terminate-hard": m.ACTION_TERMINATE_HARD,
    "undeploy": m.ACTION_UNDEPLOY, "undeploy-hard": m.ACTION_UNDEPLOY_HARD, "hold": 7,
    "release": 8, "stop": m.ACTION_STOP, "suspend": m.ACTION_SUSPEND, "resume": m.ACTION_RESUME,
    "reboot": m.ACTION_REBOOT, "reboot-hard": m.ACTION_REBOOT_HARD, "resched": m.ACTION_RESCHED,
    "unresched": 18, "poweroff": m.ACTION_POWEROFF, "poweroff-hard": m.ACTION_POWEROFF_HARD,
}


# Authorization level of each operation (oned.conf VM_ADMIN_OPERATIONS / VM_MANAGE_OPERATIONS),
# as AuthRequest bits: MANAGE 2, ADMIN 4. A lock at level L blocks operations with level >= L.
ADMIN_ACTIONS = frozenset({"resched", "unresched"})
MANAGE, ADMIN = 2, 4


def state_str(vm: m.Vm) -> str:
    """VirtualMachine::state_str(): the LCM state name when ACTIVE, else the VM state name."""
    return LCM_STATES[vm.lcm_state] if vm.state == ACTIVE else VM_STATES[vm.state]
