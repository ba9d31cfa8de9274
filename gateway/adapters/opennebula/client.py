"""The calls oneha makes to OpenNebula, typed: reads answer domain objects, writes go to the leader.

Reads fetch the raw XML (pyone's generateDS binding is skipped) and parse it with the tolerant
readers of `gateway.domain` — the same code that reads a hook's `$TEMPLATE`, so 6.x and 7.x
documents with missing fields are fine and there is one conversion, not two.
"""

from __future__ import annotations

from typing import Any

from gateway.domain import objects
from gateway.domain.objects import HostInfo, VmInfo
from gateway.domain.raft import ZoneInfo, parse_zone

from .frontends import Frontends

HOST_ENABLED, HOST_DISABLED, HOST_OFFLINE = 0, 1, 2  # one.host.status codes (HostAPI.h)
VM_RECOVER = {"failure": 0, "success": 1, "retry": 2, "delete": 3, "delete-recreate": 4,
              "delete-db": 5}


# A subclass, not a wrapper: the failover state (`_leader`, `_last_good`) is the client's own,
# and the tests that stage a failover set it on the client.
class OpenNebula(Frontends):
    """The client oneha holds: `OpenNebula(endpoints, session, timeout, retries)`."""

    @classmethod
    def from_settings(cls, settings) -> "OpenNebula":
        one = settings.opennebula
        return cls(one.endpoints, one.session.get_secret_value(), timeout=one.timeout,
                   retries=one.retries)

    @classmethod
    def of(cls, runtime) -> "OpenNebula":
        """The process's client (one per `Runtime`, so its leader cache is shared by all tasks)."""
        return runtime.cached("opennebula", lambda: cls.from_settings(runtime.settings))

    # ---- reads ------------------------------------------------------------------------------

    def host(self, host_id: int) -> HostInfo:
        return self._parsed("host.info", objects.parse_host, int(host_id))

    def hosts(self) -> list[HostInfo]:
        return self._parsed("hostpool.info", objects.parse_host_pool)

    def vm(self, vm_id: int) -> VmInfo:
        return self._parsed("vm.info", objects.parse_vm, int(vm_id))

    def vms(self, state: int = -1) -> list[VmInfo]:
        """Every VM (filter -2 = all users), `state` -1 = any but DONE, >= 0 that VM STATE.

        Always the extended pool: `one.vmpool.info` entries are cut short by oned
        (VirtualMachine::to_xml_short: disks without PERSISTENT/TM_MAD, USER_TEMPLATE without
        ONEHA_* labels), which would read as "no persistent disk" — unsafe for remediation."""
        return self._parsed("vmpool.infoextended", objects.parse_vm_pool, -2, -1, -1, int(state))

    def system_config(self) -> dict[str, str]:
        """oned.conf as `{"MONITORING_INTERVAL_HOST": "60", "RAFT/LOG_RETENTION": "250000", ...}`:
        single values, and vector attributes' single values as `VECTOR/KEY` (first one wins)."""
        return self._parsed("system.config", _parse_config)

    def version(self) -> str:
        return str(self._read("system.version"))

    def zone(self, zone_id: int = 0) -> ZoneInfo:
        return self._parsed("zone.info", parse_zone, int(zone_id))

    def hooks(self) -> list[dict[str, Any]]:
        """`[{"id", "name", "type", "template": {KEY: value}}]` of `one.hookpool.info`."""
        return self._parsed("hookpool.info", _parse_hooks)

    # ---- writes (to the leader) -------------------------------------------------------------

    def vm_action(self, action: str, vm_id: int) -> int:
        return int(self._write("vm.action", str(action), int(vm_id)))

    def vm_recover(self, vm_id: int, op: int) -> int:
        return int(self._write("vm.recover", int(vm_id), int(op)))

    def vm_deploy(self, vm_id: int, host_id: int, enforce: bool = False) -> int:
        return int(self._write("vm.deploy", int(vm_id), int(host_id), bool(enforce)))

    def host_status(self, host_id: int, status: int) -> int:
        return int(self._write("host.status", int(host_id), int(status)))

    def host_force_update(self, host_id: int) -> None:
        """Like `onehost forceupdate`: OFFLINE, 0.5 s, ENABLED makes the monitor re-sync it."""
        self.host_status(host_id, HOST_OFFLINE)
        self._sleep(0.5)
        self.host_status(host_id, HOST_ENABLED)

    def hook_allocate(self, template: str) -> int:
        return int(self._write("hook.allocate", str(template)))

    def hook_delete(self, hook_id: int) -> int:
        return int(self._write("hook.delete", int(hook_id)))

    def hook_update(self, hook_id: int, template: str, merge: bool = True) -> int:
        """`one.hook.update`: merge (or replace) attributes of the hook's template."""
        return int(self._write("hook.update", int(hook_id), str(template), 1 if merge else 0))


def _parse_config(text: str) -> dict[str, str]:
    root = objects.parse_xml(text, "OPENNEBULA_CONFIGURATION")
    config: dict[str, str] = {}
    for child in root:
        if len(child) == 0:
            config.setdefault(child.tag, (child.text or "").strip())
        for leaf in child:
            if len(leaf) == 0:
                config.setdefault(f"{child.tag}/{leaf.tag}", (leaf.text or "").strip())
    return config


def _parse_hooks(text: str) -> list[dict[str, Any]]:
    root = objects.parse_xml(text, "HOOK_POOL")
    hooks = []
    for el in root.findall("HOOK"):
        tmpl = el.find("TEMPLATE")
        leaves = [c for c in (tmpl if tmpl is not None else []) if len(c) == 0]
        template = {c.tag: (c.text or "").strip() for c in leaves}
        hooks.append({"id": objects._int(el, "ID"), "name": objects._text(el, "NAME") or "",
                      "type": objects._text(el, "TYPE") or "", "template": template})
    return hooks
