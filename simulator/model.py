"""The simulated objects: mutable records guarded by the cloud's lock (see cloud.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Datastores of the simulated cloud: id, name, TM_MAD. A "shared" system DS lets a VM be
# restarted elsewhere from its disks; a "local" (ssh) one keeps them on the host itself.
SYSTEM_DS = {"shared": (0, "system", "shared"), "local": (100, "local_system", "ssh")}
IMAGE_DS = {"shared": (1, "default", "shared"), "local": (101, "local_images", "ssh")}

# HISTORY/ACTION codes (vm.xsd comment, include/VMActions.h)
ACTION_NONE = 0
ACTION_MIGRATE = 1
ACTION_LIVE_MIGRATE = 2
ACTION_UNDEPLOY = 5
ACTION_UNDEPLOY_HARD = 6
ACTION_STOP = 9
ACTION_SUSPEND = 10
ACTION_RESUME = 11
ACTION_DELETE = 13
ACTION_DELETE_RECREATE = 14
ACTION_REBOOT = 15
ACTION_REBOOT_HARD = 16
ACTION_RESCHED = 17
ACTION_POWEROFF = 19
ACTION_POWEROFF_HARD = 20
ACTION_TERMINATE = 27
ACTION_TERMINATE_HARD = 28
ACTION_DEPLOY = 30
ACTION_RECOVER = 42
ACTION_RETRY = 43


@dataclass
class User:
    id: int
    name: str
    password: str
    gid: int
    gname: str

    @property
    def is_admin(self) -> bool:
        return self.gid == 0


@dataclass
class Disk:
    disk_id: int
    image_id: int
    image: str
    persistent: bool
    datastore: str  # "shared" | "local"
    size_mb: int
    generation: int = 0  # bumped when a delete-recreate gives the VM fresh copies

    @property
    def ds(self) -> tuple[int, str, str]:
        return IMAGE_DS[self.datastore]


@dataclass
class Nic:
    nic_id: int
    ip: str
    mac: str
    network: str = "public"
    network_id: int = 0


@dataclass
class History:
    seq: int
    hid: int
    hostname: str
    cid: int
    ds_id: int
    tm_mad: str
    stime: int
    uid: int
    gid: int
    etime: int = 0
    pstime: int = 0
    petime: int = 0
    rstime: int = 0
    retime: int = 0
    estime: int = 0
    eetime: int = 0
    action: int = ACTION_NONE
    vm_mad: str = "kvm"
    request_id: str = "-1"


@dataclass
class Host:
    id: int
    name: str
    cpu: int  # TOTAL_CPU, cores * 100
    memory_mb: int
    cluster_id: int
    cluster: str
    state: int = 2
    prev_state: int = 2
    crashed: bool = False  # the machine is down; monitoring will notice at its next cycle
    last_monitored: int = 0  # MONITORING/TIMESTAMP of the last successful cycle
    vm_ids: set[int] = field(default_factory=set)


@dataclass
class Vm:
    id: int
    name: str
    owner: User
    cpu: float
    vcpu: int
    memory_mb: int
    disks: list[Disk]
    nics: list[Nic]
    system_ds: str
    labels: dict[str, str]
    stime: int
    state: int = 1
    lcm_state: int = 0
    prev_state: int = 1
    prev_lcm_state: int = 0
    resched: int = 0
    etime: int = 0
    deploy_id: str = ""
    last_poll: int = 0
    history: list[History] = field(default_factory=list)
    host_id: int | None = None  # the host holding its resources (None when not allocated)
    frozen: bool = False  # guest hung: monitoring reports it UNKNOWN until a resume
    fail_next: set[str] = field(default_factory=set)  # phases whose next run fails
    token: int = 0  # bumped on every transition; timers of older phases are ignored
    pending_target: tuple[int, bool] | None = None  # (host_id, live) chosen by migrate/resched
    lock: tuple[int, int, int] | None = None  # (level 1 USE/2 MANAGE/3 ADMIN, owner, time)
    resume_from: int | None = None  # STOPPED/UNDEPLOYED: the deploy restores, not a fresh prolog
    reboots: int = 0
    recreations: int = 0
    # Rendered XML of the parts that change only with a recreate (template, labels): pools of
    # hundreds of VMs are answered by joining cached strings.
    render_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def system(self) -> tuple[int, str, str]:
        return SYSTEM_DS[self.system_ds]

    @property
    def last_history(self) -> History | None:
        return self.history[-1] if self.history else None
