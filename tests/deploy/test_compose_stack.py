"""The image built and the compose stack run by a real Docker engine, as a site would deploy it.

dockerd (vfs) of our own; the base image made from Debian packages (no registry); the project's
Dockerfile built through the project's docker-compose.yml; `docker-compose up -d`; every health
check green; a signed event from the host's `oneha-hook` gives exactly one message at a sink on
the host; a worker that dies is started again by its restart policy; `docker-compose down -v`
leaves no container, volume or network; dockerd stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.deploy.engine import Engine, base_tarball, build_context, check_host
from tests.hook.support import HookRunner, fixture_b64
from tests.support.procs import free_port
from tests.support.sinks import ChatSink
from tests.support.worker import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

KEY = "fe1-deploy-key-5f2a9c0e7d4b"
BASE = "oneha-deploy/base:bookworm"
IMAGE = "oneha-deploy/oneha:test"
SERVICES = ("redis", "gateway", "worker", "beat")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oneha-deploy"
# Only what a test needs on top of the project's file: the sink on the host, by name.
OVERRIDE = {"version": "2.4", "services": {
    "worker": {"extra_hosts": ["host.docker.internal:host-gateway"]}}}


class Timer:
    def __init__(self):
        self.t0 = self.last = time.monotonic()
        self.phases: list[tuple[str, float]] = []

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        self.phases.append((phase, now - self.last))
        self.last = now

    def report(self) -> str:
        return ", ".join(f"{p} {s:.0f}s" for p, s in self.phases) + \
            f"; total {time.monotonic() - self.t0:.0f}s"


@pytest.fixture
def engine(tmp_path_factory):
    check_host()
    eng = Engine(tmp_path_factory.mktemp("dockerd")).start()
    yield eng
    eng.stop()
    assert not eng.left(), f"left running after dockerd stopped: {eng.left()}"


def test_the_compose_stack_runs_alerts_and_heals(engine, tmp_path):
    timer = Timer()
    project = f"onehadeploy{os.getpid()}"
    port = free_port()
    ctx = build_context(tmp_path / "ctx")
    timer("wheelhouse")
    engine.docker("import", str(base_tarball(CACHE)), BASE)
    timer("base image")

    with ChatSink(host="0.0.0.0") as sink:
        (ctx / "oneha.yaml").write_text(yaml.safe_dump({
            "public_url": f"http://127.0.0.1:{port}",
            "ingest": {"frontends": {"fe1": {"keys": [KEY]}}},
            "receivers": [{"name": "ops", "kind": "chat",
                           "urls": [f"json://host.docker.internal:{sink.port}/hook"]}],
            "route": {"receiver": "ops", "group_wait": "1s", "group_interval": "5s"},
            # No cloud in this test: nothing polls or changes one.
            "remediation": {"mode": "off"}, "raft": {"enabled": False},
            "reconciler": {"enabled": False}}))
        (ctx / "test.override.yml").write_text(yaml.safe_dump(OVERRIDE))
        env = {**engine.env, "COMPOSE_PROJECT_NAME": project, "ONEHA_PORT": str(port),
               "ONEHA_BASE_IMAGE": BASE, "ONEHA_REDIS_IMAGE": BASE, "ONEHA_IMAGE": IMAGE,
               "ONEHA_SECRET_KEY": "deploy-test-secret", "ONEHA_ONE_SESSION": "oneadmin:unused"}

        def compose(*args, check=True, timeout=900):
            r = subprocess.run(["docker-compose", "-f", "docker-compose.yml", "-f",
                                "test.override.yml", *args], cwd=ctx, env=env,
                               capture_output=True, text=True, timeout=timeout)
            assert not check or r.returncode == 0, f"docker-compose {' '.join(args)}:\n{r.stderr}"
            return r

        try:
            # One build: worker and beat run the image the gateway's build tagged (ONEHA_IMAGE).
            compose("build", "gateway")
            timer("image build")
            image = json.loads(engine.docker("image", "inspect", IMAGE).stdout)[0]["Config"]
            assert image["User"] == "10001:10001" and image["Healthcheck"]["Test"][-1] == "health"
            # One container (each is a full copy of the image with vfs): what the image holds.
            held = engine.docker("run", "--rm", "--entrypoint", "python3", IMAGE, "-c",
                                 "import importlib.util as u, os, shutil; print(u.find_spec("
                                 "'simulator'), u.find_spec('gateway') is not None, os.getuid(), "
                                 "[c for c in ('gcc', 'cc', 'make') if shutil.which(c)])"
                                 ).stdout.strip()
            assert held == "None True 10001 []", f"simulator, oneha, uid, compilers: {held}"

            compose("up", "-d")
            ids = {s: compose("ps", "-q", s).stdout.strip() for s in SERVICES}
            wait_until(lambda: all(_state(engine, i)["Health"]["Status"] == "healthy"
                                   for i in ids.values()),
                       timeout=180, interval=1, what="every service healthy")
            timer("up and healthy")
            for s, cid in ids.items():
                host = json.loads(engine.docker("inspect", cid).stdout)[0]["HostConfig"]
                assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"], (s, host)

            # A signed event from the host's sender, as oned runs it on a front-end.
            hook = HookRunner(tmp_path, key=KEY, frontend="fe1")
            hook.configure(urls=f"http://127.0.0.1:{port}")
            sent = hook.run(stdin=fixture_b64("host-error.xml"))
            assert sent.returncode == 0 and not hook.spooled(), sent.stderr + hook.log()
            [message] = sink.wait_for(1, timeout=60)
            assert "FIRING" in json.dumps(message.body), message.body
            again = hook.run(stdin=fixture_b64("host-error.xml"))  # oned fired the hook twice
            assert again.returncode == 0
            with pytest.raises(AssertionError):  # still one message after two group intervals
                sink.wait_for(2, timeout=10)
            timer("event to message")

            # The worker dies (OOM killer, say): its restart policy brings it back, healthy.
            worker = ids["worker"]
            os.kill(_state(engine, worker)["Pid"], signal.SIGKILL)
            wait_until(lambda: _restarts(engine, worker) >= 1
                       and _state(engine, worker)["Health"]["Status"] == "healthy",
                       timeout=120, interval=1, what="the killed worker restarted and healthy")
            timer("worker restarted")
        finally:
            print(f"deploy test phases: {timer.report()}")
            logs = compose("logs", "--no-color", "--tail", "40", check=False).stdout
            if sys.exc_info()[0] is not None:  # failing: say what the services said
                print(logs)
            down = compose("down", "-v", "--remove-orphans", check=False)
        assert down.returncode == 0, down.stderr + logs
    label = f"label=com.docker.compose.project={project}"
    for kind in ("container", "volume", "network"):
        left = engine.docker(kind, "ls", "-q", *(["-a"] if kind == "container" else []),
                             "--filter", label).stdout.split()
        assert not left, f"{kind}s left after down -v: {left}"
    timer("down")
    print(f"deploy test: {timer.report()}")


def _state(engine: Engine, cid: str) -> dict:
    state = json.loads(engine.docker("inspect", cid).stdout)[0]["State"]
    state.setdefault("Health", {"Status": "none"})
    return state


def _restarts(engine: Engine, cid: str) -> int:
    return json.loads(engine.docker("inspect", cid).stdout)[0]["RestartCount"]
