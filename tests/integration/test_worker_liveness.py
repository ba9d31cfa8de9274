"""A worker's absence is visible (`/readyz`, `/metrics`), and `oneha up` starts a dead one again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.adapters.store.workers import ALIVE_FOR
from gateway.app import create_app
from gateway.config import settings_from_dict
from tests.support.procs import free_port, started_under
from tests.support.worker import test_config, wait_until, write_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def readiness(client) -> dict:
    r = client.get("/readyz")
    assert r.status_code == 200, r.get_data()
    return r.get_json()


def workers_alive_metric(text: str) -> float:
    return float(re.search(r"^oneha_workers_alive (\S+)$", text, re.M).group(1))


def test_readyz_and_metrics_tell_which_workers_are_alive(key_prefix, workers, redis_url):
    config = test_config(key_prefix, redis_url=redis_url, raft={"enabled": False},
                         reconciler={"enabled": False})
    client = create_app(settings_from_dict(config, env={})).test_client()
    alone = readiness(client)
    assert alone["workers"] == [] and "no worker" in alone["warning"]
    assert workers_alive_metric(client.get("/metrics").get_data(as_text=True)) == 0

    first = workers.start(config, name="first")
    second = workers.start(config, name="second")
    both = wait_until(lambda: len(readiness(client)["workers"]) == 2 and readiness(client),
                      30, what="both workers reported")
    assert "warning" not in both and all(n.endswith("@localhost") for n in both["workers"])
    assert workers_alive_metric(client.get("/metrics").get_data(as_text=True)) == 2

    first.stop()  # a warm shutdown takes it off at once
    wait_until(lambda: len(readiness(client)["workers"]) == 1, ALIVE_FOR / 3,
               what="the stopped one gone")
    second.kill()  # SIGKILL: it says nothing; its reports just stop
    gone = wait_until(lambda: readiness(client)["workers"] == [] and readiness(client),
                      ALIVE_FOR + 15, what="the killed one counted as gone")
    assert "no worker" in gone["warning"]
    assert workers_alive_metric(client.get("/metrics").get_data(as_text=True)) == 0


def _get_json(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_oneha_up_starts_a_worker_again_when_it_dies(key_prefix, redis_url, tmp_path):
    config = write_config(test_config(key_prefix, redis_url=redis_url, raft={"enabled": False},
                                      reconciler={"enabled": False}), tmp_path)
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ONEHA_")},
           "ONEHA_CONFIG": str(config), "REDIS_URL": redis_url, "TMPDIR": str(tmp_path)}
    up = subprocess.Popen([sys.executable, "-m", "gateway.cli", "up", "--port", str(port),
                           "--workdir", str(tmp_path / "up")], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def workers():
            ready = _get_json(port, "/readyz")
            return ready["workers"] if ready and ready.get("workers") else None

        first = wait_until(workers, 90, interval=0.2, what="oneha up's worker reported")
        pid = int(re.match(r"oneha(\d+)@", first[0]).group(1))
        os.killpg(pid, signal.SIGKILL)  # the worker and its pool, as the OOM killer might
        def new_worker():
            assert up.poll() is None, up.stdout.read()[-2000:]  # `oneha up` must not give up
            return [w for w in workers() or [] if w not in first]

        again = wait_until(new_worker, 90, interval=0.2, what="a new worker reported")
        assert up.poll() is None and again != first
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            out, _ = up.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            out, _ = up.communicate()
        for p in started_under(tmp_path):
            p.kill()
    assert b"worker exited" in out, out[-2000:]


def test_a_process_that_keeps_exiting_as_it_starts_is_not_started_again(tmp_path):
    from gateway.local import Processes
    with Processes(None, tmp_path / "logs") as procs:
        procs.oneha("broken", "no-such-command")
        with pytest.raises(RuntimeError, match="broken exited 5 times in a row"):
            for _ in range(Processes.MAX_QUICK_EXITS):
                wait_until(lambda: procs.procs["broken"].poll() is not None, 30,
                           what="the broken command exited")
                procs.restart_exited()
