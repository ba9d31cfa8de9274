"""The simulated cloud: hosts, VMs, hooks and their state machine, driven by a timer thread.

Transitions follow OpenNebula's DispatchManager (which action is allowed in which state, with its
messages), LifeCycleManager (phases, their successes and failures, recover and retry) and the
monitor (a host that stops answering goes ERROR and its running VMs UNKNOWN; when it answers again
the VMs still there are RUNNING). Everything is guarded by one lock; timers run under it.
"""

from __future__ import annotations

import itertools
import threading
import time

from . import model as m
from .codes import (
    ACTIONS, ACTIVE, ADMIN, ADMIN_ACTIONS, BOOT, BOOT_MIGRATE, BOOT_POWEROFF, BOOT_STOPPED,
    BOOT_SUSPENDED, BOOT_UNDEPLOY, BOOT_UNKNOWN, CLEANUP_DELETE, CLEANUP_RESUBMIT, CLONING,
    CLONING_FAILURE, DONE, EPILOG, EPILOG_STOP, EPILOG_UNDEPLOY, FAILURE_OF, HOLD, H_DISABLED,
    H_ERROR, H_INIT, H_MONITORED, H_OFFLINE, INIT, LCM_INIT, MANAGE, MIGRATE, PENDING, PHASES,
    POWEROFF, PROLOG, PROLOG_MIGRATE, PROLOG_MIGRATE_POWEROFF, PROLOG_MIGRATE_SUSPEND,
    PROLOG_MIGRATE_UNKNOWN, PROLOG_RESUME, PROLOG_UNDEPLOY, RUNNING, SAVE_MIGRATE, SAVE_STOP,
    SAVE_SUSPEND, SHUTDOWN, SHUTDOWN_POWEROFF, SHUTDOWN_UNDEPLOY, STOPPED, SUSPENDED, UNDEPLOYED,
    UNKNOWN, state_str
)
from .errors import ACTION, AUTHORIZATION, INTERNAL, RPC_API, ApiError
from .hooks import UNSUPPORTED_API_CALLS, Hook, HookRunner, build_hook, record_xml
from .hooks import parse_template as parse_hook_template
from .raft import Raft
from .spec import CloudSpec
from .states import HOST_STATES, LCM_STATES, VM_STATES
from .timers import Timers
from .xmlrender import (config_xml, host_pool_xml, host_xml, raft_xml, tag, vm_short_xml, vm_xml,
                        zone_xml)


