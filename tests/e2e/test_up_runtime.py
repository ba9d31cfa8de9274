"""`oneha up` never guesses a cloud, and `oneha …` in another shell reads the Redis `up` uses.

Reported: `oneha up` without configuration talked to whatever answered on 127.0.0.1:2633; then
`oneha incidents` said "No open incidents" while the console showed one (the CLI read :6379)."""

import os
import subprocess
import sys
import time
import urllib.request

import yaml

from gateway.config import load_settings
from gateway.local import read_runtime
from tasks.beat import collect_periodic
from tests.hook.support import HookRunner, fixture_b64
from tests.support.procs import free_port, started_under, terminate
from tests.support.worker import wait_until

KEY = "fe1-up-key-0123456789abcdef"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def test_up_without_endpoint_runs_alerting_only_and_the_cli_follows_its_redis(tmp_path):
    config = tmp_path / "oneha.yaml"  # front-end keys only: no redis_url, no opennebula
    config.write_text(yaml.safe_dump({"ingest": {"frontends": {"fe1": {"keys": [KEY]}}}}))
    runtime_file = tmp_path / "run" / "up.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEHA_", "REDIS_URL"))}
    env.update(TMPDIR=str(tmp_path), ONEHA_RUNTIME_FILE=str(runtime_file))
    port = free_port()
    log = open(tmp_path / "up.out", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "-c", str(config), "up",
                             "--port", str(port), "--workdir", str(tmp_path / "up")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)

    def cli(*args):  # "another shell": same config file, no Redis URL anywhere
        return subprocess.run([sys.executable, "-m", "gateway.cli", "-c", str(config), *args],
                              env=env, capture_output=True, text=True, timeout=30)
    try:
        wait_until(lambda: proc.poll() is not None or (_ready(port) and runtime_file.exists()),
                   timeout=60, what="oneha up ready")
        assert proc.poll() is None, (tmp_path / "up.out").read_text()
        out = (tmp_path / "up.out").read_text()
        assert "no OpenNebula endpoint configured" in out
        assert "running without remediation, Raft monitor or reconciler" in out

        # What the children run with: nothing that polls or changes a cloud.
        effective = load_settings(tmp_path / "up" / "oneha.effective.yaml", env={})
        assert effective.remediation.mode == "off"
        assert not effective.raft.enabled and not effective.reconciler.enabled
        periodic = collect_periodic(effective)
        assert not {"oneha.raft_check", "oneha.reconcile"} & set(periodic), periodic
        assert oct((tmp_path / "up" / "oneha.effective.yaml").stat().st_mode & 0o777) == "0o600"

        info = read_runtime(runtime_file)
        assert info and info["pid"] == proc.pid and info["redis_url"] != "redis://127.0.0.1:6379/0"
        assert oct(runtime_file.stat().st_mode & 0o777) == "0o600"
        check = cli("config", "check")
        assert check.returncode == 0, check.stderr
        assert f"127.0.0.1:{info['redis_url'].rsplit(':', 1)[1].split('/')[0]}" in check.stdout
        assert f"of the running `oneha up`, pid {proc.pid}" in check.stdout

        # A signed event from the real sender; `oneha incidents` in another shell shows it.
        hook = HookRunner(tmp_path / "hook", key=KEY, frontend="fe1")
        (tmp_path / "hook").mkdir()
        hook.configure(urls=f"http://127.0.0.1:{port}")
        sent = hook.run(stdin=fixture_b64("host-error.xml"))
        assert sent.returncode == 0 and not hook.spooled(), sent.stderr + hook.log()
        listed = {}

        def incident_listed():
            listed["r"] = cli("incidents")
            return listed["r"].returncode == 0 and "host-" in listed["r"].stdout
        wait_until(incident_listed, timeout=30, what="oneha incidents lists the host incident")
        assert "No open incidents" not in listed["r"].stdout

        # Nothing asked 127.0.0.1:2633 anything: no remediation plan was even requested, and
        # the worker (which did process the event) never named that endpoint.
        worker_log = (tmp_path / "up" / "logs" / "worker.log").read_text(errors="replace")
        assert "oneha.apply_pending" in worker_log or "oneha.process_event" in worker_log
        assert "oneha.plan_remediation[" not in worker_log and "2633" not in worker_log
    finally:
        terminate(proc, timeout=30)
    assert proc.returncode == 0, (tmp_path / "up.out").read_text()
    assert not runtime_file.exists(), "the runtime file outlived its oneha up"
    deadline = time.monotonic() + 10
    while started_under(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not started_under(tmp_path), "processes left behind"


def test_a_stale_runtime_file_is_ignored(tmp_path):
    from gateway.config import settings_from_dict
    from gateway.local import follow_up, write_runtime
    path = tmp_path / "up.json"
    write_runtime({"redis_url": "redis://127.0.0.1:1/0"}, path)
    settings = settings_from_dict({}, env={})
    followed, info = follow_up(settings, path)
    assert info is not None and followed.redis_url == "redis://127.0.0.1:1/0"  # we are alive
    explicit = settings_from_dict({"redis_url": "redis://10.0.0.1:6379/0"}, env={})
    assert follow_up(explicit, path)[0].redis_url == "redis://10.0.0.1:6379/0"  # never overrides
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    path.write_text(f'{{"redis_url": "redis://127.0.0.1:1/0", "pid": {dead}}}')
    assert follow_up(settings, path) == (settings, None)
