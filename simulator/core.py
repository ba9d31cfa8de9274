"""`Simulator`: a simulated OpenNebula zone with its front-ends, failure injection, observation."""

from __future__ import annotations

import threading
import time
from typing import Callable

from .cloud import Cloud
from .raft import STATE_NAMES
from .rpc import SIGNATURES, Api, FrontEnd
from .spec import CloudSpec
from .states import HOST_STATES, LCM_STATES, VM_STATES

PHASES_TO_FAIL = ("boot", "prolog", "epilog")


class Simulator:
    """Start with `Simulator(CloudSpec(...)).start()` (or `with Simulator(...) as sim:`)."""

    def __init__(self, spec: CloudSpec | None = None, *, host: str = "127.0.0.1",
                 base_port: int = 0, control_port: int | None = 0):
        self.spec = spec or CloudSpec()
        self.cloud = Cloud(self.spec)
        self._record_lock = threading.Lock()
        self.action_log: list[dict] = []
        self.api = Api(self.cloud, self._endpoint_of, self._record)
        self.frontends = [FrontEnd(self.api, i, base_port + i if base_port else 0, host)
                          for i in range(self.spec.frontends)]
        self._control_port = control_port
        self._bind_host = host
        self.control = None
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Simulator":
        try:
            for fe in self.frontends:
                fe.start()
            with self.cloud.lock:
                for fe, server in zip(self.frontends, self.cloud.raft.servers):
                    server.endpoint = fe.endpoint
            if self._control_port is not None:
                from .control import ControlServer

                self.control = ControlServer(self, self._bind_host, self._control_port).start()
            self.cloud.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None
        for fe in self.frontends:
            fe.stop()
        self.cloud.stop()
        self._started = False

    def __enter__(self) -> "Simulator":
        return self if self._started else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def endpoints(self) -> list[str]:
        return [fe.endpoint for fe in self.frontends]

    def _endpoint_of(self, server_id: int) -> str:
        return self.frontends[server_id].endpoint

    @property
    def session(self) -> str:
        return f"oneadmin:{self.spec.password}"

    @property
    def control_url(self) -> str | None:
        return self.control.url if self.control is not None else None

    def _record(self, entry: dict) -> None:
        with self._record_lock:
            self.action_log.append(entry)

    # ------------------------------------------------------------------ failure injection
    def crash_host(self, host_id: int) -> None:
        """The host stops answering: ERROR at its next monitoring cycle, its VMs UNKNOWN."""
        with self.cloud.lock:
            self._host(host_id).crashed = True

    def recover_host(self, host_id: int) -> None:
        """Back to MONITORED at the next cycle; UNKNOWN VMs still on it become RUNNING."""
        with self.cloud.lock:
            self._host(host_id).crashed = False

    def partition(self, host_ids: list[int]) -> None:
        """Many hosts unreachable at once (a network partition)."""
        with self.cloud.lock:
            hosts = [self._host(h) for h in host_ids]
            for host in hosts:
                host.crashed = True

    def heal(self, host_ids: list[int]) -> None:
        with self.cloud.lock:
            hosts = [self._host(h) for h in host_ids]
            for host in hosts:
                host.crashed = False

    def freeze_vm(self, vm_id: int) -> None:
        """The guest hangs: UNKNOWN at the next monitoring cycle, until a resume."""
        with self.cloud.lock:
            self._vm(vm_id).frozen = True

    def fail_vm(self, vm_id: int, phase: str) -> None:
        """The VM's next `phase` (boot|prolog|epilog) fails: it ends in the *_FAILURE state."""
        if phase not in PHASES_TO_FAIL:
            raise ValueError(f"phase must be one of {', '.join(PHASES_TO_FAIL)}, not {phase!r}")
        with self.cloud.lock:
            self._vm(vm_id).fail_next.add(phase)

    def delay_answers(self, method: str, seconds: float) -> None:
        """oned carries out `method` calls at once but answers them `seconds` late (0: on time):
        a caller can die, or time out, while the action is already done."""
        if method not in SIGNATURES:
            raise ValueError(f"unknown method {method!r}")
        if not 0 <= seconds <= 3600:
            raise ValueError("seconds must be between 0 and 3600")
        if seconds:
            self.api.answer_delays[method] = float(seconds)
        else:
            self.api.answer_delays.pop(method, None)

    def kill_leader(self) -> int:
        with self.cloud.lock:
            leader = self.cloud.raft.leader()
            if leader is None:
                raise ValueError("there is no leader to kill")
            sid = leader.id
        self.kill_server(sid)
        return sid

    def kill_server(self, server_id: int) -> None:
        """The front-end's oned dies: its endpoint refuses connections."""
        self._server(server_id)
        self.frontends[server_id].stop()
        with self.cloud.lock:
            self.cloud.raft.kill(server_id)

    def restart_server(self, server_id: int) -> None:
        self._server(server_id)
        fe = self.frontends[server_id]
        if not fe.running:
            fe.start()
        with self.cloud.lock:
            self.cloud.raft.restart(server_id)

    def lag_follower(self, server_id: int, entries: int) -> None:
        """Follower stops replicating `entries` behind the leader (0: it replicates again,
        unless it is beyond the log retention window)."""
        self._server(server_id)
        if entries < 0:
            raise ValueError("entries must be >= 0")
        with self.cloud.lock:
            self.cloud.raft.lag(server_id, entries)

    def reset_server(self, server_id: int) -> None:
        """The manual recovery of a follower beyond retention (onedb restore, server-reset)."""
        self._server(server_id)
        with self.cloud.lock:
            self.cloud.raft.reset_server(server_id)

    def set_log_retention(self, n: int) -> None:
        if n < 1:
            raise ValueError("log retention must be >= 1")
        with self.cloud.lock:
            self.cloud.raft.set_retention(n)

    def append_log(self, entries: int) -> None:
        """Activity on the leader: `entries` more Raft log records."""
        with self.cloud.lock:
            self.cloud.raft.append(entries)

    def set_frontend_env(self, server_id: int, env: dict[str, str]) -> None:
        """The environment front-end `server_id`'s hook manager runs hooks with (on top of the
        simulator's own): its own sender configuration, as each real front-end has."""
        self._server(server_id)
        with self.cloud.hook_runner._lock:
            self.cloud.hook_runner.frontend_env[server_id] = dict(env)

    def set_hooks_enabled(self, enabled: bool) -> None:
        with self.cloud.lock:
            self.cloud.hook_runner.enabled = bool(enabled)

    # ------------------------------------------------------------------ observation
    @property
    def hook_executions(self) -> list[dict]:
        with self.cloud.hook_runner._lock:
            return list(self.cloud.hook_runner.executions)

    def wait_hooks_idle(self, timeout: float = 10.0) -> bool:
        return self.cloud.hook_runner.wait_idle(timeout)

    def vm(self, vm_id: int) -> dict:
        with self.cloud.lock:
            vm = self._vm(vm_id)
            return {
                "id": vm.id, "name": vm.name, "state": vm.state, "lcm_state": vm.lcm_state,
                "state_name": VM_STATES[vm.state], "lcm_state_name": LCM_STATES[vm.lcm_state],
                "host_id": vm.host_id, "resched": vm.resched, "frozen": vm.frozen,
                "reboots": vm.reboots, "recreations": vm.recreations,
                "disk_generations": [d.generation for d in vm.disks],
                "system_ds": vm.system_ds, "labels": dict(vm.labels),
                "history": [dict(h.__dict__) for h in vm.history],
            }

    def host(self, host_id: int) -> dict:
        with self.cloud.lock:
            h = self._host(host_id)
            return {"id": h.id, "name": h.name, "state": h.state,
                    "state_name": HOST_STATES[h.state], "crashed": h.crashed,
                    "vm_ids": sorted(h.vm_ids), "last_monitored": h.last_monitored,
                    "cluster_id": h.cluster_id}

    def vms(self) -> list[dict]:
        return [self.vm(i) for i in sorted(self.cloud.vms)]

    def hosts(self) -> list[dict]:
        return [self.host(i) for i in sorted(self.cloud.hosts)]

    def raft_status(self) -> list[dict]:
        with self.cloud.lock:
            out = []
            for s in self.cloud.raft.servers:
                st = self.cloud.raft.status(s.id)
                st.update(alive=s.alive, state_name=STATE_NAMES[s.state] if s.alive else "DEAD",
                          endpoint=s.endpoint)
                out.append(st)
            return out

    def state(self) -> dict:
        return {"hosts": self.hosts(), "vms": self.vms(), "raft": self.raft_status(),
                "endpoints": self.endpoints, "session_user": "oneadmin"}

    @staticmethod
    def wait_for(predicate: Callable[[], object], timeout: float = 10.0,
                 interval: float = 0.02, message: str = "condition") -> object:
        """Poll `predicate` until it returns something truthy; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{message} not reached within {timeout}s")
            time.sleep(interval)

    # ------------------------------------------------------------------ lookups
    def _vm(self, vm_id: int):
        vm = self.cloud.vms.get(vm_id)
        if vm is None:
            raise ValueError(f"no VM with id {vm_id}")
        return vm

    def _host(self, host_id: int):
        host = self.cloud.hosts.get(host_id)
        if host is None:
            raise ValueError(f"no host with id {host_id}")
        return host

    def _server(self, server_id: int) -> None:
        if not 0 <= server_id < len(self.frontends):
            raise ValueError(f"no front-end server with id {server_id} "
                             f"(0..{len(self.frontends) - 1})")