class Cloud:
    def __init__(self, spec: CloudSpec):
        spec.validate()
        self.spec = spec
        self.lock = threading.RLock()
        self.timers = Timers(self.lock)
        self.raft = Raft(spec.frontends, spec.election_timeout, spec.log_retention,
                         self.timers.call_later)
        self.hook_runner = HookRunner(spec.hook_base_path, spec.hooklog_retention,
                                      spec.hook_workers)
        self.users: dict[str, m.User] = {"oneadmin": m.User(0, "oneadmin", spec.password, 0,
                                                            "oneadmin")}
        for i, (name, password) in enumerate(sorted(spec.users.items()), start=1):
            self.users[name] = m.User(i, name, password, 1, "users")
        self.hosts: dict[int, m.Host] = {}
        self.vms: dict[int, m.Vm] = {}
        self.hooks: dict[int, Hook] = {}
        self._next_hook_id = 0
        self._pending: set[int] = set()
        self._resched: set[int] = set()
        self.monitor_cycles = 0
        self.monitor_cycles_skipped = 0  # cycles that found no leader to run them
        self._build()

    # ================================================================== construction
    def _build(self) -> None:
        now = int(time.time())
        clusters: dict[str, int] = {"default": 0}
        for i, hs in enumerate(self.spec.host_specs()):
            cid = clusters.setdefault(hs.cluster, 100 + len(clusters) - 1)
            self.hosts[i] = m.Host(id=i, name=hs.name, cpu=hs.cpu, memory_mb=hs.memory_mb,
                                   cluster_id=cid, cluster=hs.cluster, last_monitored=now)
        by_name = {h.name: h for h in self.hosts.values()}
        image_ids = itertools.count(0)
        for i, vs in enumerate(self.spec.vm_specs()):
            owner = self.users[vs.owner]
            disks = [m.Disk(disk_id=k, image_id=next(image_ids),
                            image=d.image or f"{vs.name}-disk{k}", persistent=d.persistent,
                            datastore=d.datastore, size_mb=d.size_mb)
                     for k, d in enumerate(vs.disks)]
            nics = [m.Nic(nic_id=k, ip=f"10.{k}.{i // 250}.{i % 250 + 2}",
                          mac=f"02:00:0a:{k:02x}:{i // 250:02x}:{i % 250 + 2:02x}")
                    for k in range(vs.nics)]
            vm = m.Vm(id=i, name=vs.name, owner=owner, cpu=vs.cpu, vcpu=max(1, int(vs.cpu)),
                      memory_mb=vs.memory_mb, disks=disks, nics=nics, system_ds=vs.system_ds,
                      labels=dict(vs.labels), stime=now - 3600)
            self.vms[i] = vm
            if vs.state == "pending":
                self._pending.add(i)
                continue
            if vs.state == "hold":
                vm.state = vm.prev_state = HOLD
                continue
            host = by_name[vs.host] if vs.host else self._pick_host(vm)
            if host is None:
                self._pending.add(i)  # no room: the scheduler keeps trying, as oned does
                continue
            # Already deployed before the simulation starts: one history record on its host.
            t0 = now - 3000
            self._new_history(vm, host, t0)
            h = vm.last_history
            h.pstime, h.petime, h.rstime = t0, t0 + 5, t0 + 5
            vm.deploy_id = f"one-{vm.id}"
            if vs.state == "poweroff":
                vm.state, vm.lcm_state = POWEROFF, LCM_INIT
                vm.prev_state, vm.prev_lcm_state = ACTIVE, SHUTDOWN_POWEROFF
            else:
                vm.state, vm.lcm_state = ACTIVE, RUNNING
                vm.prev_state, vm.prev_lcm_state = ACTIVE, BOOT
                vm.last_poll = now

    def start(self) -> None:
        self.timers.start()
        self.timers.call_later(self.spec.monitoring_interval, self._monitor_tick)
        self.timers.call_later(self.spec.sched_interval, self._sched_tick)

    def stop(self) -> None:
        self.timers.stop()
        self.hook_runner.close()

    # ================================================================== small helpers
    def now(self) -> int:
        return int(time.time())

    def _vm(self, vid: int) -> m.Vm:
        vm = self.vms.get(vid)
        if vm is None:
            raise ApiError.no_such("virtual machine", vid)
        return vm

    def _host(self, hid: int, obname: str = "host") -> m.Host:
        host = self.hosts.get(hid)
        if host is None:
            raise ApiError.no_such(obname, hid)
        return host

    def _usage(self, host: m.Host) -> tuple[int, int]:
        cpu = mem = 0
        for vid in host.vm_ids:
            vm = self.vms[vid]
            cpu += int(round(vm.cpu * 100))
            mem += vm.memory_mb
        return cpu, mem

    def _fits(self, vm: m.Vm, host: m.Host) -> bool:
        cpu, mem = self._usage(host)
        return cpu + int(round(vm.cpu * 100)) <= host.cpu and mem + vm.memory_mb <= host.memory_mb

    def _pick_host(self, vm: m.Vm, exclude: int | None = None) -> m.Host | None:
        """The scheduler's choice: a MONITORED host with room, the least loaded first
        (OpenNebula's default striping policy)."""
        best, best_free = None, -1
        for host in self.hosts.values():
            if host.state != H_MONITORED or host.id == exclude or not self._fits(vm, host):
                continue
            free = host.memory_mb - self._usage(host)[1]
            if free > best_free:
                best, best_free = host, free
        return best

    def _host_alive(self, vm: m.Vm) -> bool:
        return vm.host_id is not None and not self.hosts[vm.host_id].crashed

    # ================================================================== state changes
    def _set_vm(self, vm: m.Vm, state: int, lcm: int) -> None:
        vm.token += 1
        if (state, lcm) == (vm.state, vm.lcm_state):
            return
        vm.prev_state, vm.prev_lcm_state = vm.state, vm.lcm_state
        vm.state, vm.lcm_state = state, lcm
        if state == PENDING:
            self._pending.add(vm.id)
        else:
            self._pending.discard(vm.id)
        self.raft.append()
        self._fire_vm_hooks(vm)

    def _set_host(self, host: m.Host, state: int) -> None:
        if host.state == state:
            return
        host.prev_state, host.state = host.state, state
        self.raft.append()
        if self.hook_runner.enabled:
            name = HOST_STATES[state]
            hooks = [h for h in self.hooks.values() if h.matches_host(name)]
            if hooks:
                xml = host_xml(host, self.vms, self.now())
                for hook in hooks:
                    self.hook_runner.submit(hook, xml, remote_host=host.name,
                                            server_id=self._leader_id())

    def _fire_vm_hooks(self, vm: m.Vm) -> None:
        if not self.hook_runner.enabled or not self.hooks:
            return
        sname, lname = VM_STATES[vm.state], LCM_STATES[vm.lcm_state]
        hooks = [h for h in self.hooks.values() if h.matches_vm(sname, lname)]
        if hooks:
            xml = vm_xml(vm)
            last = vm.last_history
            for hook in hooks:
                self.hook_runner.submit(hook, xml, remote_host=last.hostname if last else "",
                                        server_id=self._leader_id())

    def _leader_id(self) -> int | None:
        """State changes are the leader's doing, so the leader's hook manager runs their hooks."""
        leader = self.raft.leader()
        return leader.id if leader is not None else None

    def _start_phase(self, vm: m.Vm, state: int, lcm: int) -> None:
        self._set_vm(vm, state, lcm)
        _, duration, _ = PHASES[lcm]
        self.timers.call_later(getattr(self.spec, duration), self._phase_done, vm.id, vm.token)

    def _phase_done(self, vid: int, token: int) -> None:
        vm = self.vms[vid]
        if vm.token != token or vm.state != ACTIVE or vm.lcm_state not in PHASES:
            return  # something else happened to the VM meanwhile
        kind, _, _ = PHASES[vm.lcm_state]
        if kind in vm.fail_next:
            vm.fail_next.discard(kind)
            self._phase_failure(vm)
        elif self._fails_by_itself(vm, kind):
            self._phase_failure(vm)
        else:
            self._phase_success(vm)

    def _fails_by_itself(self, vm: m.Vm, kind: str) -> bool:
        if vm.lcm_state == PROLOG_MIGRATE_UNKNOWN and vm.system_ds == "local":
            # tm ssh must copy the disks from the dead source host: it cannot (OpenNebula#6659)
            return True
        if kind == "cleanup":
            return False
        if vm.lcm_state in (SAVE_MIGRATE, MIGRATE):
            # the history already names the destination; the save (or the live copy) also
            # needs the source host
            source = vm.history[-2].hid if len(vm.history) > 1 else None
            if source is not None and self.hosts[source].crashed:
                return True
        return not self._host_alive(vm)

    def _phase_success(self, vm: m.Vm) -> None:
        now = self.now()
        h = vm.last_history
        lcm = vm.lcm_state
        lcm = FAILURE_OF.get(lcm, lcm)  # recover --success from a *_FAILURE state
        if lcm in (PROLOG, PROLOG_MIGRATE_UNKNOWN, PROLOG_RESUME, PROLOG_UNDEPLOY, PROLOG_MIGRATE):
            h.petime = now
            h.rstime = now
            nxt = {PROLOG: BOOT, PROLOG_MIGRATE_UNKNOWN: BOOT, PROLOG_RESUME: BOOT_STOPPED,
                   PROLOG_UNDEPLOY: BOOT_UNDEPLOY, PROLOG_MIGRATE: BOOT_MIGRATE}[lcm]
            self._start_phase(vm, ACTIVE, nxt)
        elif lcm == PROLOG_MIGRATE_POWEROFF:
            h.petime = now
            self._set_vm(vm, POWEROFF, LCM_INIT)
        elif lcm == PROLOG_MIGRATE_SUSPEND:
            h.petime = now
            self._set_vm(vm, SUSPENDED, LCM_INIT)
        elif lcm in (BOOT, BOOT_MIGRATE, BOOT_STOPPED, BOOT_UNDEPLOY, BOOT_UNKNOWN, BOOT_POWEROFF,
                     BOOT_SUSPENDED, MIGRATE):
            if not h.rstime:
                h.rstime = now
            vm.deploy_id = vm.deploy_id or f"one-{vm.id}"
            vm.frozen = False
            vm.last_poll = now
            self._set_vm(vm, ACTIVE, RUNNING)
        elif lcm == SAVE_MIGRATE:
            self._start_phase(vm, ACTIVE, PROLOG_MIGRATE)
        elif lcm == SAVE_STOP:
            h.retime = now
            self._start_phase(vm, ACTIVE, EPILOG_STOP)
        elif lcm == SAVE_SUSPEND:
            self._set_vm(vm, SUSPENDED, LCM_INIT)
        elif lcm == SHUTDOWN:
            h.retime = now
            h.estime = now
            self._start_phase(vm, ACTIVE, EPILOG)
        elif lcm == SHUTDOWN_POWEROFF:
            h.retime = now
            vm.last_poll = 0
            self._set_vm(vm, POWEROFF, LCM_INIT)
        elif lcm == SHUTDOWN_UNDEPLOY:
            h.retime = now
            h.estime = now
            self._start_phase(vm, ACTIVE, EPILOG_UNDEPLOY)
        elif lcm in (EPILOG, EPILOG_STOP, EPILOG_UNDEPLOY):
            h.eetime = now
            self._leave_host(vm, now)
            if lcm == EPILOG:
                self._done(vm, now)
            else:
                vm.resume_from = STOPPED if lcm == EPILOG_STOP else UNDEPLOYED
                self._set_vm(vm, STOPPED if lcm == EPILOG_STOP else UNDEPLOYED, LCM_INIT)
        elif lcm == CLEANUP_RESUBMIT:
            self._leave_host(vm, now)
            self._resubmit(vm)
        elif lcm == CLEANUP_DELETE:
            self._leave_host(vm, now)
            self._done(vm, now)

    def _phase_failure(self, vm: m.Vm) -> None:
        lcm = vm.lcm_state
        if lcm in FAILURE_OF:  # recover --failure on a failure state: stays there
            vm.token += 1
            return
        _, _, fail = PHASES[lcm]
        if fail is not None:
            self._set_vm(vm, ACTIVE, fail)
        elif lcm == BOOT_UNKNOWN:
            self._set_vm(vm, ACTIVE, UNKNOWN)
        elif lcm == BOOT_POWEROFF:
            self._set_vm(vm, POWEROFF, LCM_INIT)
        elif lcm == BOOT_SUSPENDED:
            self._set_vm(vm, SUSPENDED, LCM_INIT)
        elif lcm in (MIGRATE, SAVE_MIGRATE):
            # the migration failed: the VM stays where it was (its record reopened)
            vm.history.pop()
            prev = vm.last_history
            prev.etime = prev.retime = 0
            prev.action = m.ACTION_NONE
            self._move(vm, prev.hid)
            self._set_vm(vm, ACTIVE, RUNNING if self._host_alive(vm) else UNKNOWN)
        elif lcm in (SAVE_STOP, SAVE_SUSPEND, SHUTDOWN, SHUTDOWN_POWEROFF, SHUTDOWN_UNDEPLOY):
            # The driver could not reach the guest: back to what the monitor sees.
            self._set_vm(vm, ACTIVE, RUNNING if self._host_alive(vm) else UNKNOWN)
        else:
            self._set_vm(vm, ACTIVE, lcm)

    # ================================================================== placement and history
    def _new_history(self, vm: m.Vm, host: m.Host, now: int) -> None:
        ds_id, _, tm = vm.system
        vm.history.append(m.History(seq=len(vm.history), hid=host.id, hostname=host.name,
                                    cid=host.cluster_id, ds_id=ds_id, tm_mad=tm, stime=now,
                                    pstime=now, uid=vm.owner.id, gid=vm.owner.gid))
        self._move(vm, host.id)

    def _move(self, vm: m.Vm, host_id: int | None) -> None:
        if vm.host_id is not None:
            self.hosts[vm.host_id].vm_ids.discard(vm.id)
        vm.host_id = host_id
        if host_id is not None:
            self.hosts[host_id].vm_ids.add(vm.id)

    def _close_history(self, vm: m.Vm, now: int, action: int | None = None) -> None:
        h = vm.last_history
        if h is None or h.etime:
            return
        h.etime = now
        if h.rstime and not h.retime:
            h.retime = now
        if action is not None:
            h.action = action

    def _set_action(self, vm: m.Vm, action: int) -> None:
        h = vm.last_history
        if h is not None and not h.etime:
            h.action = action

    def _leave_host(self, vm: m.Vm, now: int) -> None:
        self._close_history(vm, now)
        self._move(vm, None)
        vm.last_poll = 0

    def _done(self, vm: m.Vm, now: int) -> None:
        self._close_history(vm, now)
        self._move(vm, None)
        vm.etime = now
        vm.resched = 0
        self._resched.discard(vm.id)
        vm.last_poll = 0
        self._set_vm(vm, DONE, LCM_INIT)

    def _resubmit(self, vm: m.Vm) -> None:
        """delete-recreate: back to PENDING with fresh copies of the non-persistent disks."""
        for d in vm.disks:
            if not d.persistent:
                d.generation += 1
        vm.recreations += 1
        vm.frozen = False
        vm.resched = 0
        self._resched.discard(vm.id)
        vm.deploy_id = ""
        vm.resume_from = None
        self._set_vm(vm, PENDING, LCM_INIT)

    def _deploy(self, vm: m.Vm, host: m.Host) -> None:
        now = self.now()
        self._new_history(vm, host, now)
        h = vm.last_history
        h.action = m.ACTION_NONE
        origin, vm.resume_from = vm.resume_from, None
        lcm = {STOPPED: PROLOG_RESUME, UNDEPLOYED: PROLOG_UNDEPLOY}.get(origin, PROLOG)
        self._start_phase(vm, ACTIVE, lcm)

    def _begin_migration(self, vm: m.Vm, dst: m.Host, live: bool) -> None:
        now = self.now()
        self._close_history(vm, now, m.ACTION_LIVE_MIGRATE if live else m.ACTION_MIGRATE)
        self._new_history(vm, dst, now)
        vm.resched = 0
        self._resched.discard(vm.id)
        if vm.state == POWEROFF:
            self._start_phase(vm, ACTIVE, PROLOG_MIGRATE_POWEROFF)
        elif vm.state == SUSPENDED:
            self._start_phase(vm, ACTIVE, PROLOG_MIGRATE_SUSPEND)
        elif vm.lcm_state == UNKNOWN:
            self._start_phase(vm, ACTIVE, PROLOG_MIGRATE_UNKNOWN)
        elif live:
            vm.last_history.rstime = now
            self._start_phase(vm, ACTIVE, MIGRATE)
        else:
            self._start_phase(vm, ACTIVE, SAVE_MIGRATE)

    # ================================================================== periodic work
    def _monitor_tick(self) -> None:
        self.timers.call_later(self.spec.monitoring_interval, self._monitor_tick)
        if self.raft.leader() is None:
            self.monitor_cycles_skipped += 1
            return  # only the leader's monitor runs (HostMonitorManager: `if (!is_leader)`)
        now = self.now()
        self.monitor_cycles += 1
        for host in self.hosts.values():
            if host.state == H_OFFLINE:
                continue
            vms = [self.vms[v] for v in sorted(host.vm_ids)]
            if host.crashed:
                if host.state != H_DISABLED:
                    self._set_host(host, H_ERROR)
                for vm in vms:
                    if vm.state == ACTIVE and vm.lcm_state == RUNNING:
                        self._set_vm(vm, ACTIVE, UNKNOWN)
                continue
            host.last_monitored = now
            if host.state in (H_INIT, H_ERROR):
                self._set_host(host, H_MONITORED)
            for vm in vms:
                if vm.state != ACTIVE:
                    continue
                if vm.lcm_state == RUNNING and vm.frozen:
                    self._set_vm(vm, ACTIVE, UNKNOWN)
                elif vm.lcm_state == UNKNOWN and not vm.frozen:
                    self._set_vm(vm, ACTIVE, RUNNING)  # the VM is still there and running
                if vm.lcm_state == RUNNING:
                    vm.last_poll = now

    def _sched_tick(self) -> None:
        self.timers.call_later(self.spec.sched_interval, self._sched_tick)
        if self.raft.leader() is None:
            return  # the scheduler, too, works for the leader only
        for vid in sorted(self._pending):
            vm = self.vms[vid]
            if vm.state != PENDING:
                continue
            host = self._pick_host(vm)
            if host is not None:
                self._deploy(vm, host)
        for vid in sorted(self._resched):
            vm = self.vms[vid]
            movable = vm.state == POWEROFF or (vm.state == ACTIVE and vm.lcm_state in (RUNNING,
                                                                                      UNKNOWN))
            if not vm.resched or not movable:
                continue
            host = self._pick_host(vm, exclude=vm.host_id)
            if host is not None:
                self._begin_migration(vm, host, live=False)

    # ================================================================== reads
    def host_info(self, hid: int) -> str:
        with self.lock:
            return host_xml(self._host(hid), self.vms, self.now())

    def hostpool_info(self) -> str:
        with self.lock:
            return host_pool_xml(list(self.hosts.values()), self.vms, self.now())

    def vm_info(self, user: m.User, vid: int) -> str:
        with self.lock:
            vm = self._vm(vid)
            self._authorize_vm(user, vm)
            return vm_xml(vm)

    def vmpool_info(self, user: m.User, who: int, start: int, end: int, state: int,
                    extended: bool, query: str = "") -> str:
        """VirtualMachinePoolAPI::info + PoolSharedAPI::dump: `end < -1` pages (offset
        `start`, `-end` entries), otherwise `start..end` is an id range (-1: open)."""
        if who < -4:
            raise ApiError(RPC_API, "Incorrect filter_flag")
        if state < -2 or state > CLONING_FAILURE:
            raise ApiError(RPC_API, f"Incorrect state filter {state}")
        if query:
            # oned's default SQLite backend cannot search JSON
            raise ApiError(INTERNAL, "JSON query search is not supported by the SQL backend")
        with self.lock:
            render = vm_xml if extended else vm_short_xml
            selected = []
            for vid in sorted(self.vms):
                vm = self.vms[vid]
                if end >= -1 and start != -1 and (vid < start or end != -1 and vid > end):
                    continue
                if state == -1 and vm.state == DONE or state >= 0 and vm.state != state:
                    continue
                if self._visible(user, vm, who):
                    selected.append(vm)
            if end < -1:
                selected = selected[max(start, 0):max(start, 0) + -end]
            return "<VM_POOL>" + "".join(render(vm) for vm in selected) + "</VM_POOL>"

    def _visible(self, user: m.User, vm: m.Vm, who: int) -> bool:
        if who == -3:
            return vm.owner.id == user.id
        if who == -4:
            return vm.owner.gid == user.gid
        if who >= 0:
            return vm.owner.id == who and (user.is_admin or who == user.id)
        # -2 all, -1 mine and my groups': an admin sees everything through the ACLs
        return user.is_admin or vm.owner.id == user.id or (who == -1 and vm.owner.gid == user.gid)

    def _authorize_vm(self, user: m.User, vm: m.Vm, op: int | None = None) -> None:
        if not user.is_admin and vm.owner.id != user.id:
            raise ApiError.unauthorized(user.id, "virtual machine")
        if op is not None and vm.lock is not None and vm.lock[0] <= op:
            # AuthManager: "VM is locked. [id]", reported as an AUTHORIZATION failure
            raise ApiError(AUTHORIZATION, f"User [{user.id}] : VM is locked. [{vm.id}].")

    def vm_lock(self, user: m.User, vid: int, level: int, test: bool) -> int:
        vm = self._vm(vid)
        self._authorize_vm(user, vm)
        if level not in (1, 2, 3, 4):
            raise ApiError(ACTION, "Wrong lock level specified")
        if test and vm.lock is not None:
            raise ApiError(ACTION, f"Object is locked since {vm.lock[2]}")
        if vm.lock is not None and vm.lock[1] != user.id and not user.is_admin:
            raise ApiError(ACTION, "Error trying to lock the resource.")
        vm.lock = (1 if level == 4 else level, user.id, self.now())
        return vid

    def vm_unlock(self, user: m.User, vid: int) -> int:
        vm = self._vm(vid)
        self._authorize_vm(user, vm)
        if vm.lock is not None and vm.lock[1] != user.id and not user.is_admin:
            raise ApiError(ACTION, "Cannot unlock: Lock is owned by another user")
        vm.lock = None
        return vid

    def system_config(self, server_id: int) -> str:
        with self.lock:
            status = self.raft.status(server_id)
            raft = {"SERVER_ID": status["SERVER_ID"],
                    "BROADCAST_TIMEOUT_MS": max(11, int(self.spec.election_timeout * 100)),
                    "ELECTION_TIMEOUT_MS": int(self.spec.election_timeout * 1000),
                    "LOG_RETENTION": self.raft.retention}
            return config_xml(self.spec.monitoring_interval, raft, self.spec.hooklog_retention)

    def raftstatus(self, server_id: int) -> str:
        with self.lock:
            return raft_xml(self.raft.status(server_id))

    def zone_info(self, zone_id: int, endpoint: str) -> str:
        with self.lock:
            if zone_id != 0:
                raise ApiError.no_such("zone", zone_id)
            return zone_xml(0, self.spec.zone_name, endpoint, self._zone_servers())

    def zonepool_info(self, endpoint: str) -> str:
        with self.lock:
            return "<ZONE_POOL>" + zone_xml(0, self.spec.zone_name, endpoint,
                                            self._zone_servers()) + "</ZONE_POOL>"

    def _zone_servers(self) -> list[tuple[int, str, str]]:
        if self.raft.solo:
            return []
        return [(s.id, s.name, s.endpoint) for s in self.raft.servers]

    def hook_info(self, hook_id: int) -> str:
        with self.lock, self.hook_runner._lock:
            hook = self.hooks.get(hook_id)
            if hook is None:
                raise ApiError.no_such("hook", hook_id)
            return hook.to_xml(with_log=True)

    def hookpool_info(self) -> str:
        with self.lock:
            return "<HOOK_POOL>" + "".join(self.hooks[i].to_xml(with_log=False)
                                           for i in sorted(self.hooks)) + "</HOOK_POOL>"

    def hooklog_info(self, min_ts: int, max_ts: int, hook_id: int, rc_filter: int) -> str:
        with self.lock, self.hook_runner._lock:
            records = []
            for hid in sorted(self.hooks, reverse=True):  # HookLog::dump_log: hkid DESC, exeid
                if hook_id >= 0 and hid != hook_id:
                    continue
                for r in self.hooks[hid].log:
                    if min_ts > 0 and r.timestamp < min_ts or max_ts > 0 and r.timestamp > max_ts:
                        continue
                    if rc_filter == -1 and r.code == 0 or rc_filter == 1 and r.code != 0:
                        continue
                    records.append(record_xml(r))
            return "<HOOKLOG>" + "".join(records) + "</HOOKLOG>"

    # ================================================================== writes
    def host_status(self, user: m.User, hid: int, status: int) -> int:
        if not user.is_admin:
            raise ApiError.unauthorized(user.id, "host")
        host = self._host(hid)
        if status == 0:  # enable: monitored again from scratch at the next cycle
            self._set_host(host, H_INIT)
        elif status == 1:
            self._set_host(host, H_DISABLED)
        elif status == 2:
            self._set_host(host, H_OFFLINE)
        else:
            raise ApiError(INTERNAL, "Wrong status code")
        return hid

    def vm_action(self, user: m.User, action: str, vid: int) -> int:
        if action not in ACTIONS:
            self._vm(vid)
            raise ApiError(ACTION, f'Action "{action}" is not supported')
        vm = self._vm(vid)
        self._authorize_vm(user, vm, ADMIN if action in ADMIN_ACTIONS else MANAGE)
        if not self._dispatch_action(vm, action):
            raise ApiError(ACTION, f'Error performing action "{action}": '
                                   f"This action is not available for state {state_str(vm)}")
        return vid

    def _dispatch_action(self, vm: m.Vm, action: str) -> bool:
        """DispatchManager: run `action` if the VM's state allows it; False otherwise."""
        st, lcm = vm.state, vm.lcm_state
        running_or_unknown = st == ACTIVE and lcm in (RUNNING, UNKNOWN)
        hard = action.endswith("-hard")
        code = ACTIONS[action]
        now = self.now()
        if action in ("terminate", "terminate-hard"):
            if st in (SUSPENDED, POWEROFF):
                self._set_action(vm, code)
                vm.last_history.estime = now
                self._start_phase(vm, ACTIVE, EPILOG)
            elif st in (STOPPED, UNDEPLOYED):
                self._done(vm, now)
            elif st in (INIT, PENDING, HOLD, CLONING, CLONING_FAILURE):
                self._done(vm, now)
            elif st == DONE:
                pass
            elif running_or_unknown or (hard and lcm == SHUTDOWN):
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, SHUTDOWN)
            elif lcm in FAILURE_OF:
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, CLEANUP_DELETE)
            else:
                return False
        elif action in ("undeploy", "undeploy-hard"):
            if st == POWEROFF:
                self._set_action(vm, code)
                vm.last_history.estime = now
                self._start_phase(vm, ACTIVE, EPILOG_UNDEPLOY)
            elif running_or_unknown or (hard and st == ACTIVE and lcm == SHUTDOWN_UNDEPLOY):
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, SHUTDOWN_UNDEPLOY)
            else:
                return False
        elif action in ("poweroff", "poweroff-hard"):
            if running_or_unknown or (hard and st == ACTIVE and lcm == SHUTDOWN_POWEROFF):
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, SHUTDOWN_POWEROFF)
            else:
                return False
        elif action == "hold":
            if st != PENDING:
                return False
            self._set_vm(vm, HOLD, LCM_INIT)
        elif action == "release":
            if st != HOLD:
                return False
            self._set_vm(vm, PENDING, LCM_INIT)
        elif action == "stop":
            if st == SUSPENDED:
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, EPILOG_STOP)
            elif st == ACTIVE and lcm == RUNNING:
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, SAVE_STOP)
            else:
                return False
        elif action == "suspend":
            if not (st == ACTIVE and lcm == RUNNING):
                return False
            self._set_action(vm, code)
            self._start_phase(vm, ACTIVE, SAVE_SUSPEND)
        elif action == "resume":
            if st in (STOPPED, UNDEPLOYED):
                vm.resume_from = st
                self._set_vm(vm, PENDING, LCM_INIT)
            elif st == SUSPENDED:
                self._set_action(vm, code)
                self._start_phase(vm, ACTIVE, BOOT_SUSPENDED)
            elif st == POWEROFF:
                # LifeCycleManager::trigger_restart: a new history record on the same host
                self._close_history(vm, now)
                host = self.hosts[vm.host_id]
                self._new_history(vm, host, now)
                h = vm.last_history
                h.pstime, h.rstime, h.action = 0, now, code
                self._start_phase(vm, ACTIVE, BOOT_POWEROFF)
            elif st == ACTIVE and lcm == UNKNOWN:
                self._set_action(vm, code)
                vm.frozen = False  # the restart starts the guest again (if the host is up)
                self._start_phase(vm, ACTIVE, BOOT_UNKNOWN)
            else:
                return False
        elif action in ("reboot", "reboot-hard"):
            if not (st == ACTIVE and lcm == RUNNING):
                return False
            self._set_action(vm, code)
            vm.reboots += 1
            vm.resched = 0  # rebooting cancels re-scheduling
            self._resched.discard(vm.id)
            self.raft.append()
        elif action in ("resched", "unresched"):
            if not (st == POWEROFF or running_or_unknown):
                return False
            vm.resched = 1 if action == "resched" else 0
            (self._resched.add if vm.resched else self._resched.discard)(vm.id)
            self.raft.append()
        return True

    def vm_recover(self, user: m.User, vid: int, op: int) -> int:
        if op not in range(6):
            raise ApiError(ACTION, "Wrong recovery operation code")
        vm = self._vm(vid)
        self._authorize_vm(user, vm, ADMIN)
        now = self.now()
        if op in (0, 1):
            if vm.state != ACTIVE:
                raise ApiError(ACTION, f"Could not perform a recover operation on VM {vid}, "
                                       f"wrong state {state_str(vm)}.")
            self._set_action(vm, m.ACTION_RECOVER)
            self._recover(vm, success=op == 1)
        elif op == 2:
            if vm.state != ACTIVE:
                raise ApiError(ACTION, f"Could not perform a retry on VM {vid}, "
                                       f"wrong state {state_str(vm)}.")
            self._set_action(vm, m.ACTION_RETRY)
            self._retry(vm)
        elif op == 3:
            self._delete(vm, now)
        elif op == 4:
            if vm.state == DONE:
                raise ApiError(ACTION, "Cannot delete-recreate a VM already in DONE state")
            if vm.state in (INIT, PENDING, CLONING, CLONING_FAILURE):
                return vid
            if vm.state in (STOPPED, UNDEPLOYED, HOLD):
                self._set_action(vm, m.ACTION_DELETE_RECREATE)
                self._resubmit(vm)
            else:  # POWEROFF, SUSPENDED, ACTIVE: clean up on the host first
                self._set_action(vm, m.ACTION_DELETE_RECREATE)
                self._start_phase(vm, ACTIVE, CLEANUP_RESUBMIT)
        else:  # 5: delete-db, no driver operation at all
            self._set_action(vm, m.ACTION_DELETE)
            self._done(vm, now)
        return vid

    def _recover(self, vm: m.Vm, success: bool) -> None:
        lcm = vm.lcm_state
        if lcm in (LCM_INIT, RUNNING):
            return
        if lcm == UNKNOWN:  # LifeCycleManager::recover: UNKNOWN -> RUNNING either way
            vm.frozen = False
            vm.last_poll = self.now()
            self._set_vm(vm, ACTIVE, RUNNING)
            return
        if lcm in PHASES or lcm in FAILURE_OF:
            if success:
                self._phase_success(vm)
            else:
                self._phase_failure(vm)

    def _retry(self, vm: m.Vm) -> None:
        lcm = vm.lcm_state
        if lcm in FAILURE_OF:
            self._start_phase(vm, ACTIVE, FAILURE_OF[lcm])
        elif lcm in PHASES:
            self._start_phase(vm, ACTIVE, lcm)  # re-run the driver operation

    def _delete(self, vm: m.Vm, now: int) -> None:
        if vm.state == DONE:
            return
        self._set_action(vm, m.ACTION_DELETE)
        if vm.state == ACTIVE:
            self._start_phase(vm, ACTIVE, CLEANUP_DELETE)
        else:
            self._done(vm, now)

    def vm_deploy(self, user: m.User, vid: int, hid: int, enforce: bool) -> int:
        if not user.is_admin:
            raise ApiError.unauthorized(user.id, "host")
        vm = self._vm(vid)
        self._authorize_vm(user, vm, ADMIN)
        host = self._host(hid)
        if vm.state not in (PENDING, HOLD, STOPPED, UNDEPLOYED):
            raise ApiError(ACTION, f"Deploy action is not available for state {state_str(vm)}")
        if enforce and not self._fits(vm, host):
            raise ApiError(ACTION, f"virtual machine [{vid}] does not fit in host [{hid}]. "
                                   "Not enough capacity.")
        if vm.state in (STOPPED, UNDEPLOYED):
            vm.resume_from = vm.state
        self._deploy(vm, host)
        return vid

    def vm_migrate(self, user: m.User, vid: int, hid: int, live: bool, enforce: bool) -> int:
        if not user.is_admin:
            raise ApiError.unauthorized(user.id, "host")
        vm = self._vm(vid)
        self._authorize_vm(user, vm, ADMIN)
        host = self._host(hid)
        if vm.state not in (POWEROFF, SUSPENDED) and not (
                vm.state == ACTIVE and vm.lcm_state in (RUNNING, UNKNOWN)):
            raise ApiError(ACTION, f"Migrate action is not available for state {state_str(vm)}")
        if vm.host_id == hid:
            raise ApiError(ACTION, "VM is already running on host [%d] and datastore [%d]"
                           % (hid, vm.system[0]))
        if enforce and not self._fits(vm, host):
            raise ApiError(ACTION, f"virtual machine [{vid}] does not fit in host [{hid}]. "
                                   "Not enough capacity.")
        self._begin_migration(vm, host, live=live and vm.state == ACTIVE
                              and vm.lcm_state == RUNNING)
        return vid

    def hook_allocate(self, user: m.User, template: str) -> int:
        if not user.is_admin:
            raise ApiError.unauthorized(user.id, "hook")
        names = {h.name: h.id for h in self.hooks.values()}
        hook = build_hook(self._next_hook_id, template, names)
        self.hooks[hook.id] = hook
        self._next_hook_id += 1
        return hook.id

    def hook_delete(self, user: m.User, hook_id: int) -> int:
        if not user.is_admin:
            raise ApiError.unauthorized(user.id, "hook")
        if hook_id not in self.hooks:
            raise ApiError.no_such("hook", hook_id)
        del self.hooks[hook_id]
        return hook_id

    def hook_retry(self, user: m.User, hook_id: int, execution_id: int) -> int:
        """RequestManagerHook HookRetry + HookLog::retry: run a recorded execution again."""
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise ApiError.no_such("hook", hook_id)
        if not user.is_admin:  # MANAGE on the hook: oneadmin's
            raise ApiError.unauthorized(user.id, "hook")
        with self.hook_runner._lock:
            record = next((r for r in hook.log if r.execution_id == execution_id), None)
        if record is None:  # the log row is gone (or never was): no ARGUMENTS to read
            raise ApiError(INTERNAL, "Invalid HookLog body. Arguments not found.")
        self.hook_runner.retry(hook, record)
        return hook_id

    def hook_update(self, user: m.User, hook_id: int, template: str, merge: int) -> int:
        """RMHookUpdate: replace (0) or merge (1) the hook's template; TYPE, NAME and, for an
        API hook, a valid CALL stay required (HookAPI::post_update_template)."""
        if not user.is_admin:
            raise ApiError.unauthorized(user.id, "hook")
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise ApiError.no_such("hook", hook_id)
        if merge not in (0, 1):
            raise ApiError(RPC_API, "Wrong update type")
        new = parse_hook_template(template)
        new.pop("NAME", None)
        new.pop("TYPE", None)
        merged = {**hook.template, **new} if merge else new
        if hook.type == "api":
            call = merged.get("CALL", "")
            if not call.startswith("one.") or call in UNSUPPORTED_API_CALLS:
                raise ApiError(INTERNAL, "The CALL attribute is not defined or it's invalid.")
        if not merged.get("COMMAND"):
            raise ApiError(INTERNAL, "No COMMAND in template for Hook.")
        hook.template = merged
        return hook_id

    def fire_api_hooks(self, method: str, params: list, ok: bool, result, code: int,
                       server_id: int | None = None, proxied_to: int | None = None) -> None:
        """API hooks: CALL_INFO (api_info.xsd) of a finished call, as HookAPI::format_message,
        run by the front-end that served the call (and, for a write a follower proxied, by the
        leader too: Request::execute raises the event on both)."""
        if not self.hook_runner.enabled:
            return
        hooks = [h for h in self.hooks.values() if h.matches_call(method)]
        if not hooks:
            return
        ins = "".join(f"<PARAMETER><POSITION>{i + 1}</POSITION><TYPE>IN</TYPE>"
                      f"{tag('VALUE', '****' if i == 0 else _value(p))}</PARAMETER>"
                      for i, p in enumerate(params))
        outs = "".join(f"<PARAMETER><POSITION>{i + 1}</POSITION><TYPE>OUT</TYPE>"
                       f"{tag('VALUE', _value(v))}</PARAMETER>"
                       for i, v in enumerate((ok, result, code)))
        call_info = (f"<CALL_INFO><RESULT>{int(ok)}</RESULT><PARAMETERS>{ins}{outs}"
                     f"</PARAMETERS><EXTRA/></CALL_INFO>")
        for hook in hooks:
            for sid in dict.fromkeys((server_id, proxied_to)):
                if sid is not None or server_id is None:
                    self.hook_runner.submit(hook, "", api_xml=call_info, server_id=sid)


def _value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)
