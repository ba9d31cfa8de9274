"""OpenNebula's state codes and names, the simulator's own copy.

The simulator checks the gateway, so it must not share a mistake with it: these tables are taken
from OpenNebula release-7.4.0 itself, never from the gateway's own tables, and
tests/simulator/test_states.py checks them against host.xsd and the header enums.

Only the live values are listed. The ones commented out in the headers (legacy host MONITORING_*,
VM FAILED, LCM CANCEL/FAILURE/...) are never reported by oned, and its *_from_str functions refuse
their names, so a hook template naming them must be refused here too.
"""

# include/Host.h `enum HostState` (= Host::str_to_state). host.xsd also lists 1, 5, 6, 7
# (MONITORING_*), commented out in Host.h since 5.12.
HOST_STATES: dict[int, str] = {0: "INIT", 2: "MONITORED", 3: "ERROR", 4: "DISABLED", 8: "OFFLINE"}

# include/VirtualMachine.h `enum VmState` (= vm_state_from_str); 7 FAILED is commented out.
# vm.xsd documents no values, it only links the docs' "List of states".
VM_STATES: dict[int, str] = {
    0: "INIT", 1: "PENDING", 2: "HOLD", 3: "ACTIVE", 4: "STOPPED", 5: "SUSPENDED", 6: "DONE",
    8: "POWEROFF", 9: "UNDEPLOYED", 10: "CLONING", 11: "CLONING_FAILURE",
}

# include/VirtualMachine.h `enum LcmState` (= lcm_state_from_str); 13 CANCEL, 14 FAILURE,
# 55 DISK_SNAPSHOT_REVERT_SUSPENDED and 58 DISK_SNAPSHOT_REVERT are commented out.
LCM_STATES: dict[int, str] = {
    0: "LCM_INIT", 1: "PROLOG", 2: "BOOT", 3: "RUNNING", 4: "MIGRATE", 5: "SAVE_STOP",
    6: "SAVE_SUSPEND", 7: "SAVE_MIGRATE", 8: "PROLOG_MIGRATE", 9: "PROLOG_RESUME",
    10: "EPILOG_STOP", 11: "EPILOG", 12: "SHUTDOWN", 15: "CLEANUP_RESUBMIT", 16: "UNKNOWN",
    17: "HOTPLUG", 18: "SHUTDOWN_POWEROFF", 19: "BOOT_UNKNOWN", 20: "BOOT_POWEROFF",
    21: "BOOT_SUSPENDED", 22: "BOOT_STOPPED", 23: "CLEANUP_DELETE", 24: "HOTPLUG_SNAPSHOT",
    25: "HOTPLUG_NIC", 26: "HOTPLUG_SAVEAS", 27: "HOTPLUG_SAVEAS_POWEROFF",
    28: "HOTPLUG_SAVEAS_SUSPENDED", 29: "SHUTDOWN_UNDEPLOY", 30: "EPILOG_UNDEPLOY",
    31: "PROLOG_UNDEPLOY", 32: "BOOT_UNDEPLOY", 33: "HOTPLUG_PROLOG_POWEROFF",
    34: "HOTPLUG_EPILOG_POWEROFF", 35: "BOOT_MIGRATE", 36: "BOOT_FAILURE",
    37: "BOOT_MIGRATE_FAILURE", 38: "PROLOG_MIGRATE_FAILURE", 39: "PROLOG_FAILURE",
    40: "EPILOG_FAILURE", 41: "EPILOG_STOP_FAILURE", 42: "EPILOG_UNDEPLOY_FAILURE",
    43: "PROLOG_MIGRATE_POWEROFF", 44: "PROLOG_MIGRATE_POWEROFF_FAILURE",
    45: "PROLOG_MIGRATE_SUSPEND", 46: "PROLOG_MIGRATE_SUSPEND_FAILURE",
    47: "BOOT_UNDEPLOY_FAILURE", 48: "BOOT_STOPPED_FAILURE", 49: "PROLOG_RESUME_FAILURE",
    50: "PROLOG_UNDEPLOY_FAILURE", 51: "DISK_SNAPSHOT_POWEROFF",
    52: "DISK_SNAPSHOT_REVERT_POWEROFF", 53: "DISK_SNAPSHOT_DELETE_POWEROFF",
    54: "DISK_SNAPSHOT_SUSPENDED", 56: "DISK_SNAPSHOT_DELETE_SUSPENDED", 57: "DISK_SNAPSHOT",
    59: "DISK_SNAPSHOT_DELETE", 60: "PROLOG_MIGRATE_UNKNOWN",
    61: "PROLOG_MIGRATE_UNKNOWN_FAILURE", 62: "DISK_RESIZE", 63: "DISK_RESIZE_POWEROFF",
    64: "DISK_RESIZE_UNDEPLOYED", 65: "HOTPLUG_NIC_POWEROFF", 66: "HOTPLUG_RESIZE",
    67: "HOTPLUG_SAVEAS_UNDEPLOYED", 68: "HOTPLUG_SAVEAS_STOPPED", 69: "BACKUP",
    70: "BACKUP_POWEROFF", 71: "RESTORE",
}

# Name -> code, for hook templates, which name states (STATE=ERROR, LCM_STATE=UNKNOWN).
HOST_STATE_CODES = {name: code for code, name in HOST_STATES.items()}
VM_STATE_CODES = {name: code for code, name in VM_STATES.items()}
LCM_STATE_CODES = {name: code for code, name in LCM_STATES.items()}
