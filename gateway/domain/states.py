"""OpenNebula state codes (include/Host.h, include/VirtualMachine.h; same in 6.x and 7.x).

Kept as plain dicts rather than pyone's IntEnums: pyone lacks LCM 69-71 (BACKUP, BACKUP_POWEROFF,
RESTORE) and the domain must not import pyone.
"""

HOST_STATES: dict[int, str] = {
    0: "INIT",
    1: "MONITORING_MONITORED",  # legacy (pre-5.12), never emitted by 6.x/7.x
    2: "MONITORED",
    3: "ERROR",
    4: "DISABLED",
    5: "MONITORING_ERROR",  # legacy
    6: "MONITORING_INIT",  # legacy
    7: "MONITORING_DISABLED",  # legacy
    8: "OFFLINE",
}
HOST_STATE_CODES = {name: code for code, name in HOST_STATES.items()}

VM_STATES: dict[int, str] = {
    0: "INIT", 1: "PENDING", 2: "HOLD", 3: "ACTIVE", 4: "STOPPED", 5: "SUSPENDED", 6: "DONE",
    7: "FAILED", 8: "POWEROFF", 9: "UNDEPLOYED", 10: "CLONING", 11: "CLONING_FAILURE",
}
VM_STATE_CODES = {name: code for code, name in VM_STATES.items()}

LCM_STATES: dict[int, str] = {
    0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING", 4: "MIGRATE", 5: "SAVE_STOP",
    6: "SAVE_SUSPEND", 7: "SAVE_MIGRATE", 8: "PROLOG_MIGRATE", 9: "PROLOG_RESUME",
    10: "EPILOG_STOP", 11: "EPILOG", 12: "SHUTDOWN", 13: "CANCEL", 14: "FAILURE",
    15: "CLEANUP_RESUBMIT", 16: "UNKNOWN", 17: "HOTPLUG", 18: "SHUTDOWN_POWEROFF",
    19: "BOOT_UNKNOWN", 20: "BOOT_POWEROFF", 21: "BOOT_SUSPENDED", 22: "BOOT_STOPPED",
    23: "CLEANUP_DELETE", 24: "HOTPLUG_SNAPSHOT", 25: "HOTPLUG_NIC", 26: "HOTPLUG_SAVEAS",
    27: "HOTPLUG_SAVEAS_POWEROFF", 28: "HOTPLUG_SAVEAS_SUSPENDED", 29: "SHUTDOWN_UNDEPLOY",
    30: "EPILOG_UNDEPLOY", 31: "PROLOG_UNDEPLOY", 32: "BOOT_UNDEPLOY",
    33: "HOTPLUG_PROLOG_POWEROFF", 34: "HOTPLUG_EPILOG_POWEROFF", 35: "BOOT_MIGRATE",
    36: "BOOT_FAILURE", 37: "BOOT_MIGRATE_FAILURE", 38: "PROLOG_MIGRATE_FAILURE",
    39: "PROLOG_FAILURE", 40: "EPILOG_FAILURE", 41: "EPILOG_STOP_FAILURE",
    42: "EPILOG_UNDEPLOY_FAILURE", 43: "PROLOG_MIGRATE_POWEROFF",
    44: "PROLOG_MIGRATE_POWEROFF_FAILURE", 45: "PROLOG_MIGRATE_SUSPEND",
    46: "PROLOG_MIGRATE_SUSPEND_FAILURE", 47: "BOOT_UNDEPLOY_FAILURE",
    48: "BOOT_STOPPED_FAILURE", 49: "PROLOG_RESUME_FAILURE", 50: "PROLOG_UNDEPLOY_FAILURE",
    51: "DISK_SNAPSHOT_POWEROFF", 52: "DISK_SNAPSHOT_REVERT_POWEROFF",
    53: "DISK_SNAPSHOT_DELETE_POWEROFF", 54: "DISK_SNAPSHOT_SUSPENDED",
    55: "DISK_SNAPSHOT_REVERT_SUSPENDED", 56: "DISK_SNAPSHOT_DELETE_SUSPENDED",
    57: "DISK_SNAPSHOT", 58: "DISK_SNAPSHOT_REVERT", 59: "DISK_SNAPSHOT_DELETE",
    60: "PROLOG_MIGRATE_UNKNOWN", 61: "PROLOG_MIGRATE_UNKNOWN_FAILURE", 62: "DISK_RESIZE",
    63: "DISK_RESIZE_POWEROFF", 64: "DISK_RESIZE_UNDEPLOYED", 65: "HOTPLUG_NIC_POWEROFF",
    66: "HOTPLUG_RESIZE", 67: "HOTPLUG_SAVEAS_UNDEPLOYED", 68: "HOTPLUG_SAVEAS_STOPPED",
    69: "BACKUP", 70: "BACKUP_POWEROFF", 71: "RESTORE",
}
LCM_STATE_CODES = {name: code for code, name in LCM_STATES.items()}
# 13, 14, 55 and 58 are removed placeholders: OpenNebula never reports them.
REMOVED_LCM_STATES = frozenset({13, 14, 55, 58})

HOST_ERROR = 3
HOST_MONITORED = 2
HOST_DISABLED = 4
HOST_OFFLINE = 8
HOST_FAILED_STATES = frozenset({3, 5})  # what host_error.rb treats as "still failed"
HOST_OPERATOR_STATES = frozenset({4, 8})  # disabled/offlined on purpose: maintenance

VM_ACTIVE = 3
VM_POWEROFF = 8
LCM_RUNNING = 3
LCM_UNKNOWN = 16
LCM_FAILURE_STATES = frozenset({36, 37, 38, 39, 40, 41, 42, 44, 46, 47, 48, 49, 50, 61})
# Failures a `recover --retry` can act on: boot/prolog/epilog.
BOOT_FAILURES = frozenset({36, 37, 47, 48})
PROLOG_FAILURES = frozenset({38, 39, 44, 46, 49, 50, 61})
EPILOG_FAILURES = frozenset({40, 41, 42})


def vm_is_running(state: int | None, lcm_state: int | None) -> bool:
    return state == VM_ACTIVE and lcm_state == LCM_RUNNING


def vm_is_unknown(state: int | None, lcm_state: int | None) -> bool:
    return state == VM_ACTIVE and lcm_state == LCM_UNKNOWN


def vm_is_failed(state: int | None, lcm_state: int | None) -> bool:
    return state == VM_ACTIVE and lcm_state in LCM_FAILURE_STATES


def vm_state_label(state: int | None, lcm_state: int | None) -> str:
    """`ACTIVE/UNKNOWN`, `POWEROFF`, ... — the way `onevm list` people read it."""
    name = VM_STATES.get(state, f"STATE_{state}") if state is not None else "?"
    if state == VM_ACTIVE and lcm_state is not None:
        return f"{name}/{LCM_STATES.get(lcm_state, f'LCM_{lcm_state}')}"
    return name


def host_state_label(state: int | None) -> str:
    return HOST_STATES.get(state, f"STATE_{state}") if state is not None else "?"
