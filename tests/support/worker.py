"""A REAL Celery worker (`oneha worker`) as a subprocess, and a beat stand-in, for integration tests.

    from tests.support.worker import start_worker, test_config

    config = test_config(key_prefix, receivers=[...], route={...})   # a config dict
    worker = start_worker(config, tmp_path, concurrency=2)           # waits until it is ready
    beat = start_beat(config, tmp_path)                              # the real `oneha beat`
    ...
    worker.stop()        # SIGTERM: warm shutdown (or .kill() for crash tests: SIGKILL the group)

The key prefix names the Celery queue too (tasks/app.py), so tests sharing the machine's Redis
never take each other's tasks. The fixture `workers` (in tests/support/fixtures.py) stops every
worker a test started. `Ticker(config)` sends `oneha.flush_due` every `interval` seconds, like
the single beat does in deployment; stop and start it to play a beat restart.
`celery_client(config)` is a Celery app (no worker) for `send_task` from a test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_config(key_prefix: str, redis_url: str = "redis://127.0.0.1:6379/0", **sections: Any) -> dict:
    """A minimal valid config dict for a test: its own key prefix (and so its own queue)."""
    return {"redis_url": redis_url, "key_prefix": key_prefix, **sections}


test_config.__test__ = False  # not a test, whatever its name says


def write_config(config: dict, tmp_path: Path, name: str = "oneha.yaml") -> Path:
    path = Path(tmp_path) / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class WorkerHandle:
    def __init__(self, proc: subprocess.Popen, log_path: Path, config_path: Path):
        self.proc = proc
        self.log_path = log_path
        self.config_path = config_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> "WorkerHandle":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log()[-3000:]}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown (SIGTERM to the main process), then make sure no pool child is left."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()

    def kill(self) -> None:
        """A crash: SIGKILL the main process and its pool children at once."""
        self._kill_group()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def start_worker(config: dict, tmp_path: Path, concurrency: int = 2, name: str = "w",
                 ready_timeout: float = 60.0, env: dict[str, str] | None = None) -> WorkerHandle:
    """Start `oneha worker` with `config` written to a temp YAML; returns once it is ready."""
    tmp_path = Path(tmp_path)
    config_path = write_config(config, tmp_path, f"{name}-oneha.yaml")
    log_path = tmp_path / f"{name}-{time.monotonic_ns()}.log"
    full_env = {**os.environ, "ONEHA_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1",
                **(env or {})}
    full_env.pop("REDIS_URL", None)
    full_env.pop("ONEHA_REDIS_URL", None)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker", f"--concurrency={concurrency}",
             f"--name={name}-{os.getpid()}-{time.monotonic_ns()}@localhost"],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return WorkerHandle(proc, log_path, config_path).wait_ready(ready_timeout)


def start_beat(config: dict, tmp_path: Path, name: str = "beat") -> WorkerHandle:
    """Start the real `oneha beat` (tasks/beat.py) for `config`; stop/kill it like a worker.

    Disable what the test does not want sent: `raft: {enabled: false}`, `reconciler: {...}`."""
    tmp_path = Path(tmp_path)
    config_path = write_config(config, tmp_path, f"{name}-oneha.yaml")
    log_path = tmp_path / f"{name}-{time.monotonic_ns()}.log"
    env = {**os.environ, "ONEHA_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    env.pop("ONEHA_REDIS_URL", None)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "beat"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return WorkerHandle(proc, log_path, config_path)


def celery_client(config: dict):
    """A Celery app for the test process (sends tasks to the config's queue; runs none)."""
    from gateway.config import settings_from_dict
    from tasks.app import create_celery
    return create_celery(settings_from_dict(config, env={}))


class Ticker:
    """Stand-in for the single beat: sends `oneha.flush_due` every `interval` seconds."""

    def __init__(self, config: dict, interval: float = 0.25, task: str = "oneha.flush_due"):
        self.app = celery_client(config)
        self.interval = interval
        self.task = task
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Ticker":
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ticker")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.app.send_task(self.task)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Ticker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate()` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s (last: {value!r})")
        time.sleep(interval)


try:  # a pytest plugin too (tests/conftest.py lists it): the `workers` fixture
    import pytest

    @pytest.fixture
    def workers(tmp_path):
        """`workers.start(config, concurrency=2, name="w")` -> WorkerHandle; all stopped after."""
        started: list[WorkerHandle] = []

        class _Workers:
            def start(self, config: dict, concurrency: int = 2, name: str = "w", **kw) -> WorkerHandle:
                handle = start_worker(config, tmp_path, concurrency=concurrency, name=name, **kw)
                started.append(handle)
                return handle

        yield _Workers()
        for handle in started:
            handle.stop(timeout=10)
except ImportError:  # pragma: no cover - pytest is always there in tests
    pass
