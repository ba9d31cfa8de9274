"""`oneha up`: the all-in-one local mode a newcomer starts first — embedded Redis, gateway,
worker and beat as children; SIGTERM stops everything."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request


from tests.support.procs import free_port, started_under


def _get(url):
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status, resp.read()


def test_up_serves_with_an_embedded_redis_and_stops_whole(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "ONEHA_REDIS_URL", "ONEHA_CONFIG")}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "up", "--port", str(port),
                             "--workdir", str(tmp_path / "up")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = _get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                time.sleep(0.2)
        assert ready is not None and ready[0] == 200, proc.stdout.read() if proc.poll() else ""
        assert json.loads(_get(f"http://127.0.0.1:{port}/healthz")[1])  # process up, JSON
        assert (tmp_path / "up" / "redis").is_dir(), "the embedded Redis keeps its data there"
        running = started_under(tmp_path)
        assert any(p.info["name"] == "redis-server" for p in running), "no embedded Redis"
        names = " ".join(" ".join(p.cmdline()) for p in running)
        for role in ("serve", "worker", "beat"):
            assert role in names, f"`oneha {role}` is not running under `oneha up`"
    finally:
        proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        out, _ = proc.communicate(timeout=30)
        print(f"oneha up stopped in {time.monotonic() - stopping:.1f}s")
    assert proc.returncode == 0, out
    assert not started_under(tmp_path), "processes left behind"
