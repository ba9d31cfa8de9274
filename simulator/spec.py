"""What cloud to simulate: hosts, VMs, front-ends and the (short) timings of everything."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import ConfigError

DATASTORE_KINDS = ("shared", "local")
VM_START_STATES = ("running", "pending", "poweroff", "hold")


@dataclass(frozen=True)
class DiskSpec:
    persistent: bool = False
    datastore: str = "shared"  # "shared" (TM shared) or "local" (TM ssh: files live on the host)
    size_mb: int = 2048
    image: str | None = None


@dataclass(frozen=True)
class HostSpec:
    name: str
    cpu: int = 800  # OpenNebula's unit: cores * 100
    memory_mb: int = 32768
    cluster: str = "default"


@dataclass(frozen=True)
class VmSpec:
    name: str
    host: str | None = None  # None: the initial placement picks one
    cpu: float = 1
    memory_mb: int = 1024
    disks: tuple[DiskSpec, ...] | list[DiskSpec] = (DiskSpec(),)
    system_ds: str = "shared"
    labels: dict[str, str] = field(default_factory=dict)
    owner: str = "oneadmin"
    group: str = "oneadmin"
    state: str = "running"  # running | pending | poweroff | hold at start
    nics: int = 1


@dataclass
class CloudSpec:
    hosts: int | list[HostSpec] = 3
    vms: int | list[VmSpec] = 10
    frontends: int = 3
    monitoring_interval: float = 0.3
    boot_time: float = 0.2
    prolog_time: float = 0.1
    epilog_time: float = 0.1
    sched_interval: float = 0.2
    election_timeout: float = 0.5
    log_retention: int = 1000  # Raft LOG_RETENTION (records a follower may lag and still catch up)
    hooklog_retention: int = 20  # HOOK_LOG_CONF/LOG_RETENTION: executions kept per hook
    password: str = "opennebula"
    users: dict[str, str] = field(default_factory=dict)  # extra, non-admin users: name -> password
    hook_base_path: str = "/var/lib/one/remotes/hooks"
    hook_workers: int = 4
    zone_name: str = "OpenNebula"
    host_prefix: str = "node"
    version: str = "7.4.0"

    def host_specs(self) -> list[HostSpec]:
        if isinstance(self.hosts, int):
            return [HostSpec(f"{self.host_prefix}{i + 1:02d}") for i in range(self.hosts)]
        return list(self.hosts)

    def vm_specs(self) -> list[VmSpec]:
        if isinstance(self.vms, int):
            specs = []
            for i in range(self.vms):
                # A realistic mix: every third VM has a persistent disk, every fourth lives on
                # local (ssh) storage, so remediation meets every disk situation.
                local = i % 4 == 3
                disks = (DiskSpec(persistent=(i % 3 == 0), datastore="local" if local else "shared"),)
                specs.append(VmSpec(f"vm{i:03d}", disks=disks,
                                    system_ds="local" if local else "shared"))
            return specs
        return list(self.vms)

    def validate(self) -> None:
        """Refuse a spec that cannot describe a cloud, naming the field and the fix."""
        def need(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"CloudSpec.{key}: {msg}")

        need(self.frontends >= 1, "frontends", "must be >= 1")
        for key in ("monitoring_interval", "boot_time", "prolog_time", "epilog_time",
                    "sched_interval", "election_timeout"):
            need(getattr(self, key) > 0, key, "must be a positive number of seconds")
        need(self.log_retention >= 1, "log_retention", "must be >= 1")
        hosts = self.host_specs()
        names = [h.name for h in hosts]
        need(len(set(names)) == len(names), "hosts", "host names must be unique")
        for h in hosts:
            need(h.cpu > 0 and h.memory_mb > 0, "hosts", f"{h.name}: cpu and memory_mb must be > 0")
        for v in self.vm_specs():
            need(v.host is None or v.host in names, "vms", f"{v.name}: unknown host {v.host!r}")
            need(v.system_ds in DATASTORE_KINDS, "vms", f"{v.name}: system_ds must be shared|local")
            need(v.state in VM_START_STATES, "vms",
                 f"{v.name}: state must be one of {', '.join(VM_START_STATES)}")
            need(v.cpu > 0 and v.memory_mb > 0, "vms", f"{v.name}: cpu and memory_mb must be > 0")
            for d in v.disks:
                need(d.datastore in DATASTORE_KINDS, "vms",
                     f"{v.name}: disk datastore must be shared|local")
            need(v.owner == "oneadmin" or v.owner in self.users, "vms",
                 f"{v.name}: owner {v.owner!r} is not a user (add it to CloudSpec.users)")
