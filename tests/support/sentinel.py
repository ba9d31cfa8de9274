"""A Redis primary, its two replicas and three sentinels on loopback (free ports, a temp directory):
the topology the README recommends, for tests that fail the primary over.

    with SentinelTopology(tmp_path) as topo:
        topo.url                     # redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/oneha
        topo.kill_primary()          # SIGKILL; returns once the sentinels promoted the replica
        topo.restart_old_primary()   # it comes back and the sentinels make it a replica

Debian's `redis-sentinel` is `redis-server` in sentinel mode; `redis-server --sentinel` is used
when that name is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.support.procs import StartStop, free_port, wait_for_port

MASTER = "oneha"
DOWN_AFTER_MS = 1000  # how long a silent primary takes to be judged down
FAILOVER_TIMEOUT_MS = 5000


class _Server:
    def __init__(self, workdir: Path, port: int, args: list[str], sentinel: bool = False):
        self.workdir, self.port, self.args, self.sentinel = workdir, port, args, sentinel
        self.proc: subprocess.Popen | None = None

    def start(self) -> "_Server":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.sentinel:
            binary = shutil.which("redis-sentinel")
            command = [binary] if binary else [shutil.which("redis-server"), "--sentinel"]
            conf = self.workdir / "sentinel.conf"
            conf.write_text("\n".join(self.args) + "\n")  # sentinels rewrite their config file
            command = [command[0], str(conf), *command[1:]]
        else:
            command = [shutil.which("redis-server"), *self.args]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.workdir)
        wait_for_port(self.port, proc=self.proc)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


class SentinelTopology(StartStop):
    def __init__(self, workdir: Path):
        base = Path(workdir) / "sentinel-topology"
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (make services installs it)")
        self.redis: list[_Server] = []
        for name in ("a", "b", "c"):
            port = free_port()
            args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "yes", "--appendfsync", "everysec",
                    "--dir", str(base / name), "--daemonize", "no", "--loglevel", "warning"]
            self.redis.append(_Server(base / name, port, args))
        primary = self.redis[0].port
        for replica in self.redis[1:]:  # two: a failover leaves the new primary one replica
            replica.args += ["--replicaof", "127.0.0.1", str(primary)]
        self.sentinels = []
        for i in range(3):
            port = free_port()
            self.sentinels.append(_Server(base / f"s{i}", port, [
                f"port {port}", "bind 127.0.0.1", f"dir {base / f's{i}'}",
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2",
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER} 1"], sentinel=True))
        self.killed: _Server | None = None

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> "SentinelTopology":
        for server in self.redis:
            server.start()
        self._wait(lambda: all(r.client().info("replication").get("master_link_status") == "up"
                               for r in self.redis[1:]), 30, "the replicas in sync")
        for s in self.sentinels:
            s.start()
        self._wait(lambda: all(self._knows_everyone(s) for s in self.sentinels), 30,
                   "the sentinels knowing the replicas and each other")
        return self

    def _knows_everyone(self, sentinel: _Server) -> bool:
        info = sentinel.client().sentinel_master(MASTER)
        return int(info["num-slaves"]) >= 2 and int(info["num-other-sentinels"]) >= 2

    def primary_port(self) -> int:
        _, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def primary(self) -> _Server:
        port = self.primary_port()
        return next(s for s in self.redis if s.port == port)

    def kill_primary(self, timeout: float = 30) -> _Server:
        """SIGKILL the primary; return the new one once every sentinel names it."""
        old = self.primary()
        old.kill()
        self.killed = old
        self._wait(lambda: all(self._names_other_than(s, old.port) for s in self.sentinels),
                   timeout, "the failover")
        new = self.primary()
        self._wait(lambda: new.client().info("replication")["role"] == "master", timeout,
                   "the promoted replica acting as primary")
        return new

    def _names_other_than(self, sentinel: _Server, port: int) -> bool:
        try:
            _, p = sentinel.client().sentinel_get_master_addr_by_name(MASTER)
            return int(p) != port
        except redis.RedisError:
            return False

    def restart_old_primary(self) -> None:
        if self.killed is not None:
            self.killed.start()  # the sentinels reconfigure it as a replica of the new primary
            self.killed = None

    def stop(self) -> None:
        for s in self.sentinels + self.redis:
            s.kill()


    @staticmethod
    def _wait(predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{what} not reached after {timeout:.0f}s")
